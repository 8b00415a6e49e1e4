"""coapy_micro.aio on loopback, next to the synchronous server and aiocoap,
all measured in the same run:

1. Requests/s served: Server.serve() (the polling loop), aio.serve() (the
   same Server on an asyncio loop) and aiocoap's server, each in a process
   of its own (CPython, then the first two on the MicroPython unix port);
   one load generator here keeps WINDOW CON GETs in flight for SECONDS.
   ROUNDS rounds give each server one run in turn (every other round in the
   reverse order), so a moment the machine runs slow costs one run of each
   rather than every run of one; a ratio is the median of the rounds'
   ratios, the table gives each server's best run. Targets: aio.serve()
   within 25% of the synchronous server, and at least 10x aiocoap.
2. Concurrent-client throughput, as a gateway polls many nodes: TASKS
   tasks with EACH GETs apiece (the first of every task at once) from
   AsyncClient and from aiocoap's client, spread over NODES peers: the
   sockets of one bare UDP responder (a separate process that answers
   without parsing, so the clients are what is measured). Both keep NSTART
   1 (RFC 7252 §4.7), so NODES exchanges at most are under way at once.
   Target: AsyncClient at least 5x aiocoap.

    .venv/bin/python tools/bench_aio.py      (BENCH_SECONDS, BENCH_WINDOW, BENCH_ROUNDS)

Figures are indicative: they move with whatever else the machine runs.
"""
import asyncio
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE = ROOT / "tools" / "aio_bench_peer.py"
SECONDS = float(os.environ.get("BENCH_SECONDS", "2"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
WINDOW = int(os.environ.get("BENCH_WINDOW", "16"))
TASKS, EACH = 100, 10
NODES = 20
MICROPYTHON = Path(sys.executable).parent / "micropython"

sys.path.insert(0, str(ROOT))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the servers measured ---------------------------------------------------------


def aiocoap_server(port):
    import aiocoap
    import aiocoap.resource as resource

    class Bench(resource.Resource):
        async def render_get(self, request):
            return aiocoap.Message(code=aiocoap.CONTENT, payload=b"ok")

    async def main():
        site = resource.Site()
        site.add_resource(["bench"], Bench())
        await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", port))
        print("ready", flush=True)
        await asyncio.get_running_loop().create_future()

    asyncio.run(main())


def bare_responder(nodes):
    # NODES sockets; each answers ACK 2.05 "ok" with the request's MID and
    # token, nothing parsed. Prints "ready PORT PORT...".
    import select

    socks = {}
    for _ in range(nodes):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        socks[s.fileno()] = s
    poller = select.poll()
    for fd in socks:
        poller.register(fd, select.POLLIN)
    print("ready", " ".join(str(s.getsockname()[1]) for s in socks.values()), flush=True)
    while True:
        for fd, _ in poller.poll():
            s = socks[fd]
            while True:
                try:
                    data, addr = s.recvfrom(1500)
                except BlockingIOError:
                    break
                n = data[0] & 15
                s.sendto(bytes((0x60 | n, 0x45, data[2], data[3])) + data[4:4 + n] + b"\xffok",
                         addr)


def start(argv, env=None):
    """A server process that prints "ready" (and what follows) once bound:
    (process, the rest of that line)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    line = proc.stdout.readline().split()
    if line[:1] != ["ready"]:
        proc.kill()
        raise SystemExit("did not start: %s" % " ".join(map(str, argv)))
    return proc, line[1:]


def node(runtime, mode, port):
    if runtime == "cpython":
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        return start([sys.executable, str(NODE), mode, str(port)], env)[0]
    env = dict(os.environ, MICROPYPATH=".frozen:%s" % ROOT)
    return start([str(MICROPYTHON), "-X", "heapsize=4m", str(NODE), mode, str(port)], env)[0]


def this_script(what, arg):
    return start([sys.executable, str(Path(__file__)), what, str(arg)])


# -- load: requests/s a server answers -------------------------------------------------


def load(port):
    """Exchanges/s completed with WINDOW CON GET /bench in flight, after
    half a second of warm-up, and the median latency in ms."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", port))
    s.settimeout(0.5)
    out = {}
    mid = [0]

    def fire():
        mid[0] = (mid[0] + 1) & 0xFFFF
        m = mid[0]
        out[m] = time.perf_counter()
        s.send(bytes((0x42, 1, m >> 8, m & 255, m >> 8, m & 255)) + b"\xb5bench")

    for _ in range(WINDOW):
        fire()
    t0 = time.perf_counter()
    counting, end = t0 + 0.5, t0 + 0.5 + SECONDS
    done, lat = 0, []
    while True:
        try:
            data = s.recv(1500)
        except socket.timeout:
            out.clear()  # lost: start the window afresh
            for _ in range(WINDOW):
                fire()
            continue
        now = time.perf_counter()
        sent = out.pop((data[2] << 8) | data[3], None)
        if sent is None:
            continue
        if now >= counting:
            done += 1
            lat.append(now - sent)
        if now >= end:
            break
        fire()
    s.close()
    lat.sort()
    return done / SECONDS, 1000 * lat[len(lat) // 2] if lat else float("nan")


def served(runtime, mode):
    port = free_port()
    proc = this_script("--aiocoap", port)[0] if mode == "aiocoap" else node(runtime, mode, port)
    try:
        return load(port)
    finally:
        proc.kill()
        proc.wait()


# -- clients: concurrent requests --------------------------------------------------------


def uris(ports):
    return ["coap://127.0.0.1:%s/bench" % p for p in ports]


async def ours(ports):
    from coapy_micro import aio
    from coapy_micro.connection import EndPoint

    ep = EndPoint(max_in_flight=TASKS + 8)
    ep.bind(("127.0.0.1", 0))
    targets = uris(ports)
    async with aio.AsyncClient(ep) as client:
        async def task(uri):
            for _ in range(EACH):
                r = await client.get(uri)
                assert r.payload == b"ok"

        t0 = time.perf_counter()
        await asyncio.gather(*[task(targets[i % len(targets)]) for i in range(TASKS)])
        elapsed = time.perf_counter() - t0
    ep.close()
    return TASKS * EACH / elapsed


async def theirs(ports):
    import aiocoap

    ctx = await aiocoap.Context.create_client_context()
    targets = uris(ports)
    try:
        async def task(uri):
            for _ in range(EACH):
                r = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=uri)).response
                assert r.payload == b"ok"

        t0 = time.perf_counter()
        await asyncio.gather(*[task(targets[i % len(targets)]) for i in range(TASKS)])
        elapsed = time.perf_counter() - t0
    finally:
        await ctx.shutdown()
    return TASKS * EACH / elapsed


