# Client on the fake network (RFC 7252 §5.2, §5.3, §8.1): piggybacked and
# separate responses, NON requests, timeouts, RST, unreachable peers, the
# non-blocking handle, tokens, URIs and resolution. Portable: CPython (pytest)
# and the MicroPython VM. Rules: module-level `def test_*()` only, asserts
# show their values, no pytest.
#
# The server here is a script, not an EndPoint: every datagram sent to it is
# decoded and `answer(tid, message)` says what goes back and when, as
# [(delay_ms, Message, transaction id)]. So each test fixes exactly what the
# client sees, down to the millisecond.
import errno

import support
from fakenet import CLIENT, ROGUE, SERVER, Net, Poller, Socket, mtype, tid
from coapy_micro.client import (Client, CoapError, Pending, RequestTimeout, Reset,
                                Response, Unreachable)
from coapy_micro._compat import ticks_diff
from coapy_micro.connection import EndPoint, Message
from coapy_micro.options import Option
from coapy_micro.uri import UriError

CON, NON, ACK, RST = Message.CON, Message.NON, Message.ACK, Message.RST
GET, POST, PUT = 1, 2, 3
CONTENT, CHANGED, NOT_FOUND = 69, 68, 132
URI = "coap://10.0.0.2/sensors/temp"


class Rand:
    """An EndPoint `rand`: 0 for timeouts and the first message id (so the
    ACK timeout is exactly 2000 ms and ids start at 1), a counter for token
    bytes (so tokens differ, and new_token never loops)."""

    def __init__(self):
        self.n = 0

    def __call__(self, nbits):
        if nbits == 8:
            self.n += 1
            return self.n & 255
        return 0


class Peer:
    """A scripted server at `addrs` (default SERVER) on `net`; see above.
    `got`: [(ms, tid, Message)] received; `sent`: [(ms, bytes)] sent."""

    def __init__(self, net, answer, addrs=(SERVER,)):
        self.got = []
        self.sent = []
        send = net.send

        def hooked(src, dst, data):
            send(src, dst, data)
            if dst not in addrs:
                return
            t, msg = Message.decode(data)
            self.got.append((net.now, t, msg))
            for delay, reply, rtid in answer(t, msg) or ():
                raw = reply.encode(rtid)
                self.sent.append((net.now + delay, raw))
                # Answers come from the unicast address, even to a group.
                net.inject(SERVER if dst[0][:3] == "224" else dst, src, raw, net.now + delay)

        net.send = hooked


def setup(answer, **kw):
    """(net, client EndPoint, Client, Peer) with deterministic timing."""
    net = Net()
    ep = net.endpoint(CLIENT, rand=Rand(), **kw)
    return net, ep, Client(ep), Peer(net, answer)


def piggyback(payload=b"21.5", code=CONTENT):
    def answer(t, m):
        if m.transaction_type == CON and 1 <= m.code <= 31:
            return [(0, Message(ACK, code, payload, m.token, content_format=0), t)]
        if m.transaction_type == NON:
            return [(0, Message(NON, code, payload, m.token, content_format=0), 0x5000 + t)]
    return answer


def separate(later_type, delay=1000, payload=b"late"):
    # An empty ACK now, the response `delay` ms later as CON or NON.
    def answer(t, m):
        if 1 <= m.code <= 31:
            return [(0, Message(ACK, 0), t),
                    (delay, Message(later_type, CONTENT, payload, m.token), 0x7000)]
    return answer


def silent(t, m):
    return None


def paths(msg):
    return [o.value for o in msg.findOptions(11)]


# -- responses ----------------------------------------------------------------

def test_piggybacked_response():
    net, ep, c, peer = setup(piggyback())
    resp = c.request("get", URI)
    assert isinstance(resp, Response), resp
    got = (resp.code, resp.payload, resp.content_format, resp.remote)
    assert got == (CONTENT, b"21.5", 0, SERVER), got
    assert resp.message.transaction_type == ACK, resp.message
    assert [o.number for o in resp.options] == [12], resp.options
    (t, rtid, req), = peer.got
    assert (req.transaction_type, req.code) == (CON, GET), req
    assert paths(req) == ["sensors", "temp"], paths(req)
    assert req.findOption(3) is None and req.findOption(7) is None, req  # IP literal, default port
    assert len(req.token) == 4 and resp.message.token == req.token, (req.token, resp.message.token)
    assert net.now == 0, net.now
    assert ep.in_flight == 0 and c.pending == [], (ep.in_flight, c.pending)
    assert net.times(CLIENT, SERVER) == [0], net.times(CLIENT, SERVER)  # no retransmission


