"""The Server over real loopback sockets, driven by clients no one here wrote:
libcoap's coap-client-notls and aiocoap's client.

GET, PUT, POST, DELETE, NON, /.well-known/core with filters, 4.04, 4.02 (an
unknown critical option), 4.05, 4.06, 4.15 and a separate response (/slow).

Every test runs twice: with the Server on CPython, in a background thread
(its own loop around Server.process, which also answers /slow's deferred
requests), and on the MicroPython unix port, in a process of its own; the
resources are written once, in tests/upy_peers/interop_node.py. One test
uses serve() and stop() in a thread (CPython). Peers missing: skip on a
laptop, fail under CI=true (peers.need).
"""
import threading
import time

import pytest

import upy
from coapy_micro.connection import EndPoint
from coapy_micro.server import Resource, Server
from interop import LOOPBACK, BackgroundLoop, aiocoap_request, coap_client
from upy_peers.interop_node import CONTENT, InteropNode


class Node(BackgroundLoop):
    """InteropNode (tests/upy_peers/interop_node.py) on CPython, in a thread
    of its own."""

    def __init__(self):
        self.ep = EndPoint()
        self.ep.bind((LOOPBACK, 0))
        self.port = self.ep.socket.getsockname()[1]
        self.errors = []
        self.seen = []  # (type, code, path) of every request a handler saw
        self.node = InteropNode(self.ep, self._event)
        self.start()

    def _event(self, kind, value):
        if kind == "seen":
            self.seen.append(value)
        elif kind == "error":
            self.errors.append((None, value))

    @property
    def stored(self):
        return self.node.stored

    def loop(self, stopped):
        while not stopped():
            self.node.step(50)

    def uri(self, path):
        return "coap://%s:%d/%s" % (LOOPBACK, self.port, path)


class MicroPythonNode:
    """The same InteropNode on the MicroPython unix port, in a process of
    its own; seen, errors and stored come from the events it prints."""

    def __init__(self):
        self.peer = upy.Peer("run_interop_node.py")
        self.port = self.peer.port

    def _events(self, kind):
        return [v for k, v in self.peer.events() if k == kind]

    @property
    def seen(self):
        return [(t, c, tuple(p)) for t, c, p in self._events("seen")]

    @property
    def errors(self):
        return [(None, e) for e in self._events("error")]

    @property
    def stored(self):
        values = self._events("stored")
        return bytes(values[-1]) if values else b"initial"

    def stop(self):
        err = self.peer.stop()
        assert "Traceback" not in err, err

    def uri(self, path):
        return "coap://%s:%d/%s" % (LOOPBACK, self.port, path)


@pytest.fixture(params=["cpython", "micropython"])
def node(request):
    """The node, with the Server on CPython or on the MicroPython unix port."""
    n = Node() if request.param == "cpython" else MicroPythonNode()
    yield n
    n.stop()


# -- libcoap's coap-client ---------------------------------------------------


def test_libcoap_get(node):
    assert coap_client(node.uri("hello")) == "hello"
    assert coap_client(node.uri("sensors/temp")) == "21.5"
    assert node.seen == [(0, 1, ("hello",)), (0, 1, ("sensors", "temp"))]


def test_libcoap_put_post_delete(node):
    assert coap_client("-m", "put", "-t", "0", "-e", "first", node.uri("upload")) == ""
    assert coap_client(node.uri("upload")) == "first"
    assert coap_client("-m", "post", "-t", "0", "-e", "+more", node.uri("upload")) == ""
    assert coap_client(node.uri("upload")) == "first+more"
    assert coap_client("-m", "delete", node.uri("upload")) == ""
    assert coap_client(node.uri("upload")) == ""
    assert [s[1] for s in node.seen] == [3, 1, 2, 1, 4, 1]


def test_libcoap_non(node):
    assert coap_client("-N", node.uri("hello")) == "hello"
    assert coap_client("-N", "-m", "put", "-t", "0", "-e", "n", node.uri("upload")) == ""
    assert node.seen[0][0] == 1 and node.seen[1][:2] == (1, 3)
    assert node.stored == b"n"


def test_libcoap_discovery_with_filters(node):
    everything = coap_client(node.uri(".well-known/core"))
    assert everything == ('</hello>;ct=0;title="Greeting",'
                          '</sensors/temp>;rt="temperature-c";if="sensor";ct=0;obs,'
                          '</sensors/light>;rt="light-lux";if="sensor";ct="0 50",'
                          '</upload>,</ro>,</slow>,</broken>')
    assert coap_client(node.uri(".well-known/core?rt=temperature-c")) == (
        '</sensors/temp>;rt="temperature-c";if="sensor";ct=0;obs')
    assert coap_client(node.uri(".well-known/core?rt=light*")) == (
        '</sensors/light>;rt="light-lux";if="sensor";ct="0 50"')
    assert coap_client(node.uri(".well-known/core?href=/sensors/*")).count("</sensors/") == 2
    assert coap_client(node.uri(".well-known/core?ct=50")).startswith("</sensors/light>")
    assert coap_client(node.uri(".well-known/core?title=Greet*")) == '</hello>;ct=0;title="Greeting"'
    assert coap_client(node.uri(".well-known/core?rt=nothing")) == ""  # 2.05, empty