def ours_on_micropython(ports):
    env = dict(os.environ, MICROPYPATH=".frozen:%s" % ROOT)
    proc = subprocess.run([str(MICROPYTHON), "-X", "heapsize=4m", str(NODE), "client",
                           ",".join(ports), str(TASKS), str(EACH)], capture_output=True,
                          text=True, env=env, timeout=120, cwd=ROOT)
    if proc.returncode:
        raise SystemExit("unix-port client failed:\n" + proc.stdout + proc.stderr)
    return float(proc.stdout.split()[-1])


def clients():
    proc, ports = this_script("--bare", NODES)
    try:
        warnings.simplefilter("ignore")
        rates = {"AsyncClient (CPython)": asyncio.run(ours(ports)),
                 "aiocoap client": asyncio.run(theirs(ports))}
        if MICROPYTHON.exists():
            rates["AsyncClient (unix port)"] = ours_on_micropython(ports)
        return rates
    finally:
        proc.kill()
        proc.wait()


def verdict(ratio, target):
    return "met" if ratio >= target else "NOT MET"


def main():
    print("Requests/s served on loopback, CON GET /bench, %d in flight, %.0f s each"
          % (WINDOW, SECONDS))
    rows = [("CPython", "sync", "Server.serve()"), ("CPython", "aio", "aio.serve()"),
            ("CPython", "aiocoap", "aiocoap")]
    if MICROPYTHON.exists():
        rows += [("micropython", "sync", "Server.serve()"), ("micropython", "aio", "aio.serve()")]
    runs = {(runtime, mode): [] for runtime, mode, _ in rows}  # [(req/s, p50 ms)] by round
    for i in range(ROUNDS):
        for runtime, mode, _ in (rows if i % 2 == 0 else rows[::-1]):
            runs[(runtime, mode)].append(served(runtime.lower(), mode))
    print("  %-12s %-16s %10s %9s  %s" % ("runtime", "server", "best req/s", "p50 ms",
                                         "every round (req/s)"))
    for runtime, mode, label in rows:
        rates = [r for r, _ in runs[(runtime, mode)]]
        best = max(runs[(runtime, mode)])
        print("  %-12s %-16s %10.0f %9.2f  %s" % (runtime, label, best[0], best[1],
                                                 " ".join("%.0f" % r for r in rates)))

    def ratio(a, b):
        # The median of the rounds' ratios: the two runs of a round are
        # taken moments apart.
        per = sorted(x[0] / y[0] for x, y in zip(runs[a], runs[b]))
        return per[len(per) // 2], per

    for label, a, b, target, form in (
            ("aio.serve() / Server.serve(), CPython", ("CPython", "aio"), ("CPython", "sync"),
             0.75, "%.2f"),
            ("aio.serve() / Server.serve(), unix port", ("micropython", "aio"),
             ("micropython", "sync"), 0.75, "%.2f"),
            ("aio.serve() / aiocoap", ("CPython", "aio"), ("CPython", "aiocoap"), 10, "%.1fx")):
        if a not in runs or b not in runs:
            continue
        r, per = ratio(a, b)
        print(("  %s: " + form + " (target >= %s; median of %d rounds: %s): %s")
              % (label, r, ("%gx" if form.endswith("x") else "%g") % target, len(per),
                 " ".join(form % x for x in per), verdict(r, target)))

    print("\nConcurrent clients: %d tasks x %d GETs over %d peers (a bare UDP responder), "
          "NSTART 1" % (TASKS, EACH, NODES))
    rates = clients()
    for name, rate in rates.items():
        print("  %-24s %10.0f req/s" % (name, rate))
    r = rates["AsyncClient (CPython)"] / rates["aiocoap client"]
    print("  AsyncClient / aiocoap client: %.1fx (target >= 5x): %s" % (r, verdict(r, 5)))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] in ("--aiocoap", "--bare"):
        (aiocoap_server if sys.argv[1] == "--aiocoap" else bare_responder)(int(sys.argv[2]))
    else:
        main()