def test_error_codes_are_responses_not_exceptions():
    net, ep, c, peer = setup(piggyback(b"", NOT_FOUND))
    resp = c.request("get", "coap://10.0.0.2/nope")
    assert resp.code == NOT_FOUND and resp.payload == b"", resp


def test_separate_con_response_is_acknowledged():
    net, ep, c, peer = setup(separate(CON))
    h = c.start("get", URI)
    while not h.done:
        c.process(100)
    assert h.acknowledged and h.error is None, (h.acknowledged, h.error)
    resp = h.result()
    assert (resp.code, resp.payload, resp.message.transaction_type) == (CONTENT, b"late", CON), resp
    assert net.now == 1000, net.now
    # The client's ACK for the server's CON, with the server's message id, at once.
    got = [(ms, t, m.transaction_type, m.code) for ms, t, m in peer.got]
    assert got == [(0, 1, CON, GET), (1000, 0x7000, ACK, 0)], got
    # The empty ACK stopped the retransmissions of the request.
    assert net.times(CLIENT, SERVER) == [0, 1000], net.times(CLIENT, SERVER)
    assert ep.in_flight == 0, ep.in_flight


def test_separate_non_response_is_accepted_without_ack():
    net, ep, c, peer = setup(separate(NON, 700))
    resp = c.request("get", URI)
    assert (resp.payload, resp.message.transaction_type) == (b"late", NON), resp
    assert net.now == 700, net.now
    assert len(peer.got) == 1, peer.got  # nothing to acknowledge


def test_ack_carrying_another_token_is_not_the_response():
    # A 2.05 piggybacked with a token that is not the request's: the EndPoint
    # takes it as an acknowledgement only; the real response comes later.
    def answer(t, m):
        if m.code == GET:
            return [(0, Message(ACK, CONTENT, b"wrong", b"other"), t),
                    (300, Message(NON, CONTENT, b"right", m.token), 0x6000)]
    net, ep, c, peer = setup(answer)
    resp = c.request("get", URI)
    assert resp.payload == b"right" and net.now == 300, (resp.payload, net.now)


def test_non_request_non_response():
    net, ep, c, peer = setup(piggyback(b"7"))
    resp = c.request(GET, URI, confirmable=False)
    assert (resp.payload, resp.message.transaction_type) == (b"7", NON), resp
    (t, rtid, req), = peer.got
    assert req.transaction_type == NON, req
    assert ep.in_flight == 0, ep.in_flight


def test_non_request_con_response_is_acknowledged():
    def answer(t, m):
        if m.code == GET:
            return [(200, Message(CON, CONTENT, b"c", m.token), 0x4444)]
    net, ep, c, peer = setup(answer)
    resp = c.request("get", URI, confirmable=False)
    assert resp.payload == b"c", resp
    got = [(ms, t, m.transaction_type) for ms, t, m in peer.got]
    assert got == [(0, 1, NON), (200, 0x4444, ACK)], got


def test_non_request_times_out_without_repeating():
    net, ep, c, peer = setup(silent)
    e = support.raises(RequestTimeout, c.request, "get", URI, confirmable=False, timeout_ms=4000)
    assert net.now == 4000, net.now
    assert net.times(CLIENT, SERVER) == [0], net.times(CLIENT, SERVER)
    assert e.pending.record.done and ep.in_flight == 0, ep.in_flight


# -- errors -------------------------------------------------------------------

def test_timeout_raises_and_cancels_the_record():
    net, ep, c, peer = setup(silent)
    e = support.raises(RequestTimeout, c.request, "get", URI, timeout_ms=5000)
    assert isinstance(e, CoapError), e
    assert net.now == 5000, net.now  # exactly at the deadline
    assert ep.in_flight == 0 and c.pending == [], (ep.in_flight, c.pending)
    # Cancelled: the retransmission due at 6000 never happens.
    assert c.process(60000) is None
    assert net.times(CLIENT, SERVER) == [0, 2000], net.times(CLIENT, SERVER)


def test_default_timeout_is_the_clients():
    net = Net()
    ep = net.endpoint(CLIENT, rand=Rand())
    Peer(net, silent)
    c = Client(ep, timeout_ms=3000)
    support.raises(RequestTimeout, c.request, "get", URI)
    assert net.now == 3000, net.now


