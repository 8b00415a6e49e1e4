# Observe (RFC 7641) on the Server with a peer that wants every place: one
# remote address holds a bounded share of the observer table, of one
# resource (Server(max_peer_observers_per_resource=2)) and of the whole
# table (Server(max_observers_per_peer=4)), so another client or a gateway
# still gets its observation. A registration beyond a bound is answered as
# a plain GET, without Observe (§4.1 lets the server decline); one again
# with the same token replaces its own entry whatever the counts.
# Portable: CPython (pytest), the MicroPython VM and unix port, on fakenet.
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
from fakenet import SERVER, Net
from coapy_micro.connection import Message
from coapy_micro.server import Resource, Server

CON, ACK = Message.CON, Message.ACK
GET = 1
CONTENT = 69
EVIL = ("10.0.0.66", 40000)  # one socket, many tokens
GATEWAY = ("10.0.0.7", 5683)  # another host
NEIGHBOUR = ("10.0.0.66", 40001)  # the same host, another port: another peer


class Rig:
    """A Server on fakenet with `n` observable resources r0 .. r<n-1>;
    peers are bare sockets whose answers are read from the network's log."""

    def __init__(self, n=1, **srv_kw):
        self.net = Net()
        self.srv = Server(self.net.endpoint(SERVER), **srv_kw)
        self.res = []
        for i in range(n):
            self.res.append(self.srv.add("r%d" % i, Resource(get=self.get, obs=True)))
        self.socks = {}
        self.mid = 0x100

    def get(self, request):
        return (CONTENT, b"21.5")

    def register(self, addr, token, path="r0"):
        """A CON GET with Observe 0 from `addr`: True if its answer (a
        2.05, piggybacked) carries Observe, i.e. the server took it."""
        s = self.socks.get(addr)
        if s is None:
            s = self.socks[addr] = self.net.socket(addr)
        self.mid += 1
        m = Message(CON, GET, b"", token, uri_path=path, observe=0)
        s.sendto(m.encode(self.mid), SERVER)
        self.net.run(10, lambda ep, rx: self.srv.handle(rx))
        last = self.net.sent(SERVER, addr)[-1][1]
        mid, answer = Message.decode(last)
        assert (answer.transaction_type, mid, answer.code, answer.token) == (
            ACK, self.mid, CONTENT, token), (answer, mid, self.mid)
        return answer.get_uint(6) is not None


def test_one_peer_cannot_take_a_resources_observer_table():
    # The reviewer's attack: one socket registers 4 tokens on one resource
    # (max_observers_per_resource=4). It gets 2; a gateway on another host
    # still observes the resource.
    rig = Rig()
    took = [rig.register(EVIL, b"evil%d" % i) for i in range(4)]
    assert took == [True, True, False, False], took
    assert rig.srv.observers("r0") == 2, rig.srv.observers("r0")
    assert rig.register(GATEWAY, b"gw"), "the gateway's observation was refused"
    assert rig.srv.observers("r0") == 3, rig.srv.observers("r0")
    # Another port of the same host is another peer (RFC 7641 identifies an
    # observer by its endpoint and token).
    assert rig.register(NEIGHBOUR, b"n1")
    assert rig.srv.observers("r0") == 4, rig.srv.observers("r0")
    assert not rig.register(("10.0.0.8", 5683), b"late")  # the resource's 4 places


def test_a_registration_with_the_same_token_replaces_its_entry_at_the_limit():
    # §4.1: a GET with Observe 0 and a token already observing refreshes that
    # observation; the peer's share is full, and it still gets Observe.
    rig = Rig()
    assert rig.register(EVIL, b"a") and rig.register(EVIL, b"b")
    assert not rig.register(EVIL, b"c")
    assert rig.register(EVIL, b"a"), "a re-registration was refused"
    assert rig.register(EVIL, b"b")
    assert rig.srv.observers("r0") == 2, rig.srv.observers("r0")


def test_a_token_moved_to_another_resource_counts_there():
    # A registration again with a token the peer holds on another resource
    # is a new observer of this one: the old entry goes, and the new one
    # must fit. Else a peer takes a resource's places by moving tokens it
    # holds elsewhere onto it (found by review: 4 of r0's 4 places, and 5
    # observers of a resource whose bound is 4).
    rig = Rig(3)
    assert rig.register(EVIL, b"t1") and rig.register(EVIL, b"t2")  # its 2 on r0
    assert rig.register(EVIL, b"t3", "r1") and rig.register(EVIL, b"t4", "r2")
    took = [rig.register(EVIL, t, "r0") for t in (b"t3", b"t4")]
    assert took == [False, False], took
    assert rig.srv.observers("r0") == 2, rig.srv.observers("r0")
    # The moved tokens' old entries are gone (the registration replaced them).
    assert (rig.srv.observers("r1"), rig.srv.observers("r2")) == (0, 0)
    assert rig.register(GATEWAY, b"gw")  # the gateway still observes r0
    # A token moved where there is room is taken there.
    assert rig.register(EVIL, b"t1", "r1") and rig.srv.observers("r1") == 1
    assert rig.srv.observers("r0") == 2, rig.srv.observers("r0")


