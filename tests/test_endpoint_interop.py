"""The EndPoint over real loopback sockets, against peers no one here wrote.

- as a client of libcoap's coap-server-notls: GET / (piggybacked 2.05),
  GET /async?1 (an empty ACK, then a separate CON 2.05 that we acknowledge),
  a NON GET (NON 2.05), GET of a missing resource (4.04);
- as a server (tests/seed_server.py, the README's loop written only with the
  coapy's API) for libcoap's coap-client-notls and aiocoap's client, CON and NON.

CPython only (subprocesses, threads, asyncio). Peers missing: skip on a
laptop, fail under CI=true (peers.need).
"""
import functools
import socket
import time

import pytest

import interop
from coapy_micro import codes
from coapy_micro.connection import EndPoint, Message
from interop import LOOPBACK, BackgroundLoop, aiocoap_request
from seed_server import serve

# What coap-client-notls writes to stdout (the payload), stripped.
coap_client = functools.partial(interop.coap_client, stderr=False)


# -- helpers ----------------------------------------------------------------


@pytest.fixture
def loopback_ep():
    """An EndPoint on 127.0.0.1 (any port), closed after the test."""
    ep = EndPoint(socket.AF_INET)
    ep.bind((LOOPBACK, 0))
    yield ep
    ep.close()


def exchange(ep, rec, seconds=10.0):
    """Run ep.process() until `rec` has its response (or gave up, or time is
    up); acknowledge every CON that comes (a separate response). Returns the
    ReceptionRecords process() handed out, in order."""
    seen = []
    deadline = time.monotonic() + seconds
    while rec.response is None and not rec.is_unacknowledged and time.monotonic() < deadline:
        rx = ep.process(100)
        if rx is None:
            continue
        seen.append(rx)
        if rx.message.transaction_type == Message.CON:
            rx.ack()
    return seen


def describe(seen):
    return [(("CON", "NON", "ACK", "RST")[rx.message.transaction_type], codes.dotted(rx.message.code))
            for rx in seen]


# -- EndPoint as a client of coap-server-notls ------------------------------


# libcoap_server: (host, port) of a coap-server-notls (tests/conftest.py).


def test_client_get_root_piggybacked(libcoap_server, loopback_ep):
    ep = loopback_ep
    rec = ep.send(Message(Message.CON, codes.GET, token=ep.new_token()), libcoap_server)
    seen = exchange(ep, rec)
    assert describe(seen) == [("ACK", "2.05")]
    assert rec.response is seen[0] and rec.responses == [seen[0]]
    assert rec.response_type == Message.ACK
    assert seen[0].pertains_to is rec
    assert seen[0].transaction_id == rec.transaction_id
    assert seen[0].message.token == rec.message.token
    assert b"libcoap" in rec.response.message.payload
    assert rec.done and not rec.is_unacknowledged
    assert ep.in_flight == 0


def test_client_get_async_separate_response(libcoap_server, loopback_ep):
    # libcoap's /async?1 acknowledges at once (empty ACK) and sends the
    # response a second later as a CON of its own, which we must ACK.
    ep = loopback_ep
    req = Message(Message.CON, codes.GET, token=ep.new_token(), uri_path="async", uri_query="1")
    rec = ep.send(req, libcoap_server)
    seen = exchange(ep, rec)
    assert describe(seen) == [("ACK", "0.00"), ("CON", "2.05")]
    empty_ack, separate = seen
    assert empty_ack.pertains_to is rec and empty_ack.transaction_id == rec.transaction_id
    assert separate.pertains_to is rec
    assert separate.transaction_id != rec.transaction_id  # the server's own MID
    assert separate.message.token == rec.message.token
    assert separate.message.payload == b"done"
    assert rec.response_type == Message.ACK
    assert rec.response is separate and rec.responses == [separate]
    assert rec.done and not rec.is_unacknowledged
    # exchange() acknowledged the CON with rx.ack(): libcoap must not
    # retransmit it (ACK_TIMEOUT 2 s x random factor <= 3 s). A
    # retransmission would be answered by our dedup cache and counted.
    end = time.monotonic() + 3.5
    while time.monotonic() < end:
        assert ep.process(100) is None
    assert ep.duplicates == 0


def test_client_non_get(libcoap_server, loopback_ep):
    ep = loopback_ep
    rec = ep.send(Message(Message.NON, codes.GET, token=ep.new_token()), libcoap_server)
    seen = exchange(ep, rec)
    assert describe(seen) == [("NON", "2.05")]
    assert rec.response_type == Message.NON
    assert rec.response is seen[0] and seen[0].pertains_to is rec
    assert b"libcoap" in rec.response.message.payload
    assert rec.done


def test_client_get_missing_resource(libcoap_server, loopback_ep):
    ep = loopback_ep
    rec = ep.send(Message(Message.CON, codes.GET, token=ep.new_token(), uri_path="no/such"),
                  libcoap_server)
    assert describe(exchange(ep, rec)) == [("ACK", "4.04")]
    assert rec.response.message.code == codes.NOT_FOUND


