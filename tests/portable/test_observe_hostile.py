# Observe (RFC 7641) on the Server with observers that vanish or come by
# the hundred: a vanished observer goes after MAX_TRANSMIT_SPAN however fast
# the resource changes (§4.5, §4.5.2), a newer state takes the place of a
# CON in flight and keeps its retransmission counter and timeout, CON
# notifications never take every in-flight place, a round reaches every
# observer, a representation is rendered once per group of observers that
# asked the same, and a round allocates little per observer.
# Portable: CPython (pytest) and the MicroPython VM, on fakenet.
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
import support
from fakenet import CLIENT, SERVER, HandOver, HandOverPoller, Net, mtype, tid
from coapy_micro.connection import EndPoint, Message
from coapy_micro.options import Option
from coapy_micro.server import Resource, Server

CON, NON, ACK, RST = Message.CON, Message.NON, Message.ACK, Message.RST
GET = 1
CONTENT = 69
GONE = ("10.0.0.9", 5683)  # an observer that registered and vanished


class Rig:
    """A Server with an observable /temp on fakenet (ack_timeout 1 s, no
    random factor: exact schedules), observers that are bare sockets
    (they never answer) or a raw client EndPoint (CLIENT) that ACKs."""

    def __init__(self, ep_kw=None, client_kw=None, **srv_kw):
        self.net = Net()
        kw = {"ack_timeout_ms": 1000, "ack_random_factor": 1.0}
        kw.update(ep_kw or {})
        self.s = self.net.endpoint(SERVER, **kw)
        self.srv = Server(self.s, **srv_kw)
        self.state = 0
        self.calls = 0
        self.res = self.srv.add("temp", Resource(get=self.get, obs=True, ct=(0, 50)))
        self.c = None
        if client_kw is not None:
            self.c = self.net.endpoint(CLIENT, **client_kw)
        self.got = []  # (mtype, payload) the client received
        self.mid = 0x100

    def get(self, request):
        self.calls += 1
        if request.accept == 50:
            return (CONTENT, b'{"v":%d}' % self.state)
        return (CONTENT, b"%d" % self.state)

    def on_rx(self, ep, rx):
        if ep is self.s:
            self.srv.handle(rx)
        else:
            self.got.append((rx.message.transaction_type, rx.message.payload))
            if rx.message.transaction_type == CON:
                rx.ack()

    def run(self, ms):
        self.net.run(ms, self.on_rx)

    def observe_from(self, sock, token, accept=None, query=None):
        """Register with a bare socket (a raw CON GET with Observe 0)."""
        m = Message(CON, GET, b"", token, uri_path="temp", observe=0, accept=accept,
                    uri_query=query)
        self.mid += 1
        sock.sendto(m.encode(self.mid), SERVER)

    def observe(self, token=b"ob"):
        """Register with the client EndPoint, which ACKs every CON."""
        m = Message(CON, GET, b"", token, uri_path="temp", observe=0)
        rec = self.c.send(m, SERVER)
        rec.several_responses = True
        return rec

    def notes(self, dst):
        """(ms, type, Message ID, Observe, payload) of each notification
        sent to dst (lost ones too: fakenet logs every datagram; the answer
        to the registration, piggybacked on its ACK, is not one)."""
        out = []
        for t, d in self.net.sent(SERVER, dst):
            m = Message.decode(d)[1]
            if m.code and mtype(d) != ACK and m.get_uint(6) is not None:
                out.append((t, mtype(d), tid(d), m.get_uint(6), m.payload))
        return out


def test_a_vanished_observer_goes_after_max_transmit_span():
    # RFC 7641 §4.5: an observer whose CON notification is not acknowledged
    # is removed. The state changes every 300 ms, far faster than the CON
    # times out: each newer state takes the place of the one in transit and
    # keeps its retransmission counter and timeout (§4.5.2), so the CON still
    # gives up after MAX_TRANSMIT_SPAN (here 1+2+4+8 s) plus its last wait.
    rig = Rig()
    gone = rig.net.socket(GONE)
    rig.observe_from(gone, b"g1")
    rig.run(100)
    assert rig.srv.observers() == 1, rig.srv.observers()
    t_gone = None
    for i in range(650):  # 195 s
        rig.state = i
        rig.srv.notify("temp")
        rig.run(300)
        if t_gone is None and rig.srv.observers() == 0:
            t_gone = rig.net.now
    sent = rig.notes(GONE)
    cons = [x for x in sent if x[1] == CON]
    assert t_gone is not None, (len(sent), rig.srv.observers())
    # The first CON is the 20th notification (Server(notify_con_every=20));
    # MAX_TRANSMIT_WAIT after it (31 s, one notification's wait of slack)
    # the observer is gone, having had 19 NON and 5 transmissions of the CON.
    assert t_gone - cons[0][0] <= 31000 + 300, (cons[0][0], t_gone)
    assert len(sent) == 24 and len(cons) == 5, (len(sent), len(cons))
    assert rig.s.in_flight == 0, rig.s.in_flight


