"""`make demo`, the README's first command, works and says what it should:
the node on the MicroPython unix port (or on CPython when the unix port is
missing, which the demo says), the gateway on CPython."""
import os
import re
import subprocess
import sys
from pathlib import Path

import upy

ROOT = Path(__file__).resolve().parent.parent


def demo(env=None, *args):
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "demo.py"), *args],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def check_conversation(text):
    assert re.search(r"node: serving CoAP on 127\.0\.0\.1:\d+", text), text
    assert re.search(r"gateway: running on CPython \d", text), text
    # Discovery found the node's resources, with their attributes.
    assert re.search(r"/sensors/temp\s+temperature-c\s+0\s+Temperature", text), text
    assert "/sys/uptime" in text and "/hello" in text
    # Five readings of the simulated sensor, each a 2.05 with a number.
    readings = re.findall(r"/sensors/temp = (-?\d+\.\d\d)\s+\(2\.05", text)
    assert len(readings) == 5, text
    assert all(10 < float(r) < 35 for r in readings), readings
    # Observe: the first response and a notification a second for ~3 s.
    notes = re.findall(r"notified: (-?\d+\.\d\d)\s+\(2\.05", text)
    assert len(notes) >= 3, text
    assert all(10 < float(r) < 35 for r in notes), notes
    assert "observation cancelled" in text, text
    assert "/no/such/thing -> 4.04 NOT_FOUND" in text
    # The node was stopped with Ctrl-C and closed its socket.
    assert "node: stopped" in text, text
    assert text.rstrip().endswith("demo finished")


def test_demo_node_on_micropython_gateway_on_cpython():
    exe = upy.need_micropython()
    env = dict(os.environ, DEMO_MICROPYTHON=exe)
    text = demo(env)
    assert re.search(r"^node: running on MicroPython 1\.\d+\.\d+ \(unix port\)$", text, re.M), text
    assert "CPython instead" not in text
    check_conversation(text)


def test_demo_falls_back_to_cpython_and_says_so(tmp_path):
    env = dict(os.environ, DEMO_MICROPYTHON=str(tmp_path / "no-micropython"))
    text = demo(env)
    assert "the MicroPython unix port is not installed" in text, text
    assert "running the node on CPython instead" in text, text
    assert re.search(r"^node: running on CPython \d", text, re.M), text
    check_conversation(text)
