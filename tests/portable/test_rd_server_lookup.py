# What one RD lookup (RFC 9176 §6) costs: endpoint attributes decide a
# registration before its links are parsed, a filter that no link can pass
# parses nothing, and a block-wise read of a large answer (RFC 7959) runs the
# lookup once, not once per block: the answer is kept, with its ETag, for the
# Block2 requests that follow, bounded and dropped at any change.
# Parsing is counted by wrapping the link-format parser the RD calls.
# Portable: CPython (pytest) and the MicroPython VM.
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
import support  # noqa: F401
from rd_rig import Rig, location
from coapy_micro import rd_server
from coapy_micro.link import parse

CREATED, CHANGED, CONTENT = 65, 68, 69


class _Counting:
    # Counts the RD's calls of link.parse (Registration.links).
    def __init__(self):
        self.calls = 0
        self.real = rd_server.parse

    def __call__(self, *args):
        self.calls += 1
        return self.real(*args)

    def __enter__(self):
        rd_server.parse = self
        return self

    def __exit__(self, *exc):
        rd_server.parse = self.real


def _populate(rig):
    a = rig.net.endpoint(("10.0.0.11", 5683))
    b = rig.net.endpoint(("10.0.0.12", 5683))
    c = rig.net.endpoint(("10.0.0.13", 5683))
    assert rig.register("kitchen", b'</temp>;rt="temperature-c";obs,</led>;if=actuator',
                        ["et=sensor"], a).code == CREATED
    assert rig.register("hall", b'</temp>;rt="temperature-c temperature-f";ct="0 110"',
                        ["et=sensor", "d=floor1"], b).code == CREATED
    assert rig.register("garage", b"</light>;if=actuator;rt=light", ["et=actuator"],
                        c).code == CREATED


def _targets(text):
    return [link.target for link in parse(text)]


def test_endpoint_attributes_decide_before_links_are_parsed():
    rig = Rig()
    _populate(rig)
    with _Counting() as n:
        code, text = rig.lookup("res", "ep=kitchen")
    assert code == CONTENT and _targets(text) == ["coap://10.0.0.11:5683/temp",
                                                  "coap://10.0.0.11:5683/led"], text
    assert n.calls == 1, n.calls  # kitchen's links only
    with _Counting() as n:
        code, text = rig.lookup("ep", "et=sensor")
    assert [link.get("ep") for link in parse(text)] == ["kitchen", "hall"], text
    assert n.calls == 0, n.calls  # endpoint lookup on endpoint attributes only
    with _Counting() as n:
        code, text = rig.lookup("res", "d=floor1", "rt=temperature-f")
    assert _targets(text) == ["coap://10.0.0.12:5683/temp"], text
    assert n.calls == 1, n.calls
    with _Counting() as n:
        code, text = rig.lookup("ep", "href=/rd/*")  # the registration resources' paths
    assert len(parse(text)) == 3 and n.calls == 0, (text, n.calls)


def test_a_filter_no_link_can_pass_parses_nothing():
    rig = Rig()
    _populate(rig)
    for kind, q in (("res", "rt=nothing"), ("ep", "rt=nothing"), ("res", "sz"),
                    ("res", "if=sens*"), ("ep", "ct=41")):
        with _Counting() as n:
            code, text = rig.lookup(kind, q)
        assert code == CONTENT and text == "", (kind, q, code, text)
        assert n.calls == 0, (kind, q, n.calls)
    # What the text check lets through is still decided on the parsed links.
    assert _targets(rig.lookup("res", "rt=temperature")[1]) == [], "not a prefix without *"
    assert len(parse(rig.lookup("res", "rt=temperature*")[1])) == 2
    assert _targets(rig.lookup("res", "ct=0")[1]) == ["coap://10.0.0.12:5683/temp"]
    assert [link.get("ep") for link in parse(rig.lookup("ep", "if=actuator")[1])] == [
        "kitchen", "garage"]
    # Values the text holds escaped are not looked for there.
    src = rig.net.endpoint(("10.0.0.14", 5683))
    assert rig.register("q", b'</q>;title="a \\"b\\""', [], src).code == CREATED
    assert _targets(rig.lookup("res", 'title=a "b"')[1]) == ["coap://10.0.0.14:5683/q"]


