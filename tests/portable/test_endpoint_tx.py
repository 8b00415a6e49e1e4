# What an EndPoint sends and how much it keeps (RFC 7252 §4.4, §4.7, §8.1):
# NSTART queueing, multicast without retransmission, the in-flight bound,
# message ids, tokens, is_multicast. Portable: CPython (pytest) and the VM.
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
import support
from fakenet import CLIENT, SERVER, Net, Seq, fixed, pair, tid
from coapy_micro.connection import CapacityError, EndPoint, Message, is_multicast

CON, NON, ACK, RST = Message.CON, Message.NON, Message.ACK, Message.RST
GET, POST, CHANGED, CONTENT = 1, 2, 68, 69
SERVER2 = ("10.0.0.3", 5683)


def piggyback(server):
    def on_rx(ep, rx):
        if ep is server and rx.message.code == GET:
            rx.ack(Message(ACK, CONTENT, payload=rx.message.payload))
    return on_rx


# -- NSTART (RFC 7252 §4.7) ----------------------------------------------------

def test_nstart_one_queues_cons_to_one_server():
    net, c, s = pair()
    net.links_both(CLIENT, SERVER, delay=10)
    net.socket(SERVER2)  # silent
    recs = [c.send(Message(CON, GET, token=b"n%d" % i, payload=b"%d" % i), SERVER) for i in range(3)]
    other = c.send(Message(CON, GET, token=b"o"), SERVER2)
    c.process(0)
    # The 2nd and 3rd wait (queued, not refused); another remote is not held back.
    assert net.times(CLIENT, SERVER) == [0] and net.times(CLIENT, SERVER2) == [0], net.log
    assert [r.created_time for r in recs] == [0, None, None], [r.created_time for r in recs]
    net.run(1000, piggyback(s))
    # Each goes out when the previous one's ACK arrives (10 ms each way).
    assert net.times(CLIENT, SERVER) == [0, 20, 40], net.times(CLIENT, SERVER)
    sent = [tid(d) for _, d in net.sent(CLIENT, SERVER)]
    assert sent == [r.transaction_id for r in recs], (sent, [r.transaction_id for r in recs])
    assert [r.response.message.payload for r in recs] == [b"0", b"1", b"2"], recs
    assert not other.done and other.response_type is None, other.response_type


def test_nstart_slot_frees_on_empty_ack():
    # An empty ACK ends the outstanding interaction: the next CON may go
    # while the first waits for its separate response.
    net, c, s = pair()
    net.links_both(CLIENT, SERVER, delay=10)
    first = c.send(Message(CON, GET, token=b"f"), SERVER)
    second = c.send(Message(CON, GET, token=b"s"), SERVER)
    c.process(0)
    s.process(10).ack()
    c.process(10)  # the empty ACK arrives at 20
    c.process(0)
    assert net.times(CLIENT, SERVER) == [0, 20], net.times(CLIENT, SERVER)
    assert not first.done and first.response_type == ACK, (first.done, first.response_type)
    assert second.created_time == 20, second.created_time


def test_nstart_two():
    net, c, s = pair(client={"nstart": 2})
    net.links_both(CLIENT, SERVER, delay=10)
    for i in range(3):
        c.send(Message(CON, GET, token=b"n%d" % i), SERVER)
    net.run(1000, piggyback(s))
    assert net.times(CLIENT, SERVER) == [0, 0, 20], net.times(CLIENT, SERVER)


def test_nstart_a_freed_slot_starts_only_its_peers_next_and_nstart_may_grow():
    # Queued CONs to two peers, NSTART 1: the ACK from one starts that
    # peer's next CON only; raising nstart lets the held-back ones go at
    # the next process(), and next_event_ms() says so before it.
    net, c, s = pair()
    s2 = net.endpoint(SERVER2)
    net.links_both(CLIENT, SERVER, delay=10)
    net.links_both(CLIENT, SERVER2, delay=10)
    ones = [c.send(Message(CON, GET, token=b"a%d" % i), SERVER) for i in range(3)]
    twos = [c.send(Message(CON, GET, token=b"b%d" % i), SERVER2) for i in range(3)]
    c.process(0)
    assert [r.created_time for r in ones + twos] == [0, None, None, 0, None, None], ones + twos
    s.process(10).ack(Message(ACK, CONTENT))  # only SERVER answers
    c.process(10)
    c.process(0)
    assert [r.created_time for r in ones + twos] == [0, 20, None, 0, None, None], (
        [r.created_time for r in ones + twos])
    assert c.next_event_ms(20) != 0, c.next_event_ms(20)  # the rest wait for an ACK
    c.nstart = 3
    assert c.next_event_ms(20) == 0, c.next_event_ms(20)
    c.process(0)
    assert [r.created_time for r in ones + twos] == [0, 20, 20, 0, 20, 20], (
        [r.created_time for r in ones + twos])
    assert s2.process(0) is not None


