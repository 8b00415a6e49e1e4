"""Instructions per request served, counted under valgrind: a figure that
holds on a busy machine, where requests/s jump with the other work.

    .venv/bin/python tools/instr_server.py                  (every server)
    .venv/bin/python tools/instr_server.py --only endpoint,coapy_micro --n 2000,6000

Each server of tools/bench_server.py (the bare loop, the EndPoint loop and
coapy_micro's Server, on CPython and on the MicroPython unix port) is run
under `valgrind --tool=cachegrind` serving a fixed number of requests from
the C load generator, then exits; it is run twice, for N1 and N2 requests,
and (instructions at N2 - instructions at N1) / (N2 - N1) is what one more
request costs, with the start-up taken out. Valgrind counts what runs in
user space only: the system calls' kernel side (recvfrom, sendto, poll) is
not in the figure, so the number of system calls per request is counted as
well (strace -c, where strace is installed).

Under valgrind a server is some 50 times slower, so the generator keeps it
saturated: this is the cost per request of a server under load (no poll
before each read where the EndPoint reads until the socket is empty).

The 8,000 requests between N1 and N2 hold several collections on the unix
port (the Server collects after every half of its heap allocated, some
500-800 requests there, counting recvfrom's full-size read buffer; the
EndPoint loop, which sets no threshold, when its heap is full, every 2,500
or so), so their cost is in the figure, as it is in a served request's
time. Fewer requests can fall between two of them and leave it out.

On the unix port a figure moves by up to about 2% with changes that do not
touch the request path at all (a few names more in a module, which changes
where names fall in its hash tables, so how long looking one up takes):
read differences smaller than that as none.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_server  # noqa: E402

ROOT = bench_server.ROOT

# The servers, each serving argv[2] requests and exiting. (The EndPoint
# loop and the Server count what they answer; the bare loop every datagram.)
SCRIPTS = {
    "bare": bench_server.BARE_LOOP.replace(
        "while True:", "for _ in range(int(sys.argv[2])):"),
    "endpoint": bench_server.ENDPOINT_LOOP.replace(
        "while True:", "n = int(sys.argv[2])\nwhile n:").replace(
        "    if rx.message.transaction_type", "    n -= 1\n    if rx.message.transaction_type"),
    # The Server as the throughput benchmark runs it, serve() and so its
    # collection policy (set_gc_threshold) included, stopped by its handler.
    "coapy_micro": bench_server.SERVER.replace(
        'srv.add("bench", Resource(get=lambda request: (69, b"ok")))',
        'n = int(sys.argv[2])\n\n\ndef get(request):\n    global n\n    n -= 1\n'
        '    if n == 0:\n        srv.stop()\n'
        '    return (69, b"ok")\n\n\nsrv.add("bench", Resource(get=get))'),
}
KEYS = ("bare", "endpoint", "coapy_micro", "upy-endpoint", "upy-server")


def script_for(key):
    return SCRIPTS[{"upy-endpoint": "endpoint", "upy-server": "coapy_micro"}.get(key, key)]


def command(key, path, port, n):
    if key.startswith("upy"):
        exe = bench_server.micropython()
        if exe is None:
            raise bench_server.NotAvailable("no MicroPython unix port")
        return [exe, str(path), str(port), str(n)]
    return [sys.executable, "-u", str(path), str(port), str(n)]


def run_once(key, tools, folder, n, tool):
    """(instructions, system calls) of serving n requests, start-up included."""
    path = Path(folder, "instr_%s.py" % key.replace("-", "_"))
    path.write_text(script_for(key))
    port = bench_server.free_port()
    out = Path(folder, "%s.%d.out" % (key, n))
    if tool == "valgrind":
        pre = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=%s" % out]
    else:
        pre = ["strace", "-f", "-c", "-o", str(out)]
    # (A fixed hash seed: CPython's start-up work varies with it.)
    env = dict(os.environ, PYTHONPATH=str(ROOT), MICROPYPATH=str(ROOT), PYTHONHASHSEED="0")
    proc = subprocess.Popen(pre + command(key, path, port, n), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=folder, env=env)
    try:
        if not bench_server.wait_ready(proc, 120):
            raise RuntimeError("%s did not start" % key)
        gen = subprocess.Popen([tools["loadgen"], "--port", str(port), "--path", bench_server.PATH,
                                "--window", "64", "--seconds", "600", "--warmup", "0",
                                "--timeout-ms", "20000"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=600)
        finally:
            gen.kill()
            gen.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.read_text()
    if tool == "valgrind":
        m = re.search(r"^summary:\s+(\d+)", text, re.M)
        return int(m.group(1)) if m else 0
    m = re.search(r"^\s*100\.00\s+\S+\s+\S+\s+(\d+)", text, re.M)
    if m is None:  # the total line: "------ ... total"
        m = re.search(r"\s(\d+)\s+(?:\d+\s+)?total", text)
    return int(m.group(1)) if m else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=",".join(KEYS), help="servers: " + ", ".join(KEYS))
    ap.add_argument("--n", default="2000,10000", help="N1,N2 requests (2000,10000)")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)")
        return 77
    n1, n2 = (int(x) for x in args.n.split(","))
    tools = bench_server.build_loadgen()
    folder = tempfile.mkdtemp(prefix="instr-server-")
    try:
        for key in args.only.split(","):
            t = time.monotonic()
            try:
                i1 = run_once(key, tools, folder, n1, "valgrind")
                i2 = run_once(key, tools, folder, n2, "valgrind")
            except bench_server.NotAvailable as e:
                print("%-14s not measured: %s" % (key, e))
                continue
            line = "%-14s %8.0f instructions/request" % (key, (i2 - i1) / (n2 - n1))
            if shutil.which("strace"):
                s1 = run_once(key, tools, folder, n1, "strace")
                s2 = run_once(key, tools, folder, n2, "strace")
                line += "  %5.2f system calls/request" % ((s2 - s1) / (n2 - n1))
            print(line + "  (%.0f s)" % (time.monotonic() - t), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
