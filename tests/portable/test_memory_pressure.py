# Running out of memory: a MemoryError never leaves EndPoint.process(),
# Server.process() or Server.serve(); the datagram concerned is dropped and
# counted (memory_errors), and the loop recovers. Here the shortage is made
# by the socket or the handler, so it is the same on every runtime; the
# unix port also runs it for real in a small fixed heap
# (tests/test_small_heap.py).
# Portable: CPython (pytest), the MicroPython VM and the unix port.
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
from fakenet import ROGUE, SERVER, Net
from coapy_micro.connection import EndPoint, Message
from coapy_micro.server import Resource, Server

CON, NON, ACK = Message.CON, Message.NON, Message.ACK
GET, POST, CHANGED, CONTENT = 1, 2, 68, 69


class Starved:
    """A socket with a queue of datagrams whose recvfrom cannot allocate a
    buffer larger than `room` bytes (MemoryError, the datagram left queued,
    as on a board with a fragmented heap); `reads` counts the attempts."""

    def __init__(self):
        self.queue = []
        self.room = 1 << 20
        self.reads = 0
        self.sent = []

    def setblocking(self, flag):
        pass

    def bind(self, addr):
        pass

    def sendto(self, data, addr):
        self.sent.append(bytes(data))
        return len(data)

    def recvfrom(self, n):
        self.reads += 1
        if not self.queue:
            raise OSError(11)
        if n > self.room:
            raise MemoryError("memory allocation failed")
        data = self.queue.pop(0)
        return data[:n], ROGUE  # truncated to n, as UDP does

    def close(self):
        pass


class Poll:
    def register(self, sock, events):
        self.sock = sock

    def poll(self, timeout=-1):
        return [(self.sock, 1)] if self.sock.queue else []


def rig():
    sock = Starved()
    ep = EndPoint(socket_factory=lambda f, t, p: sock, poll_factory=Poll)
    srv = Server(ep)
    srv.add("x", Resource(get=lambda r: (CONTENT, b"ok"), post=lambda r: (CHANGED, b"")))
    return sock, ep, srv


def test_a_read_that_cannot_allocate_is_retried_small_and_never_raises():
    sock, ep, srv = rig()
    sock.room = 200  # no room for a full-size read buffer (1153 bytes)
    small = Message(CON, GET, token=b"s1", uri_path="x").encode(0x101)
    big = Message(CON, POST, b"p" * 600, token=b"b1", uri_path="x").encode(0x102)
    sock.queue = [small, big, small]  # the last: a duplicate
    for _ in range(6):
        assert srv.process(0) is None
        if not sock.queue:
            break
    # The small request was read again with a small buffer and answered;
    # the big one, truncated, dropped; the duplicate answered from the cache.
    answers = [Message.decode(d)[1] for d in sock.sent]
    assert [(m.code, m.token) for m in answers] == [(CONTENT, b"s1"), (CONTENT, b"s1")], answers
    assert ep.memory_errors == 3 and ep.dropped == 1 and ep.duplicates == 1, (
        ep.memory_errors, ep.dropped, ep.duplicates)
    # Each datagram cost one failed read, not a loop of them.
    assert sock.queue == [] and sock.reads <= 10, (sock.queue, sock.reads)


def test_memory_back_serves_the_retransmission():
    sock, ep, srv = rig()
    sock.room = 50  # not even the small buffer
    big = Message(CON, POST, b"p" * 600, token=b"b2", uri_path="x").encode(0x201)
    sock.queue = [big]
    # Neither the full read nor the small one can allocate: a 1-byte read
    # takes it off the socket (dropped), so the next call does not fail again.
    assert srv.process(0) is None and sock.queue == [], sock.queue
    assert ep.memory_errors == 2 and ep.dropped == 1 and ep.dedup_count == 0, (
        ep.memory_errors, ep.dropped)
    sock.room = 1 << 20
    sock.queue = [big]  # the client retransmits once memory is back
    srv.process(0)
    (m,) = [Message.decode(d)[1] for d in sock.sent]
    assert (m.code, m.token) == (CHANGED, b"b2"), m


def test_out_of_memory_while_handling_drops_the_request_and_forgets_it():
    net = Net()
    ep = net.endpoint(SERVER)
    srv = Server(ep)
    srv.add("x", Resource(post=lambda r: (CHANGED, b"done")))
    real = srv.route
    fail = [1]

    def route(req):  # the server's own work, not the handler's, fails once
        if fail[0]:
            fail[0] = 0
            raise MemoryError("memory allocation failed")
        return real(req)

    srv.route = route
    rogue = net.socket(ROGUE)
    req = Message(CON, POST, b"+1", token=b"m1", uri_path="x").encode(0x301)
    rogue.sendto(req, SERVER)
    assert srv.process(0) is None  # no MemoryError out of process()
    assert ep.memory_errors == 1 and net.sent(SERVER, ROGUE) == [], net.log
    rogue.sendto(req, SERVER)  # its retransmission: taken as new, answered
    srv.process(0)
    (t, data) = net.sent(SERVER, ROGUE)[0]
    m = Message.decode(data)[1]
    assert (m.code, m.payload) == (CHANGED, b"done"), m
    rogue.sendto(req, SERVER)  # and now a duplicate: the answer replayed
    srv.process(0)
    assert len(net.sent(SERVER, ROGUE)) == 2 and ep.duplicates == 1, net.log


def test_a_handler_out_of_memory_is_answered_5_00():
    # The handler ran: its failure is the application's, answered as any
    # other (5.00, counted in errors), not a dropped datagram.
    net = Net()
    ep = net.endpoint(SERVER)
    srv = Server(ep)

    def handler(request):
        raise MemoryError("memory allocation failed")

    srv.add("x", Resource(get=handler))
    rogue = net.socket(ROGUE)
    rogue.sendto(Message(CON, GET, token=b"h1", uri_path="x").encode(0x311), SERVER)
    assert srv.process(0) is None
    m = Message.decode(net.sent(SERVER, ROGUE)[0][1])[1]
    assert m.code == 160 and srv.errors == 1 and ep.memory_errors == 0, (m, srv.errors)


def test_serve_survives_a_tick_out_of_memory():
    net = Net()
    ep = net.endpoint(SERVER)
    srv = Server(ep)
    ticks = []

    def tick():
        ticks.append(net.now)
        if len(ticks) == 2:
            raise MemoryError("memory allocation failed")

    srv.serve(seconds=3.5, tick=tick, tick_ms=1000)
    assert len(ticks) == 3 and ep.memory_errors == 1, (ticks, ep.memory_errors)
