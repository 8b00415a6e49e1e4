# The Resource Directory (RFC 9176) on the fake network: discovery,
# registration, update, removal, expiry, lookups with filters and paging,
# error codes for bad requests, the table's bounds, simple registration and
# restore(). Portable: CPython (pytest) and the MicroPython VM.
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
import support  # noqa: F401
from rd_rig import RD, RD_URI, Rig, location
from coapy_micro.block import block_option
from coapy_micro.client import Client
from coapy_micro.connection import Message
from coapy_micro.link import parse
from coapy_micro.options import Option
from coapy_micro.rd import base_uri
from coapy_micro.rd_server import resolve

CREATED, DELETED, CHANGED, CONTENT = 65, 66, 68, 69
BAD_REQUEST, NOT_FOUND, METHOD_NOT_ALLOWED, TOO_LARGE = 128, 132, 133, 141
UNSUPPORTED_CF, BAD_GATEWAY, UNAVAILABLE, GATEWAY_TIMEOUT = 143, 162, 163, 164


def _targets(text):
    return [link.target for link in parse(text)]


def test_the_rd_is_found_with_rt_core_rd_star():
    rig = Rig()
    r = rig.request("get", "/.well-known/core", query=["rt=core.rd*"])
    links = parse(r.payload)
    got = [(link.target, link.get("rt"), link.get("ct")) for link in links]
    assert got == [("/rd", "core.rd", "40"), ("/rd-lookup/ep", "core.rd-lookup-ep", "40"),
                   ("/rd-lookup/res", "core.rd-lookup-res", "40")], got


def test_registration_is_created_and_found_by_endpoint_lookup():
    rig = Rig()
    src = rig.net.endpoint(("10.0.0.5", 40000))
    r = rig.register("node1", b'</sensors/temp>;rt="temperature-c";obs,</led>', ["lt=300"], src)
    assert r.code == CREATED, r
    loc = location(r)
    assert loc.startswith("/rd/") and len(loc) == 12, loc
    assert rig.events == [("register", "node1")], rig.events
    code, text = rig.lookup("ep")
    assert code == CONTENT
    (link,) = parse(text)
    assert link.target == loc, (link, loc)
    assert link.get("ep") == "node1" and link.get("lt") == "300", link
    assert link.get("base") == "coap://10.0.0.5:40000", link  # the source address (§5)
    assert link.get("rt") == "core.rd-ep", link
    code, text = rig.lookup("res")
    assert _targets(text) == ["coap://10.0.0.5:40000/sensors/temp",
                              "coap://10.0.0.5:40000/led"], text
    # The registration resource reads back what was registered.
    r = rig.request("get", loc)
    assert r.code == CONTENT and r.content_format == 40, r
    assert r.payload == b'</sensors/temp>;rt="temperature-c";obs,</led>', r.payload


def test_default_lifetime_is_90000_seconds():
    rig = Rig()
    assert rig.register("n").code == CREATED
    (reg,) = rig.rd.registrations()
    assert reg.lt_s == 90000 and 89990000 < reg.left_ms <= 90000000, (reg.lt_s, reg.left_ms)


def test_reregistration_replaces_the_registration_in_place():
    rig = Rig()
    src = rig.net.endpoint(("10.0.0.5", 40000))
    first = location(rig.register("node1", b"</a>", src=src))
    again = rig.register("node1", b"</b>;rt=x", src=src)
    assert again.code == CREATED and location(again) == first, (again, first)
    assert len(rig.rd.registrations()) == 1
    code, text = rig.lookup("res")
    assert _targets(text) == ["coap://10.0.0.5:40000/b"], text
    # Another sector is another endpoint (§5: ep is unique within a sector).
    other = rig.register("node1", b"</c>", ["d=floor2"], src=src)
    assert other.code == CREATED and location(other) != first
    code, text = rig.lookup("ep", "d=floor2")
    (link,) = parse(text)
    assert link.get("d") == "floor2" and link.target == location(other), text


