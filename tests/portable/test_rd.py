# Registering with a Resource Directory from the node (coapy_micro.rd) on
# the fake network: finding the registration resource (configured, asked
# for with rt=core.rd*, or through the All-CoAP-Nodes group), keeping the
# registration alive, registering again after 4.04, back-off, 5.03 with
# Max-Age, removal on close, simple registration, and what the node sends.
# Portable: CPython (pytest) and the MicroPython VM.
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
import support  # noqa: F401
from fakenet import Net
from rd_rig import RD, RD_URI, Rig
from coapy_micro.block import block_option, szx_of
from coapy_micro.client import Client, RequestTimeout
from coapy_micro.connection import Message
from coapy_micro.link import parse
from coapy_micro.options import Option
from coapy_micro.rd import BadAnswer, Refused, Registrar
from coapy_micro.server import Resource, Server

NODE = ("10.0.0.2", 5683)


def _events(reg):
    got = []
    reg.on_event = lambda r, e, d: got.append((e, d))
    return got


def _posts(rig, src=NODE, dst=RD):
    # (code, Uri-Path, Uri-Query) of each request the node sent the RD
    out = []
    for t, data in rig.net.sent(src, dst):
        m = Message.decode(data)[1]
        if 1 <= m.code <= 31:
            out.append((m.code, "/".join(o.value for o in m.findOptions(11)),
                        [o.value for o in m.findOptions(15)]))
    return out


def test_registers_at_a_configured_registration_resource():
    rig = Rig()
    srv, reg = rig.node(NODE, ep="node-1", rd=RD_URI + "/rd", lt_s=120, d="lab",
                        attrs=[("et", "sensor")])
    got = _events(reg)
    rig.run(1000)
    assert reg.registered and reg.state == "registered", reg
    assert reg.location.startswith("coap://10.0.0.1/rd/"), reg.location
    assert got == [("registered", reg.location)], got
    assert _posts(rig) == [(2, "rd", ["ep=node-1", "d=lab", "lt=120", "et=sensor"])]
    (r,) = rig.rd.registrations()
    # The RD saw the node's own port (the Server's EndPoint), not another.
    assert r.base == "coap://10.0.0.2:5683" and r.d == "lab", r
    assert [link.target for link in r.links] == ["/sensors/temp"], r.links


def test_finds_the_registration_resource_with_rt_core_rd():
    rig = Rig(path="directory/reg")
    srv, reg = rig.node(NODE, ep="n", rd=RD_URI)
    got = _events(reg)
    rig.run(1000)
    assert got[0] == ("discovered", "coap://10.0.0.1/directory/reg"), got
    assert reg.registered, reg
    assert _posts(rig)[0] == (1, ".well-known/core", ["rt=core.rd*"]), _posts(rig)
    assert _posts(rig)[1][:2] == (2, "directory/reg"), _posts(rig)


def test_finds_the_rd_through_the_all_coap_nodes_group():
    rig = Rig()
    group = rig.net.socket(("224.0.1.187", 5683))
    rig.gw_ep.register(group)
    rig.gw.leisure_ms = 200
    srv, reg = rig.node(NODE, ep="n")  # no rd: ask the group
    got = _events(reg)
    rig.run(2000)
    assert got[0] == ("discovered", "coap://10.0.0.1:5683/rd"), got
    assert reg.registered, (reg, got)
    sent = rig.net.sent(NODE, ("224.0.1.187", 5683))
    assert len(sent) == 1 and Message.decode(sent[0][1])[1].transaction_type == Message.NON


def test_refreshes_before_the_lifetime_runs_out():
    rig = Rig()
    srv, reg = rig.node(NODE, ep="n", rd=RD_URI + "/rd", lt_s=60)
    rig.run(1000)
    loc = reg.location
    rig.run(200000)  # more than three lifetimes
    assert reg.registered and reg.location == loc, reg
    assert reg.updates == 4 and reg.registrations == 1, (reg.updates, reg.registrations)
    updates = [p for p in _posts(rig) if p[1] != "rd"]
    assert len(updates) == 4 and updates[0][2] == ["lt=60"], updates
    (r,) = rig.rd.registrations()
    assert r.left_ms > 10000, r.left_ms  # never ran out


