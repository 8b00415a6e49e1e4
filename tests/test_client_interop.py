"""Client over real loopback sockets, against servers no one here wrote.

- libcoap's coap-server-notls: GET / (piggybacked), GET /async?1 (an empty
  ACK, then a separate CON response that the client acknowledges), PUT and
  GET /example_data (also 1500 bytes in Block1/Block2 blocks), a NON GET,
  4.04 and /time observed, each also with the Client on the MicroPython
  unix port; several requests in flight at once, IPv6 and a host name;
- an aiocoap server (a subprocess running the script below with this
  Python): piggybacked GET, a slow resource answered separately, POST/PUT
  echo with Content-Format (also 3000 bytes both ways in blocks), NON.
Plus a silent port for RequestTimeout.

CPython only (subprocesses, sockets). Peers missing: skip on a laptop, fail
under CI=true (peers.need).
"""
import socket
import subprocess
import sys
import time

import pytest

from coapy_micro import codes
from coapy_micro.client import Client, RequestTimeout, Unreachable
from coapy_micro.connection import EndPoint, Message
from coapy_micro.options import Option
import portable_runs
import upy
from interop import LOOPBACK, coap_answers, free_udp_port, libcoap_server, need_aiocoap, stop
from upy_peers import libcoap_client

CON, NON, ACK = Message.CON, Message.NON, Message.ACK


@pytest.fixture
def loopback_client():
    """(Client, its EndPoint on 127.0.0.1), both closed after the test."""
    ep = EndPoint(socket.AF_INET)
    ep.bind((LOOPBACK, 0))
    c = Client(ep)
    yield c, ep
    c.close()
    ep.close()


# -- against libcoap ----------------------------------------------------------

# Piggybacked, separate, NON, 4.04, Block1/Block2 and Observe are written
# once (tests/upy_peers/libcoap_client.py) and run on both runtimes: on
# CPython here, on the MicroPython unix port in one interpreter against a
# coap-server-notls of its own (the cases change /example_data).
CASES = portable_runs.TEST_DEF.findall((upy.PEERS / "libcoap_client.py").read_text())
UNIX_PORT = "the MicroPython unix port"


@pytest.fixture(scope="module")
def libcoap_cases_on_micropython():
    """{case: (outcome, detail)} of libcoap_client.py run on the unix port."""
    exe = upy.need_micropython()
    with libcoap_server(LOOPBACK) as port:
        env = upy.env(upy.PEERS, upy.ROOT / "tests" / "portable")
        env["LIBCOAP"] = "coap://%s:%d" % (LOOPBACK, port)
        results = portable_runs.run_file([exe, "-X", "heapsize=2m", str(upy.RUNNER)],
                                         upy.PEERS / "libcoap_client.py", UNIX_PORT, 120, env=env)
    return {"libcoap_client.py": results}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_libcoap(runtime, case, request, monkeypatch):
    if runtime == "cpython":
        monkeypatch.setenv("LIBCOAP", request.getfixturevalue("libcoap"))
        getattr(libcoap_client, case)()
    else:
        results = request.getfixturevalue("libcoap_cases_on_micropython")
        portable_runs.report(results, UNIX_PORT, "libcoap_client.py", case)



def test_libcoap_put_then_get_example_data(libcoap, loopback_client):
    c, ep = loopback_client
    resp = c.request("put", libcoap + "/example_data", b"from coapy_micro",
                     content_format="text/plain")
    assert resp.code in (codes.CREATED, codes.CHANGED), codes.dotted(resp.code)
    resp = c.request("get", libcoap + "/example_data")
    assert (resp.code, resp.payload) == (codes.CONTENT, b"from coapy_micro")


def test_libcoap_several_requests_in_flight_with_callbacks(libcoap, loopback_client):
    c, ep = loopback_client
    finished = []
    hs = [c.start("get", libcoap + path, callback=finished.append)
          for path in ("/async?1", "/time", "/", "/example_data")]
    deadline = time.monotonic() + 10
    while c.pending and time.monotonic() < deadline:
        c.process(50)
    assert len(finished) == 4 and all(h.done for h in hs)
    assert all(h.error is None and h.response.code == codes.CONTENT for h in hs)
    assert finished[-1] is hs[0]  # the separate response came last
    assert len({h.request.token for h in hs}) == 4


