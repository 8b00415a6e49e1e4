# Observe (RFC 7641), server and client, on the fake network: registration,
# notifications (NON with a CON every N, §4.5), removal on RST, CON timeout,
# deregistration and error notifications, §4.5.2 replacement, bounds,
# Observe + Block2, client reordering (§3.4), acknowledgement, re-registration
# and cancellation. Portable: CPython (pytest) and the MicroPython VM.
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
import support  # noqa: F401
from fakenet import CLIENT, SERVER, mtype, pair
from coapy_micro.client import Client
from coapy_micro.connection import Message
from coapy_micro.client_observe import fresh
from coapy_micro.options import Option
from coapy_micro.server import Resource, Response, Server

CON, NON, ACK, RST = Message.CON, Message.NON, Message.ACK, Message.RST
GET = 1
CONTENT, NOT_FOUND = 69, 132
URI = "coap://10.0.0.2/temp"


class Rig:
    """A Server with an observable /temp and a raw client EndPoint, or a
    Client (client=True), on one fake network."""

    def __init__(self, client=False, server_kw=None, ep_kw=None, handler=None, **srv_kw):
        self.net, self.c, self.s = pair(client=ep_kw, server=server_kw)
        self.srv = Server(self.s, **srv_kw)
        self.value = 20
        self.code = CONTENT
        self.calls = 0
        self.res = self.srv.add("temp", Resource(get=handler or self.get, obs=True))
        self.got = []  # rx the raw client received
        self.ack = True  # does the raw client ACK CON notifications?
        self.client = Client(self.c) if client else None

    def get(self, request):
        self.calls += 1
        return (self.code, b"%d" % self.value)

    def on_rx(self, ep, rx):
        if ep is self.s:
            self.srv.handle(rx)
        elif self.client is not None:
            self.client.handle(rx)
        else:
            self.got.append(rx)
            if rx.message.transaction_type == CON and self.ack:
                rx.ack()

    def run(self, ms):
        self.net.run(ms, self.on_rx)
        if self.client is not None:
            self.client.check()

    def register(self, token=b"ob", observe=0, mtype_=CON):
        m = Message(mtype_, GET, token=token, uri_path="temp")
        m.addOption(Option(6, observe))
        rec = self.c.send(m, SERVER)
        rec.several_responses = True  # as an observer does: notifications follow
        return rec

    def notes(self):
        # (type, Observe, payload) of each datagram with a code from the server
        out = []
        for t, d in self.net.sent(SERVER, CLIENT):
            m = Message.decode(d)[1]
            if m.code:
                out.append((mtype(d), m.get_uint(6), m.payload))
        return out


def test_registration_answers_with_observe_and_remembers_the_observer():
    rig = Rig()
    rig.register()
    rig.run(100)
    n = rig.notes()
    assert len(n) == 1 and n[0][0] == ACK and n[0][1] is not None and n[0][2] == b"20", n
    assert rig.srv.observers("temp") == 1, rig.srv.observers("temp")


def test_plain_get_and_non_observable_resource_do_not_register():
    rig = Rig()
    rig.srv.add("plain", Resource(get=lambda r: (CONTENT, b"x")))
    m = Message(CON, GET, token=b"p1", uri_path="plain")
    m.addOption(Option(6, 0))
    rig.c.send(m, SERVER)
    rig.c.send(Message(CON, GET, token=b"p2", uri_path="temp"), SERVER)
    rig.run(100)
    n = rig.notes()
    assert [x[1] for x in n] == [None, None], n
    assert rig.srv.observers() == 0, rig.srv.observers()