def test_explicit_base_and_relative_targets_and_anchors_are_resolved():
    rig = Rig()
    links = (b'<temp>;rt=t,</a/b>;anchor="/a",<coap://[fd00::7]:1234/x>,'
             b'<../up>,</q?x=1>')
    r = rig.register("n", links, ["base=coap://[fd00::1]:61616/dev/"])
    assert r.code == CREATED, r
    code, text = rig.lookup("res")
    got = [(link.target, link.get("anchor")) for link in parse(text)]
    assert got == [("coap://[fd00::1]:61616/dev/temp", None),
                   ("coap://[fd00::1]:61616/a/b", "coap://[fd00::1]:61616/a"),
                   ("coap://[fd00::7]:1234/x", None),
                   ("coap://[fd00::1]:61616/up", None),
                   ("coap://[fd00::1]:61616/q?x=1", None)], got


def test_update_refreshes_lifetime_and_can_change_lt_base_and_attributes():
    rig = Rig()
    src = rig.net.endpoint(("10.0.0.5", 40000))
    loc = location(rig.register("n", b"</t>", ["lt=100", "et=sensor"], src))
    rig.run(60000)
    (reg,) = rig.rd.registrations()
    assert 39000 <= reg.left_ms <= 40000, reg.left_ms
    r = rig.request("post", loc, query=["lt=500", "et=actuator", "x=1"], src=src)
    assert r.code == CHANGED, r
    assert reg.lt_s == 500 and reg.left_ms > 499000, (reg.lt_s, reg.left_ms)
    assert reg.attrs == [("et", "actuator"), ("x", "1")], reg.attrs
    assert rig.events[-1] == ("update", "n"), rig.events
    # Without base, an update from a new address moves the base (§5.3.1):
    # the same host on another port (another host's is refused 4.03: the
    # first come, first remembered tests).
    moved = rig.net.endpoint(("10.0.0.5", 40001))
    assert rig.request("post", loc, src=moved).code == CHANGED
    assert reg.base == "coap://10.0.0.5:40001", reg.base
    # An explicit base stays until the registrant names another.
    assert rig.request("post", loc, query=["base=coap://h.example"], src=src).code == CHANGED
    assert rig.request("post", loc, src=moved).code == CHANGED
    assert reg.base == "coap://h.example", reg.base


def test_bad_updates_are_answered_400_or_404():
    rig = Rig()
    loc = location(rig.register("n", src=rig.cep))  # the host the requests come from
    for query, payload in ((["ep=other"], b""), (["d=x"], b""), (["lt=0"], b""),
                           ([], b"</x>")):
        r = rig.request("post", loc, payload, query, 40 if payload else None)
        assert r.code == BAD_REQUEST and r.payload, (query, payload, r, r.payload)
    assert rig.request("post", "/rd/00000000").code == NOT_FOUND
    assert rig.request("post", loc + "/more").code == NOT_FOUND
    assert rig.request("put", loc, b"</x>", content_format=40).code == METHOD_NOT_ALLOWED
    assert rig.request("get", "/rd").code == METHOD_NOT_ALLOWED


def test_removal_deletes_and_later_requests_get_404():
    rig = Rig()
    loc = location(rig.register("n", src=rig.cep))  # the host the requests come from
    r = rig.request("delete", loc)
    assert r.code == DELETED, r
    assert rig.events[-1] == ("remove", "n"), rig.events
    assert rig.rd.registrations() == []
    assert rig.request("post", loc).code == NOT_FOUND
    assert rig.request("delete", loc).code == NOT_FOUND
    assert rig.request("get", loc).code == NOT_FOUND


def test_registrations_expire_when_their_lifetime_runs_out():
    rig = Rig()
    rig.register("short", query=["lt=2"])
    rig.register("long", query=["lt=4294967295"])  # the largest lt (§5)
    rig.run(1500)
    assert [r.ep for r in rig.rd.registrations()] == ["short", "long"]
    rig.run(1000)
    assert [r.ep for r in rig.rd.registrations()] == ["long"]
    assert ("expire", "short") in rig.events, rig.events
    (reg,) = rig.rd.registrations()
    # 2**32 - 1 seconds is counted down without ticks arithmetic on it.
    assert reg.left_ms > 4294967295 * 1000 - 10000, reg.left_ms
    code, text = rig.lookup("ep", "ep=short")
    assert text == "", text
    assert rig.rd.tick() == 1 << 28, rig.rd.tick()  # next wake-up: clamped


