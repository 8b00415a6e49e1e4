# serve() as a peer for the asyncio tests (tests/test_aio.py), on CPython or
# on the MicroPython unix port:
#
#   aio_serve_peer.py PORT
#
# Serves on 127.0.0.1:PORT with coapy_micro.aio.serve(): /echo (GET:
# b"hello"; POST/PUT: the payload back, Block1/Block2 for large ones), /big
# (3000 bytes, Block2), /counter (observable; a sensor task changes it and
# calls notify() every 50 ms). Prints "ready" once bound; runs until
# interrupted (SIGINT).
import asyncio
import sys

from coapy_micro import aio, codes
from coapy_micro.connection import EndPoint
from coapy_micro.server import Resource, Server

BIG = bytes([(i * 7 + i // 251) & 255 for i in range(3000)])


async def sleep_ms(ms):
    if hasattr(asyncio, "sleep_ms"):
        await asyncio.sleep_ms(ms)
    else:
        await asyncio.sleep(ms / 1000)


def main(port):
    ep = EndPoint()
    ep.bind(("127.0.0.1", port))
    srv = Server(ep)
    value = [0]
    srv.add("echo", Resource(get=lambda r: (codes.CONTENT, b"hello"),
                             post=lambda r: (codes.CHANGED, r.payload),
                             put=lambda r: (codes.CHANGED, r.payload)))
    srv.add("big", Resource(get=lambda r: (codes.CONTENT, BIG)))
    srv.add("counter", Resource(get=lambda r: (codes.CONTENT, b"%d" % value[0]), obs=True))

    async def sensor():
        while True:
            await sleep_ms(50)
            value[0] += 1
            srv.notify("counter")

    async def run():
        asyncio.create_task(sensor())
        print("ready")
        await aio.serve(srv)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    finally:
        ep.close()


main(int(sys.argv[1]))