class _Resolver:
    # getaddrinfo for the fake network: 'rd.example' is the RD; `fail`
    # makes every lookup of it fail as a name that does not resolve.
    # `calls`: the lookups of the name (an IP literal's, which the client
    # makes once per URI and which asks no name server, are not counted).
    def __init__(self):
        self.calls = []
        self.fail = False

    def __call__(self, host, port):
        if host != "rd.example":
            return [(2, 2, 17, "", (host, port))]
        self.calls.append((host, port))
        if self.fail:
            raise OSError(-2, "Name or service not known")
        return [(2, 2, 17, "", (RD[0], port))]


def test_an_rd_host_name_is_resolved_once_not_at_every_request():
    # Each request of the registrar looked the RD's name up (getaddrinfo,
    # which blocks a Pico W's loop for seconds): every update, every retry.
    # Now once, and again only after a request that had no answer; with
    # the registrar's own client and with one given.
    for given in (True, False):
        _resolved_once(given)


def _resolved_once(given):
    rig = Rig(path="directory/reg")
    gai = _Resolver()
    if given:
        ep = rig.net.endpoint(NODE)
        srv = Server(ep)
        srv.add("sensors/temp", Resource(get=lambda r: (69, b"1")))
        reg = Registrar(srv, "n", rd="coap://rd.example", lt_s=60,
                        client=Client(ep, getaddrinfo=gai))
        rig.nodes.append([ep, srv, reg])
    else:
        srv, reg = rig.node(NODE, ep="n", rd="coap://rd.example", lt_s=60, getaddrinfo=gai)
    rig.run(200000)  # discovery, registration, 4 updates
    assert reg.registered and reg.updates == 4 and reg.registrations == 1, reg
    assert gai.calls == [("rd.example", 5683)], gai.calls
    assert reg.location.startswith("coap://rd.example/directory/reg/"), reg.location
    # Every request still says which host it is for (RFC 7252 §6.4).
    hosts = [Message.decode(d)[1].findOption(3) for t, d in rig.net.sent(NODE, RD)]
    assert len(hosts) == 6 and all(o is not None and o.value == "rd.example" for o in hosts), hosts
    # The RD stops answering: each failed update resolves the name anew, once
    # per attempt (after the back-off), and none in between.
    rig.net.link(NODE, RD, loss=1.0)
    rig.run(100000)
    assert reg.failures >= 2 and len(gai.calls) == 1 + reg.failures, (reg.failures, gai.calls)
    rig.net.link(NODE, RD)
    rig.run(60000)
    assert reg.registered, reg


def test_an_rd_host_name_that_does_not_resolve_is_retried_with_back_off():
    rig = Rig()
    gai = _Resolver()
    gai.fail = True
    srv, reg = rig.node(NODE, ep="n", rd="coap://rd.example/rd", retry_ms=2000,
                        max_retry_ms=16000, getaddrinfo=gai)
    rig.run(60000)
    from coapy_micro.client import Unreachable

    assert isinstance(reg.error, Unreachable) and "cannot resolve 'rd.example'" in reg.last_error, \
        reg.last_error
    # Back-off waits of 1-2, 2-4, 4-8, 8-16 s...: a handful in a minute.
    assert 4 <= len(gai.calls) <= 10 and reg.failures == len(gai.calls), (gai.calls, reg.failures)
    assert rig.net.sent(NODE, RD) == [], "nothing sent"
    gai.fail = False
    rig.run(20000)
    assert reg.registered and reg.error is None, reg


def test_registers_afresh_after_a_404():
    rig = Rig()
    srv, reg = rig.node(NODE, ep="n", rd=RD_URI + "/rd", lt_s=20)
    got = _events(reg)
    rig.run(1000)
    first = reg.location
    rig.rd.remove(rig.rd.find("n"))  # the RD forgot us (say it restarted)
    rig.run(15000)  # the update at 15 s gets 4.04
    assert ("lost", "update answered 4.04") in got, got
    assert reg.registered and reg.registrations == 2, (reg, got)
    assert reg.location != first and rig.rd.find("n") is not None


