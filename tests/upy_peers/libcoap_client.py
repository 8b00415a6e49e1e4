# The project's Client against libcoap's coap-server-notls, written once for
# both runtimes (tests/test_client_interop.py runs each case on CPython and,
# through tools/upy/run.py, on the MicroPython unix port): piggybacked,
# separate, NON, 4.04, Block1 and Block2, Observe. The server's URI
# ('coap://127.0.0.1:PORT') comes from the environment variable LIBCOAP.
# Portable: no CPython-only calls. Rules: module-level `def test_*()` only.
import os

from coapy_micro import codes
from coapy_micro.client import Client
from coapy_micro.connection import EndPoint, Message, resolve
from coapy_micro.options import Option

try:
    from time import ticks_diff, ticks_ms
except ImportError:  # CPython
    from time import monotonic

    def ticks_ms():
        return int(monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b

CON, NON, ACK = Message.CON, Message.NON, Message.ACK
SZX = {1024: 6, 64: 2, 16: 0}  # block size -> SZX (no int.bit_length on MicroPython)


def libcoap():
    return os.getenv("LIBCOAP")


def loopback_client():
    ep = EndPoint()
    ep.bind(("127.0.0.1", 0))
    return Client(ep), ep


def test_get_root_piggybacked():
    c, ep = loopback_client()
    try:
        resp = c.request("get", libcoap() + "/")
        assert resp.code == codes.CONTENT, resp.code
        assert b"libcoap" in resp.payload, resp.payload
        assert resp.message.transaction_type == ACK
        assert resp.content_format is None  # libcoap sends only Max-Age here
        assert [(o.number, o.value) for o in resp.options] == [(14, 0x2FFFF)], resp.options
        port = int(libcoap().rsplit(":", 1)[1])
        assert resp.remote == resolve(("127.0.0.1", port)), resp.remote
        assert ep.in_flight == 0 and c.pending == []
    finally:
        c.close()
        ep.close()


def test_async_separate_response_is_acknowledged():
    # /async?1: an empty ACK at once, the response a second later in a CON
    # of libcoap's own, which the client must acknowledge.
    c, ep = loopback_client()
    try:
        h = c.start("get", libcoap() + "/async?1")
        t0 = ticks_ms()
        while not h.done:
            c.process(100)
        elapsed = ticks_diff(ticks_ms(), t0)
        resp = h.result()
        assert h.acknowledged  # the empty ACK came first
        assert (resp.code, resp.payload) == (codes.CONTENT, b"done"), resp.payload
        assert resp.message.transaction_type == CON
        assert resp.message.token == h.request.token
        assert 500 < elapsed < 5000, elapsed
        # Acknowledged: libcoap must not retransmit it (its ACK_TIMEOUT is
        # 2 s x up to 1.5). A retransmission would count as a duplicate.
        end = ticks_ms()
        while ticks_diff(ticks_ms(), end) < 3500:
            assert c.process(100) is None
        assert ep.duplicates == 0, ep.duplicates
    finally:
        c.close()
        ep.close()


def test_example_data_in_blocks():
    # RFC 7959 both ways: 1500 bytes go up in two Block1 blocks (1024 and
    # the rest) and come back in Block2 blocks of 1024, 64 and 16 bytes
    # (the size the client asks in its first request), reassembled.
    c, ep = loopback_client()
    try:
        body = bytes([(i * 7 + i // 251) & 255 for i in range(1500)])
        resp = c.request("put", libcoap() + "/example_data", body, content_format=42)
        assert resp.code in (codes.CREATED, codes.CHANGED), codes.dotted(resp.code)
        for size in (1024, 64, 16):
            c.block_size = size
            opts = () if size == 1024 else (Option(23, SZX[size]),)
            resp = c.request("get", libcoap() + "/example_data", options=opts)
            assert (resp.code, resp.payload) == (codes.CONTENT, body), (size, len(resp.payload))
            assert resp.message.findOption(23) is not None, resp.options  # it did come in blocks
        c.block_size = 1024
        assert ep.in_flight == 0 and c.pending == []
        resp = c.request("put", libcoap() + "/example_data", b"from coapy_micro",
                         content_format="text/plain")  # as the other tests expect it
        assert resp.code == codes.CHANGED, resp.code
    finally:
        c.close()
        ep.close()


def test_non_request_gets_non_response():
    c, ep = loopback_client()
    try:
        resp = c.request(codes.GET, libcoap() + "/", confirmable=False)
        assert resp.message.transaction_type == NON
        assert b"libcoap" in resp.payload
    finally:
        c.close()
        ep.close()


def test_missing_resource_is_a_response():
    c, ep = loopback_client()
    try:
        assert c.request("get", libcoap() + "/no/such/thing").code == codes.NOT_FOUND
    finally:
        c.close()
        ep.close()


def test_time_observed():
    # coap-server-notls's /time is observable and notifies every second.
    c, ep = loopback_client()
    try:
        got = []
        ob = c.observe(libcoap() + "/time", got.append)
        start = ticks_ms()
        while ticks_diff(ticks_ms(), start) < 4000 and len(got) < 3:
            c.process(200)
        assert len(got) >= 2, got
        assert all(r.code == 69 and r.payload for r in got), got
        assert got[0].message.get_uint(6) is not None, got[0].options
        ob.cancel()
        c.process(100)
        assert ob.done
    finally:
        c.close()
        ep.close()