def test_notifications_increase_and_carry_the_token():
    rig = Rig()
    rig.register(token=b"tk")
    rig.run(100)
    for v in (21, 22, 23):
        rig.value = v
        assert rig.srv.notify("temp") == 1
        rig.run(100)
    n = rig.notes()
    seqs = [x[1] for x in n]
    assert [x[2] for x in n] == [b"20", b"21", b"22", b"23"], n
    assert seqs == sorted(seqs) and len(set(seqs)) == 4, seqs
    assert all(x[0] == NON for x in n[1:]), n
    toks = [Message.decode(d)[1].token for t, d in rig.net.sent(SERVER, CLIENT)]
    assert toks == [b"tk"] * 4, toks


def test_a_con_every_n_notifications():
    rig = Rig(notify_con_every=3)
    rig.register()
    rig.run(100)
    for i in range(6):
        rig.srv.notify("temp")
        rig.run(100)
    types = [x[0] for x in rig.notes()[1:]]
    assert types == [NON, NON, CON, NON, NON, CON], types


def test_rst_removes_the_observer():
    rig = Rig()
    rig.register()
    rig.run(100)
    rig.srv.notify("temp")
    rig.run(100)
    rig.got[-1].reset()  # the client rejects the NON notification
    rig.run(100)
    assert rig.srv.observers() == 0, rig.srv.observers()
    rig.srv.notify("temp")
    rig.run(100)
    assert len(rig.notes()) == 2, rig.notes()


def test_rst_to_a_con_notification_removes_the_observer():
    rig = Rig(notify_con_every=1)
    rig.register()
    rig.run(100)
    rig.ack = False
    rig.srv.notify("temp")
    rig.run(100)
    rig.got[-1].reset()
    rig.run(100)
    assert rig.srv.observers() == 0, rig.srv.observers()


def test_deregistration_with_observe_1():
    rig = Rig()
    rig.register(token=b"d1")
    rig.run(100)
    rig.register(token=b"d1", observe=1)
    rig.run(100)
    assert rig.srv.observers() == 0, rig.srv.observers()
    n = rig.notes()
    assert n[-1][1] is None and n[-1][2] == b"20", n


def test_error_notification_removes_the_observer():
    rig = Rig()
    rig.register()
    rig.run(100)
    rig.code = NOT_FOUND
    rig.srv.notify("temp")
    rig.run(100)
    n = rig.notes()
    assert Message.decode(rig.net.sent(SERVER, CLIENT)[-1][1])[1].code == NOT_FOUND, n
    assert n[-1][1] is None, n  # no Observe on an error
    assert rig.srv.observers() == 0, rig.srv.observers()


def test_a_handler_content_format_no_uint_of_2_bytes_ends_the_observation_with_5_00():
    # A notification runs the handler again: a Content-Format it returns
    # that is no uint of 0 to 2 bytes (RFC 7252 §5.10.3) is 5.00 (§5.9.3),
    # an error notification that ends the observation (RFC 7641 §4.2); the
    # server goes on, and the next registration is served.
    for cf in ("0", 65536, -1, 1.5):
        state = [None]
        rig = Rig(handler=lambda r: (CONTENT, b"20", state[0]))
        rig.register()
        rig.run(100)
        assert rig.srv.observers() == 1, rig.srv.observers()
        state[0] = cf
        rig.srv.notify("temp")
        rig.run(100)
        last = Message.decode(rig.net.sent(SERVER, CLIENT)[-1][1])[1]
        assert (last.code, last.get_uint(6), last.get_uint(12)) == (160, None, None), (cf, last)
        assert rig.srv.observers() == 0 and rig.srv.errors == 1, (cf, rig.srv.errors)
        state[0] = 50
        rig.register(token=b"o2")
        rig.run(100)
        last = Message.decode(rig.net.sent(SERVER, CLIENT)[-1][1])[1]
        assert (last.code, last.get_uint(12), rig.srv.observers()) == (CONTENT, 50, 1), (cf, last)


