# The Client's observations (RFC 7641 §3.3.1, §3.4) against a scripted
# server on the fake network: Max-Age from the network is clamped before it
# meets ticks (a week, 2**32-1 s, a 9-byte value), on_end, and the work a
# round costs with many observations, counted (not timed): a response is
# found by its record, not by a scan, and process() looks only at the
# observations that wait for an answer or whose time has come.
# Portable: CPython (pytest), the MicroPython VM and the unix port. Rules:
# module-level `def test_*()` only, asserts show their values, no pytest.
import support  # noqa: F401
from fakenet import CLIENT, SERVER, Net
from coapy_micro.client import Client
from coapy_micro.client_observe import MAX_AGE_CAP_S, Observation
from coapy_micro.connection import Message
from coapy_micro.options import Option

CON, NON, ACK, RST = 0, 1, 2, 3
CONTENT = 69
URI = "coap://10.0.0.2/x"


class Server:
    """Answers each registration (a GET with Observe 0) piggybacked, with
    Observe and `max_age` (an int, or the raw bytes of the option; None:
    no Max-Age). notify(token) sends a NON notification on a token.
    `registrations` counts the GETs with Observe 0."""

    def __init__(self, max_age=None, ep_kw=None, answer=True):
        self.net = Net()
        self.ep = self.net.endpoint(CLIENT, **(ep_kw or {}))
        self.c = Client(self.ep)
        self.max_age = max_age
        self.answer = answer
        self.registrations = 0
        self.tokens = []  # of the registrations, in order
        self.seq = 1
        self.tid = 0x100
        send = self.net.send

        def hooked(src, dst, data):
            send(src, dst, data)
            if dst != SERVER:
                return
            t, m = Message.decode(data)
            if m.code != 1 or m.get_uint(6) != 0:
                return
            self.registrations += 1
            self.tokens.append(m.token)
            if self.answer:
                self.net.inject(SERVER, CLIENT, self.note(ACK, m.token).encode(t), self.net.now + 1)
        self.net.send = hooked

    def age_of(self, token):
        return self.max_age

    def note(self, mtype, token):
        self.seq += 1
        m = Message(mtype, CONTENT, b"%d" % self.seq, token)
        m.addOption(Option(6, self.seq))
        if self.max_age is not None:
            m.addOption(Option(14, self.age_of(token)))
        return m

    def notify(self, token):
        self.tid += 1
        self.net.inject(SERVER, CLIENT, self.note(NON, token).encode(self.tid), self.net.now + 1)

    def run(self, ms, step=100):
        end = self.net.now + ms
        while self.net.now < end:
            self.c.process(step)


# -- Max-Age from the network ----------------------------------------------------

def test_max_age_of_a_week_does_not_reregister_on_every_notification():
    # Seen: on CPython a re-registration after every notification (143,505
    # in 10 s); in the 32-bit VM process() raised OverflowError.
    s = Server(max_age=604800)
    ob = s.c.observe(URI)
    s.run(100)
    for i in range(100):  # a notification every 100 ms for 10 s
        s.notify(ob.token)
        s.run(100)
    assert s.registrations == 1, s.registrations
    assert ob.notifications == 101 and not ob.done, (ob.notifications, ob.error)


def test_max_age_beyond_four_bytes_is_clamped():
    # Seen: a 9-byte Max-Age raised OverflowError on the unix port; 2**32-1
    # seconds, the largest the RFC allows, must not wrap either.
    for raw in (b"\xff" * 9, 0xFFFFFFFF):
        s = Server(max_age=raw)
        ob = s.c.observe(URI)
        s.run(100)
        for i in range(20):
            s.notify(ob.token)
            s.run(100)
        assert s.registrations == 1 and not ob.done, (raw, s.registrations, ob.error)


def test_a_long_max_age_reregisters_after_a_day_at_most():
    # RFC 7641 §3.3.1: a client may register again at any time; a Max-Age
    # longer than MAX_AGE_CAP_S (a day) re-registers after the cap.
    s = Server(max_age=604800)
    ob = s.c.observe(URI, margin_ms=5000)
    s.run(100)
    start = s.net.now
    cap_ms = MAX_AGE_CAP_S * 1000 + 5000
    s.c.process(cap_ms - 1000)  # nothing for almost a day
    assert s.registrations == 1, (s.registrations, s.net.now)
    s.run(5000)
    assert s.registrations == 2 and ob.reregistrations == 1, (s.registrations, s.net.now)
    assert cap_ms <= s.net.now - start + 100 <= cap_ms + 5100, s.net.now - start
    assert not ob.done, ob.error