def test_nstart_slot_frees_when_a_con_gives_up():
    net = Net()
    c = net.endpoint(CLIENT, rand=fixed(0), max_retransmit=1)
    net.socket(SERVER)
    a = c.send(Message(CON, GET, token=b"a"), SERVER)
    b = c.send(Message(CON, GET, token=b"b"), SERVER)
    c.process(100000)
    # a: 0, 2000, gives up at 6000; then b: 6000, 8000, gives up at 12000.
    assert net.times(CLIENT, SERVER) == [0, 2000, 6000, 8000], net.times(CLIENT, SERVER)
    assert a.is_unacknowledged and b.is_unacknowledged, (a.is_unacknowledged, b.is_unacknowledged)


# -- multicast (RFC 7252 §8.1) ---------------------------------------------------

def test_no_retransmission_to_a_multicast_group():
    for group in (("224.0.1.187", 5683), ("ff02::fd", 5683, 0, 0), ("ff05::fd", 5683)):
        net = Net()
        c = net.endpoint(CLIENT, rand=fixed(0))
        rec = c.send(Message(CON, GET, token=b"m"), group)
        c.process(300000)
        assert net.times(CLIENT, group) == [0], (group, net.times(CLIENT, group))
        got = (rec.remaining_attempts, rec.is_unacknowledged)
        assert got == (0, False), (group, got)
    # Unicast, for contrast: MAX_RETRANSMIT retransmissions.
    c.send(Message(CON, GET, token=b"u"), SERVER)
    c.process(300000)
    assert len(net.times(CLIENT, SERVER)) == 5, net.times(CLIENT, SERVER)


# -- bounded in-flight table -----------------------------------------------------

def test_max_in_flight_raises_capacity_error():
    net = Net()
    c = net.endpoint(CLIENT, max_in_flight=2)
    net.socket(SERVER)
    a = c.send(Message(CON, GET, token=b"a"), SERVER)
    c.send(Message(NON, CONTENT, token=b"b"), SERVER)  # queued counts too
    e = support.raises(CapacityError, c.send, Message(CON, GET, token=b"c"), SERVER)
    assert "2" in str(e), str(e)
    c.process(0)  # the NON response is sent and forgotten: one slot frees
    c.send(Message(CON, GET, token=b"c"), SERVER)
    support.raises(CapacityError, c.send, Message(NON, GET, token=b"d"), SERVER)
    a.cancel()
    assert a.done, a.done
    c.send(Message(NON, GET, token=b"d"), SERVER)
    assert c.in_flight == 2, c.in_flight


# -- message ids and tokens (RFC 7252 §4.4, §5.3.1) ---------------------------

def test_transaction_ids_are_sequential_from_a_random_start_and_wrap():
    net = Net()
    c = net.endpoint(CLIENT, rand=fixed(65533))  # the random start
    net.socket(SERVER)
    recs = [c.send(Message(NON, CONTENT, token=b"%d" % i), SERVER) for i in range(4)]
    got = [r.transaction_id for r in recs]
    assert got == [65534, 65535, 0, 1], got
    c.process(0)
    sent = [tid(d) for _, d in net.sent(CLIENT, SERVER)]
    assert sent == got, (sent, got)
    assert c.next_transaction_id() == 2, c


def test_new_token_length():
    net = Net()
    for n in range(9):
        ep = net.endpoint(("10.0.1.%d" % n, 5683), token_length=n)
        t = ep.new_token()
        assert type(t) is bytes and len(t) == n, (n, t)
    assert len(net.endpoint(("10.0.2.1", 5683)).new_token()) == 4  # the default
    for bad in (-1, 9):
        support.raises(ValueError, EndPoint, token_length=bad, clock=net.clock,
                       socket_factory=lambda f, t, p: None, poll_factory=lambda: None)


