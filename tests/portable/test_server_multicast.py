# Requests to a multicast address (RFC 7252 §8.2): no error responses (nor
# RST), successful ones delayed by a random time within the Leisure period,
# a bounded queue of delayed responses serviced from Server.process(); and
# discovery asked of a group. Portable: CPython (pytest) and the MicroPython
# VM, on fakenet. Rules: module-level `def test_*()` only, asserts show
# their values, no pytest.
import support
from fakenet import ROGUE, SERVER, Net, Seq, fixed
from coapy_micro.connection import Message
from coapy_micro.options import Option
from coapy_micro.server import Resource, Server

CON, NON, ACK, RST = Message.CON, Message.NON, Message.ACK, Message.RST
GET, POST = 1, 2
CHANGED, CONTENT, NOT_FOUND = 68, 69, 132
GROUP = ("224.0.1.187", 5683)


class Group:
    """A Server whose EndPoint also listens on GROUP, and a raw peer."""

    def __init__(self, rand=None, **kw):
        self.net = Net()
        self.ep = self.net.endpoint(SERVER)
        self.ep.register(self.net.socket(GROUP))
        self.errors = []
        self.srv = Server(self.ep, on_error=lambda r, e: self.errors.append(e),
                          rand=rand or fixed(0x8000), **kw)  # half the leisure
        self.srv.add("hello", Resource(get=lambda r: (CONTENT, b"hi %d" % r.multicast)))
        self.srv.add("broken", Resource(get=lambda r: 1 // 0))
        self.peer = self.net.socket(ROGUE)
        self.tid = 0x500

    def send(self, msg, dst=GROUP):
        self.tid += 1
        self.peer.sendto(msg.encode(self.tid), dst)

    def replies(self):
        return [(e[0], Message.decode(e[3])[1]) for e in self.net.log if e[1] == SERVER]


def get(path, mt=NON, token=b"g", **kw):
    return Message(mt, GET, token=token, uri_path=path, **kw)


def test_success_is_delayed_within_the_leisure_period_and_is_non():
    g = Group()
    g.send(get("hello", token=b"mc"))
    assert g.srv.process(10000) is None and g.net.now == 0, "handled at once"
    assert g.replies() == [], "not yet"
    assert g.srv.process(10000) is None, "nothing came"
    assert g.net.now == 10000, g.net.now  # process() kept to its timeout
    got = g.replies()
    assert len(got) == 1, got
    t, m = got[0]
    assert t == 2500, t  # 5000 ms leisure x 0x8000 / 0x10000
    assert (m.transaction_type, m.code, m.token, m.payload) == (NON, CONTENT, b"mc", b"hi 1"), m
    assert g.srv.delayed == 0, g.srv.delayed


def test_leisure_is_configurable_and_random():
    g = Group(rand=Seq([0, 0xFFFF, 0x4000]), leisure_ms=1000)
    for i in range(3):
        g.send(get("hello", token=b"%d" % i))
        g.srv.process(0)
    g.srv.process(5000)
    times = [(t, m.token) for t, m in g.replies()]
    assert times == [(0, b"0"), (250, b"2"), (999, b"1")], times


def test_a_unicast_request_is_not_held_up_by_delayed_ones():
    g = Group()
    g.send(get("hello", token=b"m"))
    g.srv.process(0)
    g.net.now = 100
    g.send(get("hello", mt=CON, token=b"u"), SERVER)
    g.srv.process(0)
    g.srv.process(5000)
    got = [(t, m.transaction_type, m.token, m.payload) for t, m in g.replies()]
    assert got == [(100, ACK, b"u", b"hi 0"), (2500, NON, b"m", b"hi 1")], got


def test_no_error_responses_to_a_group():
    g = Group()
    g.send(get("nothing-here"))
    g.send(get("broken"))
    bad = get("hello")
    bad.addOption(Option(65001, b"x"))  # unrecognized critical: no RST either
    g.send(bad)
    for i in range(3):
        g.srv.process(0)
    g.srv.process(10000)
    assert g.replies() == [], g.replies()
    assert len(g.errors) == 1 and isinstance(g.errors[0], ZeroDivisionError), g.errors


def test_a_con_to_a_group_is_acknowledged():
    # CON to a group is not allowed (RFC 7252 §8.1); if one comes anyway it
    # gets an empty ACK for an error and a late piggybacked response otherwise.
    g = Group()
    g.send(get("nothing", mt=CON, token=b"e"))
    g.send(get("hello", mt=CON, token=b"s"))
    g.srv.process(0)
    g.srv.process(0)
    g.srv.process(10000)
    got = [(t, m.transaction_type, m.code, m.token) for t, m in g.replies()]
    assert got == [(0, ACK, 0, b""), (2500, ACK, CONTENT, b"s")], got


def test_delayed_responses_are_bounded():
    g = Group(max_delayed=2)
    peers = [g.peer] + [g.net.socket(("10.0.0.%d" % (20 + i), 5683)) for i in range(2)]
    for i, p in enumerate(peers):  # three peers, a request each
        g.tid += 1
        p.sendto(get("hello", token=b"%d" % i).encode(g.tid), GROUP)
        g.srv.process(0)
    g.srv.process(10000)
    tokens = [m.token for t, m in g.replies()]
    assert tokens == [b"0", b"1"], tokens
    assert g.srv.dropped == 1, g.srv.dropped


def test_one_peer_cannot_take_every_delayed_place():
    # A peer asking the group 4 times per leisure period (max_delayed=4)
    # took every place, and another peer's discovery of the group went
    # unanswered period after period. A peer holds at most half of them.
    g = Group(max_delayed=4)
    good = g.net.socket(("10.0.0.30", 5683))
    for _ in range(3):  # three leisure periods
        for i in range(4):
            g.send(get("hello", token=b"r%d" % i))
            g.srv.process(0)
        g.tid += 1
        good.sendto(get(".well-known/core", token=b"good").encode(g.tid), GROUP)
        g.srv.process(0)
        g.srv.process(5000)
    to_good = [m.token for t, m in g.replies() if m.token == b"good"]
    to_rogue = [m.token for t, m in g.replies() if m.token != b"good"]
    assert len(to_good) == 3, g.replies()
    assert len(to_rogue) == 3 * 2 and g.srv.dropped == 3 * 2, (to_rogue, g.srv.dropped)
    # max_delayed=1: one place, and a peer's share is that one.
    g = Group(max_delayed=1)
    g.send(get("hello", token=b"a"))
    g.srv.process(0)
    g.srv.process(10000)
    assert [m.token for t, m in g.replies()] == [b"a"], g.replies()


def test_no_response_to_a_group():
    g = Group()
    g.send(get("hello", no_response=2))
    g.srv.process(0)
    g.srv.process(10000)
    assert g.replies() == [], g.replies()


def test_discovery_of_a_group():
    g = Group()
    g.srv.add("sensors/temp", Resource(get=lambda r: (CONTENT, b"20"), rt="temperature-c", ct=0))
    g.send(get(".well-known/core", uri_query="rt=temp*", token=b"d1"))
    g.srv.process(0)
    g.send(get(".well-known/core", uri_query="rt=light", token=b"d2"))  # matches nothing: silence
    g.srv.process(0)
    g.srv.process(10000)
    got = [(t, m.token, m.get_uint(12), m.payload) for t, m in g.replies()]
    assert got == [(2500, b"d1", 40, b'</sensors/temp>;rt="temperature-c";ct=0')], got