def test_timeout_waiting_for_separate_response_then_late_answer_gets_rst():
    net, ep, c, peer = setup(separate(CON, 9000))
    e = support.raises(RequestTimeout, c.request, "get", URI, timeout_ms=4000)
    assert e.pending.acknowledged, e.pending
    assert net.now == 4000 and ep.in_flight == 0, (net.now, ep.in_flight)
    c.process(6000)  # the response arrives at 9000: nobody waits for it any more
    last = net.sent(CLIENT, SERVER)[-1]
    assert (last[0], mtype(last[1]), tid(last[1])) == (9000, RST, 0x7000), last


def test_rst_raises_reset():
    def answer(t, m):
        return [(0, Message(RST, 0), t)]
    net, ep, c, peer = setup(answer)
    e = support.raises(Reset, c.request, "get", URI)
    assert isinstance(e, CoapError) and e.pending.error is e, e
    assert net.now == 0 and ep.in_flight == 0, (net.now, ep.in_flight)


def test_never_acknowledged_con_raises_unreachable():
    # With no deadline of its own the client waits for the EndPoint to give
    # up: transmissions at 0, 2, 6, 14, 30 s, then 32 s more (RFC 7252 §4.2).
    net, ep, c, peer = setup(silent)
    e = support.raises(Unreachable, c.request, "get", URI, timeout_ms=None)
    assert net.now == 62000, net.now
    assert net.times(CLIENT, SERVER) == [0, 2000, 6000, 14000, 30000], net.times(CLIENT, SERVER)
    assert e.pending.record.is_unacknowledged and e.errno is None, (e.pending.record, e.errno)


def test_unreachable_before_the_deadline_when_the_endpoint_gives_up():
    net, ep, c, peer = setup(silent, max_retransmit=1)
    support.raises(Unreachable, c.request, "get", URI, timeout_ms=30000)
    assert net.now == 6000, net.now  # 2000 + 4000


def test_oversized_answers_are_named_in_the_timeout():
    # Seen: a server ignoring the block size asked for answers with
    # datagrams larger than max_message_size; the EndPoint drops them and
    # the request ended in a RequestTimeout with no hint. The EndPoint now
    # reports the drop (EndPoint.on_dropped) and the error says why.
    def answer(t, m):
        if m.code == GET:
            return [(0, Message(ACK, CONTENT, b"x" * 1400, m.token), t)]
    net, ep, c, peer = setup(answer)
    e = support.raises(RequestTimeout, c.request, "get", URI, timeout_ms=10000)
    text = str(e)
    assert "3 datagrams from 10.0.0.2:5683 dropped" in text, text
    assert "larger than max_message_size (1152 bytes)" in text, text
    assert e.pending.dropped == 3 and ep.dropped == 3, (e.pending.dropped, ep.dropped)
    # Unreachable (no ACK ever got through) says it too.
    net, ep, c, peer = setup(answer)
    e = support.raises(Unreachable, c.request, "get", URI, timeout_ms=None)
    assert "5 datagrams from 10.0.0.2:5683 dropped: larger than" in str(e), str(e)


def test_malformed_answers_are_named_in_the_timeout():
    def answer(t, m):
        if m.code == GET:
            raw = bytearray(Message(ACK, CONTENT, b"ok", m.token).encode(t))
            raw[0] = (raw[0] & 0xF0) | 9  # token length 9: reserved (RFC 7252 §3)
            return [(0, _Raw(bytes(raw)), t)]
    net, ep, c, peer = setup(answer)
    e = support.raises(RequestTimeout, c.request, "get", URI, timeout_ms=3000)
    assert "2 datagrams from 10.0.0.2:5683 dropped: malformed" in str(e), str(e)


class _Raw:
    """Stands in for a Message in a Peer's answer: these bytes as they are."""

    def __init__(self, data):
        self.data = data

    def encode(self, tid):
        return self.data


def test_drops_from_other_peers_are_not_counted():
    net, ep, c, peer = setup(silent)
    h = c.start("get", URI, timeout_ms=5000)
    net.inject(ROGUE, CLIENT, b"x" * 1400, 100)
    while not h.done:
        c.process(100)
    assert h.dropped == 0 and ep.dropped == 1, (h.dropped, ep.dropped)
    assert "dropped" not in str(h.error), str(h.error)