def test_bad_registrations_are_answered_400_with_a_reason():
    rig = Rig()
    cases = [
        (None, []),  # no ep (§5)
        ("x" * 64, []),  # 64 bytes
        ("a\x01b", []),  # a control character
        ("a\x85b", []),  # 127-159 are excluded too
        ("n", ["lt=0"]), ("n", ["lt=4294967296"]), ("n", ["lt=ten"]), ("n", ["lt=-5"]),
        ("n", ["base=/relative"]), ("n", ["base=coap://h/?q=1"]), ("n", ["base=coap://h/#f"]),
        ("n", ["ep=again"]), ("n", ["lt=5", "lt=6"]),
        ("n", ["rt=core.rd"]), ("n", ["page=1"]), ("n", ["href=/x"]), ("n", ["anchor=/x"]),
        ("n", ["bad name=1"]),
    ]
    for ep, query in cases:
        r = rig.register(ep, query=query)
        assert r.code == BAD_REQUEST and r.payload, (ep, query, r)
    r = rig.register("n", b"</unterminated")
    assert r.code == BAD_REQUEST and b"the payload" in r.payload, r.payload
    r = rig.register("n", b"</x>", cf=0)  # not link-format
    assert r.code == UNSUPPORTED_CF, r
    assert rig.rd.registrations() == [] and rig.events == [], rig.events
    assert rig.rd.rejected == len(cases) + 1, rig.rd.rejected


def test_payload_and_links_beyond_the_limits_get_413_with_size1():
    rig = Rig(max_payload=64, max_links=3)
    r = rig.register("n", b"</" + b"a" * 70 + b">")
    assert r.code == TOO_LARGE and r.message.get_uint(60) == 64, r
    r = rig.register("n", b"</a>,</b>,</c>,</d>")
    assert r.code == TOO_LARGE, r
    assert rig.register("n", b"</a>,</b>,</c>").code == CREATED


def test_too_many_endpoint_attributes_are_refused():
    rig = Rig(max_attrs=2)
    assert rig.register("n", query=["a=1", "b=2", "c=3"]).code == BAD_REQUEST
    loc = location(rig.register("n", query=["a=1", "b=2"], src=rig.cep))
    assert rig.request("post", loc, query=["c=3"]).code == BAD_REQUEST
    assert rig.request("post", loc, query=["b=3"]).code == CHANGED


def test_a_full_table_answers_503_with_max_age():
    rig = Rig(max_registrations=3, max_per_source=10, busy_s=17)
    src = rig.cep  # one host (the requests' own)
    for i in range(3):
        assert rig.register("n%d" % i, src=src).code == CREATED
    r = rig.register("n9", src=src)
    assert r.code == UNAVAILABLE and r.message.get_uint(14) == 17, r
    # A registered endpoint still re-registers, and room comes back.
    assert rig.register("n1", src=src).code == CREATED
    loc = location(rig.register("n2", src=src))
    assert rig.request("delete", loc).code == DELETED
    assert rig.register("n9").code == CREATED


def test_one_registrant_cannot_take_the_table_from_the_others():
    rig = Rig(max_registrations=8, max_per_source=3)
    hog = rig.net.endpoint(("10.0.0.66", 1000))
    hog2 = rig.net.endpoint(("10.0.0.66", 1001))  # same host, other port
    for i in range(3):
        assert rig.register("hog%d" % i, src=hog if i % 2 else hog2).code == CREATED
    for i in range(3, 6):
        r = rig.register("hog%d" % i, src=hog)
        assert r.code == UNAVAILABLE and r.message.get_uint(14) is not None, r
    # Everyone else still gets in.
    for i in range(5):
        assert rig.register("good%d" % i).code == CREATED
    assert len(rig.rd.registrations()) == 8


def _populate(rig):
    # Three endpoints with a few links each; lookups run against these.
    a = rig.net.endpoint(("10.0.0.11", 5683))
    b = rig.net.endpoint(("10.0.0.12", 5683))
    c = rig.net.endpoint(("10.0.0.13", 5683))
    rig.register("kitchen", b'</temp>;rt="temperature-c";obs,</hum>;rt=humidity;obs,</led>;if=actuator',
                 ["et=sensor"], a)
    rig.register("hall", b'</temp>;rt="temperature-c temperature-f";ct="0 110",</door>;rt=contact',
                 ["et=sensor", "d=floor1"], b)
    rig.register("garage", b"</light>;if=actuator;rt=light", ["et=actuator"], c)


