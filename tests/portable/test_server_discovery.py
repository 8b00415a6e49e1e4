# /.well-known/core from the Server's resource tree (RFC 6690 §4, §4.1): the
# discovery attributes, filtering by href, rt, if, ct and any attribute with
# '*' prefixes, the empty result, and how the resource answers otherwise.
# Portable: CPython (pytest) and the MicroPython VM, on fakenet.
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
import support
from fakenet import ROGUE, SERVER, Net
from coapy_micro.connection import Message
from coapy_micro.server import Resource, Server

CON, NON, ACK = Message.CON, Message.NON, Message.ACK
GET, POST = 1, 2
CONTENT, METHOD_NOT_ALLOWED, NOT_ACCEPTABLE = 69, 133, 134


def ok(request):
    return (CONTENT, b"")


def node():
    """A server with the resources of a small sensor node."""
    net = Net()
    ep = net.endpoint(SERVER)
    srv = Server(ep)
    srv.add("sensors/temp", Resource(get=ok, rt="temperature-c", if_="sensor", ct=0, obs=True))
    srv.add("sensors/light", Resource(get=ok, rt="light-lux", if_="sensor", ct=(0, 50), sz=12))
    srv.add("config", Resource(get=ok, put=ok, title="Node config", ct=50))
    srv.add("fw", Resource(post=ok, rt="firmware"))
    return net, srv, net.socket(ROGUE)


TID = [0x7700]  # a new message id per request (the EndPoint drops duplicates)


def discover(net, srv, peer, query=None, accept=None, code=GET, mt=CON):
    m = Message(mt, code, token=b"wk", uri_path=".well-known/core", uri_query=query, accept=accept)
    n = len(net.log)
    TID[0] += 1
    peer.sendto(m.encode(TID[0]), SERVER)
    srv.process(0)
    srv.process(0)
    got = [Message.decode(e[3])[1] for e in net.log[n:] if e[1] == SERVER]
    assert len(got) == 1, got
    return got[0]


def targets(m):
    # The link targets in a response payload, in order.
    out = []
    for part in m.payload.decode("utf-8").split(","):
        if part:
            out.append(part[1:part.find(">")])
    return out


def test_every_resource_with_its_attributes_in_registration_order():
    net, srv, peer = node()
    m = discover(net, srv, peer)
    assert (m.transaction_type, m.code, m.token, m.get_uint(12)) == (ACK, CONTENT, b"wk", 40), m
    want = ('</sensors/temp>;rt="temperature-c";if="sensor";ct=0;obs,'
            '</sensors/light>;rt="light-lux";if="sensor";ct="0 50";sz=12,'
            '</config>;ct=50;title="Node config",'
            '</fw>;rt="firmware"')
    assert m.payload == want.encode(), m.payload


def test_filters():
    net, srv, peer = node()
    cases = (
        ("rt=temperature-c", ["/sensors/temp"]),
        ("rt=temp*", ["/sensors/temp"]),
        ("rt=*", ["/sensors/temp", "/sensors/light", "/fw"]),
        ("if=sensor", ["/sensors/temp", "/sensors/light"]),
        ("href=/config", ["/config"]),
        ("href=/sensors/*", ["/sensors/temp", "/sensors/light"]),
        ("ct=50", ["/sensors/light", "/config"]),  # one of ct="0 50"
        ("ct=0", ["/sensors/temp", "/sensors/light"]),
        ("sz=12", ["/sensors/light"]),
        ("title=Node*", ["/config"]),
        ("obs", ["/sensors/temp"]),
        ("rt=light-lux&if=sensor", ["/sensors/light"]),  # every parameter must pass
    )
    for query, want in cases:
        m = discover(net, srv, peer, query)
        assert (m.code, m.get_uint(12)) == (CONTENT, 40), (query, m)
        assert targets(m) == want, (query, targets(m), want)