def test_backs_off_while_the_rd_does_not_answer_and_comes_back():
    rig = Rig()
    rig.net.link(NODE, RD, loss=1.0)
    srv, reg = rig.node(NODE, ep="n", rd=RD_URI + "/rd", timeout_ms=3000, retry_ms=2000,
                        max_retry_ms=16000)
    rig.run(120000)
    assert not reg.registered and reg.failures >= 4, (reg, reg.failures)
    sent = [t for t, d in rig.net.sent(NODE, RD) if Message.decode(d)[1].code == 2]
    # One transmission per attempt fits in 3 s with the default ACK timeout
    # of 2-3 s; the gaps between attempts grow up to max_retry_ms (8-16 s).
    starts = [t for i, t in enumerate(sent) if i == 0 or t - sent[i - 1] > 3500]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert len(gaps) >= 5 and gaps[-1] >= 8000 + 3000 and max(gaps) <= 16000 + 3500, gaps
    rig.net.link(NODE, RD)  # the RD is reachable again
    rig.run(25000)
    assert reg.registered, reg


def test_a_503_is_retried_after_its_max_age_clamped():
    rig = Rig(max_registrations=0, busy_s=7)
    srv, reg = rig.node(NODE, ep="n", rd=RD_URI + "/rd", max_retry_ms=60000)
    rig.run(1000)
    assert not reg.registered and "5.03" in reg.last_error, reg.last_error
    rig.run(5500)
    assert len(_posts(rig)) == 1, _posts(rig)
    rig.run(1000)
    assert len(_posts(rig)) == 2, _posts(rig)  # 7 s (Max-Age) after the first
    # A Max-Age beyond max_retry_ms waits max_retry_ms only.
    rig.rd.busy_s = 0xFFFFFFFF
    rig.run(10000)
    n = len(_posts(rig))
    rig.run(61000)
    assert len(_posts(rig)) == n + 1, (n, _posts(rig))


def test_a_503_with_max_age_0_waits_the_back_off_and_doubles_it():
    # RFC 7252 §5.9.3.4: Max-Age is when to ask again at the earliest, not
    # a call to ask at once. An RD answering every registration 5.03 with
    # Max-Age 0 drew a registration per loop round from the node (9,500 in
    # 3 s on a real socket); the wait is now at least the back-off, which
    # doubles on each 5.03 up to max_retry_ms.
    rig = Rig(max_registrations=0, busy_s=0)
    srv, reg = rig.node(NODE, ep="n", rd=RD_URI + "/rd", retry_ms=2000, max_retry_ms=16000)
    rig.run(60000)
    posts = _posts(rig)
    # Back-off waits of 1-2, 2-4, 4-8, 8-16 s, then 8-16 s each: 6 to 11
    # registrations in 60 s.
    assert 6 <= len(posts) <= 11, len(posts)
    assert not reg.registered and reg.failures == len(posts), (reg, reg.failures)
    assert isinstance(reg.error, Refused) and reg.error.code == 163, reg.error
    assert "5.03" in reg.last_error, reg.last_error
    sent = [t for t, d in rig.net.sent(NODE, RD) if Message.decode(d)[1].code == 2]
    gaps = [b - a for a, b in zip(sent, sent[1:])]
    # Each wait is in [b/2, b] for a back-off b that doubles: no gap is
    # shorter than the one before (100 ms: the rig's loop step), until
    # max_retry_ms.
    for a, b in zip(gaps, gaps[1:]):
        assert b >= a - 100 or a >= 8000, gaps
    assert gaps[0] >= 1000 and gaps[-1] >= 8000 and max(gaps) <= 16000 + 100, gaps
    # A success resets the back-off: the RD has room again.
    rig.rd.max_registrations = 16
    rig.run(17000)
    assert reg.registered and reg.error is None and reg.last_error is None, reg


def test_close_removes_the_registration():
    rig = Rig()
    srv, reg = rig.node(NODE, ep="n", rd=RD_URI + "/rd")
    got = _events(reg)
    rig.run(1000)
    loc = reg.location
    reg.close(0)  # send the removal; the loop finishes it
    rig.run(1000)
    assert reg.state == "closed" and got[-2:] == [("removed", loc), ("closed", None)], got
    assert rig.rd.registrations() == [] and ("remove", "n") in rig.events
    assert _posts(rig)[-1][0] == 4, _posts(rig)  # DELETE