def test_resource_lookup_filters_on_link_and_endpoint_attributes():
    rig = Rig()
    _populate(rig)
    code, text = rig.lookup("res", "rt=temperature-c")
    assert _targets(text) == ["coap://10.0.0.11:5683/temp", "coap://10.0.0.12:5683/temp"], text
    code, text = rig.lookup("res", "rt=temperature-f")  # one item of a list (RFC 6690 §4.1)
    assert _targets(text) == ["coap://10.0.0.12:5683/temp"], text
    code, text = rig.lookup("res", "rt=temp*")
    assert len(parse(text)) == 2, text
    code, text = rig.lookup("res", "ep=kitchen")
    assert _targets(text) == ["coap://10.0.0.11:5683/temp", "coap://10.0.0.11:5683/hum",
                              "coap://10.0.0.11:5683/led"], text
    code, text = rig.lookup("res", "et=sensor", "if=actuator")
    assert _targets(text) == ["coap://10.0.0.11:5683/led"], text
    code, text = rig.lookup("res", "obs")
    assert len(parse(text)) == 2, text
    code, text = rig.lookup("res", "ct=110")
    assert _targets(text) == ["coap://10.0.0.12:5683/temp"], text
    code, text = rig.lookup("res", "href=/temp")
    assert len(parse(text)) == 2, text
    code, text = rig.lookup("res", "href=coap://10.0.0.13:5683/*")
    assert _targets(text) == ["coap://10.0.0.13:5683/light"], text
    code, text = rig.lookup("res", "d=floor1")
    assert _targets(text) == ["coap://10.0.0.12:5683/temp", "coap://10.0.0.12:5683/door"], text
    code, text = rig.lookup("res", "rt=nothing")
    assert code == CONTENT and text == "", text  # no match: empty 2.05 (§6)


def test_endpoint_lookup_matches_endpoints_by_their_links_too():
    rig = Rig()
    _populate(rig)

    def eps(*q):
        code, text = rig.lookup("ep", *q)
        assert code == CONTENT, code
        return [link.get("ep") for link in parse(text)]

    assert eps() == ["kitchen", "hall", "garage"]
    assert eps("et=sensor") == ["kitchen", "hall"]
    assert eps("rt=light") == ["garage"]  # an endpoint with a matching link (§6.2)
    assert eps("if=actuator") == ["kitchen", "garage"]
    assert eps("ep=ha*") == ["hall"]
    assert eps("et=sensor", "rt=contact") == ["hall"]
    assert eps("href=/door") == ["hall"]
    assert eps("base=coap://10.0.0.13*") == ["garage"]
    assert eps("d=floor1") == ["hall"]


def test_paging_with_page_and_count():
    rig = Rig()
    _populate(rig)
    every = _targets(rig.lookup("res")[1])
    assert len(every) == 6, every
    assert _targets(rig.lookup("res", "count=2")[1]) == every[:2]
    assert _targets(rig.lookup("res", "page=0", "count=4")[1]) == every[:4]
    assert _targets(rig.lookup("res", "page=1", "count=4")[1]) == every[4:]
    assert _targets(rig.lookup("res", "count=2", "page=2")[1]) == every[4:]
    assert _targets(rig.lookup("res", "page=3", "count=2")[1]) == []
    assert _targets(rig.lookup("res", "count=0")[1]) == []
    assert _targets(rig.lookup("res", "rt=temperature-c", "page=1", "count=1")[1]) == every[3:4]
    eps = [link.get("ep") for link in parse(rig.lookup("ep", "page=1", "count=2")[1])]
    assert eps == ["garage"], eps


def test_bad_lookup_queries_get_400():
    rig = Rig()
    _populate(rig)
    for q in (["page=1"], ["page=x", "count=1"], ["count=-1"], ["count=1", "count=2"],
              ["page=1", "page=2", "count=1"], ["count="]):
        for kind in ("ep", "res"):
            code, text = rig.lookup(kind, *q)
            assert code == BAD_REQUEST and text, (kind, q, code, text)


