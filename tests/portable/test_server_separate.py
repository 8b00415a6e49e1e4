# Separate responses from the Server (RFC 7252 §5.2.2): request.defer() sends
# the empty ACK at once, deferred.respond() later sends a CON response that
# the EndPoint retransmits until it is acknowledged (or a NON, for a NON
# request). Portable: CPython (pytest) and the MicroPython VM, on fakenet.
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
import support
from fakenet import CLIENT, SERVER, mtype, pair, tid
from coapy_micro.connection import Message
from coapy_micro.server import Resource, Server

CON, NON, ACK, RST = Message.CON, Message.NON, Message.ACK, Message.RST
GET, POST = 1, 2
CHANGED, CONTENT, INTERNAL = 68, 69, 160


class Slow:
    """A server whose /slow handler defers every request; `pending` holds
    (request, deferred) pairs for the test to answer."""

    def __init__(self, client=None, server=None, returns=None, raises=None):
        self.net, self.c, self.s = pair(client=client, server=server)
        self.errors = []
        self.srv = Server(self.s, on_error=lambda r, e: self.errors.append(e))
        self.pending = []
        self.runs = 0
        self.returns = returns
        self.raises = raises
        self.srv.add("slow", Resource(get=self.slow, post=self.slow))
        self.client_got = []

    def slow(self, request):
        self.runs += 1
        d = request.defer()
        self.pending.append((request, d))
        if self.raises is not None:
            raise self.raises
        return self.returns

    def on_rx(self, ep, rx):
        if ep is self.s:
            self.srv.handle(rx)
        else:
            self.client_got.append(rx)
            if rx.message.transaction_type == CON:
                rx.ack()  # the separate response is acknowledged

    def run(self, ms):
        self.net.run(ms, self.on_rx)

    def from_server(self):
        return [(t, mtype(d), d[1]) for t, d in self.net.sent(SERVER, CLIENT)]


def test_defer_acks_now_and_the_con_response_is_retransmitted_until_acked():
    rig = Slow(server={"ack_timeout_ms": 2000, "ack_random_factor": 1.0})
    rig.net.link(SERVER, CLIENT, drop=[2])  # the first transmission of the response is lost
    rec = rig.c.send(Message(CON, GET, token=b"sep", uri_path="slow"), SERVER)
    rig.run(100)
    assert rig.from_server() == [(0, ACK, 0)], rig.from_server()  # empty ACK at once
    assert not rec.done and rec.response_type == ACK, (rec.done, rec.response_type)
    ((request, d),) = rig.pending
    assert request.token == b"sep" and not d.done, (request.token, d.done)
    rig.net.now = 500
    out = d.respond(CONTENT, b"later", 0)
    assert d.done and out is d.record and out.message.transaction_type == CON, out
    rig.run(20000)
    sent = rig.from_server()
    assert sent == [(0, ACK, 0), (500, CON, CONTENT), (2500, CON, CONTENT)], sent
    assert out.done and out.response_type == ACK and not out.is_unacknowledged, out.response_type
    # The client took it as the response to its request, by token.
    assert rec.done and rec.response.message.payload == b"later", rec.response
    resp = rec.response.message
    assert (resp.token, resp.get_uint(12), resp.transaction_type) == (b"sep", 0, CON), resp
    assert rec.response.transaction_id != rec.transaction_id, "a new message id"


def test_unacknowledged_separate_response_gives_up():
    rig = Slow(server={"ack_timeout_ms": 1000, "ack_random_factor": 1.0, "max_retransmit": 2})
    rig.net.link(SERVER, CLIENT, drop=lambda n, data: n > 1)  # everything after the empty ACK
    rig.c.send(Message(CON, GET, token=b"gone", uri_path="slow"), SERVER)
    rig.run(100)
    ((request, d),) = rig.pending
    out = d.respond(CONTENT, b"x")
    rig.run(60000)
    times = [t for t, mt, code in rig.from_server() if mt == CON]
    assert times == [100, 1100, 3100], times  # 1 s, then 2 s
    assert out.done and out.is_unacknowledged, (out.done, out.is_unacknowledged)


