"""Instructions per notification a Client takes in, counted under
valgrind: the observing side of a gateway (coapy_micro's EndPoint, Client
and Observation), measured apart from SQLite, MQTT and the simulator.

    .venv/bin/python tools/instr_notify.py                 (CPython and MicroPython)
    .venv/bin/python tools/instr_notify.py --only cpython --n 4000,12000

One process observes RESOURCES resources on PEERS plain UDP sockets of its
own (the "nodes", on loopback), then has the nodes send it notifications
as a node of tools/bench_gateway.py does (2.05, Observe increasing,
Content-Format text/plain, a short number; NON with a CON every 20th),
round robin, a batch at a time, and takes them in as the gateway does:
EndPoint.process(0), Client.handle(), a callback that reads the
Content-Format and the payload. The duplicate cache (512 entries, as a
gateway shard's) is full after the first 512, so every later datagram
pushes an entry out, as under a gateway's load.

Run for N1 and N2 notifications: (instructions at N2 - at N1) / (N2 - N1)
is what one more notification costs, start-up and the nodes' sending
included alike in both (the sending side is plain sendto of prebuilt
bytes: a small, fixed share).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_server  # noqa: E402

ROOT = bench_server.ROOT

WORKER = r'''
import socket
import sys

from coapy_micro.client import Client
from coapy_micro.connection import EndPoint

PEERS = 4
PER_PEER = 8
BATCH = 32
M = int(sys.argv[1])
ports = [int(p) for p in sys.argv[2].split(",")]

ep = EndPoint(max_in_flight=PEERS * PER_PEER + 48, dedup_size=512, max_message_size=4096)
ep.bind(("127.0.0.1", 0))
client = Client(ep, timeout_ms=15000)
nodes = []
for p in ports:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(socket.getaddrinfo("127.0.0.1", p)[0][-1])
    nodes.append(s)
got = [0]


def reading(resp):
    # What the gateway reads of each notification.
    cf = resp.content_format
    if cf is None or cf == 0:
        got[0] += len(resp.payload)


def drain():
    while True:
        rx = ep.process(0)
        if rx is None:
            return
        client.handle(rx)


for i in range(PEERS):
    for k in range(PER_PEER):
        client.observe("coap://127.0.0.1:%d/r%d" % (ports[i], k), callback=reading)
drain()
# Each node answers its registrations as they come (one at a time per node:
# NSTART): ACK 2.05 with Observe and Content-Format.
# (observers: (node socket, the client's address, token) per resource)
observers = []
for s in nodes:
    s.setblocking(False)
while len(observers) < len(nodes) * PER_PEER:
    for s in nodes:
        try:
            data, remote = s.recvfrom(1500)
        except OSError:
            continue
        tkl = data[0] & 15
        token = data[4:4 + tkl]
        s.sendto(bytes((0x60 | tkl, 0x45, data[2], data[3])) + token
                 + b"\x61\x01\x60\xff0", remote)
        observers.append((s, remote, token))
    rx = ep.process(10)
    if rx is not None:
        client.handle(rx)
    drain()
mid = 0x8000
seq = 2
n = 0
sent = 0
while sent < M:
    for j in range(BATCH):
        s, remote, token = observers[sent % len(observers)]
        mid = (mid + 1) & 0xFFFF
        seq += 1
        n += 1
        sent += 1
        head = bytes(((0x40 if n % 20 == 0 else 0x50) | len(token), 0x45, mid >> 8, mid & 255))
        s.sendto(head + token + bytes((0x63, seq >> 16, (seq >> 8) & 255, seq & 255, 0x60, 0xFF))
                 + b"%d" % (sent % 1000), remote)
    drain()
    for s in nodes:  # the ACKs of CON notifications
        while True:
            try:
                s.recvfrom(64)
            except OSError:
                break
print("notifications %d delivered %d" % (sent, sum(o.notifications for o in client.observations)))
'''


def run_once(exe, folder, n):
    path = Path(folder, "instr_notify_worker.py")
    path.write_text(WORKER)
    out = Path(folder, "notify.%d.out" % n)
    ports = ",".join(str(bench_server.free_port()) for _ in range(4))
    env = dict(os.environ, PYTHONPATH=str(ROOT), MICROPYPATH=str(ROOT), PYTHONHASHSEED="0")
    proc = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no",
                           "--cachegrind-out-file=%s" % out, exe, str(path), str(n), ports],
                          capture_output=True, text=True, cwd=folder, env=env, timeout=1200)
    line = proc.stdout.strip().splitlines()[-1:] or ["(no output)"]
    if proc.returncode != 0 or not line[0].startswith("notifications"):
        raise RuntimeError("worker failed: %s %s" % (proc.stdout[-500:], proc.stderr[-2000:]))
    m = re.search(r"^summary:\s+(\d+)", out.read_text(), re.M)
    return int(m.group(1)), line[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="cpython,micropython")
    ap.add_argument("--n", default="2000,6000", help="N1,N2 notifications")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)")
        return 77
    n1, n2 = (int(x) for x in args.n.split(","))
    folder = tempfile.mkdtemp(prefix="instr-notify-")
    try:
        for key in args.only.split(","):
            exe = sys.executable if key == "cpython" else bench_server.micropython()
            if exe is None:
                print("%-12s not measured: no MicroPython unix port" % key)
                continue
            i1, l1 = run_once(exe, folder, n1)
            i2, l2 = run_once(exe, folder, n2)
            print("%-12s %8.0f instructions/notification  (%s; %s)"
                  % (key, (i2 - i1) / (n2 - n1), l1, l2), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