def test_large_lookup_results_go_in_blocks():
    rig = Rig(max_links=64, max_payload=4096)
    links = ",".join('</sensor/%02d>;rt="temperature-c";obs' % i for i in range(60))
    assert rig.register("big", links.encode()).code == CREATED
    code, text = rig.lookup("res")
    assert code == CONTENT and len(parse(text)) == 60 and len(text) > 1024, (code, len(text))


def _simple_rig(answer=True):
    rig = Rig(fetch_timeout_ms=5000)
    srv, _ = rig.node(("10.0.0.20", 5683), (("sensors/temp", True), ("led", False)))
    ep = rig.nodes[-1][0]
    if not answer:
        # The RD's GET (code 0.01) never reaches the node; its answers do.
        rig.net.link(RD, ("10.0.0.20", 5683), drop=lambda n, data: data[1] == 1)
    return rig, ep


def test_simple_registration_reads_the_registrants_well_known_core():
    rig, ep = _simple_rig()
    r = rig.request("post", "/.well-known/rd", query=["ep=simple1", "lt=600"], src=ep)
    assert r.code == CHANGED, r  # §5.1: 2.04 once the RD has the links
    (reg,) = rig.rd.registrations()
    assert reg.ep == "simple1" and reg.lt_s == 600 and reg.base == "coap://10.0.0.20:5683", reg
    code, text = rig.lookup("res", "ep=simple1")
    assert _targets(text) == ["coap://10.0.0.20:5683/sensors/temp",
                              "coap://10.0.0.20:5683/led"], text


def test_simple_registration_failures():
    rig, ep = _simple_rig()
    r = rig.request("post", "/.well-known/rd", query=["ep=s", "base=coap://x"], src=ep)
    assert r.code == BAD_REQUEST, r
    r = rig.request("post", "/.well-known/rd", b"</a>", ["ep=s"], 40, src=ep)
    assert r.code == BAD_REQUEST, r
    r = rig.request("post", "/.well-known/rd", src=ep)
    assert r.code == BAD_REQUEST, r  # no ep
    rig, ep = _simple_rig(answer=False)
    r = rig.request("post", "/.well-known/rd", query=["ep=s"], src=ep)
    assert r.code == GATEWAY_TIMEOUT, r
    assert rig.rd.registrations() == []


class _Drip:
    # A registrant at `addr` that registers simply, then answers the RD's
    # GET /.well-known/core in 16-byte Block2 blocks with M always set:
    # links without end, as slowly as the link from it to the RD delays.
    def __init__(self, rig, addr):
        self.ep = rig.net.endpoint(addr)
        self.client = Client(self.ep)
        self.gets = 0
        rig.nodes.append([self.ep, self, None])  # rig.on_rx hands us what arrives

    def post(self, name):
        return self.client.start("post", RD_URI + "/.well-known/rd",
                                 options=[Option(15, "ep=" + name)], timeout_ms=120000)

    def handle(self, rx):
        m = rx.message
        if 1 <= m.code <= 31:
            self.gets += 1
            b = m.get_uint(23)
            r = Message(Message.ACK, 69, b"<" + b"a" * 14 + b">")
            r.addOption(Option(12, 40))
            r.addOption(block_option(23, 0 if b is None else b >> 4, True, 0))
            rx.ack(r)
        else:
            self.client.handle(rx)


def test_a_simple_registration_fetch_ends_within_fetch_timeout_ms_as_a_whole():
    # Each block arrives within the fetch's per-exchange timeout (1.5 s of
    # 5 s), but the fetch as a whole is bounded by fetch_timeout_ms: a
    # registrant dripping a block every 9.9 s held a fetch slot for hours
    # with the defaults.
    rig = Rig(fetch_timeout_ms=5000)
    drip = _Drip(rig, ("10.0.0.20", 5683))
    rig.net.link(("10.0.0.20", 5683), RD, delay=1500)
    h = drip.post("drip")
    rig.run(5000 + 1500 + 1000)  # the timeout, and the 5.04's way back
    assert h.done and h.response is not None, h
    assert h.response.code == GATEWAY_TIMEOUT, h.response
    assert b"5000 ms" in h.response.payload, h.response.payload
    assert 2 <= drip.gets <= 5, drip.gets  # about one block per 1.5 s
    assert rig.rd.client.pending == [] and rig.rd.registrations() == [], rig.rd.client.pending
    # The slot is free again: the next registration is fetched, not 5.03.
    h = drip.post("drip")
    rig.run(2000)
    assert not h.done and len(rig.rd.client.pending) == 1, (h, rig.rd.client.pending)