def _big(rig, name, host, n=40):
    src = rig.net.endpoint((host, 5683))
    links = ",".join('</sensor/%02d>;rt="temperature-c";obs' % i for i in range(n))
    r = rig.register(name, links.encode(), [], src)
    assert r.code == CREATED, r
    return r


def _etag(resp):
    (o,) = resp.message.findOptions(4)
    return bytes(o.value)


def test_a_block_wise_lookup_answer_is_computed_once():
    rig = Rig(max_links=64, max_payload=4096)
    for i in range(3):
        _big(rig, "big%d" % i, "10.0.0.%d" % (20 + i))
    with _Counting() as n:
        r = rig.request("get", "/rd-lookup/res")
    assert r.code == CONTENT and len(parse(r.payload)) == 120, r
    blocks = (len(r.payload) + 1023) // 1024
    assert blocks >= 4, len(r.payload)
    # One lookup: each registration's links parsed once (the old RD parsed
    # them again for each of the blocks).
    assert n.calls == 3, (n.calls, blocks)
    tag = _etag(r)
    assert len(tag) == 4, tag
    # Read again: the same answer, the same ETag, nothing parsed.
    with _Counting() as n:
        r2 = rig.request("get", "/rd-lookup/res")
    assert r2.payload == r.payload and _etag(r2) == tag and n.calls == 0, n.calls
    # A change to the table drops it: the next read runs the lookup and has
    # another body and ETag.
    _big(rig, "big3", "10.0.0.30", 2)
    with _Counting() as n:
        r3 = rig.request("get", "/rd-lookup/res")
    assert len(parse(r3.payload)) == 122 and n.calls == 4, (len(parse(r3.payload)), n.calls)
    assert _etag(r3) != tag, tag


def test_kept_lookup_answers_are_bounded_and_expire():
    rig = Rig(max_links=64, max_payload=4096, lookup_cache=1, lookup_cache_ms=5000)
    for i in range(2):
        _big(rig, "big%d" % i, "10.0.0.%d" % (20 + i))
    rig.request("get", "/rd-lookup/res")
    rig.request("get", "/rd-lookup/res", query=["count=2"])  # small: not kept
    with _Counting() as n:
        rig.request("get", "/rd-lookup/res")
    assert n.calls == 0, n.calls
    rig.request("get", "/rd-lookup/res", query=["rt=temp*"])  # another large one
    with _Counting() as n:
        rig.request("get", "/rd-lookup/res")
    assert n.calls == 2, n.calls  # one kept answer: the first went
    rig.run(6000)  # past lookup_cache_ms since its last read
    with _Counting() as n:
        rig.request("get", "/rd-lookup/res")
    assert n.calls == 2, n.calls
    # Updates and removals drop it too.
    for method in ("post", "delete"):
        rig.request("get", "/rd-lookup/res")
        loc = location(rig.register("big1", b"</a>", [], rig.net.endpoint(("10.0.0.21", 5683))))
        code = rig.request(method, loc, src=rig.net.endpoint(("10.0.0.21", 5683))).code
        assert code in (CHANGED, 66), (method, code)
        with _Counting() as n:
            r = rig.request("get", "/rd-lookup/res")
        assert n.calls == len(rig.rd.registrations()), (method, n.calls)
        assert len(parse(r.payload)) in (41, 40), (method, len(parse(r.payload)))
    # Dropped when its time is up, whether or not it is asked for again:
    # tick() does it, and wakes up for it.
    rig.request("get", "/rd-lookup/res")
    assert len(rig.rd._answers) == 1, rig.rd._answers
    assert 0 < rig.rd.tick() <= 5000, rig.rd.tick()
    rig.run(5100)
    assert rig.rd._answers == [], rig.rd._answers
    rd = Rig(lookup_cache=0).rd
    assert rd.lookup_cache == 0 and rd._answers == [], rd._answers
