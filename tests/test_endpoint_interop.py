"""The EndPoint over real loopback sockets, against peers no one here wrote.

- as a client of libcoap's coap-server-notls: GET / (piggybacked 2.05),
  GET /async?1 (an empty ACK, then a separate CON 2.05 that we acknowledge),
  a NON GET (NON 2.05), GET of a missing resource (4.04);
- as a server (tests/seed_server.py, the README's loop written only with the
  seed API) for libcoap's coap-client-notls and aiocoap's client, CON and NON.

CPython only (subprocesses, threads, asyncio). Peers missing: skip on a
laptop, fail under CI=true (peers.need).
"""
import asyncio
import shutil
import socket
import subprocess
import threading
import time

import pytest

from coapy_micro import codes
from coapy_micro.connection import EndPoint, Message
from peers import need
from seed_server import serve

LOOPBACK = "127.0.0.1"


# -- helpers ----------------------------------------------------------------


def free_udp_port(host=LOOPBACK, family=socket.AF_INET):
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def coap_answers(host, port, family=socket.AF_INET, seconds=5.0):
    """True once something at (host, port) answers a CoAP ping (CON, 0.00)
    with anything; probes with a plain socket, not with the code under test."""
    deadline = time.monotonic() + seconds
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(0.1)
        mid = 0x1200
        while time.monotonic() < deadline:
            mid += 1
            s.sendto(bytes([0x40, 0, mid >> 8, mid & 0xFF]), (host, port))
            try:
                s.recvfrom(64)
                return True
            except (socket.timeout, ConnectionRefusedError):
                pass
    return False


def client_endpoint(family=socket.AF_INET, host=LOOPBACK, **kw):
    ep = EndPoint(family, **kw)
    ep.bind((host, 0))
    return ep


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


@pytest.fixture(scope="module")
def libcoap_server():
    need(shutil.which("coap-server-notls"),
         "coap-server-notls not found (Debian/Ubuntu: apt-get install libcoap3-bin)")
    for _ in range(3):  # the free port may be taken between probe and bind
        port = free_udp_port()
        proc = subprocess.Popen(["coap-server-notls", "-A", LOOPBACK, "-p", str(port), "-v", "0"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if coap_answers(LOOPBACK, port) and proc.poll() is None:
            break
        proc.kill()
        proc.wait()
    else:
        pytest.fail("coap-server-notls did not start answering on 127.0.0.1")
    try:
        yield (LOOPBACK, port)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_client_get_root_piggybacked(libcoap_server):
    ep = client_endpoint()
    try:
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
        assert ep._records == []
    finally:
        ep.close()


def test_client_get_async_separate_response(libcoap_server):
    # libcoap's /async?1 acknowledges at once (empty ACK) and sends the
    # response a second later as a CON of its own, which we must ACK.
    ep = client_endpoint()
    try:
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
    finally:
        ep.close()


def test_client_non_get(libcoap_server):
    ep = client_endpoint()
    try:
        rec = ep.send(Message(Message.NON, codes.GET, token=ep.new_token()), libcoap_server)
        seen = exchange(ep, rec)
        assert describe(seen) == [("NON", "2.05")]
        assert rec.response_type == Message.NON
        assert rec.response is seen[0] and seen[0].pertains_to is rec
        assert b"libcoap" in rec.response.message.payload
        assert rec.done
    finally:
        ep.close()


def test_client_get_missing_resource(libcoap_server):
    ep = client_endpoint()
    try:
        rec = ep.send(Message(Message.CON, codes.GET, token=ep.new_token(), uri_path="no/such"),
                      libcoap_server)
        assert describe(exchange(ep, rec)) == [("ACK", "4.04")]
        assert rec.response.message.code == codes.NOT_FOUND
    finally:
        ep.close()


def test_client_several_requests_nstart(libcoap_server):
    # Five CON requests queued at once: NSTART=1 sends them one after another,
    # each gets its own piggybacked answer, matched by token.
    ep = client_endpoint()
    try:
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
    finally:
        ep.close()


# -- EndPoint as a server (the seed loop) -----------------------------------


class SeedServer:
    """serve() in a background thread; stop() joins it and re-raises what it raised."""

    def __init__(self, family=socket.AF_INET, host=LOOPBACK, seconds=60, **kw):
        self.ep = EndPoint(family, **kw)
        self.ep.bind((host, 0))
        self.address = self.ep.socket.getsockname()[:2]
        self.handled = []
        self.error = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(seconds,), daemon=True)
        self._thread.start()

    def _run(self, seconds):
        try:
            serve(self.ep, seconds=seconds, handled=self.handled, stop=self._stop.is_set)
        except BaseException as e:  # reported by stop()
            self.error = e

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        self.ep.close()
        assert not self._thread.is_alive(), "serve() did not stop"
        if self.error is not None:
            raise self.error


@pytest.fixture
def seed_server():
    srv = SeedServer()
    yield srv
    srv.stop()


def coap_client(*args):
    need(shutil.which("coap-client-notls"),
         "coap-client-notls not found (Debian/Ubuntu: apt-get install libcoap3-bin)")
    proc = subprocess.run(["coap-client-notls", "-B", "5", *args],
                          capture_output=True, text=True, timeout=20)
    return proc.stdout.strip()


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


def aiocoap_request(uri, code="GET", payload=b"", non=False):
    """One request with aiocoap's client; NON when `non` (aiocoap 0.4.17 picks
    the message type from the request's transport_tuning)."""
    try:
        import aiocoap
    except ImportError:
        need(False, "aiocoap not installed (make setup installs requirements-test.txt)")

    async def run():
        ctx = await aiocoap.Context.create_client_context()
        try:
            kw = {"transport_tuning": aiocoap.Unreliable()} if non else {}
            req = aiocoap.Message(code=getattr(aiocoap, code), uri=uri, payload=payload, **kw)
            return await asyncio.wait_for(ctx.request(req).response, 10)
        finally:
            await ctx.shutdown()

    return asyncio.run(run())


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