def test_max_age_expiring_reregisters_on_time():
    s = Server(max_age=2)
    ob = s.c.observe(URI, margin_ms=1000)
    s.run(100)
    s.run(2500)
    assert s.registrations == 1, s.registrations
    s.run(1000)  # 3 s after the last answer: registered again
    assert s.registrations == 2 and ob.reregistrations == 1, (s.registrations, s.net.now)


def test_a_reordered_notification_does_not_move_the_time_to_register_again():
    # An older notification (a lower Observe number, RFC 7641 §3.4) is
    # dropped, its Max-Age with it: it says nothing about how fresh the
    # newer one already taken is (§3.3.1). Once, its Max-Age of 1 s had the
    # observation registered again 2 s later, where the newer one's 60 s held.
    s = Server(max_age=60)
    ob = s.c.observe(URI, margin_ms=1000)
    s.run(100)
    assert s.registrations == 1 and ob.notifications == 1, (s.registrations, ob.notifications)
    old = Message(NON, CONTENT, b"old", s.tokens[0])
    old.addOption(Option(6, s.seq - 1))  # older than the one taken
    old.addOption(Option(14, 1))
    s.net.inject(SERVER, CLIENT, old.encode(0x7777), s.net.now + 1)
    s.run(4000)
    assert ob.notifications == 1 and ob.last.payload != b"old", ob.last.payload
    assert s.registrations == 1 and ob.reregistrations == 0, (s.registrations, s.net.now)


# -- on_end ------------------------------------------------------------------------

def test_on_end_is_called_once_whatever_ends_it():
    ended = []
    s = Server(max_age=60)
    a = s.c.observe(URI)
    b = s.c.observe(URI)
    a.on_end = ended.append
    b.on_end = ended.append
    s.run(100)
    a.cancel()
    a.cancel()
    s.net.inject(SERVER, CLIENT, bytes([0x70, 0, 0, 0]), s.net.now)  # RST, matches nothing
    rst = Message(RST, 0)
    assert ended == [a], ended
    # b: an error notification ends it (RFC 7641 §4.2)
    m = Message(NON, 132, b"gone", b.token)
    s.net.inject(SERVER, CLIENT, m.encode(0x999), s.net.now + 1)
    s.run(100)
    assert ended == [a, b] and b.done and b.error is not None, (ended, b.error)
    assert s.c.observations == [] and rst is not None, s.c.observations


def test_an_unanswered_registration_ends_and_is_forgotten():
    ended = []
    s = Server(answer=False)
    ob = s.c.observe(URI)
    ob.on_end = ended.append
    s.run(120000, 1000)
    assert ob.done and ended == [ob], (ob.done, ended)
    assert s.c.observations == [], s.c.observations


# -- work per round, counted ---------------------------------------------------------

class Counting(Observation):
    """An Observation that counts the calls the client makes on it and the
    times its record is read."""

    checks = 0
    waits = 0
    reads = 0

    def _get_record(self):
        Counting.reads += 1
        return self._rec

    def _set_record(self, rec):
        self._rec = rec

    record = property(_get_record, _set_record)

    def check(self, now):
        Counting.checks += 1
        Observation.check(self, now)

    def wait_ms(self, now):
        Counting.waits += 1
        return Observation.wait_ms(self, now)

    @staticmethod
    def reset():
        Counting.checks = Counting.waits = Counting.reads = 0


N = 150  # observations on one Client (the gateway measured 1,000)


def many(n=N, max_age=60):
    s = Server(max_age=max_age, ep_kw={"max_in_flight": n + 8})
    s.c.set_hook("observe", Counting)
    obs = [s.c.observe(URI) for i in range(n)]
    s.run(200)
    assert all(o.notifications == 1 for o in obs), [o.notifications for o in obs]
    return s, obs