def test_new_token_unique_among_requests_sent():
    # A random source that repeats a token in flight once, then moves on.
    r = Seq([0])
    net = Net()
    c = net.endpoint(CLIENT, rand=r)
    net.socket(SERVER)
    r.values = [1, 2, 3, 4]
    r.calls = 0
    t1 = c.new_token()
    c.send(Message(CON, GET, token=t1), SERVER)
    c.process(0)  # the request is on its way
    r.values = [1, 2, 3, 4, 5, 6, 7, 8]  # t1 again first, then 05060708
    r.calls = 0
    t2 = c.new_token()
    assert (t1, t2) == (b"\x01\x02\x03\x04", b"\x05\x06\x07\x08"), (t1, t2)


# Regression: new_token() once skipped QUEUED records when checking uniqueness,
# so a request queued behind NSTART could share a token with the one ahead.

def test_new_token_unique_among_queued_requests():
    r = Seq([0])
    net = Net()
    c = net.endpoint(CLIENT, rand=r)
    r.values = [1, 2, 3, 4, 1, 2, 3, 4, 5, 6, 7, 8]
    r.calls = 0
    t1 = c.new_token()
    c.send(Message(CON, GET, token=t1), SERVER)  # queued, not yet processed
    t2 = c.new_token()
    assert t1 != t2, (t1, t2)


def test_is_multicast_tuples():
    cases = (
        (("224.0.1.187", 5683), True), (("224.0.0.0", 1), True),
        (("239.255.255.255", 1), True), (("223.255.255.255", 1), False),
        (("240.0.0.1", 1), False), (("10.0.0.1", 5683), False),
        (("127.0.0.1", 5683), False), (("0.0.0.0", 0), False),
        (("ff02::fd", 5683, 0, 0), True), (("FF05::FD", 5683), True),
        (("ff0e::1", 5683, 0, 3), True), (("fe80::1", 5683, 0, 2), False),
        (("::1", 5683, 0, 0), False), (("2001:db8::1", 5683), False),
        (("localhost", 5683), False), ((b"224.0.1.187", 5683), True),
        ("224.0.1.187", True), ("10.1.2.3", False), ("ff02::1", True),
    )
    for addr, want in cases:
        assert is_multicast(addr) is want, (addr, want)


def sockaddr_in(a, b, c, d, port):
    # struct sockaddr_in as the MicroPython unix port returns it: family 2
    # (little-endian), port (big-endian), 4 address bytes, 8 bytes of zero.
    return bytes([2, 0, port >> 8, port & 255, a, b, c, d]) + bytes(8)


def sockaddr_in6(addr16, port, scope=0):
    # struct sockaddr_in6: family 10 (LE), port (BE), flowinfo, address, scope id.
    return (bytes([10, 0, port >> 8, port & 255, 0, 0, 0, 0]) + addr16
            + bytes([scope & 255, 0, 0, 0]))


def test_is_multicast_raw_sockaddr_bytes():
    ff02_fd = bytes([0xFF, 0x02]) + bytes(13) + bytes([0xFD])
    loop6 = bytes(15) + bytes([1])
    fe80 = bytes([0xFE, 0x80]) + bytes(13) + bytes([1])
    cases = (
        (sockaddr_in(224, 0, 1, 187, 5683), True),
        (sockaddr_in(239, 1, 2, 3, 5683), True),
        (sockaddr_in(223, 0, 1, 187, 5683), False),
        (sockaddr_in(240, 0, 0, 1, 5683), False),
        (sockaddr_in(127, 0, 0, 1, 5683), False),
        (sockaddr_in(10, 224, 224, 224, 57568), False),  # 224s elsewhere
        (sockaddr_in6(ff02_fd, 5683), True),
        (sockaddr_in6(loop6, 5683), False),
        (sockaddr_in6(fe80, 5683, 2), False),
        (sockaddr_in6(loop6, 0xFFFF), False),  # 0xff in the port, not the address
        (bytearray(sockaddr_in(224, 0, 1, 187, 5683)), True),
    )
    for addr, want in cases:
        assert len(addr) in (16, 28), len(addr)
        assert is_multicast(addr) is want, (addr, want)


def test_is_multicast_allocates_nothing_for_a_tuple():
    # Every send asks it, for the answer to every NON request and notification.
    for addr, want in ((("10.0.0.1", 5683), False), (("224.0.1.187", 5683), True),
                       (("ff02::fd", 5683, 0, 0), True), (("fe80::1", 5683, 0, 0), False),
                       (("2240.0.0.1", 1), False), (("node.local", 5683), False)):
        assert is_multicast(addr) is want, (addr, want)
        support.assert_no_alloc(is_multicast, addr)
    if not support.IS_MICROPYTHON:
        raise support.Skip("allocation is measured in the MicroPython VM")