def test_a_resource_full_of_others_takes_no_moved_token():
    rig = Rig(2)
    for i, addr in enumerate((("10.0.0.%d" % (10 + i), 5683) for i in range(4))):
        assert rig.register(addr, b"o%d" % i, "r1"), i
    assert rig.register(EVIL, b"t", "r0")
    assert not rig.register(EVIL, b"t", "r1")  # r1 has its 4 (max_observers_per_resource)
    assert rig.srv.observers("r1") == 4 and rig.srv.observers("r0") == 0


def test_one_peer_cannot_fill_the_table_by_observing_many_resources():
    # One peer observing every resource of a node with 8 of them takes 4 of
    # the 8 places (max_observers=8, max_observers_per_peer=4); a gateway
    # then observes the resources the first was refused.
    rig = Rig(8)
    took = [rig.register(EVIL, b"e%d" % i, "r%d" % i) for i in range(8)]
    assert took == [True] * 4 + [False] * 4, took
    assert rig.srv.observers() == 4, rig.srv.observers()
    for i in range(8):
        assert rig.register(GATEWAY, b"g%d" % i, "r%d" % i) == (i < 4), i
    assert rig.srv.observers() == 8, rig.srv.observers()


def test_a_gateway_observes_every_resource_of_a_small_node_by_default():
    # A node with 4 observable resources (more than the demo node's 2): a
    # gateway observes all of them, and registers again with its tokens.
    rig = Rig(4)
    assert [rig.register(GATEWAY, b"g%d" % i, "r%d" % i) for i in range(4)] == [True] * 4
    assert rig.srv.observers() == 4, rig.srv.observers()
    # At the peer's share of the table (4): a new token waits for an old
    # entry to go (an RST to its next notification, §3.6), the same token
    # is taken again, and another client finds room.
    assert not rig.register(GATEWAY, b"h0", "r0")
    assert rig.register(GATEWAY, b"g0", "r0")
    assert rig.register(("10.0.0.9", 5683), b"c", "r0")  # another client


def test_the_per_peer_bounds_are_set_at_construction():
    rig = Rig(2, max_observers_per_peer=1, max_peer_observers_per_resource=1)
    assert (rig.srv.max_observers_per_peer, rig.srv.max_peer_observers_per_resource) == (1, 1)
    assert rig.register(EVIL, b"a", "r0")
    assert not rig.register(EVIL, b"b", "r0")
    assert not rig.register(EVIL, b"c", "r1")
    rig = Rig(1, max_observers_per_peer=8, max_peer_observers_per_resource=8,
              max_observers_per_resource=8)
    took = [rig.register(EVIL, b"t%d" % i) for i in range(9)]
    assert took == [True] * 8 + [False], took
    # Defaults: as the Server's docstring gives them.
    srv = Server(Net().endpoint(SERVER))
    assert (srv.max_observers_per_peer, srv.max_peer_observers_per_resource) == (None, 2)


def test_a_peers_share_of_the_table_is_half_of_it_by_default():
    # A table raised for a gateway that observes 12 resources of a node
    # (max_observers=26): the gateway observes all 12, and another peer
    # holds 13 places, no more, with one still free.
    rig = Rig(12, max_observers=26)
    took = [rig.register(GATEWAY, b"g%d" % i, "r%d" % i) for i in range(12)]
    assert took == [True] * 12, took
    took = [rig.register(EVIL, b"e%d" % i, "r%d" % i) for i in range(12)]
    assert took == [True] * 12, took
    assert rig.register(EVIL, b"more", "r0")
    assert not rig.register(EVIL, b"more2", "r1")
    assert rig.srv.observers() == 25, rig.srv.observers()
    # An odd table: a peer holds its larger half (at least one place).
    rig = Rig(3, max_observers=3)
    took = [rig.register(EVIL, b"e%d" % i, "r%d" % i) for i in range(3)]
    assert took == [True, True, False], took
    rig = Rig(2, max_observers=1)
    assert rig.register(EVIL, b"a", "r0") and not rig.register(GATEWAY, b"b", "r1")