def test_a_simple_registration_fetch_holds_at_most_max_payload_bytes():
    # The RD's client read the registrant's links up to the Client default
    # of 64 KB whatever max_payload said; now a body beyond max_payload
    # ends the fetch and is refused like a POSTed payload that large: 4.13
    # with Size1 (RFC 9176 §5.1: the same limits as a registration's
    # payload; RFC 7252 §5.9.2.9).
    rig = Rig(fetch_timeout_ms=5000, max_payload=64)
    drip = _Drip(rig, ("10.0.0.20", 5683))
    h = drip.post("drip")
    rig.run(1000)
    assert h.done and h.response is not None and h.response.code == TOO_LARGE, h.response
    assert h.response.message.get_uint(60) == 64, h.response.message
    assert b"larger than 64 bytes" in h.response.payload, h.response.payload
    assert drip.gets == 64 // 16 + 1, drip.gets  # the block that ran over is the last
    assert rig.rd.client.pending == [] and rig.rd.registrations() == []


def test_a_fetch_keeps_to_the_rds_bounds_on_a_client_the_application_gave():
    # A Client given to the RD (64 KB of max_body, no transfer_timeout_ms
    # by default) read the registrant's links to its own bounds: each fetch
    # now carries max_payload and fetch_timeout_ms itself.
    for delay, code, gets in ((0, TOO_LARGE, 64 // 16 + 1), (1500, GATEWAY_TIMEOUT, None)):
        rig = Rig(fetch_timeout_ms=5000, max_payload=64)
        rig.rd.client = Client(rig.gw_ep)
        drip = _Drip(rig, ("10.0.0.20", 5683))
        rig.net.link(("10.0.0.20", 5683), RD, delay=delay)
        h = drip.post("drip")
        rig.run(5000 + 1500 + 1000)
        assert h.done and h.response is not None and h.response.code == code, (delay, h.response)
        assert gets is None or drip.gets == gets, (delay, drip.gets)
        assert rig.rd.client.pending == [] and rig.rd.registrations() == [], delay


def test_one_host_has_one_simple_registration_fetch_at_a_time():
    # Two sockets of one host took both fetch slots (max_fetches=2) and
    # every other node's simple registration got 5.03. Now a second fetch
    # for the same host is refused with 5.03 and a Max-Age saying when its
    # first one ends at the latest (RFC 7252 §5.9.3.4), and the other
    # slot stays for other hosts.
    rig = Rig(fetch_timeout_ms=5000, max_fetches=2)
    evil1 = _Drip(rig, ("10.0.0.20", 5683))
    evil2 = _Drip(rig, ("10.0.0.20", 5684))
    rig.net.link(("10.0.0.20", 5683), RD, delay=1500)
    rig.net.link(("10.0.0.20", 5684), RD, delay=1500)
    h1 = evil1.post("evil-1")
    rig.run(2000)  # its fetch is under way
    h2 = evil2.post("evil-2")
    rig.run(2000)
    assert not h1.done and evil1.gets >= 1, (h1, evil1.gets)
    assert h2.done and h2.response.code == UNAVAILABLE, h2.response
    age = h2.response.message.get_uint(14)
    assert age is not None and 1 <= age <= 5, age
    assert evil2.gets == 0 and len(rig.rd.client.pending) == 1, (evil2.gets,
                                                                 rig.rd.client.pending)
    # A node on another host gets the other slot and registers.
    rig.node(("10.0.0.30", 5683), (("sensors/temp", True),))
    r = rig.request("post", "/.well-known/rd", query=["ep=good"], src=rig.nodes[-1][0])
    assert r.code == CHANGED, r
    assert rig.rd.find("good") is not None
    # Once the first fetch is over (5.04), the host may start another.
    rig.run(6000)
    assert h1.done and h1.response.code == GATEWAY_TIMEOUT, h1.response
    h2 = evil2.post("evil-2")
    rig.run(2000)
    assert not h2.done and evil2.gets == 1, (h2, evil2.gets)


def test_restore_puts_back_a_saved_registration():
    rig = Rig()
    rig.register("live")
    reg = rig.rd.restore("0badcafe", "saved", None, "coap://10.0.0.30:5683", False, 600,
                         300000, '</t>;rt="temperature-c";obs', [("et", "sensor")])
    assert reg.href == "/rd/0badcafe" and reg.left_ms == 300000, reg
    code, text = rig.lookup("res", "ep=saved")
    assert _targets(text) == ["coap://10.0.0.30:5683/t"], text
    r = rig.request("post", "/rd/0badcafe")
    assert r.code == CHANGED and reg.left_ms > 599000, (r, reg.left_ms)
    for args in (("x", "saved", None, "coap://h", False, 60, 1000, ""),  # id taken by ep
                 ("0badcafe", "other", None, "coap://h", False, 60, 1000, ""),  # id taken
                 ("1", "n", None, "relative", False, 60, 1000, ""),
                 ("2", "n", None, "coap://h", False, 0, 1000, ""),
                 ("3", "n", None, "coap://h", False, 60, 1000, "<bad")):
        support.raises(ValueError, rig.rd.restore, *args)


def test_base_uri_of_socket_addresses():
    assert base_uri(("10.1.2.3", 5683)) == "coap://10.1.2.3:5683"
    assert base_uri(("fd00::1", 61616, 0, 0)) == "coap://[fd00::1]:61616"
    assert base_uri(("::ffff:127.0.0.1", 4000, 0, 0)) == "coap://127.0.0.1:4000"
    # Raw sockaddr bytes, as the MicroPython unix port gives them.
    v4 = bytes((2, 0, 0x16, 0x33, 127, 0, 0, 1)) + bytes(8)
    assert base_uri(v4) == "coap://127.0.0.1:5683", base_uri(v4)
    v6 = bytes((10, 0, 0xF0, 0xB0)) + bytes(4) + bytes((0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                        0, 0, 0, 1)) + bytes(4)
    assert base_uri(v6) == "coap://[fd00:0:0:0:0:0:0:1]:61616", base_uri(v6)
    mapped = v6[:8] + bytes(10) + b"\xff\xff" + bytes((10, 0, 0, 7)) + bytes(4)
    assert base_uri(mapped) == "coap://10.0.0.7:61616", base_uri(mapped)


# RFC 3986 §5.4: every normal and abnormal example (fragments dropped: a
# CoAP URI has none).
_RFC3986 = (
    ("g:h", "g:h"), ("g", "http://a/b/c/g"), ("./g", "http://a/b/c/g"),
    ("g/", "http://a/b/c/g/"), ("/g", "http://a/g"), ("//g", "http://g"),
    ("?y", "http://a/b/c/d;p?y"), ("g?y", "http://a/b/c/g?y"), ("#s", "http://a/b/c/d;p?q"),
    ("g#s", "http://a/b/c/g"), ("g?y#s", "http://a/b/c/g?y"), (";x", "http://a/b/c/;x"),
    ("g;x", "http://a/b/c/g;x"), ("", "http://a/b/c/d;p?q"), (".", "http://a/b/c/"),
    ("./", "http://a/b/c/"), ("..", "http://a/b/"), ("../", "http://a/b/"),
    ("../g", "http://a/b/g"), ("../..", "http://a/"), ("../../", "http://a/"),
    ("../../g", "http://a/g"), ("../../../g", "http://a/g"), ("../../../../g", "http://a/g"),
    ("/./g", "http://a/g"), ("/../g", "http://a/g"), ("g.", "http://a/b/c/g."),
    (".g", "http://a/b/c/.g"), ("g..", "http://a/b/c/g.."), ("..g", "http://a/b/c/..g"),
    ("./../g", "http://a/b/g"), ("./g/.", "http://a/b/c/g/"), ("g/./h", "http://a/b/c/g/h"),
    ("g/../h", "http://a/b/c/h"), ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
    ("g;x=1/../y", "http://a/b/c/y"), ("g?y/./x", "http://a/b/c/g?y/./x"),
    ("g?y/../x", "http://a/b/c/g?y/../x"), ("http:g", "http:g"),
)


def test_resolve_passes_the_rfc3986_examples():
    for ref, want in _RFC3986:
        got = resolve("http://a/b/c/d;p?q", ref)
        assert got == want, (ref, got, want)
    assert resolve("coap://[fd00::1]:61616", "sensors/t") == "coap://[fd00::1]:61616/sensors/t"
    assert resolve("coap://h", "/x") == "coap://h/x"


def test_a_registration_beyond_the_link_attribute_budget_gets_413():
    # One 1 KB link of 510 valueless attributes held 20 KB of heap parsed
    # (twice that with the resolved copy a lookup kept), so 4 of them from
    # one host took a board-sized RD's heap. ResourceDirectory(
    # max_link_attrs=128): 4.13 (RFC 7252 §5.9.2.9), nothing registered.
    rig = Rig()
    r = rig.register("evil", b"</a>" + b";a" * 510, ["lt=4294967295"])
    assert r.code == TOO_LARGE, r
    assert r.message.get_uint(60) is None, r  # no payload size would do: no Size1
    assert b"attributes" in r.payload, r.payload
    assert rig.rd.registrations() == [] and rig.events == [], rig.events
    assert rig.register("n", b"</a>" + b";a" * 129).code == TOO_LARGE
    # At the budget: 32 links (max_links) of 4 attributes each.
    links = ",".join('</s/%02d>;rt=t;if=s;ct=0;obs' % i for i in range(32)).encode()
    assert rig.register("n", links, src=rig.cep).code == CREATED
    assert rig.register("n", b"</a>" + b";a" * 128, src=rig.cep).code == CREATED
    # The bound is the RD's: set at construction.
    rig = Rig(max_link_attrs=2)
    assert rig.rd.max_link_attrs == 2
    assert rig.register("n", b"</a>;a;b,</c>", src=rig.cep).code == CREATED
    assert rig.register("n", b"</a>;a;b,</c>;c", src=rig.cep).code == TOO_LARGE
    # A simple registration's links (§5.1) and restore() meet the same bound.
    try:
        rig.rd.restore("00000001", "old", None, "coap://10.0.0.8", False, 60, 60000,
                       "</a>;a;b;c")
    except ValueError as e:
        assert "attributes" in str(e), e
    else:
        raise AssertionError("restore() kept 3 link attributes")


def test_simple_registration_beyond_the_link_attribute_budget_is_refused():
    rig = Rig(fetch_timeout_ms=5000, max_link_attrs=1)
    rig.node(("10.0.0.20", 5683), (("sensors/temp", True),))  # rt, ct, obs
    ep = rig.nodes[-1][0]
    r = rig.request("post", "/.well-known/rd", query=["ep=simple1"], src=ep)
    assert r.code == TOO_LARGE, r
    assert rig.rd.registrations() == [], rig.rd.registrations()


def test_lookups_keep_no_resolved_copy_of_a_registration():
    # RFC 9176 §6.1: resource lookup answers targets resolved against the
    # registration's base; the RD resolves them per lookup and keeps only
    # the links as registered, as text (a new parsed list at each read).
    rig = Rig()
    src = rig.net.endpoint(("10.0.0.5", 40000))
    assert rig.register("n", b'</t>;anchor="/x",</u>', src=src).code == CREATED
    (reg,) = rig.rd.registrations()
    names = sorted(reg.__dict__)
    kept = reg.text
    assert kept == reg.links_text() == '</t>;anchor="/x",</u>', kept
    for kind in ("res", "ep", "res"):
        code, text = rig.lookup(kind)
        assert code == CONTENT, (code, text)
    assert sorted(reg.__dict__) == names and reg.text is kept, (sorted(reg.__dict__), names)
    assert reg.links is not reg.links, "links are parsed from the text at each read"
    assert [link.target for link in reg.links] == ["/t", "/u"], reg.links
    a = reg.resolved()
    assert a is not reg.resolved() and a[0].target == "coap://10.0.0.5:40000/t", a
    assert a[0].get("anchor") == "coap://10.0.0.5:40000/x", a
