"""`make demo`, the README's first command, works and says what it should:
the node (on the MicroPython unix port, or on CPython when the unix port is
missing, which the demo says) registers with `coapy gateway` (CPython),
which observes its sensor, stores the readings in SQLite and, with a
broker, publishes them; then the client steps (RD lookups, discovery on the
node, reads, an error), the gateway's status display, and a clean stop
(the node deregisters)."""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import upy
from rdpeers import MOSQUITTO_HINT, tool

ROOT = Path(__file__).resolve().parent.parent


def demo(env=None, *args):
    """What the demo printed, and how long it took (it must end by itself,
    well within the minute the run is given)."""
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "demo.py"), *args],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout, time.monotonic() - t0


def check_conversation(text):
    assert re.search(r"^coapy gateway: running on CPython \d", text, re.M), text
    m = re.search(r"^node: serving CoAP on 127\.0\.0\.1:(\d+)$", text, re.M)
    assert m, text
    node_port = m.group(1)
    gw_port = re.search(r"coapy gateway: listening on 127\.0\.0\.1:(\d+)", text).group(1)
    # The node found the RD from the gateway's bare URI and registered.
    assert ("node: registering with the RD at coap://127.0.0.1:%s as demo-node" % gw_port
            in text), text
    assert "node: the RD takes registrations at coap://127.0.0.1:%s/rd" % gw_port in text, text
    assert re.search(r"^node: registered as demo-node: coap://127\.0\.0\.1:%s/rd/\w+$" % gw_port,
                     text, re.M), text
    # The gateway saw it, with its resources, and observes the sensor.
    assert ("gateway: demo-node registered from coap://127.0.0.1:%s: 3 resources, 1 observed"
            % node_port in text), text
    # The RD's lookups show the endpoint and its sensor, absolute.
    assert re.search(r"ep=demo-node base=coap://127\.0\.0\.1:%s lt=60" % node_port, text), text
    assert ("coap://127.0.0.1:%s/sensors/temp  rt=temperature-c ct=0 obs" % node_port
            in text), text
    # Readings arrived through Observe...
    observed = re.findall(r"^gateway: reading from demo-node /sensors/temp \(observe\): "
                          r'\[\{"bn":"demo-node/","n":"sensors/temp","bt":[\d.]+,"v":(-?[\d.]+)\}\]$',
                          text, re.M)
    assert len(observed) >= 3, text
    assert all(10 < float(v) < 35 for v in observed), observed
    # ... and were stored: the rows the client read from SQLite are readings
    # the gateway received.
    m = re.search(r"holds (\d+) readings of demo-node:\n((?:  \d\d:\d\d:\d\d\.\d{3}  .*\n)+)",
                  text)
    assert m and int(m.group(1)) >= 3, text
    stored = re.findall(r"/sensors/temp = (-?[\d.]+)", m.group(2))
    assert len(stored) >= 3 and all(float(v) in [float(o) for o in observed] for v in stored), (
        stored, observed)
    # The client steps on the node.
    assert re.search(r"/sensors/temp\s+temperature-c\s+0\s+Temperature", text), text
    assert "/sys/uptime" in text and "client: /hello says" in text, text
    readings = re.findall(r"/sensors/temp = (-?\d+\.\d\d)\s+\(2\.05", text)
    assert len(readings) == 3, text
    assert all(10 < float(r) < 35 for r in readings), readings
    assert "client: /no/such/thing -> 4.04 NOT_FOUND" in text, text
    # The gateway's status display: the endpoint, its observed resource.
    assert re.search(r"^coapy gateway on 127\.0\.0\.1:%s: 1 endpoint\b" % gw_port, text, re.M), text
    assert re.search(r"^\s+demo-node\s+coap://127\.0\.0\.1:%s\s+online$" % node_port, text,
                     re.M), text
    assert re.search(r"^\s+/sensors/temp\s+observe\s+-?[\d.]+\s+[\d.]+s\s+\d+$", text, re.M), text
    # Stopped with Ctrl-C, the node deregistered; the gateway saw it go.
    assert "node: deregistered" in text and "node: stopped" in text, text
    assert "gateway: demo-node deregistered" in text, text
    m = re.search(r"coapy gateway: stopped; notifications (\d+), .*stored (\d+)", text)
    assert m and int(m.group(1)) >= 3 and int(m.group(2)) >= 3, text
    assert text.rstrip().endswith("demo finished")


def test_demo_node_on_micropython_gateway_on_cpython_with_mqtt():
    exe = upy.need_micropython()
    tool("mosquitto", MOSQUITTO_HINT)
    tool("mosquitto_sub", MOSQUITTO_HINT)
    text, _ = demo(dict(os.environ, DEMO_MICROPYTHON=exe))
    assert re.search(r"^node: running on MicroPython 1\.\d+\.\d+ \(unix port\)$", text, re.M), text
    assert "CPython instead" not in text
    check_conversation(text)
    # The broker: the gateway's presence, the node's status and its readings.
    assert re.search(r"^demo: MQTT broker: mosquitto on 127\.0\.0\.1:\d+", text, re.M), text
    assert re.search(r"^subscriber: coap/demo-node/\$status \{\"status\":\"online\"", text,
                     re.M), text
    assert re.search(r'^subscriber: coap/demo-node/sensors/temp \[\{"bn":"demo-node/"', text,
                     re.M), text
    assert re.search(r'^subscriber: coap/demo-node/\$status \{"status":"offline".*'
                     r'"reason":"deregistered"', text, re.M), text
    # A clean stop says "offline" itself and disconnects: the broker does
    # not send the Will (the same word) a second time.
    assert len(re.findall(r"^subscriber: coap/\$gateway/\S+ offline$", text, re.M)) == 1, text
    assert "mqtt: disconnected (Normal disconnection)" in text, text
    m = re.search(r"^subscriber: (\d+) readings received from the broker", text, re.M)
    assert m and int(m.group(1)) >= 3, text


def test_demo_falls_back_to_cpython_and_says_so(tmp_path):
    env = dict(os.environ, DEMO_MICROPYTHON=str(tmp_path / "no-micropython"))
    env.pop("PYTHONUNBUFFERED", None)  # the demo must not depend on it
    text, _ = demo(env, "--no-mqtt")
    assert "the MicroPython unix port is not installed" in text, text
    assert "running the node on CPython instead" in text, text
    assert re.search(r"^node: running on CPython \d", text, re.M), text
    assert "demo: no MQTT broker (--no-mqtt)" in text, text
    assert "subscriber:" not in text, text
    check_conversation(text)