def test_a_notification_is_matched_without_a_scan():
    # Seen: handle() compared the record of every observation in turn.
    s, obs = many()
    for which in (0, N // 2, N - 1):
        Counting.reset()
        s.notify(obs[which].token)
        s.c.process(10)
        assert obs[which].notifications == 2, obs[which].notifications
        assert Counting.reads <= 3, (which, Counting.reads)  # was: up to N


def test_process_walks_no_observation_until_one_has_a_time():
    # Seen: every process() called check() and wait_ms() on every observation.
    s, obs = many()
    Counting.reset()
    for i in range(50):
        s.c.process(100)  # 5 s: nothing is due before Max-Age (60 s) + margin
    assert (Counting.checks, Counting.waits) == (0, 0), (Counting.checks, Counting.waits)
    # Notifications keep them fresh: still nothing to walk.
    for o in obs[:10]:
        s.notify(o.token)
    s.run(1000)
    assert Counting.checks == 0 and Counting.waits == 10, (Counting.checks, Counting.waits)


def test_when_max_age_passes_each_observation_is_checked_once():
    s, obs = many()
    Counting.reset()
    s.run(66000, 1000)  # 60 s Max-Age + 5 s margin, no notifications: all renew
    assert s.registrations == 2 * N, s.registrations
    assert all(o.reregistrations == 1 and not o.done for o in obs), [o.reregistrations for o in obs]
    # One walk at the due time; the re-registrations waiting for their
    # answers (one at a time here: NSTART) are not checked again.
    assert Counting.checks == N, Counting.checks
    Counting.reset()
    s.run(5000, 100)
    assert (Counting.checks, Counting.waits) == (0, 0), (Counting.checks, Counting.waits)


def test_observations_with_different_max_ages_renew_each_at_its_time():
    s = Server(max_age=2)
    a = s.c.observe(URI, margin_ms=0)
    b = s.c.observe(URI, margin_ms=0)
    s.age_of = lambda token: 2 if token == a.token else 30
    s.run(10000)  # a renews every ~2 s (its answers carry Max-Age 2), b not at all
    assert 4 <= a.reregistrations <= 5 and b.reregistrations == 0, (a.reregistrations,
                                                                     b.reregistrations)
    # (a re-registration made in the last round goes out in the next)
    assert 1 + a.reregistrations <= s.registrations <= 2 + a.reregistrations, s.registrations
    s.run(25000)
    assert b.reregistrations == 1, b.reregistrations


def test_matching_a_notification_allocates_nothing():
    # On a board the record -> observation lookup must not allocate: a
    # reordered notification (dropped, §3.4) is handled without the heap.
    s = Server(max_age=60, ep_kw={"max_in_flight": 24})
    net = s.net
    s.c = Client(s.ep, clock=lambda: net.now)  # fakenet's clock takes a long int modulo
    obs = [s.c.observe(URI) for i in range(16)]
    s.run(200)
    target = obs[9]
    s.notify(target.token)
    s.run(100)
    old = Message(NON, CONTENT, b"old", target.token)
    old.addOption(Option(6, 1))  # older than what it has: reordered
    s.net.inject(SERVER, CLIENT, old.encode(0x4321), s.net.now)
    rx = s.ep.process(10)
    assert rx is not None and rx.pertains_to is target.record, rx
    n = target.notifications
    s.c.handle(rx)  # once to settle what a first call may set up
    support.assert_no_alloc(s.c.handle, rx)
    assert target.notifications == n, (target.notifications, n)


# -- the options a notification is read for ---------------------------------------

def test_notifications_carry_their_content_format_read_in_the_same_walk():
    # The Observation reads Observe, Content-Format, Max-Age and Block2 in
    # one walk and hands the Content-Format to the Response: what the
    # callback sees is what the datagram says, absent included, and the
    # same as a Response that reads it when asked (Response(rx)).
    from coapy_micro.outcome import Response

    s = Server(max_age=60)
    got = []
    ob = s.c.observe(URI, callback=lambda r: got.append(
        (r.content_format, Response(r.rx).content_format, bytes(r.payload), r.code, r.remote)))
    s.run(100)
    assert len(got) == 1 and got[0][:2] == (None, None), got
    for n, cf in ((1, 50), (2, None), (3, 0), (4, 65535)):
        m = Message(NON, CONTENT, b"v%d" % n, ob.token)
        m.addOption(Option(6, 100 + n))
        m.addOption(Option(10, b"x"))  # an unregistered elective option between them
        if cf is not None:
            m.addOption(Option(12, cf))
        m.addOption(Option(14, 30))
        s.net.inject(SERVER, CLIENT, m.encode(0x200 + n), s.net.now + 1)
        s.run(100)
        assert got[-1][:4] == (cf, cf, b"v%d" % n, CONTENT), (n, got[-1])
        assert got[-1][4] == SERVER, got[-1]
    assert ob.notifications == 5 and not ob.done, (ob.notifications, ob.error)
    assert s.registrations == 1, s.registrations
