"""Requests/s served on loopback by coapy_micro's Server and by its peers,
all measured in the same run with one load generator written in C.

    make bench                                    (everything, with the rest)
    .venv/bin/python tools/bench_server.py        (this part alone)
    .venv/bin/python tools/bench_server.py --only coapy_micro,bare --seconds 2
    .venv/bin/python tools/bench_server.py --list

The load generator (tools/loadgen/loadgen.c, built into build/loadgen/ by
the system C compiler on first use) keeps WINDOW CON GET /bench requests in
flight, each with its own message ID and token, reads responses with
recvmmsg and sends the requests that replace them with sendmmsg, and counts
an exchange only if its response matches the request (message ID, token)
with 2.05 and the payload "ok". It runs on a core of its own, each server
on the other (sched_setaffinity), where the machine has two.

Servers, each in its own process:

    echo          a C server that answers in batches (tools/loadgen/echo.c):
                  what the generator reaches against it is its own ceiling
    bare          a CPython UDP loop that answers every datagram with an ACK
                  2.05 carrying the request's message ID and token; it
                  parses nothing: no CoAP server in Python can be faster
    endpoint      the EndPoint loop on CPython (coapy's API: process(), then
                  rx.ack(Message(...))), no resources
    coapy_micro   coapy_micro's Server on CPython, one resource
    libcoap       libcoap's coap-server-notls (C), /bench made with a PUT
    aiocoap       aiocoap's server, one resource
    upy-endpoint  the EndPoint loop on the MicroPython unix port
    upy-server    coapy_micro's Server on the MicroPython unix port

Every server is started once; then RUNS rounds each give every server one
run of WARMUP + SECONDS, in turn, so a busy moment of the machine hits one
run of each rather than all the runs of one. A server's figure is its best
run; the table shows every run. A ratio between two servers is the median
over rounds of the two loaded side by side on one core, for the pairs in
SIDE_BY_SIDE, and of their runs one after the other within each round;
the ratio of best runs is printed beside (ratio_line() says which a target
reads, and why).
"""
import argparse
import importlib.util
import json
import os
import random
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOADGEN_SRC = ROOT / "tools" / "loadgen"
LOADGEN_OUT = ROOT / "build" / "loadgen"
PATH = "bench"
PAYLOAD = "ok"

# The same two scripts run on CPython and on the MicroPython unix port.
ENDPOINT_LOOP = """import sys
from coapy_micro.connection import EndPoint, Message
ep = EndPoint(dedup_size=256, max_in_flight=256)
ep.bind(("127.0.0.1", int(sys.argv[1])))
print("ready")
while True:
    rx = ep.process(1000)
    if rx is None:
        continue
    if rx.message.transaction_type == Message.CON:
        rx.ack(Message(code=69, payload=b"ok"))
    else:  # a NON request gets a NON response (--non)
        ep.send(Message(Message.NON, 69, payload=b"ok", token=rx.message.token), rx.remote)
"""

SERVER = """import sys
from coapy_micro.connection import EndPoint
from coapy_micro.server import Resource, Server
ep = EndPoint(dedup_size=256)
ep.bind(("127.0.0.1", int(sys.argv[1])))
srv = Server(ep)
srv.add("bench", Resource(get=lambda request: (69, b"ok")))
print("ready")
srv.serve()
"""

BARE_LOOP = """import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
print("ready")
while True:
    data, addr = s.recvfrom(1500)
    tkl = data[0] & 15
    # ACK 2.05 with the request's message ID and token, payload "ok" (for a
    # NON request a NON with the same message ID: --non).
    t = 0x60 if data[0] & 0x30 == 0 else 0x50
    s.sendto(bytes((t | tkl, 0x45, data[2], data[3])) + data[4:4 + tkl] + b"\\xffok", addr)
"""

AIOCOAP = """import asyncio, sys, warnings
warnings.simplefilter("ignore")
import aiocoap, aiocoap.resource as resource

class Bench(resource.Resource):
    async def render_get(self, request):
        return aiocoap.Message(code=aiocoap.CONTENT, payload=b"ok")

async def main():
    root = resource.Site()
    root.add_resource(["bench"], Bench())
    await aiocoap.Context.create_server_context(root, bind=("127.0.0.1", int(sys.argv[1])))
    print("ready")
    await asyncio.get_running_loop().create_future()

asyncio.run(main())
"""


