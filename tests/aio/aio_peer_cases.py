# AsyncClient against peers the host test starts (tests/test_aio.py), written
# once and run on CPython and on the MicroPython unix port. Each case reads
# its peer from the environment and is skipped when it is not given:
#
#   AIO_LIBCOAP   coap://127.0.0.1:PORT of libcoap's coap-server-notls
#   AIO_RELAY     coap://127.0.0.1:PORT of a relay dropping 30% each way,
#                 in front of a server answering POST with the body's length
#   AIO_SERVER    coap://127.0.0.1:PORT of tests/upy_peers/aio_serve_peer.py
#                 (serve() on the other runtime)
#
# Rules as in test_aio_loop.py: module-level `def test_*()`, plain asserts.
import asyncio
import os

from aio_support import RUNTIME, bound_end_point, run, sleep_ms, ticks_diff, ticks_ms

from coapy_micro import aio, codes
from coapy_micro.options import Option

import support

BIG = bytes([(i * 7 + i // 251) & 255 for i in range(3000)])
SZX = {1024: 6, 64: 2, 16: 0}


def peer(name):
    value = os.getenv(name)
    if not value:
        raise support.Skip("%s not set: tests/test_aio.py starts the peer" % name)
    return value


RELAYED = 30


def relayed_payloads():
    return [b"async reading %03d" % i for i in range(RELAYED)]


def test_posts_through_a_lossy_relay():
    # 30 CON POSTs at once through a relay that drops 30% of the datagrams
    # each way: every one is retransmitted until it gets its 2.04 (the host
    # test checks that the server ran each exactly once). ACK_TIMEOUT 10 ms
    # (a loopback datagram takes far less: lost, not late), MAX_RETRANSMIT 16,
    # NSTART 16. The relay drops at most 6 datagrams of one exchange, so
    # none needs more than 7 attempts (tests/test_endpoint_loss.py says why).
    base = peer("AIO_RELAY")

    async def main():
        ep, _ = bound_end_point(ack_timeout_ms=10, ack_random_factor=1.0, max_retransmit=16,
                                nstart=16, max_in_flight=16)
        gave_up = []
        ep.on_unacknowledged = gave_up.append
        client = aio.AsyncClient(ep, timeout_ms=None)
        t0 = ticks_ms()
        rs = await asyncio.gather(*[client.post(base + "/log", p) for p in relayed_payloads()])
        elapsed = ticks_diff(ticks_ms(), t0)
        for p, r in zip(relayed_payloads(), rs):
            assert (r.code, r.payload) == (codes.CHANGED, str(len(p)).encode()), r
        assert gave_up == []
        assert ep.in_flight == 0
        client.close()
        ep.close()
        print("%s: %d POSTs through 30%% loss in %d ms" % (RUNTIME, RELAYED, elapsed))

    run(main())


def test_libcoap_time_observed_with_async_for():
    # coap-server-notls's /time notifies every second: three notifications
    # through the iterator, the callback sees the same ones; cancel() ends
    # the iteration.
    base = peer("AIO_LIBCOAP")

    async def main():
        async with aio.AsyncClient() as client:
            called = []
            obs = client.observe(base + "/time", called.append)
            got = []
            async for r in obs:
                assert r.code == codes.CONTENT and r.payload, r
                got.append(r)
                if len(got) == 3:
                    obs.cancel()
            assert len(got) == 3 and called[:3] == got, (got, called)
            assert got[0].message.get_uint(6) is not None  # an Observe option
            assert obs.done and obs.error is None

    run(main())


def test_libcoap_example_data_in_blocks():
    # 1500 bytes up in Block1 blocks, then read back in Block2 blocks of
    # 1024, 64 and 16 bytes while another task asks for / meanwhile. (One
    # task reads: libcoap answers a second block-wise read of the same
    # resource from the same endpoint, while one is under way, with 5.00:
    # it keeps one transfer per resource and peer.)
    base = peer("AIO_LIBCOAP")
    body = bytes([(i * 13 + i // 7) & 255 for i in range(1500)])

    async def main():
        async with aio.AsyncClient() as client:
            r = await client.put(base + "/example_data", body, content_format=42)
            assert r.code in (codes.CREATED, codes.CHANGED), codes.dotted(r.code)

            async def read(size):
                opts = () if size == 1024 else (Option(23, SZX[size]),)
                r = await client.get(base + "/example_data", options=opts)
                assert (r.code, r.payload) == (codes.CONTENT, body), (size, len(r.payload))
                assert r.message.findOption(23) is not None  # it came in blocks

            async def reads():
                for size in (1024, 64, 16):
                    await read(size)

            async def others():
                for _ in range(5):
                    r = await client.get(base + "/")
                    assert b"libcoap" in r.payload, r.payload

            await asyncio.gather(reads(), others())
            r = await client.put(base + "/example_data", b"from coapy_micro",
                                 content_format="text/plain")
            assert r.code == codes.CHANGED

    run(main())


def test_serve_on_the_other_runtime():
    # The other runtime's serve(): 40 requests from 20 tasks, a Block2 body,
    # a Block1 upload echoed back, and the notifications its sensor task
    # sends every 50 ms.
    base = peer("AIO_SERVER")

    async def main():
        async with aio.AsyncClient(block_size=512) as client:
            async def one(i):
                for k in range(2):
                    body = b"%d.%d" % (i, k)
                    r = await client.post(base + "/echo", body)
                    assert (r.code, r.payload) == (codes.CHANGED, body), r

            await asyncio.gather(*[one(i) for i in range(20)])
            r, up = await asyncio.gather(client.get(base + "/big"), client.put(base + "/echo", BIG))
            assert (r.code, r.payload) == (codes.CONTENT, BIG), (r.code, len(r.payload))
            assert (up.code, up.payload) == (codes.CHANGED, BIG), (up.code, len(up.payload))
            values = []
            async for n in client.observe(base + "/counter"):
                values.append(int(n.payload))
                if len(values) == 4:
                    break
            assert values == sorted(values) and len(set(values)) == 4, values
        await sleep_ms(10)

    run(main())