def test_simple_registration_answers_the_rds_get_meanwhile():
    rig = Rig()
    srv, reg = rig.node(NODE, (("sensors/temp", True), ("led", False)), ep="simple",
                        rd=RD_URI, simple=True, lt_s=300)
    got = _events(reg)
    rig.run(2000)
    assert reg.registered and got == [("registered", RD_URI)], got
    assert _posts(rig) == [(2, ".well-known/rd", ["ep=simple", "lt=300"])], _posts(rig)
    r = rig.rd.find("simple")
    assert [link.target for link in r.links] == ["/sensors/temp", "/led"], r.links
    rig.run(250000)  # refreshed by repeating the simple registration
    assert reg.registrations >= 2 and rig.rd.find("simple") is not None, reg.registrations


def _fake_rd(reply):
    # A node and a bare socket standing in for an RD that answers every
    # request with reply(message) -> Message.
    net = Net(3)
    ep = net.endpoint(NODE)
    srv = Server(ep)
    rd_ep = net.endpoint(RD)
    reg = Registrar(srv, "n", rd=RD_URI + "/rd")
    got = _events(reg)

    def on_rx(e, rx):
        if e is rd_ep:
            rx.ack(reply(rx.message))
        elif not reg.handle(rx):
            srv.handle(rx)

    for _ in range(20):
        net.run(100, on_rx)
        reg.tick()
    return reg, got


def _blocks_rd(size, delay_ms, ms, client=None, **reg_kw):
    # A node asking a host that answers every discovery in Block2 blocks of
    # `size` bytes (RFC 7959) with M always set, a body without end, each
    # answer on its way for delay_ms: (registrar, [(ms, event, detail)],
    # [ms of each discovery request it received]) after `ms` of it.
    net = Net(5)
    ep = net.endpoint(NODE)
    srv = Server(ep)
    rd_ep = net.endpoint(RD)
    net.link(RD, NODE, delay=delay_ms)
    if client is not None:
        client = Client(ep, **client)
    reg = Registrar(srv, "n", rd=RD_URI, client=client, **reg_kw)
    got = []
    reg.on_event = lambda r, e, d: got.append((net.now, e, d))
    asked = []

    def on_rx(e, rx):
        if e is not rd_ep:
            if not reg.handle(rx):
                srv.handle(rx)
            return
        m = rx.message
        asked.append(net.now)
        b = m.get_uint(23)
        r = Message(Message.ACK, 69, b"<" + b"r" * (size - 2) + b">")
        r.addOption(Option(12, 40))
        r.addOption(block_option(23, 0 if b is None else b >> 4, True, szx_of(size)))
        rx.ack(r)

    end = net.now + ms
    while net.now < end:
        net.run(100, on_rx)
        reg.tick()
    return reg, got, asked


def test_discovery_in_blocks_that_drip_ends_within_transfer_timeout_ms():
    # Each block comes within the exchange's timeout_ms (9 s of 20 s), but
    # never the last: the discovery as a whole ends at transfer_timeout_ms
    # (a RequestTimeout saying so) and is retried after the back-off. It
    # held the node's registrar for 256 blocks of 9 s (38 minutes) before.
    reg, got, asked = _blocks_rd(16, 9000, 200000)
    errors = [(t, d) for t, e, d in got if e == "error"]
    assert errors and 60000 <= errors[0][0] <= 61000, errors
    assert isinstance(reg.error, RequestTimeout) and reg.failures >= 2, (reg.error, reg.failures)
    assert "RD discovery" in reg.last_error and "transfer_timeout_ms (60000 ms)" in reg.last_error, \
        reg.last_error
    first = [t for t in asked if t <= errors[0][0]]
    assert 5 <= len(first) <= 8, first  # a block per 9 s, and no more
    later = [t for t in asked if t > errors[0][0]]
    assert later and later[0] - errors[0][0] >= 1000, (later, errors)  # the back-off
    assert not reg.registered and reg.state in ("idle", "discovering"), reg


