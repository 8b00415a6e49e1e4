# The server end of tools/bench_aio.py, on CPython or the MicroPython unix
# port:
#
#   aio_bench_peer.py MODE PORT      MODE: sync (Server.serve()) or aio (aio.serve())
#   aio_bench_peer.py client PORT[,PORT...] TASKS EACH
#
# A server answers GET /bench with 2.05 "ok"; it prints "ready" once bound
# and runs until killed. The client: TASKS tasks of EACH GET /bench apiece
# from one AsyncClient, the tasks spread over the ports; prints the requests/s.
import sys

from coapy_micro.connection import EndPoint
from coapy_micro.server import Resource, Server

ANSWER = (69, b"ok")


def main(mode, port):
    ep = EndPoint(dedup_size=256, max_in_flight=64)
    ep.bind(("127.0.0.1", port))
    srv = Server(ep)
    srv.add("bench", Resource(get=lambda request: ANSWER))
    print("ready")
    flush = getattr(sys.stdout, "flush", None)
    if flush is not None:
        flush()
    if mode == "sync":
        srv.serve()
        return
    import asyncio

    from coapy_micro import aio

    asyncio.run(aio.serve(srv))


def client(ports, tasks, each):
    import asyncio

    from coapy_micro import aio

    try:
        from time import ticks_diff, ticks_ms
    except ImportError:  # CPython: milliseconds from its monotonic clock
        from time import monotonic

        def ticks_ms():
            return int(monotonic() * 1000)

        def ticks_diff(a, b):
            return a - b

    async def run():
        ep = EndPoint(max_in_flight=tasks + 8)
        ep.bind(("127.0.0.1", 0))
        uris = ["coap://127.0.0.1:%s/bench" % p for p in ports]
        async with aio.AsyncClient(ep) as c:
            async def task(uri):
                for _ in range(each):
                    r = await c.get(uri)
                    if r.payload != b"ok":
                        raise AssertionError(r.payload)

            t0 = ticks_ms()
            await asyncio.gather(*[task(uris[i % len(uris)]) for i in range(tasks)])
            ms = ticks_diff(ticks_ms(), t0)
        ep.close()
        print("req/s", tasks * each * 1000 / max(ms, 1))

    asyncio.run(run())


if sys.argv[1] == "client":
    client(sys.argv[2].split(","), int(sys.argv[3]), int(sys.argv[4]))
else:
    main(sys.argv[1], int(sys.argv[2]))