def test_an_application_on_dropped_is_kept():
    net = Net()
    ep = net.endpoint(CLIENT, rand=Rand())
    seen = []
    ep.on_dropped = lambda remote, reason: seen.append((remote, reason))
    c = Client(ep)
    assert ep.on_dropped is not c.on_dropped, ep.on_dropped
    net.inject(ROGUE, CLIENT, b"\x40", 0)  # 1 byte: malformed
    c.process(10)
    assert len(seen) == 1 and seen[0][0] == ROGUE and "malformed" in seen[0][1], seen


def test_durations_beyond_what_ticks_carry_are_capped():
    # A timeout of 10 days would overflow ticks_add on a board (half the
    # ticks period is 2**29 ms) or wrap into the past on CPython (the
    # request timed out at once); it is capped at LONGEST_MS.
    from coapy_micro.client import LONGEST_MS

    net, ep, c, peer = setup(silent)
    t0 = ep.clock()
    h = c.start("get", URI, confirmable=False, timeout_ms=10 * 86400000)
    for i in range(3):
        c.process(1000)
    assert not h.done, h.error
    assert ticks_diff(h.deadline, t0) == LONGEST_MS, ticks_diff(h.deadline, t0)
    c2 = Client(ep, transfer_timeout_ms=10 * 86400000)
    h = c2.start("get", URI, confirmable=False)
    for i in range(3):
        c2.process(1000)
    assert not h.done, h.error


class RefusingSocket(Socket):
    """A fake socket whose sendto fails with `err` (no route to the host)."""

    err = None

    def sendto(self, buf, addr):
        raise OSError(self.err)


def test_sendto_error_raises_unreachable_at_once():
    err = getattr(errno, "EHOSTUNREACH", None)
    if err is None:
        raise support.Skip("no errno.EHOSTUNREACH on this port")
    net = Net()

    def make(f, t, p):
        s = RefusingSocket(net)
        s.err = err
        return s

    ep = EndPoint(clock=net.clock, rand=Rand(), socket_factory=make,
                  poll_factory=lambda: Poller(net))
    ep.bind(CLIENT)
    c = Client(ep)
    e = support.raises(Unreachable, c.request, "get", URI)
    assert e.errno == err and net.now == 0, (e.errno, net.now)
    assert ep.in_flight == 0, ep.in_flight


def test_passing_sendto_error_is_retried():
    # ENOMEM (lwIP out of buffers) is not "unreachable": the EndPoint retransmits.
    net, ep, c, peer = setup(piggyback())
    net.link(CLIENT, SERVER, fail=[1])
    resp = c.request("get", URI)
    assert resp.payload == b"21.5" and net.now == 2000, (resp, net.now)


# -- the non-blocking form ----------------------------------------------------

def test_handles_with_callbacks_in_an_application_loop():
    def answer(t, m):
        if m.code != GET:
            return None
        if paths(m) == ["slow"]:
            return [(0, Message(ACK, 0), t), (800, Message(CON, CONTENT, b"S", m.token), 0x7100)]
        return [(50, Message(ACK, CONTENT, b"F", m.token), t)]
    net, ep, c, peer = setup(answer)
    finished = []

    def done(h):
        finished.append((net.now, h.response.payload))

    slow = c.start("get", "coap://10.0.0.2/slow", callback=done)
    fast = c.start("get", "coap://10.0.0.2/fast", callback=done)
    assert isinstance(slow, Pending) and not slow.done, slow
    assert len(c.pending) == 2, c.pending
    work = 0
    while c.pending:
        c.process(100)  # the application does other work between calls
        work += 1
        assert work < 100, work
    # NSTART=1: "fast" goes out when the empty ACK for "slow" came (at 0).
    assert finished == [(50, b"F"), (800, b"S")], finished
    assert slow.done and fast.done and slow.error is None, (slow, fast)
    assert slow.request.token != fast.request.token, (slow.request.token, fast.request.token)
    assert work >= 8, work  # process(100) returned regularly meanwhile


def test_application_drives_its_own_endpoint_and_calls_handle():
    # A node whose loop owns the EndPoint: it serves requests itself and
    # passes everything to c.handle(), which takes only its responses.
    net = Net()
    ep = net.endpoint(CLIENT, rand=Rand())
    s = net.endpoint(SERVER)
    c = Client(ep)
    h = c.start("get", "coap://10.0.0.2/x")
    s.send(Message(NON, GET, b"", b"srv", uri_path="node"), CLIENT)  # a request for the node
    served = []
    for _ in range(50):
        rx = ep.process(10)
        if rx is not None and not c.handle(rx):
            served.append(rx.message.code)
        srx = s.process(0)
        if srx is not None and srx.message.code == GET:
            srx.ack(Message(ACK, CONTENT, b"hi"))
        if h.done and served:
            break
    assert h.done and h.response.payload == b"hi", h
    assert served == [GET], served