class NotAvailable(Exception):
    """A server (or the generator) cannot run here; the text says why."""


# -- the C programs ------------------------------------------------------------------

def compiler():
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def build_loadgen():
    """{"loadgen": path, "echo": path}, compiled from tools/loadgen/*.c into
    build/loadgen/ when missing or older than their source."""
    cc = compiler()
    if cc is None:
        raise NotAvailable("no C compiler (cc) to build the load generator "
                           "(Debian: apt-get install gcc)")
    LOADGEN_OUT.mkdir(parents=True, exist_ok=True)
    built = {}
    for name in ("loadgen", "echo"):
        src = LOADGEN_SRC / (name + ".c")
        exe = LOADGEN_OUT / name
        if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
            # Built under another name first: a benchmark and a test may
            # build at the same time.
            tmp = exe.with_name("%s.%d.tmp" % (name, os.getpid()))
            proc = subprocess.run([cc, "-O2", "-std=gnu11", "-Wall", "-Wextra", "-o", str(tmp),
                                   str(src)], capture_output=True, text=True)
            if proc.returncode:
                raise NotAvailable("building %s failed:\n%s%s" % (src, proc.stdout, proc.stderr))
            os.replace(tmp, exe)
        built[name] = str(exe)
    return built


def run_loadgen(exe, port, seconds=2.0, warmup=0.5, window=64, cpu=None, non=False,
                path=PATH, payload=PAYLOAD, code="2.05", timeout_ms=500, extra=(), pid=None):
    """One run of the load generator against 127.0.0.1:port: its JSON
    figures as a dict (see tools/loadgen/loadgen.c). With the server's `pid`,
    also the share of the measured part the server spent on a CPU
    (server_busy) and ready to run but kept off it (server_wait, -1 where
    the kernel does not say)."""
    cmd = [exe, "--port", str(port), "--path", path, "--window", str(window),
           "--seconds", str(seconds), "--warmup", str(warmup), "--code", code,
           "--timeout-ms", str(timeout_ms)]
    if payload is not None:
        cmd += ["--payload", payload]
    if cpu is not None:
        cmd += ["--cpu", str(cpu)]
    if non:
        cmd.append("--non")
    cmd += list(extra)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if pid is not None:
            time.sleep(warmup)  # the measured part starts about now
            (c0, w0), t0 = sched_s(pid), time.monotonic()
        out, err = proc.communicate(timeout=seconds + warmup + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode:
        raise RuntimeError("load generator failed (%d): %s" % (proc.returncode, err))
    r = json.loads(out)
    if pid is not None:
        (c1, w1), wall = sched_s(pid), time.monotonic() - t0
        r["server_busy"] = (c1 - c0) / wall
        r["server_wait"] = (w1 - w0) / wall if w0 is not None and w1 is not None else -1
    return r


# -- servers ---------------------------------------------------------------------------

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def micropython():
    here = Path(sys.executable).parent / "micropython"
    return str(here) if here.exists() else shutil.which("micropython")


def upy_default_heap(exe):
    """The unix port's heap when no -X heapsize is given, as text."""
    proc = subprocess.run([exe, "-c", "import gc; print(gc.mem_free() + gc.mem_alloc())"],
                          capture_output=True, text=True, timeout=30)
    try:
        return "heap %d KB (the port's default)" % (int(proc.stdout) // 1024)
    except ValueError:
        return "heap: the port's default"


def coap_put(port, path, payload, deadline):
    """PUT `payload` to coap://127.0.0.1:port/path (CON) until answered
    2.01/2.04 or the deadline: True if it was."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        while time.monotonic() < deadline:
            mid = random.getrandbits(16)
            seg = path.encode()
            req = bytes((0x41, 0x03, mid >> 8, mid & 255, 0x5A, 0xB0 | len(seg))) + seg \
                + b"\xff" + payload.encode()
            try:
                s.sendto(req, ("127.0.0.1", port))
                data = s.recv(1500)
            except OSError:  # not listening yet (ICMP), or no answer in time
                time.sleep(0.1)
                continue
            if len(data) >= 4 and data[2:4] == req[2:4]:
                return data[1] in (65, 68)
    return False


class Spec:
    """How to start one server; `core` ones are what `make bench` must
    measure (all come with `make setup`), the others are peers that may be
    missing (said, not hidden)."""

    def __init__(self, key, label, runtime, core, script=None, argv=None):
        self.key = key
        self.label = label
        self.runtime = runtime
        self.core = core
        self.script = script
        self.argv = argv


SPECS = [
    Spec("echo", "C echo (generator ceiling)", "C", True),
    Spec("bare", "bare UDP loop", "CPython", True, BARE_LOOP),
    Spec("endpoint", "EndPoint loop", "CPython", True, ENDPOINT_LOOP),
    Spec("coapy_micro", "coapy_micro Server", "CPython", True, SERVER),
    Spec("libcoap", "libcoap coap-server", "C", False),
    Spec("aiocoap", "aiocoap", "CPython", True, AIOCOAP),
    Spec("upy-endpoint", "EndPoint loop", "unix port", True, ENDPOINT_LOOP),
    Spec("upy-server", "coapy_micro Server", "unix port", True, SERVER),
]
BY_KEY = {s.key: s for s in SPECS}

# Ratios between two servers that are also measured side by side: each round
# ends with both loaded at the same time, each by a generator of its own,
# sharing the servers' core (see ratio_line()). Checked on the unix port
# against itself: two copies of the EndPoint loop side by side read
# 0.99-1.01, two of the Server 0.98-1.01, where one after the other the same
# server's runs differ by a third on a shared machine.
SIDE_BY_SIDE = [("upy-server", "upy-endpoint")]


class Running:
    def __init__(self, spec, proc, port, errlog, note=""):
        self.spec = spec
        self.proc = proc
        self.port = port
        self.errlog = errlog
        self.note = note

    def alive(self):
        return self.proc.poll() is None

    def stderr_tail(self):
        self.errlog.flush()
        self.errlog.seek(0)
        return self.errlog.read().decode(errors="replace")[-1500:]

    def stop(self):
        if self.alive():
            self.proc.kill()
        self.proc.wait()
        self.errlog.close()


def wait_ready(proc, seconds):
    """True once the process prints "ready" (False: it exited or was slow)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = deadline - time.monotonic()
        r, _, _ = select.select([proc.stdout], [], [], max(0.0, left))
        if not r:
            return False
        line = proc.stdout.readline()
        if not line:
            return False
        if line.startswith(b"ready"):
            return True
    return False


def last_line(text):
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no output"


def start(spec, tools, folder, cpu, upy_heap):
    """A Running server for `spec`, or NotAvailable."""
    pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
    env = dict(os.environ, PYTHONPATH=str(ROOT), MICROPYPATH=str(ROOT))
    note = ""
    last = "did not start"
    for _ in range(3):  # a free port can be taken between free_port() and bind
        port = free_port()
        if spec.key == "echo":
            cmd = [tools["echo"], "--port", str(port)]
        elif spec.key == "libcoap":
            exe = shutil.which("coap-server-notls")
            if exe is None:
                raise NotAvailable("coap-server-notls not found (Debian: apt-get install "
                                   "libcoap3-bin)")
            cmd = [exe, "-A", "127.0.0.1", "-p", str(port), "-d", "4", "-v", "0"]
        elif spec.runtime == "unix port":
            exe = micropython()
            if exe is None:
                raise NotAvailable("the MicroPython unix port (micropython) is not installed: "
                                   "make setup")
            script = Path(folder, "serve_%s.py" % spec.key.replace("-", "_"))
            script.write_text(spec.script)
            cmd = [exe] + (["-X", "heapsize=" + upy_heap] if upy_heap else []) \
                + [str(script), str(port)]
            note = "heap %s" % upy_heap if upy_heap else upy_default_heap(exe)
        else:
            if spec.key == "aiocoap":
                if importlib.util.find_spec("aiocoap") is None:
                    raise NotAvailable("aiocoap is not installed: make setup")
            script = Path(folder, "serve_%s.py" % spec.key.replace("-", "_"))
            script.write_text(spec.script)
            cmd = [sys.executable, "-u", str(script), str(port)]
        errlog = tempfile.TemporaryFile()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errlog, cwd=folder, env=env,
                                preexec_fn=pin)
        run = Running(spec, proc, port, errlog, note)
        if spec.key == "libcoap":
            # No "ready" line: it is ready when /bench can be made.
            ok = coap_put(port, PATH, PAYLOAD, time.monotonic() + 10)
        else:
            ok = wait_ready(proc, 30)
        if ok:
            return run
        last = "did not start: " + last_line(run.stderr_tail())
        run.stop()
    raise NotAvailable(last)


# -- the run ---------------------------------------------------------------------------

def cpus():
    """(server core, generator core), or (None, None) when there are not two."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None, None
    return allowed[0], allowed[1]


HZ = os.sysconf("SC_CLK_TCK")


def sched_s(pid):
    """(seconds on a CPU, seconds waiting, runnable, for a CPU that other
    work had) of a process, all its threads (/proc/PID/task/*/schedstat);
    waiting is None where the kernel does not say."""
    on = waited = 0
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, task)) as f:
                a, b = f.read().split()[:2]
            on += int(a)
            waited += int(b)
    except (OSError, ValueError):
        return cpu_s(pid), None
    return on / 1e9, waited / 1e9


def cpu_s(pid):
    """User + system CPU seconds of a process (all its threads)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            parts = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(parts[11]) + int(parts[12])) / HZ


def kfmt(rate):
    return "%.1fk" % (rate / 1000.0)


INVALID = ("bad_token", "bad_code", "bad_payload", "bad_type", "malformed", "resets")


def side_by_side(tools, running, a, b, args, gen_cpu):
    """Servers a and b loaded at the same time, each by a generator of its
    own, sharing the servers' core: {"rate": a's req/s / b's, "per_cpu":
    the same per CPU-second of each}, or None when either is not running
    or a generator failed (the runs of a alone and b alone then stand)."""
    runs = {}
    for key in (a, b):
        run = running.get(key)
        if run is None or not run.alive():
            return None
    def one(key):
        try:
            runs[key] = run_loadgen(tools["loadgen"], running[key].port, args.seconds,
                                    args.warmup, args.window, gen_cpu, args.non,
                                    pid=running[key].proc.pid)
        except (RuntimeError, ValueError, subprocess.TimeoutExpired):
            pass
    threads = [threading.Thread(target=one, args=(key,)) for key in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(runs) != 2 or not runs[b]["rate"] or min(r["server_busy"] for r in runs.values()) < 0.01:
        return None
    ra, rb = runs[a], runs[b]
    return {"rate": ra["rate"] / rb["rate"],
            "per_cpu": (ra["rate"] / ra["server_busy"]) / (rb["rate"] / rb["server_busy"]),
            "busy": (ra["server_busy"], rb["server_busy"])}


def measure(args, specs=SPECS):
    """Runs every selected server: ({key: [the generator's figures of each
    run]}, {key: why it was not measured}, {key: a note on how it ran},
    (server core, generator core), {(a, b): [side_by_side() of each round]}
    for the SIDE_BY_SIDE pairs measured)."""
    tools = build_loadgen()
    server_cpu, gen_cpu = (None, None) if args.no_pin else cpus()
    by_key = {s.key: s for s in specs}
    keys = [s.key for s in specs if s.key in args.only]
    results = {k: [] for k in keys}
    pairs = {}
    missing = {}
    notes = {}
    running = {}
    folder = tempfile.mkdtemp(prefix="bench-server-")
    try:
        for key in keys:
            try:
                running[key] = start(by_key[key], tools, folder, server_cpu, args.upy_heap)
                notes[key] = running[key].note
            except NotAvailable as e:
                missing[key] = str(e)
        for rnd in range(args.runs):
            line = []
            # Every other round in the reverse order, so that no server
            # always runs right after the same neighbour.
            for key in (keys if rnd % 2 == 0 else keys[::-1]):
                run = running.get(key)
                if run is None:
                    continue
                if not run.alive():
                    missing[key] = "exited during the run: " + last_line(run.stderr_tail())
                    del running[key]
                    run.stop()
                    continue
                try:
                    r = run_loadgen(tools["loadgen"], run.port, args.seconds, args.warmup,
                                    args.window, gen_cpu, args.non, pid=run.proc.pid)
                except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
                    missing[key] = "load generator: %s" % last_line(str(e))
                    del running[key]
                    run.stop()
                    continue
                # What it serves per second of its own CPU time (1 / its CPU
                # cost per request): on a quiet machine a saturated server's
                # req/s; on a busy one, steadier than req/s, which jumps
                # with the other work on the server's core.
                r["per_cpu"] = r["rate"] / r["server_busy"] if r["server_busy"] > 0.01 else 0.0
                r["round"] = rnd
                results[key].append(r)
                line.append("%s %s" % (key, kfmt(r["rate"])) if key == "echo" else
                            "%s %s (%s/CPU-s)" % (key, kfmt(r["rate"]), kfmt(r["per_cpu"])))
            for a, b in SIDE_BY_SIDE:
                pair = side_by_side(tools, running, a, b, args, gen_cpu)
                if pair is not None:
                    pair["round"] = rnd
                    pairs.setdefault((a, b), []).append(pair)
                    line.append("%s / %s side by side %.2fx" % (a, b, pair["per_cpu"]))
            print("  round %d/%d: %s" % (rnd + 1, args.runs, ", ".join(line)), flush=True)
    finally:
        for run in running.values():
            run.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return results, missing, notes, (server_cpu, gen_cpu), pairs


def best(runs):
    return max(runs, key=lambda r: r["rate"]) if runs else None


def share(cpu, wait):
    return "%.2f/%s" % (cpu, "%.2f" % wait if wait >= 0 else "?")


def report(args, results, missing, notes, pinned, pairs=None):
    server_cpu, gen_cpu = pinned
    print()
    print("  %-34s %10s  %-30s %6s %9s %7s %7s %9s %9s  %s"
          % ("server", "best req/s", "every run (req/s)", "spread", "req/CPU-s", "p50 us",
             "p99 us", "srv cpu/w", "gen cpu/w", "notes"))
    for spec in SPECS:
        if spec.key not in results and spec.key not in missing:
            continue
        name = "%s (%s)" % (spec.label, spec.runtime) if spec.key != "echo" else spec.label
        runs = results.get(spec.key) or []
        if not runs:
            print("  %-34s %10s  not measured: %s" % (name, "-", missing.get(spec.key, "no runs")))
            continue
        b = best(runs)
        rates = [r["rate"] for r in runs]
        spread = (max(rates) - min(rates)) / max(rates) * 100 if max(rates) else 0
        bad = {k: sum(r[k] for r in runs) for k in INVALID}
        extra = []
        if any(bad.values()):
            extra.append("NOT COUNTED, answered wrongly: " + ", ".join(
                "%s %d" % (k, v) for k, v in bad.items() if v))
        rtx = sum(r["retransmissions"] for r in runs)
        lost = sum(r["timeouts"] + r["lost"] for r in runs)
        if rtx or lost:
            extra.append("%d retransmitted, %d timed out" % (rtx, lost))
        if notes.get(spec.key):
            extra.append(notes[spec.key])
        if spec.key in missing:
            extra.append(missing[spec.key])
        per_cpu = "-" if spec.key == "echo" else kfmt(max(r["per_cpu"] for r in runs))
        print("  %-34s %10.0f  %-30s %5.0f%% %9s %7.0f %7.0f %9s %9s  %s"
              % (name, b["rate"], " ".join(kfmt(x) for x in rates), spread, per_cpu,
                 b["p50_us"], b["p99_us"], share(b["server_busy"], b["server_wait"]),
                 share(b["busy"], b["wait"]), "; ".join(extra)))
    print("  (best of %d runs of %.1f s after %.1f s of warm-up each, interleaved; spread = "
          "(best - worst) / best; req/CPU-s: the best run in requests per second of the server's "
          "own CPU time, what it would serve with its core to itself; "
          "p50/p99: latency of the best run, which at saturation is mostly the %d requests "
          "queued; srv, gen cpu/w: share of the measured part the server and the generator "
          "spent on a CPU / ready to run but kept off their core by other work)"
          % (args.runs, args.seconds, args.warmup, args.window))
    runs = [r for v in results.values() for r in v]
    srv_wait = max([r["server_wait"] for r in runs] + [0])
    gen_wait = max([r["wait"] for r in runs] + [0])
    if max(srv_wait, gen_wait) > 0.1:
        print("  this machine was busy: a server spent up to %.0f%% of a run, the generator up "
              "to %.0f%%, ready to run but kept off its core by other work; such figures are "
              "low and noisy: take final ones on a quiet machine" % (srv_wait * 100,
                                                                      gen_wait * 100))
    if gen_cpu is None:
        print("  not pinned: %s" % ("--no-pin" if args.no_pin else "fewer than two cores here"))
    else:
        print("  generator pinned to CPU %d, every server to CPU %d" % (gen_cpu, server_cpu))
    print()
    targets(results, missing, pairs or {})


def figure(results, key, field):
    """The best of a server's runs in `field` ("rate" or "per_cpu"), or None."""
    runs = results.get(key) or []
    return max(r[field] for r in runs) if runs else None


def paired(results, a, b, field):
    """The ratio a/b in `field` within each round, where both ran: a list
    (the two runs of a round are taken moments apart, the one after the
    other)."""
    ra = {r["round"]: r[field] for r in results.get(a) or []}
    rb = {r["round"]: r[field] for r in results.get(b) or []}
    return [ra[k] / rb[k] for k in sorted(ra) if k in rb and rb[k]]


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def ratio_line(results, missing, a, b, what, goal=None, pairs=None):
    """Prints "WHAT: figures (target >= GOAL): met|NOT MET", or "not
    measured (why)"; with no goal, the figures alone (for scale).

    Three figures, each in requests per CPU-second of each server and in
    plain req/s (on a busy machine each can be thrown: req/s by other work
    on a core, per CPU-second by a server that idles while the generator
    waits for its core), and a target reads the first there is of:

    - side by side (SIDE_BY_SIDE): the median over rounds of the ratio of
      a and b loaded at the same time on one core. Whatever the machine
      does meanwhile (other work, a virtual CPU that runs slower for a
      while) it does to both, so the ratio holds to a few percent where
      runs taken one after the other differ by a third;
    - the median of the ratios within rounds (a's run and b's, taken
      moments apart);
    - (printed, never read by a target) the ratio of the best runs, which
      sets each server's least disturbed run against the other's, from
      different rounds: one lucky run of either moves it.

    The target is met only when the figure it reads meets it both per
    CPU-second and in req/s."""
    if a not in results or b not in results:
        return  # not asked for (--only)
    target = "" if goal is None else " (target >= %gx)" % goal
    x, y = figure(results, a, "per_cpu"), figure(results, b, "per_cpu")
    cpu_rounds = paired(results, a, b, "per_cpu")
    rate_rounds = paired(results, a, b, "rate")
    if x is None or y is None or not y or not cpu_rounds or not rate_rounds:
        why = "; ".join("%s: %s" % (k, missing.get(k, "not run")) for k in (a, b)
                        if figure(results, k, "rate") is None)
        print("  %s%s: not measured (%s)" % (what, target, why or "no valid answers"))
        return
    parts = []
    side = (pairs or {}).get((a, b)) or []
    if side:
        sc = [r["per_cpu"] for r in side]
        sr = [r["rate"] for r in side]
        cpu, rate = median(sc), median(sr)
        parts.append("%.2fx per CPU-second, %.2fx in req/s side by side (median of %d "
                     "rounds, per round %.2f..%.2f)" % (cpu, rate, len(sc), min(sc), max(sc)))
        parts.append("one after the other %.2fx, %.2fx (per round %.2f..%.2f)" % (
            median(cpu_rounds), median(rate_rounds), min(cpu_rounds), max(cpu_rounds)))
    else:
        cpu, rate = median(cpu_rounds), median(rate_rounds)
        parts.append("%.2fx per CPU-second, %.2fx in req/s (median of %d rounds, per round "
                     "%.2f..%.2f)" % (cpu, rate, len(cpu_rounds), min(cpu_rounds),
                                      max(cpu_rounds)))
    parts.append("best runs %.2fx, %.2fx" % (
        x / y, figure(results, a, "rate") / (figure(results, b, "rate") or 1)))
    verdict = "" if goal is None else ": " + ("met" if min(cpu, rate) >= goal else "NOT MET")
    print("  %s: %s%s%s" % (what, "; ".join(parts), target, verdict))


def targets(results, missing, pairs=None):
    ratio_line(results, missing, "coapy_micro", "aiocoap",
               "CPython: coapy_micro Server / aiocoap", 10, pairs)
    ratio_line(results, missing, "coapy_micro", "bare",
               "CPython: coapy_micro Server / bare UDP loop", 0.6, pairs)
    ratio_line(results, missing, "upy-server", "upy-endpoint",
               "unix port: coapy_micro Server / EndPoint loop", 0.8, pairs)
    ratio_line(results, missing, "coapy_micro", "libcoap",
               "for scale: CPython coapy_micro Server / libcoap (C)", None, pairs)
    ratio_line(results, missing, "coapy_micro", "endpoint",
               "for scale: CPython coapy_micro Server / EndPoint loop", None, pairs)
    # The generator's own ceiling. Its CPU cost per exchange, measured
    # against the C echo, against the cheapest server's cost per request
    # (both "with a core to itself", as the servers' figures per
    # CPU-second); and, as measured, what it did against the echo in each
    # round against the fastest server of that round.
    echo = {r["round"]: r for r in results.get("echo") or []}
    servers = [(max(max(r["per_cpu"], r["rate"]) for r in v), k)
               for k, v in results.items() if k != "echo" and v]
    caps = [r["rate"] / r["busy"] for r in echo.values() if r["busy"] > 0.01]
    if not caps or not servers:
        print("  load generator not the ceiling (target >= 1.5x): not measured (%s)"
              % missing.get("echo", "no C echo run, or nothing else measured"))
        return
    heads = []
    for rnd, e in echo.items():
        rates = [r["rate"] for k, v in results.items() if k != "echo" for r in v
                 if r["round"] == rnd]
        if rates and max(rates):
            heads.append(e["rate"] / max(rates))
    cap = max(caps)
    print("  load generator: %s req/s against the C echo%s; %.1f us of its CPU per exchange"
          % ("..".join(kfmt(x) for x in sorted({min(r["rate"] for r in echo.values()),
                                                 max(r["rate"] for r in echo.values())})),
             " (%.2fx..%.2fx the fastest server of the same round)" % (min(heads), max(heads))
             if heads else "", 1e6 / cap))
    top, top_key = max(servers)
    print("  load generator not the ceiling: its %s exchanges per CPU-second / the most any "
          "server did (%s, %s): %.2fx (target >= 1.5x): %s"
          % (kfmt(cap), top_key, kfmt(top), cap / top, "met" if cap >= 1.5 * top else "NOT MET"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default=",".join(s.key for s in SPECS),
                   help="servers to measure, comma separated (--list shows them)")
    p.add_argument("--list", action="store_true", help="list the servers and exit")
    p.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 1.5)),
                   help="measured seconds per run (1.5)")
    p.add_argument("--warmup", type=float, default=0.5, help="seconds before each run counts")
    p.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", 5)),
                   help="runs per server, interleaved (5)")
    p.add_argument("--window", type=int, default=64, help="requests in flight (64)")
    p.add_argument("--non", action="store_true", help="NON requests instead of CON")
    p.add_argument("--upy-heap", default=None,
                   help="the unix port's heap (-X heapsize=...); default: the port's own")
    p.add_argument("--no-pin", action="store_true", help="do not pin to cores")
    p.add_argument("--no-echo", action="store_true",
                   help="leave out the C echo (the generator's ceiling) unless --only names it")
    args = p.parse_args(argv)
    if args.list:
        for s in SPECS:
            print("%-14s %s (%s)%s" % (s.key, s.label, s.runtime, "" if s.core else ", optional"))
        return 0
    args.only = [k.strip() for k in args.only.split(",") if k.strip()]
    if not args.no_echo and "echo" not in args.only:
        args.only.insert(0, "echo")  # the generator's ceiling, for every reading
    unknown = [k for k in args.only if k not in BY_KEY]
    if unknown:
        p.error("unknown server(s) %s; --list shows them" % ", ".join(unknown))
    print("Requests/s served on loopback: %s GET /%s, %d in flight, load generator in C; "
          "CPython %s" % ("NON" if args.non else "CON", PATH, args.window,
                          sys.version.split()[0]), flush=True)
    try:
        results, missing, notes, pinned, pairs = measure(args)
    except NotAvailable as e:
        print("  not measured: %s" % e)
        return 1
    report(args, results, missing, notes, pinned, pairs)
    # A core figure missing is a failure of `make bench`; a missing peer is not.
    failed = [k for k in args.only if BY_KEY[k].core and not results.get(k)]
    if failed:
        print("  FAILED: no figure for %s" % ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
