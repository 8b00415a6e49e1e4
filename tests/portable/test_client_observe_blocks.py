# Notifications larger than a block (RFC 7959 §3.4): the Client's
# observation fetches the body with a GET and delivers it whole; against a
# server that notifies faster than its bodies can be fetched, or whose
# blocks never end, it keeps one GET at a time, so the client's table stays
# free for its other requests, and never delivers a first block as a body.
# Portable: CPython (pytest), the MicroPython VM and the unix port. Rules:
# module-level `def test_*()` only, asserts show their values, no pytest.
import support  # noqa: F401
from fakenet import CLIENT, SERVER, Net
from coapy_micro.block import block_option
from coapy_micro.client import Client
from coapy_micro.connection import Message
from coapy_micro.options import Option

CON, NON, ACK = 0, 1, 2
CONTENT = 69
URI = "coap://10.0.0.2/big"
SZX = 0  # blocks of 16 bytes


class BlockServer:
    """An observed resource whose body is `size` bytes (the state number in
    every 4 bytes); every notification carries its first block with Block2
    M set. GETs of the body are answered block by block after `delay_ms`;
    `endless`: every block says more follow. `gets` counts the GETs of the
    body, `in_flight` the most the client had running at once."""

    def __init__(self, size=40, endless=False, delay_ms=1, ep_kw=None, client_kw=None):
        self.net = Net()
        self.ep = self.net.endpoint(CLIENT, **(ep_kw or {}))
        self.c = Client(self.ep, **(client_kw or {}))
        self.size = size
        self.endless = endless
        self.delay_ms = delay_ms
        self.state = 0
        self.seq = 1
        self.tid = 0x100
        self.token = None
        self.gets = 0
        self.in_flight = 0
        send = self.net.send

        def hooked(src, dst, data):
            send(src, dst, data)
            if dst != SERVER:
                return
            t, m = Message.decode(data)
            if m.code != 1:
                return
            if m.get_uint(6) == 0:
                self.token = m.token
                reply = self.block(ACK, m.token, 0, True)
            else:
                self.gets += 1
                b = m.get_uint(23)
                reply = self.block(ACK, m.token, 0 if b is None else b >> 4, False)
            self.net.inject(SERVER, CLIENT, reply.encode(t), self.net.now + self.delay_ms)
        self.net.send = hooked

    def body(self):
        return (b"%04d" % self.state) * (self.size // 4)

    def block(self, mtype, token, num, observe):
        body = self.body()
        part = body[16 * num:16 * num + 16]
        more = self.endless or 16 * num + 16 < len(body)
        m = Message(mtype, CONTENT, part if part else b"z" * 16, token)
        if observe:
            self.seq += 1
            m.addOption(Option(6, self.seq))
        m.addOption(block_option(23, num, more, SZX))
        return m

    def notify(self):
        # The state changes, and a NON notification with its first block.
        self.state += 1
        self.tid += 1
        m = self.block(NON, self.token, 0, True)
        self.net.inject(SERVER, CLIENT, m.encode(self.tid), self.net.now + 1)

    def run(self, ms, step=10):
        end = self.net.now + ms
        while self.net.now < end:
            self.c.process(step)
            n = len(self.c.pending)
            if n > self.in_flight:
                self.in_flight = n


def observe(s):
    got = []
    ob = s.c.observe(URI, lambda r: got.append(bytes(r.payload)))
    s.run(200)
    return ob, got


def test_a_large_notification_is_delivered_whole():
    s = BlockServer()
    ob, got = observe(s)
    assert got == [s.body()], got  # the registration's answer, fetched whole
    for _ in range(3):
        s.notify()
        s.run(300)
    assert got[1:] == [b"%04d" % n * 10 for n in (1, 2, 3)], got
    assert ob.missed == 0 and s.in_flight == 1 and not ob.done, (ob.missed, s.in_flight)


def test_notifications_during_a_fetch_ask_for_one_more_fetch_not_one_each():
    s = BlockServer(delay_ms=100)  # each block takes 100 ms: a fetch 300 ms
    ob, got = observe(s)
    s.run(400)
    assert len(got) == 1 and s.gets == 3, (got, s.gets)
    for _ in range(5):  # 5 notifications within the next fetch
        s.notify()
        s.run(20)
    s.run(2000)
    # The first notification's fetch and one more for the four after it.
    assert s.gets == 3 + 3 + 3, s.gets
    assert s.in_flight == 1, s.in_flight
    assert got[-1] == s.body() == b"0005" * 10, got
    assert len(got) == 3 and ob.missed == 0, (got, ob.missed)


def test_a_server_faster_than_its_endless_bodies_cannot_fill_the_table():
    # Every notification asks for its body, whose blocks never end. Seen:
    # a GET per notification, the client's table full (CapacityError for
    # every other request) and 16-byte first blocks delivered as bodies.
    s = BlockServer(endless=True, client_kw={"max_body": 512})
    ob, got = observe(s)
    for _ in range(150):  # every 20 ms for 3 s
        s.notify()
        s.run(20)
    assert s.in_flight <= 1, s.in_flight
    assert got == [], got  # no first block delivered as a body
    assert ob.missed >= 1 and not ob.done, (ob.missed, ob.done)
    h = s.c.start("get", "coap://10.0.0.3/other")  # room for other requests
    assert not h.done, h


def test_a_large_notification_with_no_room_to_fetch_is_missed_not_cut_short():
    s = BlockServer(ep_kw={"max_in_flight": 4})
    ob, got = observe(s)
    assert len(got) == 1, got
    held = []
    try:
        while True:  # requests nobody answers, until the table is full
            held.append(s.c.start("get", "coap://10.0.0.3/x%d" % len(held)))
    except Exception as e:
        assert "in flight" in str(e), e
    s.notify()
    s.run(50)
    assert len(got) == 1 and ob.missed == 1, (got, ob.missed)
    for h in held:
        h.cancel()
    s.notify()
    s.run(300)
    assert got[-1] == b"0002" * 10 and ob.missed == 1, (got, ob.missed)


def test_ending_the_observation_cancels_its_fetch():
    s = BlockServer(delay_ms=100)
    ob, got = observe(s)
    s.run(400)
    s.notify()
    s.run(50)
    assert len(s.c.pending) == 1, s.c.pending  # the fetch
    ob.cancel()
    s.run(1000)
    assert s.c.pending == [] and len(got) == 1, (s.c.pending, got)