def test_process_returns_what_the_client_does_not_take():
    net, ep, c, peer = setup(silent)
    net.inject(ROGUE, CLIENT, Message(NON, GET, b"", b"zz", uri_path="q").encode(5), 300)
    rx = c.process(1000)
    assert rx is not None and rx.message.token == b"zz", rx
    assert net.now == 300, net.now
    assert c.process(500) is None and net.now == 800, net.now


def test_on_unhandled_gets_requests_arriving_during_request():
    net, ep, c, peer = setup(separate(NON, 500))
    net.inject(ROGUE, CLIENT, Message(NON, GET, b"", b"zz", uri_path="q").encode(5), 200)
    seen = []
    c.on_unhandled = seen.append
    resp = c.request("get", URI)
    assert resp.payload == b"late", resp
    assert [rx.message.token for rx in seen] == [b"zz"], seen


def test_cancel_and_close():
    net, ep, c, peer = setup(silent)
    called = []
    h = c.start("get", URI, callback=called.append)
    support.raises(ValueError, h.result)  # not finished yet
    c.process(0)
    h.cancel()
    assert h.done and isinstance(h.error, CoapError) and called == [], (h.error, called)
    assert ep.in_flight == 0, ep.in_flight
    h2 = c.start("get", URI, callback=called.append)
    c.close()
    assert h2.done and c.pending == [] and called == [], (h2, called)


# -- requests -----------------------------------------------------------------

def test_tokens_differ_per_request():
    net, ep, c, peer = setup(piggyback())
    for _ in range(3):
        c.request("get", URI)
    handles = [c.start("get", URI) for _ in range(3)]
    while c.pending:
        c.process(100)
    tokens = [m.token for _, _, m in peer.got] + [h.request.token for h in handles]
    assert len(tokens) == 9, tokens
    distinct = []
    for t in tokens[:6]:
        assert t not in distinct, tokens
        distinct.append(t)


def test_method_payload_formats_and_options():
    net, ep, c, peer = setup(piggyback(b"", CHANGED))
    resp = c.request("POST", "coap://10.0.0.2/a/b?x=1&y=2", payload="{\"v\": 1}",
                     content_format="json", accept=60, options=(Option(14, 30),))
    assert resp.code == CHANGED, resp
    (t, rtid, req), = peer.got
    assert req.code == POST and req.payload == b"{\"v\": 1}", req
    got = [(o.number, o.value) for o in req.options]
    want = [(11, "a"), (11, "b"), (12, 50), (14, 30), (15, "x=1"), (15, "y=2"), (17, 60)]
    assert got == want, got
    c.request(PUT, URI, payload=b"\x00\x01", content_format=42)
    req = peer.got[1][2]
    assert (req.code, req.payload, req.get_uint(12)) == (PUT, b"\x00\x01", 42), req


def test_bad_methods_are_refused():
    net, ep, c, peer = setup(piggyback())
    for bad in ("2.05", "CONTENT", 0, 69, "brew", True):
        try:
            c.start(bad, URI)
        except ValueError:
            continue
        raise AssertionError("method %r accepted" % (bad,))
    assert ep.in_flight == 0 and peer.got == [], (ep.in_flight, peer.got)


def test_bad_uris_raise_uri_error():
    net, ep, c, peer = setup(piggyback())
    for bad in ("http://10.0.0.2/", "coap:/x", "10.0.0.2/x", "coap://10.0.0.2:99999/",
                "coaps://10.0.0.2/x"):
        e = support.raises(UriError, c.request, "get", bad)
        assert isinstance(e, ValueError), e
    assert peer.got == [], peer.got


def test_hostname_resolved_with_getaddrinfo():
    calls = []

    def gai(host, port):
        calls.append((host, port))
        return [(2, 2, 17, "", ("10.0.0.2", port))]

    net = Net()
    ep = net.endpoint(CLIENT, rand=Rand())
    peer = Peer(net, piggyback())
    c = Client(ep, getaddrinfo=gai)
    resp = c.request("get", "coap://Sensor.Example/t")
    assert resp.payload == b"21.5", resp
    assert calls == [("sensor.example", 5683)], calls
    req = peer.got[0][2]
    assert req.findOption(3).value == "sensor.example", req  # Uri-Host for a name