def test_con_timeout_removes_the_observer():
    rig = Rig(notify_con_every=1, server_kw={"ack_timeout_ms": 1000, "ack_random_factor": 1.0})
    rig.register()
    rig.run(100)
    rig.ack = False
    rig.net.link(CLIENT, SERVER, loss=1.0)  # nothing comes back
    rig.srv.notify("temp")
    rig.run(100000)
    assert rig.srv.observers() == 0, rig.srv.observers()


def test_newer_state_replaces_a_con_in_flight():
    rig = Rig(notify_con_every=1, server_kw={"ack_timeout_ms": 1000, "ack_random_factor": 1.0})
    rig.register()
    rig.run(100)
    rig.net.link(SERVER, CLIENT, loss=1.0)
    rig.value = 30
    rig.srv.notify("temp")
    rig.run(1500)  # first transmission and one retransmission lost
    rig.net.link(SERVER, CLIENT, loss=0.0)
    rig.value = 31
    rig.srv.notify("temp")
    rig.run(20000)
    pays = [x[2] for x in rig.notes()]
    # Datagrams the server sent (the log has the lost ones too): 30 stops
    # being retransmitted once 31 is out.
    assert pays.count(b"31") == 1 and pays[-1] == b"31", pays
    assert pays.count(b"30") == 2, pays
    assert rig.srv.observers() == 1, rig.srv.observers()
    got = [r.message.payload for r in rig.got]
    assert got[-1] == b"31", got


def test_bounds_per_resource_and_total():
    # One client here: its share of the table (half of it by default,
    # tests/portable/test_observe_share.py) is the whole table.
    rig = Rig(max_observers=3, max_observers_per_resource=2, max_observers_per_peer=3)
    rig.srv.add("other", Resource(get=lambda r: (CONTENT, b"o"), obs=True))
    for t in (b"a", b"b", b"c"):
        rig.register(token=t)
    rig.run(100)
    assert rig.srv.observers("temp") == 2, rig.srv.observers("temp")
    n = rig.notes()
    assert [x[1] is not None for x in n] == [True, True, False], n
    assert [x[2] for x in n] == [b"20"] * 3, n  # answered normally when full
    for t in (b"d", b"e"):
        m = Message(CON, GET, token=t, uri_path="other")
        m.addOption(Option(6, 0))
        rig.c.send(m, SERVER)
    rig.run(100)
    assert rig.srv.observers() == 3, rig.srv.observers()


def test_reregistration_replaces_the_entry():
    rig = Rig()
    rig.register(token=b"same")
    rig.run(100)
    rig.register(token=b"same")
    rig.run(100)
    assert rig.srv.observers() == 1, rig.srv.observers()
    assert rig.srv.notify("temp") == 1


def test_large_notification_sends_only_the_first_block():
    big = b"x" * 100 + b"y" * 100
    rig = Rig(block_size=64, handler=lambda r: Response(CONTENT, big))
    rig.register()
    rig.run(100)
    rig.srv.notify("temp")
    rig.run(100)
    for t, d in rig.net.sent(SERVER, CLIENT):
        m = Message.decode(d)[1]
        assert m.payload == big[:64], m.payload
        assert m.get_uint(23) is not None and m.get_uint(23) >> 4 == 0, m.get_uint(23)
        assert m.get_uint(6) is not None, m.options


def test_fresh_serial_arithmetic():
    assert fresh(1, 0, 2, 10)
    assert not fresh(2, 0, 1, 10)
    assert fresh(0xFFFFFF, 0, 3, 10)  # wrapped
    assert not fresh(3, 0, 0xFFFFFF, 10)
    assert fresh(5, 0, 4, 128001)  # more than 128 s later: fresh anyway
    assert not fresh(5, 0, 5, 10)


# -- the client ---------------------------------------------------------------

def test_client_observe_gets_each_notification():
    rig = Rig(client=True)
    got = []
    ob = rig.client.observe(URI, lambda r: got.append(r.payload))
    rig.run(100)
    for v in (21, 22):
        rig.value = v
        rig.srv.notify("temp")
        rig.run(100)
    assert got == [b"20", b"21", b"22"], got
    assert ob.notifications == 3 and not ob.done, (ob.notifications, ob.done)


