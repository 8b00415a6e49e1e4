"""`make demo`, the README's first command, works and says what it should."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_discovers_and_reads_the_node():
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "demo.py")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "node: serving CoAP on 127.0.0.1:" in text
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
    assert text.rstrip().endswith("demo finished")