def test_libcoap_errors(node):
    assert coap_client(node.uri("no/such/thing")) == "4.04"
    assert coap_client("-m", "post", node.uri("ro")) == "4.05"
    assert coap_client("-O", "65001,x", node.uri("hello")) == "4.02 option 65001"
    assert coap_client("-A", "60", node.uri("sensors/temp")) == "4.06"
    assert coap_client("-m", "put", "-t", "50", "-e", "{}", node.uri("upload")) == "4.15"
    assert coap_client(node.uri("broken")) == "5.00"
    assert coap_client(node.uri("hello")) == "hello"  # still serving
    assert len(node.errors) == 1 and str(node.errors[0][1]) == "handler bug"
    assert node.seen == [(0, 1, ("hello",))]  # no handler saw the refused requests


def test_libcoap_separate_response(node):
    t0 = time.monotonic()
    assert coap_client(node.uri("slow")) == "slow done"
    assert time.monotonic() - t0 >= 0.3
    assert coap_client("-N", node.uri("slow")) == "slow done"


# -- aiocoap's client ----------------------------------------------------------


def test_aiocoap_get_put_post_delete(node):
    resp = aiocoap_request(node.uri("hello"))
    assert (str(resp.code), resp.payload, resp.opt.content_format) == ("2.05 Content", b"hello", 0)
    assert str(resp.mtype) == "ACK"  # piggybacked
    from aiocoap.optiontypes import UintOption
    from aiocoap.numbers.optionnumbers import OptionNumber

    cf0 = UintOption(OptionNumber.CONTENT_FORMAT, 0)
    assert str(aiocoap_request(node.uri("upload"), "PUT", b"A", options=[cf0]).code) == "2.04 Changed"
    assert str(aiocoap_request(node.uri("upload"), "POST", b"B", options=[cf0]).code) == "2.01 Created"
    resp = aiocoap_request(node.uri("upload"))
    assert (resp.payload, resp.opt.content_format) == (b"AB", 42)
    assert str(aiocoap_request(node.uri("upload"), "DELETE").code) == "2.02 Deleted"
    assert aiocoap_request(node.uri("upload")).payload == b""


def test_aiocoap_non(node):
    resp = aiocoap_request(node.uri("sensors/temp"), non=True)
    assert (resp.payload, str(resp.mtype)) == (b"21.5", "NON")
    assert node.seen == [(1, 1, ("sensors", "temp"))]


def test_aiocoap_discovery_with_filter(node):
    resp = aiocoap_request(node.uri(".well-known/core?if=sensor"))
    assert resp.opt.content_format == 40
    from aiocoap.util.linkformat import parse

    links = parse(resp.payload.decode())
    assert [link.get_target(node.uri("")) for link in links.links] == [
        node.uri("sensors/temp"), node.uri("sensors/light")]


def test_aiocoap_errors(node):
    from aiocoap.optiontypes import OpaqueOption, UintOption
    from aiocoap.numbers.optionnumbers import OptionNumber

    assert str(aiocoap_request(node.uri("missing")).code) == "4.04 Not Found"
    assert str(aiocoap_request(node.uri("ro"), "DELETE").code) == "4.05 Method Not Allowed"
    resp = aiocoap_request(node.uri("hello"), options=[OpaqueOption(OptionNumber(65001), b"x")])
    assert (str(resp.code), resp.payload) == ("4.02 Bad Option", b"option 65001")
    resp = aiocoap_request(node.uri("sensors/light"), options=[UintOption(OptionNumber.ACCEPT, 50)])
    assert (str(resp.code), resp.payload, resp.opt.content_format) == ("2.05 Content", b'{"v": 21.5}', 50)
    resp = aiocoap_request(node.uri("sensors/light"), options=[UintOption(OptionNumber.ACCEPT, 60)])
    assert str(resp.code) == "4.06 Not Acceptable"


def test_aiocoap_separate_response(node):
    resp = aiocoap_request(node.uri("slow"))
    assert (str(resp.code), resp.payload, str(resp.mtype)) == ("2.05 Content", b"slow done", "CON")


# -- serve() and stop() --------------------------------------------------------


def test_serve_in_a_thread_and_stop():
    ep = EndPoint()
    ep.bind((LOOPBACK, 0))
    port = ep.socket.getsockname()[1]
    srv = Server(ep)
    srv.add("x", Resource(get=lambda r: (CONTENT, b"served")))
    t = threading.Thread(target=srv.serve, daemon=True)
    t.start()
    try:
        assert coap_client("coap://%s:%d/x" % (LOOPBACK, port)) == "served"
    finally:
        srv.stop()
        t.join(5)
        ep.close()
    assert not t.is_alive(), "serve() did not return after stop()"