def test_client_acknowledges_con_notifications():
    rig = Rig(client=True, notify_con_every=1)
    got = []
    rig.client.observe(URI, lambda r: got.append(r.payload))
    rig.run(100)
    rig.srv.notify("temp")
    rig.run(100)
    acks = [d for t, d in rig.net.sent(CLIENT, SERVER) if mtype(d) == ACK]
    assert len(acks) == 1, acks
    assert rig.srv.observers() == 1, rig.srv.observers()
    assert got == [b"20", b"20"], got


def test_client_drops_reordered_notifications():
    net, c, s = pair()
    cl = Client(c)
    got = []
    ob = cl.observe(URI, lambda r: got.append(r.payload))
    net.run(10)
    req = Message.decode(net.sent(CLIENT, SERVER)[0][1])[1]

    def note(seq, payload, tid):
        m = Message(NON, CONTENT, payload, req.token)
        m.addOption(Option(6, seq))
        net.inject(SERVER, CLIENT, m.encode(tid))

    note(10, b"a", 100)
    note(12, b"c", 101)
    note(11, b"b", 102)  # older than 12: dropped
    note(13, b"d", 103)

    def on_rx(ep, rx):
        if ep is c:
            cl.handle(rx)

    net.run(100, on_rx)
    assert got == [b"a", b"c", b"d"], got
    assert ob.notifications == 3, ob.notifications


def test_client_reregisters_after_max_age():
    rig = Rig(client=True, handler=None)
    rig.res.handlers = (lambda r: Response(CONTENT, b"v", options=(Option(14, 2),)),) + rig.res.handlers[1:]
    ob = rig.client.observe(URI, None, margin_ms=1000)
    rig.run(100)
    for i in range(5):
        rig.client.process(0)
        rig.run(1000)
    assert ob.reregistrations >= 1, ob.reregistrations
    assert rig.srv.observers() == 1, rig.srv.observers()  # replaced, not doubled
    assert not ob.done, ob.error


def test_client_cancel_deregisters():
    rig = Rig(client=True)
    got = []
    ob = rig.client.observe(URI, lambda r: got.append(r.payload))
    rig.run(100)
    assert rig.srv.observers() == 1
    ob.cancel()
    rig.run(100)
    assert ob.done, ob.done
    assert rig.srv.observers() == 0, rig.srv.observers()
    rig.srv.notify("temp")
    rig.run(100)
    assert got == [b"20"], got


def test_client_observation_ends_when_not_registered():
    rig = Rig(client=True, max_observers=0)
    got = []
    ob = rig.client.observe(URI, lambda r: got.append(r.payload))
    rig.run(100)
    assert got == [b"20"] and ob.done and ob.error is None, (got, ob.done, ob.error)


def test_client_fetches_the_rest_of_a_large_notification():
    big = b"x" * 100 + b"y" * 100
    rig = Rig(client=True, block_size=64)
    rig.res.handlers = (lambda r: Response(CONTENT, big + b"%d" % rig.value),) + rig.res.handlers[1:]
    got = []
    rig.client.observe(URI, lambda r: got.append(r.payload))
    for i in range(5):
        rig.run(100)
    rig.value = 21
    rig.srv.notify("temp")
    for i in range(5):
        rig.run(100)
    assert got == [big + b"20", big + b"21"], got


def test_client_close_forgets_observations():
    # The EndPoint ignores an unmatched NON but rejects a CON with RST.
    rig = Rig(client=True, notify_con_every=1)
    ob = rig.client.observe(URI, None)
    rig.run(100)
    rig.client.close()
    assert ob.done, ob.done
    rig.srv.notify("temp")
    rig.run(100)
    assert rig.srv.observers() == 0, rig.srv.observers()  # answered RST