def test_libcoap_host_name_and_own_end_point():
    # No EndPoint given: the client resolves "localhost" with getaddrinfo and
    # makes an EndPoint of that family; libcoap on "::" takes both families.
    with libcoap_server("::") as port:
        c = Client()
        try:
            h = c.start("get", "coap://localhost:%d/" % port)
            while not h.done:
                c.process(100)
            assert b"libcoap" in h.result().payload
            assert h.request.findOption(3).value == "localhost"  # Uri-Host for a name
            assert len(c.end_points) == 1
        finally:
            c.close()
    assert c.end_points == []


def test_libcoap_ipv6_literal():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    try:
        free_udp_port("::1", socket.AF_INET6)
    except OSError as e:
        pytest.skip("no IPv6 loopback: %s" % e)
    with libcoap_server("::1") as port:
        c = Client()
        try:
            resp = c.request("get", "coap://[::1]:%d/" % port)
            assert b"libcoap" in resp.payload
            assert resp.remote[0] == "::1"
        finally:
            c.close()


def test_address_of_the_wrong_family_for_the_given_end_point(loopback_client):
    # An IPv4 EndPoint cannot send to [::1]: refused before anything is queued
    # (CPython's sendto would raise TypeError inside the EndPoint).
    c, ep = loopback_client
    with pytest.raises(Unreachable):
        c.request("get", "coap://[::1]:5683/")
    assert ep.in_flight == 0


def test_timeout_against_a_silent_port(loopback_client):
    c, ep = loopback_client
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((LOOPBACK, 0))
        port = silent.getsockname()[1]
        t0 = time.monotonic()
        with pytest.raises(RequestTimeout):
            c.request("get", "coap://%s:%d/x" % (LOOPBACK, port), timeout_ms=700)
        assert 0.6 < time.monotonic() - t0 < 2
        assert ep.in_flight == 0
        silent.settimeout(0)
        assert silent.recvfrom(100)  # the request did go out


# -- against aiocoap ----------------------------------------------------------

AIOCOAP_SERVER = r'''
import asyncio, sys
import aiocoap
import aiocoap.resource as resource

class Hello(resource.Resource):
    async def render_get(self, request):
        return aiocoap.Message(payload=b"hello from aiocoap", content_format=0)

class Slow(resource.Resource):
    # Slower than aiocoap's empty-ACK delay (0.1 s): an empty ACK goes out,
    # then the response separately.
    async def render_get(self, request):
        await asyncio.sleep(1.0)
        return aiocoap.Message(payload=b"slow", content_format=0)

class Echo(resource.Resource):
    async def render_post(self, request):
        return aiocoap.Message(code=aiocoap.CHANGED, payload=request.payload,
                               content_format=request.opt.content_format)
    render_put = render_post

class Tick(resource.ObservableResource):
    # Observable (RFC 7641): a new state every 0.3 s.
    def __init__(self):
        super().__init__()
        self.n = 0
        asyncio.get_running_loop().call_later(0.3, self.tick)

    def tick(self):
        self.n += 1
        self.updated_state()
        asyncio.get_running_loop().call_later(0.3, self.tick)

    async def render_get(self, request):
        return aiocoap.Message(payload=b"%d" % self.n, content_format=0)

async def main(host, port):
    site = resource.Site()
    site.add_resource(["tick"], Tick())
    site.add_resource([".well-known", "core"],
                      resource.WKCResource(site.get_resources_as_linkheader))
    site.add_resource(["hello"], Hello())
    site.add_resource(["slow"], Slow())
    site.add_resource(["echo"], Echo())
    await aiocoap.Context.create_server_context(site, bind=(host, port))
    print("ready", flush=True)
    await asyncio.get_running_loop().create_future()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
'''


