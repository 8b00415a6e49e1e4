"""The main job, on loopback with no board: a sensor node and a gateway.

Starts ports/unix/node.py (the node code a board runs, simulated sensor) as
its own process, then acts as the gateway: discovers the node's resources
through /.well-known/core and reads its temperature a few times, over CoAP
with coapy_micro's EndPoint. Finishes by itself.

    make demo        (or: python3 tools/demo.py)
"""
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from coapy_micro import codes  # noqa: E402
from coapy_micro.connection import EndPoint, Message  # noqa: E402


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(ep, node, path, timeout_s=5.0):
    """GET coap://node/path with a CON request; the response Message or None."""
    req = Message(Message.CON, codes.GET, token=ep.new_token(), uri_path=path)
    rec = ep.send(req, node)
    deadline = time.monotonic() + timeout_s
    while rec.response is None and not rec.is_unacknowledged:
        left_ms = int((deadline - time.monotonic()) * 1000)
        if left_ms <= 0:
            rec.cancel()
            return None
        rx = ep.process(left_ms)
        if rx is not None and rx.message.transaction_type == Message.CON:
            rx.ack()  # a separate response: acknowledge it
    return rec.response.message if rec.response is not None else None


def links(text):
    # '</a>;rt="x";ct=0,</b>' -> [('/a', 'rt="x";ct=0'), ('/b', '')]
    out = []
    for link in text.split(","):
        target, _, attrs = link.partition(";")
        out.append((target.strip("<> "), attrs))
    return out


def main():
    port = free_port()
    node = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "ports", "unix", "node.py"), str(port), "30"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        print(node.stdout.readline().strip())  # the node says where it listens
        ep = EndPoint(ack_timeout_ms=500)
        ep.bind(("127.0.0.1", 0))
        where = ("127.0.0.1", port)
        print("gateway: discovering coap://127.0.0.1:%d/.well-known/core" % port)
        core = get(ep, where, ".well-known/core")
        if core is None:
            raise SystemExit("gateway: the node did not answer")
        for target, attrs in links(core.payload.decode("utf-8")):
            print("  %-16s %s" % (target, attrs))
        hello = get(ep, where, "hello")
        print("gateway: /hello says %r" % hello.payload.decode("utf-8"))
        print("gateway: reading /sensors/temp five times")
        for i in range(5):
            t0 = time.monotonic()
            r = get(ep, where, "sensors/temp")
            ms = (time.monotonic() - t0) * 1000
            print("  reading %d: %s °C   (%s, %.1f ms)" % (
                i + 1, r.payload.decode("utf-8"), codes.dotted(r.code), ms))
            time.sleep(0.3)
        missing = get(ep, where, "no/such/thing")
        print("gateway: /no/such/thing -> %s %s" % (codes.dotted(missing.code), codes.name(missing.code)))
        ep.close()
        print("demo finished")
    finally:
        node.terminate()
        node.wait(5)


if __name__ == "__main__":
    main()