def test_a_filter_matching_nothing_is_2_05_with_an_empty_payload():
    # Unicast: the (empty) set of matching links is a successful answer.
    net, srv, peer = node()
    for query in ("rt=humidity", "href=/nope", "foo=bar", "ct=41"):
        m = discover(net, srv, peer, query)
        assert (m.code, m.payload, m.get_uint(12)) == (CONTENT, b"", 40), (query, m)
    m = discover(net, srv, peer, "rt=nothing", mt=NON)
    assert (m.transaction_type, m.code, m.payload) == (NON, CONTENT, b""), m


def test_discovery_is_get_only_and_link_format_only():
    net, srv, peer = node()
    assert discover(net, srv, peer, code=POST).code == METHOD_NOT_ALLOWED, "POST"
    assert discover(net, srv, peer, accept=0).code == NOT_ACCEPTABLE, "Accept: text/plain"
    assert discover(net, srv, peer, accept=40).code == CONTENT, "Accept: link-format"


def test_a_server_with_no_resources_answers_empty():
    net = Net()
    srv = Server(net.endpoint(SERVER))
    m = discover(net, srv, net.socket(ROGUE))
    assert (m.code, m.payload, m.get_uint(12)) == (CONTENT, b"", 40), m


def test_targets_are_percent_encoded_and_root_is_slash():
    net = Net()
    srv = Server(net.endpoint(SERVER))
    srv.add("", Resource(get=ok))
    srv.add("a b/c%d", Resource(get=ok))
    srv.add("caf\u00e9", Resource(get=ok))
    m = discover(net, srv, net.socket(ROGUE))
    assert targets(m) == ["/", "/a%20b/c%25d", "/caf%C3%A9"], targets(m)


def test_the_application_may_replace_well_known_core():
    net, srv, peer = node()
    srv.add("/.well-known/core", Resource(get=lambda r: (CONTENT, b"</x>", 40), ct=40))
    assert discover(net, srv, peer).payload == b"</x>", "replaced"


def test_new_resources_show_up_at_once():
    net, srv, peer = node()
    srv.add("late", Resource(get=ok, rt="late"))
    assert targets(discover(net, srv, peer, "rt=late")) == ["/late"], "listed"


def test_a_dot_segment_is_advertised_so_that_it_resolves_back():
    # A resource registered at a/./b has the three segments a, '.', b. Its
    # link must lead back there: written literally, '/a/./b' resolves to
    # /a/b (RFC 3986 §5.2.4, as uri.split does), so the '.' goes as %2E,
    # the way uri.compose writes it.
    from coapy_micro.client import Client
    from coapy_micro.uri import split
    from fakenet import CLIENT

    net = Net()
    srv = Server(net.endpoint(SERVER))
    srv.add("a/./b", Resource(get=lambda r: (CONTENT, "/".join(r.path))))
    srv.add("c/../d", Resource(get=ok))
    got = targets(discover(net, srv, net.socket(ROGUE)))
    assert got == ["/a/%2E/b", "/c/%2E%2E/d"], got
    assert split("coap://10.0.0.2" + got[0])[3] == ["a", ".", "b"], split("coap://10.0.0.2" + got[0])
    assert split("coap://10.0.0.2" + got[1])[3] == ["c", "..", "d"], split("coap://10.0.0.2" + got[1])
    c = Client(net.endpoint(CLIENT))
    h = c.start("get", "coap://10.0.0.2" + got[0])
    while not h.done:
        srv.process(0)
        c.process(10)
    assert h.result().code == CONTENT and h.result().payload == b"a/./b", h.result()


def test_link_format_is_the_discovery_text_filtered():
    net, srv, peer = node()
    everything = srv.link_format()
    assert everything == discover(net, srv, peer).payload.decode(), everything
    assert srv.link_format("rt=temp*") == '</sensors/temp>;rt="temperature-c";if="sensor";ct=0;obs'
    assert srv.link_format(["if=sensor", "ct=50"]) == \
        '</sensors/light>;rt="light-lux";if="sensor";ct="0 50";sz=12'
    assert srv.link_format("rt=none") == ""