# Regression: past 32 records the EndPoint indexes them, the CONs awaiting
# their ACK by remote; an address given as a bytearray (raw sockaddr bytes,
# as the unix port's getaddrinfo result may be copied) is not hashable, and
# the 33rd request to such a remote raised TypeError.

class _AnyAddress:
    def __init__(self):
        self.sent = []

    def setblocking(self, flag):
        pass

    def sendto(self, data, addr):
        self.sent.append(addr)
        return len(data)

    def recvfrom(self, n):
        raise OSError(11)


class _Never:
    def register(self, sock, events):
        pass

    def poll(self, timeout=-1):
        return []


def test_a_large_table_takes_addresses_given_as_bytearray():
    sock = _AnyAddress()
    ep = EndPoint(max_in_flight=64, socket_factory=lambda f, t, p: sock, poll_factory=_Never,
                  clock=lambda: 1000, rand=fixed(0))
    remote = bytearray(b"\x02\x00\x16\x33\x7f\x00\x00\x01" + bytes(8))
    recs = [ep.send(Message(CON, GET, token=b"t%d" % i), remote) for i in range(40)]
    ep.process(0)
    assert len(sock.sent) == 1 and ep.in_flight == 40, (len(sock.sent), ep.in_flight)  # NSTART
    recs[0].cancel()  # its NSTART slot frees: the next one goes
    ep.process(0)
    assert len(sock.sent) == 2 and recs[1].created_time is not None, len(sock.sent)
    for r in recs:
        r.cancel()
    assert ep.in_flight == 0, ep.in_flight


# -- the transmission table (coapy_micro/transactions.py) ---------------------

def test_the_table_is_made_at_the_first_send_and_only_then():
    net, c, s = pair()
    # Receiving, answering and asking for the time of the next event need no
    # table: a node that only answers never makes one.
    assert c.in_flight == 0 and c.next_event_ms(0) == -1, (c.in_flight, c.next_event_ms(0))
    assert c.process(0) is None
    t = c.transmissions()
    assert t is c.transmissions() and t.records == [] and c.in_flight == 0, t.records
    rec = c.send(Message(CON, GET, token=b"t1"), SERVER)
    assert c.transmissions() is t and t.records == [rec] and c.in_flight == 1, t.records
    assert c.next_event_ms(0) == 0  # its first transmission is due
    net.run(100, piggyback(s))
    assert rec.done and rec.response.message.code == CONTENT and t.records == [], t.records


def test_transmit_sends_once_and_says_why_it_could_not():
    net, c, s = pair()
    m = Message(NON, GET, token=b"x1")
    assert c.transmit(m, 0x1234, SERVER) is None
    got = net.sent(CLIENT, SERVER)
    assert len(got) == 1 and tid(got[0][1]) == 0x1234, got
    assert c.in_flight == 0  # no record: nothing retransmitted, nothing waits
    big = Message(NON, POST, payload=b"x" * 2000, token=b"x2")
    assert c.transmit(big, 0x1235, SERVER) == 90  # EMSGSIZE: larger than max_message_size
    assert len(net.sent(CLIENT, SERVER)) == 1, net.sent(CLIENT, SERVER)


def test_an_ack_or_a_response_before_any_send_is_dropped_as_unmatched():
    net, c, s = pair()
    # No table yet: an ACK matches nothing (ignored), a CON response is
    # rejected with RST (RFC 7252 §4.2, §5.3.2), a NON one dropped.
    s.transmit(Message(ACK, CONTENT, token=b"a"), 0x2000, CLIENT)
    s.transmit(Message(CON, CONTENT, token=b"b"), 0x2001, CLIENT)
    s.transmit(Message(NON, CONTENT, token=b"c"), 0x2002, CLIENT)
    assert c.process(0) is None and c.process(0) is None and c.process(0) is None
    rst = net.sent(CLIENT, SERVER)
    assert [(d[0] >> 4 & 3, tid(d)) for _, d in rst] == [(RST, 0x2001)], rst
    assert c.dropped == 3 and c.in_flight == 0, (c.dropped, c.in_flight)