def counting_resolver():
    # (the hosts asked for, a getaddrinfo answering 10.0.0.2 for each)
    calls = []

    def gai(host, port):
        calls.append(host)
        return [(2, 2, 17, "", ("10.0.0.2", port))]

    return calls, gai


def test_ip_literal_uri_is_parsed_and_resolved_once():
    # Polling one URI: the last destination is remembered for an IP literal
    # (nothing could change), never for a host name (DNS may).
    calls, gai = counting_resolver()
    net = Net()
    ep = net.endpoint(CLIENT, rand=Rand())
    peer = Peer(net, piggyback())
    c = Client(ep, getaddrinfo=gai)
    c.request("get", URI, content_format=0, accept=40)
    c.request("get", URI)
    c.request("get", "coap://node.example/t")
    c.request("get", "coap://node.example/t")
    assert calls == ["10.0.0.2", "node.example", "node.example"], calls
    got = [[(o.number, o.value) for o in m.options] for _, _, m in peer.got[:2]]
    assert got == [[(11, "sensors"), (11, "temp"), (12, 0), (17, 40)],
                   [(11, "sensors"), (11, "temp")]], got  # no option left behind


def polled_in_turn(n):
    # A Client that polled n IP-literal URIs in turn, three rounds, each
    # URI resolved once: (the hosts asked for, getaddrinfo, EndPoint,
    # Client, the URIs).
    calls, gai = counting_resolver()
    net = Net()
    ep = net.endpoint(CLIENT, rand=Rand())
    Peer(net, piggyback())
    c = Client(ep, getaddrinfo=gai)
    uris = ["coap://10.0.0.2/r%d" % i for i in range(n)]
    for _ in range(3):
        for u in uris:
            assert c.request("get", u).code == CONTENT
    assert calls == ["10.0.0.2"] * n, (n, calls)
    return calls, gai, ep, c, uris


def test_several_ip_literal_uris_are_each_parsed_once():
    # A gateway polling a few resources in turn (or many tasks asking the
    # same few): each URI is parsed and resolved once, not once per request
    # after another URI came between; the table stays bounded.
    calls, _, _, c, uris = polled_in_turn(3)
    for i in range(100):
        c.request("get", "coap://10.0.0.2/many%d" % i)
    c.request("get", uris[0])  # pushed out by the hundred since: the table is bounded
    assert len(calls) == 104, len(calls)


def test_a_gateway_polling_twenty_nodes_resolves_each_once():
    # Twenty URIs in turn fit the default table (a table that was emptied
    # when full, or that lost its oldest, would miss on every request of
    # such a cycle); a smaller max_destinations still keeps the newest.
    calls, gai, ep, _, uris = polled_in_turn(20)
    small = Client(ep, getaddrinfo=gai, max_destinations=2)
    del calls[:]
    for u in uris[:5]:
        small.request("get", u)
        small.request("get", u)  # the newcomer stays: resolved once
    assert len(calls) == 5, calls


def test_resolution_failure_is_unreachable():
    def gai(host, port):
        raise OSError(-2)

    net = Net()
    ep = net.endpoint(CLIENT, rand=Rand())
    c = Client(ep, getaddrinfo=gai)
    e = support.raises(Unreachable, c.request, "get", "coap://nowhere.invalid/")
    assert e.errno == -2 and ep.in_flight == 0, (e.errno, ep.in_flight)


def test_end_points_made_per_address_family():
    # No EndPoint given: one per family, made on first use, closed by close().
    v6_server = ("fd00::2", 5683, 0, 0)
    net = Net()
    made = []

    def factory(family):
        ep = net.endpoint(CLIENT if family == 2 else ("fd00::1", 5683, 0, 0), rand=Rand())
        made.append(family)
        return ep

    def gai(host, port):
        if ":" in host:
            return [(10, 2, 17, "", (host, port, 0, 0))]
        return [(2, 2, 17, "", (host, port))]

    peer = Peer(net, piggyback(), (SERVER, v6_server))
    c = Client(end_point_factory=factory, getaddrinfo=gai)
    assert c.end_points == [], c.end_points
    assert c.request("get", "coap://[fd00::2]/a").remote == v6_server
    assert c.request("get", URI).remote == SERVER
    assert c.request("get", "coap://[fd00::2]/b").payload == b"21.5"
    assert made == [10, 2], made
    assert len(c.end_points) == 2, c.end_points
    c.close()
    assert c.end_points == [] and net.bound == [], net.bound