def test_client_several_requests_nstart(libcoap_server, loopback_ep):
    # Five CON requests queued at once: NSTART=1 sends them one after another,
    # each gets its own piggybacked answer, matched by token.
    ep = loopback_ep
    recs = [ep.send(Message(Message.CON, codes.GET, token=ep.new_token(), uri_path="time"),
                    libcoap_server) for _ in range(5)]
    deadline = time.monotonic() + 10
    while not all(r.done for r in recs) and time.monotonic() < deadline:
        ep.process(100)
    for r in recs:
        assert r.response_type == Message.ACK
        assert r.response.message.code == codes.CONTENT
        assert r.response.message.token == r.message.token
    assert len({r.transaction_id for r in recs}) == 5


# -- EndPoint as a server (coapy's API loop) -----------------------------------


class SeedServer(BackgroundLoop):
    """serve() in a background thread; stop() joins it and re-raises what it raised."""

    did_not_stop = "serve() did not stop"

    def __init__(self, family=socket.AF_INET, host=LOOPBACK, seconds=60, **kw):
        self.ep = EndPoint(family, **kw)
        self.ep.bind((host, 0))
        self.address = self.ep.socket.getsockname()[:2]
        self.handled = []
        self.seconds = seconds
        self.start()

    def loop(self, stopped):
        serve(self.ep, seconds=self.seconds, handled=self.handled, stop=stopped)


@pytest.fixture
def seed_server():
    srv = SeedServer()
    yield srv
    srv.stop()


def test_server_libcoap_client_con_get(seed_server):
    host, port = seed_server.address
    assert coap_client("coap://%s:%d/sensors/temp" % (host, port)) == "hello sensors/temp"
    (req,) = seed_server.handled
    assert req.transaction_type == Message.CON and req.code == codes.GET


def test_server_libcoap_client_non_get(seed_server):
    host, port = seed_server.address
    assert coap_client("-N", "coap://%s:%d/n" % (host, port)) == "hello n"
    (req,) = seed_server.handled
    assert req.transaction_type == Message.NON


def test_server_libcoap_client_post(seed_server):
    host, port = seed_server.address
    assert coap_client("-m", "post", "-e", "twelve bytes", "coap://%s:%d/log" % (host, port)) == "12"
    assert coap_client("-N", "-m", "post", "-e", "abc", "coap://%s:%d/log" % (host, port)) == "3"
    assert [(r.transaction_type, r.code) for r in seed_server.handled] == [
        (Message.CON, codes.POST), (Message.NON, codes.POST)]


def test_server_libcoap_client_ipv6():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    try:
        srv = SeedServer(socket.AF_INET6, "::1")
    except OSError as e:
        pytest.skip("no IPv6 loopback: %s" % e)
    try:
        port = srv.address[1]
        assert coap_client("coap://[::1]:%d/six" % port) == "hello six"
        assert coap_client("-N", "coap://[::1]:%d/six" % port) == "hello six"
        assert [r.transaction_type for r in srv.handled] == [Message.CON, Message.NON]
    finally:
        srv.stop()


def test_server_aiocoap_con_get(seed_server):
    host, port = seed_server.address
    resp = aiocoap_request("coap://%s:%d/a/b" % (host, port))
    assert str(resp.code) == "2.05 Content"
    assert resp.payload == b"hello a/b"
    assert resp.opt.content_format == 0
    assert str(resp.mtype) == "ACK"  # piggybacked
    (req,) = seed_server.handled
    assert req.transaction_type == Message.CON


def test_server_aiocoap_non_get(seed_server):
    host, port = seed_server.address
    resp = aiocoap_request("coap://%s:%d/quiet" % (host, port), non=True)
    assert resp.payload == b"hello quiet"
    assert str(resp.mtype) == "NON"
    (req,) = seed_server.handled
    assert req.transaction_type == Message.NON


def test_server_aiocoap_post_con_and_non(seed_server):
    host, port = seed_server.address
    uri = "coap://%s:%d/upload" % (host, port)
    con = aiocoap_request(uri, "POST", b"x" * 100)
    non = aiocoap_request(uri, "POST", b"y" * 7, non=True)
    assert (str(con.code), con.payload) == ("2.04 Changed", b"100")
    assert (str(non.code), non.payload) == ("2.04 Changed", b"7")
    assert [(r.transaction_type, r.code) for r in seed_server.handled] == [
        (Message.CON, codes.POST), (Message.NON, codes.POST)]


def test_server_aiocoap_method_not_allowed(seed_server):
    host, port = seed_server.address
    resp = aiocoap_request("coap://%s:%d/x" % (host, port), "DELETE")
    assert str(resp.code) == "4.05 Method Not Allowed"