def test_a_newer_state_keeps_the_retransmission_schedule_of_the_con_in_flight():
    # RFC 7641 §4.5.2: the newer notification goes out in place of the CON
    # in transit, with a new Message ID, on that CON's retransmission
    # counter and timeout: transmissions at 0, 1, 3, 7, 15 s, then nothing.
    rig = Rig(notify_con_every=1)
    gone = rig.net.socket(GONE)
    rig.observe_from(gone, b"g2")
    rig.run(100)
    start = rig.net.now
    for i in range(400):  # every 100 ms for 40 s
        rig.state = i
        rig.srv.notify(rig.res)
        rig.run(100)
    sent = rig.notes(GONE)
    times = [x[0] - start for x in sent]
    assert times == [0, 1000, 3000, 7000, 15000], times
    assert [x[1] for x in sent] == [CON] * 5, sent
    mids = [x[2] for x in sent]
    assert len(set(mids)) == 5, mids  # each state a message of its own
    seqs = [x[3] for x in sent]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5, seqs
    # Each carried the newest state of its moment (a timer that fires at
    # the end of a 100 ms step goes before the next state is notified).
    assert [x[4] for x in sent] == [b"0", b"9", b"29", b"69", b"149"], sent
    assert rig.srv.observers() == 0 and rig.s.in_flight == 0, (rig.srv.observers(), rig.s.in_flight)


def test_an_observer_busy_with_a_con_gets_the_newest_state_once_it_acknowledges():
    # States 1, 2, 3 within one round trip: 1 goes as CON; 2 and 3 replace
    # each other while it awaits its ACK; the ACK (the observer is there)
    # sends 3 at once. 2 is never sent: the observer has the newest state.
    rig = Rig(notify_con_every=1, client_kw={})
    rig.net.link(CLIENT, SERVER, delay=500)
    rig.observe()
    rig.run(1000)
    del rig.got[:]
    for v in (1, 2, 3):
        rig.state = v
        rig.srv.notify("temp")
        rig.run(100)
    rig.run(2000)
    pays = [x[4] for x in rig.notes(CLIENT)]
    assert pays == [b"1", b"3"], pays
    assert rig.got == [(CON, b"1"), (CON, b"3")], rig.got
    assert rig.srv.observers() == 1 and rig.s.in_flight == 0, (rig.srv.observers(), rig.s.in_flight)


def test_vanished_observers_leave_room_for_requests():
    # Eight observers that never answer, a CON with every notification, and the
    # EndPoint's default of 8 transmissions in flight: CON notifications
    # hold at most half of them, so a NON request still gets its NON answer
    # (which needs a place) and no error is reported.
    rig = Rig(notify_con_every=1, client_kw={"max_in_flight": 64}, max_observers_per_resource=8)
    rig.srv.add("hello", Resource(get=lambda r: (CONTENT, b"hi")))
    for k in range(8):
        rig.observe_from(rig.net.socket(("10.0.1.%d" % k, 5683)), b"v%d" % k)
    rig.run(100)
    assert rig.srv.observers() == 8, rig.srv.observers()
    asked = 0
    worst = 0
    for i in range(60):  # 18 s, within MAX_TRANSMIT_SPAN: they are all still there
        rig.state = i
        rig.srv.notify("temp")
        if i % 3 == 0:
            rig.c.send(Message(NON, GET, b"", b"q%d" % i, uri_path="hello"), SERVER)
            asked += 1
        rig.run(300)
        if rig.s.in_flight > worst:
            worst = rig.s.in_flight
    answers = [x for x in rig.got if x[1] == b"hi"]
    assert len(answers) == asked, (len(answers), asked)
    assert worst <= 5, worst  # 4 CON notifications + an answer on its way
    assert rig.srv.errors == 0, rig.srv.errors


def test_a_round_to_256_observers_with_8_in_flight_reaches_every_one():
    # Server(max_observers=256) on an EndPoint with max_in_flight=8: a NON
    # notification holds no place in flight, CONs at most 4, so every
    # observer gets every state, or (busy with a CON) the newest one later.
    rig = Rig(max_observers=256, max_observers_per_resource=256, notify_con_every=5)
    seen = {}  # address -> [notifications, first payload, last Observe, in order]

    def fold():
        # What the server sent, per observer; the log goes (a board-sized
        # heap runs this test too: 3,000 datagrams kept would not fit).
        for e in rig.net.log:
            if e[1] != SERVER or mtype(e[3]) == ACK:
                continue
            m = Message.decode(e[3])[1]
            v = seen.get(e[2])
            seq = m.get_uint(6)
            if v is None:
                seen[e[2]] = [1, m.payload, seq, True]
            else:
                v[0] += 1
                v[3] = v[3] and seq > v[2]
                v[2] = seq
        del rig.net.log[:]

    for k in range(256):
        rig.observe_from(rig.net.socket(("10.2.%d.%d" % (k >> 4, k & 15), 5683)), b"o%d" % k)
        if k % 16 == 15:
            rig.run(10)
            fold()
    rig.run(100)
    fold()
    assert rig.srv.observers() == 256, rig.srv.observers()
    counts = []
    for i in range(12):
        rig.state = 1000 + i
        counts.append(rig.srv.notify("temp"))
        rig.run(300)
        fold()
        assert rig.s.in_flight <= 4, (i, rig.s.in_flight)
    assert counts == [256] * 12, counts
    assert rig.srv.errors == 0, rig.srv.errors
    assert len(seen) == 256, len(seen)
    # Everyone got the first round, in order from then on.
    assert [a for a in seen if seen[a][1] != b"1000" or not seen[a][3]] == [], seen
    # Four observers at a time take their CON (and keep it: none of them
    # answers); meanwhile every other observer got each state as NON.
    got = [v[0] for v in seen.values()]
    assert min(got) >= 6 and max(got) == 12, (min(got), max(got))