def test_multicast_request_is_sent_non():
    group = ("224.0.1.187", 5683)
    net = Net()
    ep = net.endpoint(CLIENT, rand=Rand())
    peer = Peer(net, piggyback(b"m"), (group,))
    c = Client(ep)
    resp = c.request("get", "coap://224.0.1.187/.well-known/core")
    assert resp.payload == b"m" and resp.remote == SERVER, resp
    assert peer.got[0][2].transaction_type == NON, peer.got  # RFC 7252 §8.1
    assert ep.in_flight == 0, ep.in_flight


def test_a_group_request_answered_in_blocks_is_read_by_unicast_from_the_member():
    # RFC 7959 §2.8: block 0 comes from one member (its unicast address);
    # the further blocks are asked of that member, not of the group (where
    # every member would answer each), and as CON (RFC 7252 §8.1's NON is
    # for the one request to many).
    group = ("224.0.1.187", 5683)
    whole = bytes(range(40))
    net = Net()
    ep = net.endpoint(CLIENT, rand=Rand())

    def answer(t, m):
        v = m.get_uint(23)
        num = 0 if v is None else v >> 4
        part = whole[num * 16:num * 16 + 16]
        more = num * 16 + 16 < len(whole)
        if m.transaction_type == CON:
            return [(0, Message(ACK, CONTENT, part, m.token, block2=(num, more, 0)), t)]
        return [(0, Message(NON, CONTENT, part, m.token, block2=(num, more, 0)), 0x5000 + t)]

    peer = Peer(net, answer, (group, SERVER))
    dsts = []
    send = net.send

    def hooked(src, dst, data):
        if src == CLIENT:
            dsts.append(dst)
        send(src, dst, data)

    net.send = hooked
    c = Client(ep)
    resp = c.request("get", "coap://224.0.1.187/big")
    assert resp.payload == whole and resp.remote == SERVER, resp
    kinds = [m.transaction_type for _, _, m in peer.got]
    assert dsts == [group, SERVER, SERVER], dsts
    assert kinds == [NON, CON, CON], kinds
    assert ep.in_flight == 0, ep.in_flight


# -- the calls the client's extensions use ---------------------------------------

def test_pending_resend_puts_a_new_request_on_the_same_handle():
    net, ep, c, peer = setup(piggyback(b"second"))
    h = c.start("get", URI, timeout_ms=5000)
    first = h.record
    net.now = 1000
    nxt = Message(CON, GET, b"", ep.new_token(), uri_path="other")
    h.resend(nxt)
    assert first.done and h.record is not first and h.request is nxt, (first.done, h.record)
    assert h.deadline == net.clock() + 5000, h.deadline  # a whole timeout again
    while not h.done:
        c.process(100)
    assert h.result().payload == b"second" and ep.in_flight == 0, h
    paths = [[o.value for o in m.findOptions(11)] for _, _, m in peer.got]
    assert paths[-1] == ["other"], paths


def test_pending_finish_ends_the_request_with_an_error_and_calls_back():
    net, ep, c, peer = setup(piggyback())
    called = []
    h = c.start("get", URI, callback=called.append)
    err = CoapError("given up by an extension")
    h.finish(error=err)
    assert h.done and h.error is err and err.pending is h and called == [h], (h, called)
    assert ep.in_flight == 0 and c.pending == [], (ep.in_flight, c.pending)
    support.raises(CoapError, h.result)


def test_a_client_hook_can_be_registered_by_the_application():
    # The application's own "block" hook is used in place of client_block.py.
    def answer(t, m):
        return [(0, Message(ACK, CONTENT, b"x" * 16, m.token, block2=(0, True, 0)), t)]

    net, ep, c, peer = setup(answer)

    class Follow:
        seen = []

        def follow(self, h, rx):  # asked about every response carrying Block2
            Follow.seen.append(rx.message.get_uint(23))
            return False  # not taken: the request ends with this response

    c.set_hook("block", Follow())
    h = c.start("get", URI)
    while not h.done:
        c.process(100)
    assert Follow.seen == [8] and h.result().payload == b"x" * 16, (Follow.seen, h)