def test_discovery_answered_with_links_without_end_stops_at_max_body():
    # An answer in blocks larger than max_body (default 1024 bytes, a board's
    # share for it) ends with BodyTooLarge before the block that would pass
    # it is kept, with the registrar's own client or one given (which would
    # have read 64 KB), and is retried with back-off.
    from coapy_micro.client import BodyTooLarge

    for client, want in ((None, 1024), ({}, 1024), ({}, 64)):
        kw = {} if want == 1024 else {"max_body": want}
        reg, got, asked = _blocks_rd(64, 0, 3000, client, retry_ms=8000, **kw)
        assert isinstance(reg.error, BodyTooLarge), (client, want, reg.error)
        assert reg.error.max_body == want and "RD discovery" in reg.last_error, reg.last_error
        assert len(asked) == want // 64 + 1 and reg.failures == 1, (client, want, len(asked))


def test_a_2_01_without_location_path_or_with_location_query_is_an_error():
    def no_path(m):
        return Message(Message.ACK, 65)

    reg, got = _fake_rd(no_path)
    assert not reg.registered and "no Location-Path" in reg.last_error, reg.last_error

    def with_query(m):
        r = Message(Message.ACK, 65)
        r.addOption(Option(8, "rd"))
        r.addOption(Option(20, "x=1"))
        return r

    reg, got = _fake_rd(with_query)
    assert not reg.registered and "Location-Query" in reg.last_error, reg.last_error
    assert ("error", reg.last_error) in got


def test_a_dot_or_dot_dot_location_path_is_refused():
    # RFC 7252 §5.10.7: a Location-Path is never '.' or '..'. Taken, the
    # node sent the segments back as Uri-Path in its updates ('/../../etc/'
    # relative to the RD's root). The 2.01 is a failed registration: a
    # BadAnswer, retried with back-off, never used for an update.
    for segs in ([".."], ["rd", "."], ["..", "..", "etc", ""]):
        asked = []

        def dotted(m):
            asked.append([o.value for o in m.findOptions(11)])
            r = Message(Message.ACK, 65)
            for seg in segs:
                r.addOption(Option(8, seg))
            return r

        reg, got = _fake_rd(dotted)
        assert not reg.registered and reg.location is None, (segs, reg, reg.location)
        assert isinstance(reg.error, BadAnswer), (segs, reg.error)
        dot = [seg for seg in segs if seg == "." or seg == ".."][0]
        assert "RFC 7252 §5.10.7" in reg.last_error and repr(dot) in reg.last_error, \
            reg.last_error
        assert ("error", reg.last_error) in got, got
        assert reg.failures == len(asked), (reg.failures, asked)
        # 2 s of the rig: the first attempt and one retry after the 1-2 s
        # back-off, both registrations to /rd, no update.
        assert 1 <= len(asked) <= 2 and asked == [["rd"]] * len(asked), asked
    # An empty segment is allowed (a trailing '/'): that registration stands.

    def trailing(m):
        r = Message(Message.ACK, 65)
        r.addOption(Option(8, "rd"))
        r.addOption(Option(8, ""))
        return r

    reg, got = _fake_rd(trailing)
    assert reg.registered and reg.location == RD_URI + "/rd/", reg.location


def test_payload_describes_the_resource_tree():
    net = Net(1)
    srv = Server(net.endpoint(NODE))
    srv.add("sensors/temp", Resource(get=lambda r: (69, b""), rt="temperature-c", ct=0,
                                     obs=True, title="Temp"))
    srv.add("a b/ü", Resource(get=lambda r: (69, b"")))
    text = srv.link_format()
    assert text == ('</sensors/temp>;rt="temperature-c";ct=0;title="Temp";obs,'
                    '</a%20b/%C3%BC>'), text
    assert [link.target for link in parse(text)] == ["/sensors/temp", "/a%20b/%C3%BC"]


def test_bad_arguments_are_refused():
    net = Net(1)
    srv = Server(net.endpoint(NODE))
    support.raises(ValueError, Registrar, srv, "")
    support.raises(ValueError, Registrar, srv, "x" * 64)
    support.raises(ValueError, Registrar, srv, "n", lt_s=0)
    support.raises(ValueError, Registrar, srv, "n", rd="http://x/rd")
