"""A gateway-side script: 100 concurrent CoAP requests from one event loop.

    python examples/aio_gateway.py NODE[:PORT] [NODE[:PORT]...] [--path sensors/temp]

Each of 100 tasks asks one of the nodes for PATH (round robin); one
AsyncClient, on one EndPoint, carries them all. NSTART (RFC 7252 §4.7)
still holds per node: at most one CON to a node awaits its ACK at a time,
so one node's requests go out one after another while different nodes are
asked in parallel; a request waits in the EndPoint's queue (room for 128
here) meanwhile. The last line printed is a JSON summary:
{"answered": 100, "errors": 0, "ms": ...}.

Runs on CPython and on MicroPython (the unix port, or a board acting as a
gateway) alike.
"""
import asyncio
import json
import sys

try:
    import coapy_micro  # noqa: F401  (on a board: installed beside this script)
except ImportError:
    # Run from a clone (`micropython examples/aio_gateway.py`, `python3 ...`): the
    # package is in the repository, one folder up (no os.path on MicroPython).
    sys.path.insert(0, "/".join(__file__.split("/")[:-2]) or ".")

from coapy_micro import aio, codes
from coapy_micro.client import CoapError
from coapy_micro.connection import EndPoint

try:
    from time import ticks_diff, ticks_ms
except ImportError:  # CPython: milliseconds from its monotonic clock
    from time import monotonic

    def ticks_ms():
        return int(monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b

REQUESTS = 100


async def main(nodes, path):
    ep = EndPoint(max_in_flight=128)
    ep.bind(("0.0.0.0", 0))
    answered = [0]
    errors = []

    async def ask(client, i):
        uri = "coap://%s/%s" % (nodes[i % len(nodes)], path)
        try:
            r = await client.get(uri)
        except CoapError as e:  # RequestTimeout, Reset, Unreachable
            errors.append("%s: %s" % (uri, e))
            return
        if r.code == codes.CONTENT:
            answered[0] += 1
        else:
            errors.append("%s: %s" % (uri, codes.dotted(r.code)))

    t0 = ticks_ms()
    async with aio.AsyncClient(ep) as client:
        await asyncio.gather(*[ask(client, i) for i in range(REQUESTS)])
    ms = ticks_diff(ticks_ms(), t0)
    ep.close()
    for e in errors[:5]:
        print("error:", e)
    print(json.dumps({"answered": answered[0], "errors": len(errors), "ms": ms}))
    return not errors


def run(argv):
    path = "sensors/temp"
    if "--path" in argv:
        i = argv.index("--path")
        path = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    if not argv:
        print("usage: aio_gateway.py NODE[:PORT] [NODE[:PORT]...] [--path PATH]")
        return 2
    return 0 if asyncio.run(main(argv, path)) else 1


sys.exit(run(sys.argv[1:]))