def start_aiocoap():
    """(process, 'coap://127.0.0.1:PORT') of the aiocoap server above."""
    need_aiocoap()
    for _ in range(3):
        port = free_udp_port()
        proc = subprocess.Popen([sys.executable, "-c", AIOCOAP_SERVER, LOOPBACK, str(port)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if proc.stdout.readline().strip() == "ready" and coap_answers(LOOPBACK, port):
            return proc, "coap://%s:%d" % (LOOPBACK, port)
        stop(proc)
    pytest.fail("the aiocoap server did not start")


@pytest.fixture(scope="module")
def aiocoap_server():
    proc, base = start_aiocoap()
    yield base
    stop(proc)


def test_aiocoap_get_piggybacked(aiocoap_server, loopback_client):
    c, ep = loopback_client
    resp = c.request("get", aiocoap_server + "/hello")
    assert (resp.code, resp.payload, resp.content_format) == (
        codes.CONTENT, b"hello from aiocoap", 0)
    assert resp.message.transaction_type == ACK


def test_aiocoap_separate_response(aiocoap_server, loopback_client):
    c, ep = loopback_client
    h = c.start("get", aiocoap_server + "/slow")
    while not h.done:
        c.process(100)
    resp = h.result()
    assert h.acknowledged
    assert (resp.code, resp.payload) == (codes.CONTENT, b"slow")
    assert resp.message.transaction_type in (CON, NON)
    # A CON response was acknowledged: aiocoap does not send it again.
    end = time.monotonic() + 3.5
    while time.monotonic() < end:
        assert c.process(100) is None
    assert ep.duplicates == 0


def test_aiocoap_post_and_put_echo_content_format(aiocoap_server, loopback_client):
    c, ep = loopback_client
    resp = c.request("post", aiocoap_server + "/echo", b'{"a": 1}', content_format="json")
    assert (resp.code, resp.payload, resp.content_format) == (
        codes.CHANGED, b'{"a": 1}', codes.JSON)
    resp = c.request(codes.PUT, aiocoap_server + "/echo", b"\x01\x02", content_format=42)
    assert (resp.payload, resp.content_format) == (b"\x01\x02", 42)


def test_aiocoap_echo_in_blocks(aiocoap_server, loopback_client):
    # RFC 7959 both ways: 3000 bytes go up in Block1 blocks (aiocoap
    # assembles them for its resource), the echo comes back in Block2
    # blocks that the client reassembles.
    c, ep = loopback_client
    body = bytes((i * 13 + i // 249) & 255 for i in range(3000))
    for size in (1024, 256):
        resp = c.request("post", aiocoap_server + "/echo", body, content_format=42,
                         block_size=size)
        assert (resp.code, resp.payload, resp.content_format) == (codes.CHANGED, body, 42), (
            size, codes.dotted(resp.code), len(resp.payload))
        assert resp.message.findOption(23) is not None, resp.options  # it did come in blocks
    assert ep.in_flight == 0 and c.pending == []


def test_aiocoap_non_request(aiocoap_server, loopback_client):
    c, ep = loopback_client
    resp = c.request("get", aiocoap_server + "/hello", confirmable=False)
    assert resp.message.transaction_type == NON
    assert resp.payload == b"hello from aiocoap"


def test_aiocoap_not_found_and_method_not_allowed(aiocoap_server, loopback_client):
    c, ep = loopback_client
    assert c.request("get", aiocoap_server + "/nothing").code == codes.NOT_FOUND
    assert c.request("delete", aiocoap_server + "/hello").code == codes.METHOD_NOT_ALLOWED


def test_aiocoap_observed(aiocoap_server, loopback_client):
    import time as _time

    c, ep = loopback_client
    got = []
    ob = c.observe(aiocoap_server + "/tick", got.append)
    end = _time.monotonic() + 4
    while _time.monotonic() < end and len(got) < 4:
        c.process(100)
    values = [int(r.payload) for r in got]
    assert len(values) >= 3 and values == sorted(values), values
    assert got[-1].message.get_uint(6) is not None, got[-1].options
    ob.cancel()
    c.process(100)
    assert ob.done