def test_defer_on_a_non_request_answers_with_a_non_later():
    rig = Slow()
    rec = rig.c.send(Message(NON, GET, token=b"nn", uri_path="slow"), SERVER)
    rig.run(1000)
    assert rig.from_server() == [], rig.from_server()  # nothing to acknowledge
    ((request, d),) = rig.pending
    d.respond(CONTENT, "done")
    rig.run(1000)
    assert [(mt, code) for t, mt, code in rig.from_server()] == [(NON, CONTENT)], rig.from_server()
    assert rec.response.message.payload == b"done" and rec.response.message.token == b"nn", rec.response


def test_respond_twice_is_an_error_and_defer_twice_is_the_same():
    rig = Slow()
    rig.c.send(Message(CON, GET, token=b"t2", uri_path="slow"), SERVER)
    rig.run(100)
    ((request, d),) = rig.pending
    assert request.defer() is d, "one Deferred per request"
    d.respond(CHANGED)
    support.raises(ValueError, d.respond, CHANGED)
    rig.run(10000)
    assert [(mt, code) for t, mt, code in rig.from_server()] == [(ACK, 0), (CON, CHANGED)], rig.from_server()


def test_duplicate_of_a_deferred_request_gets_the_empty_ack_again():
    rig = Slow()
    rig.net.link(SERVER, CLIENT, drop=[1])  # the empty ACK is lost: the client retransmits
    rec = rig.c.send(Message(CON, POST, token=b"dd", uri_path="slow"), SERVER)
    rig.run(5000)
    assert rig.runs == 1, rig.runs  # the handler ran once
    assert [(mt, code) for t, mt, code in rig.from_server()] == [(ACK, 0), (ACK, 0)], rig.from_server()
    assert rec.response_type == ACK, rec.response_type
    rig.pending[0][1].respond(CHANGED)
    rig.run(10000)
    assert rec.done and rec.response.message.code == CHANGED, rec.response


def test_handler_that_defers_and_returns_sends_the_result_separately():
    rig = Slow(returns=(CONTENT, b"right away"))
    rec = rig.c.send(Message(CON, GET, token=b"dr", uri_path="slow"), SERVER)
    rig.run(10000)
    assert [(mt, code) for t, mt, code in rig.from_server()] == [(ACK, 0), (CON, CONTENT)], rig.from_server()
    assert rig.pending[0][1].done, "answered"
    assert rec.response.message.payload == b"right away", rec.response


def test_handler_that_defers_and_raises_sends_5_00_separately():
    rig = Slow(raises=KeyError("lost"))
    rec = rig.c.send(Message(CON, GET, token=b"dx", uri_path="slow"), SERVER)
    rig.run(10000)
    assert [(mt, code) for t, mt, code in rig.from_server()] == [(ACK, 0), (CON, INTERNAL)], rig.from_server()
    assert len(rig.errors) == 1 and isinstance(rig.errors[0], KeyError), rig.errors
    assert rec.response.message.code == INTERNAL, rec.response


def test_no_response_applies_to_the_separate_response():
    rig = Slow()
    rig.c.send(Message(CON, POST, token=b"nr", uri_path="slow", no_response=2), SERVER)
    rig.run(100)
    ((request, d),) = rig.pending
    assert d.respond(CHANGED) is None, "suppressed"
    assert d.done, d
    rig.run(10000)
    assert [(mt, code) for t, mt, code in rig.from_server()] == [(ACK, 0)], rig.from_server()


def test_several_deferred_requests_answered_out_of_order():
    rig = Slow(client={"nstart": 3})
    recs = [rig.c.send(Message(CON, GET, token=b"o%d" % i, uri_path="slow"), SERVER) for i in range(3)]
    rig.run(100)
    assert len(rig.pending) == 3, rig.pending
    for i in (2, 0, 1):
        request, d = rig.pending[i]
        d.respond(CONTENT, request.token)
    rig.run(10000)
    got = [r.response.message.payload for r in recs]
    assert got == [b"o0", b"o1", b"o2"], got