def test_a_round_renders_once_per_group_of_observers_that_asked_the_same():
    # Six observers: three plain, two with Accept 50, one with a query. The
    # GET handler runs once per group (3 times), not once per observer, and
    # each observer gets the representation its own request asked for.
    rig = Rig(max_observers_per_resource=6)
    socks = []
    for k, (accept, query) in enumerate(((None, None), (50, None), (None, None),
                                          (50, None), (None, "u=c"), (None, None))):
        a = ("10.3.0.%d" % k, 5683)
        socks.append(a)
        rig.observe_from(rig.net.socket(a), b"r%d" % k, accept, query)
    rig.run(100)
    assert rig.srv.observers() == 6 and rig.calls == 6, (rig.srv.observers(), rig.calls)
    rig.state = 7
    assert rig.srv.notify("temp") == 6
    rig.run(100)
    assert rig.calls == 9, rig.calls
    last = [rig.notes(a)[-1] for a in socks]
    assert [x[4] for x in last] == [b"7", b'{"v":7}', b"7", b'{"v":7}', b"7", b"7"], last
    cfs = [Message.decode(rig.net.sent(SERVER, a)[-1][1])[1].get_uint(12) for a in socks]
    assert cfs == [None, 50, None, 50, None, None], cfs


# -- allocation ----------------------------------------------------------------


def _quiet_server(n):
    ep = EndPoint(clock=lambda: 1000, rand=lambda n: 0, socket_factory=lambda f, t, p: HandOver(),
                  poll_factory=HandOverPoller)
    srv = Server(ep, max_observers=n, max_observers_per_resource=n, notify_con_every=1000)
    state = [0]
    res = srv.add("temp", Resource(get=lambda r: (CONTENT, b"%d" % state[0]), obs=True, ct=0))
    for k in range(n):
        m = Message(CON, GET, b"", b"a%d" % k, uri_path="temp", observe=0)
        srv.handle(_Rx(ep, m.encode(k + 1), ("10.4.0.%d" % k, 5683)))
    return srv, res, state


def _Rx(ep, data, addr):
    from coapy_micro.connection import ReceptionRecord

    return ReceptionRecord(ep, data, addr)


def _round(srv, res, state):
    state[0] += 1
    srv.notify(res)


def test_a_notification_round_allocates_at_most_128_bytes_per_observer():
    one = _quiet_server(1)
    many = _quiet_server(16)
    assert one[0].observers() == 1 and many[0].observers() == 16, many[0].observers()
    for rig in (one, many):
        _round(*rig)  # the first round makes each observer's record and message
        _round(*rig)
    a1 = support.alloc_bytes(_round, *one)
    a16 = support.alloc_bytes(_round, *many)
    if a1 is None:
        raise support.Skip("allocation is measured in the MicroPython VM")
    # One notification to one observer, the handler's share included: 128
    # bytes on a 32-bit board (the VM); objects take about twice as much on
    # the 64-bit unix port.
    assert a1 <= 128 * support.WORD_BYTES // 4, a1
    assert a16 <= 16 * 128, (a16, a16 // 16)
    # What each further observer costs: its datagram, not a representation.
    assert a16 - a1 <= 15 * 32, (a1, a16, (a16 - a1) // 15)


def test_a_notification_that_cannot_be_built_ends_the_observations_with_500():
    # RFC 7641 §4.2: an error notification ends the observation. A handler
    # whose answer cannot be made into a message (an option that is none)
    # is reported once per group, not once per observer.
    rig = Rig(max_observers_per_resource=3)
    errors = []
    rig.srv.on_error = lambda r, e: errors.append(e)
    for k in range(3):
        rig.observe_from(rig.net.socket(("10.5.0.%d" % k, 5683)), b"e%d" % k)
    rig.run(100)
    assert rig.srv.observers() == 3, rig.srv.observers()
    rig.res.handlers = (lambda r: (CONTENT, b"x", None, ("not an option",)),) + rig.res.handlers[1:]
    assert rig.srv.notify("temp") == 3
    rig.run(100)
    codes = [Message.decode(rig.net.sent(SERVER, ("10.5.0.%d" % k, 5683))[-1][1])[1].code
             for k in range(3)]
    assert codes == [160, 160, 160], codes
    assert rig.srv.observers() == 0 and len(errors) == 1, (rig.srv.observers(), errors)
