# The node app a board runs (ports/common/node_app.py) on fakenet: what it
# serves, notifications a second, closing its socket however it stops, and
# a MemoryError while serving dropped, counted and survived. Portable:
# CPython (pytest), the MicroPython VM and the unix port; the heap is
# really exhausted only on the unix port (see the last test).
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
import gc

import support
from fakenet import ROGUE, SERVER, Net
import node_app  # after fakenet, which stands in for socket where it must
from coapy_micro.connection import Message

CON, NON, ACK = Message.CON, Message.NON, Message.ACK
GET, CONTENT = 1, 69


class Rig:
    """A Node on fakenet and a raw socket (ROGUE) to send requests from."""

    def __init__(self, read_c=None):
        self.net = Net()
        self.ep = self.net.endpoint(SERVER)
        self.log = []
        self.node = node_app.Node(read_c=read_c or (lambda: 21.5), log=self.log.append,
                                  end_point=self.ep)
        self.rogue = self.net.socket(ROGUE)
        self.tid = 0x100

    def send(self, path, mt=CON, observe=None, token=b"n1"):
        self.tid += 1
        kw = {} if observe is None else {"observe": observe}
        m = Message(mt, GET, token=token, uri_path=path, **kw)
        self.rogue.sendto(m.encode(self.tid), SERVER)

    def answers(self):
        return [Message.decode(d)[1] for _, d in self.net.sent(SERVER, ROGUE)]


def test_serves_its_resources():
    rig = Rig()
    for path in ("sensors/temp", "hello", "sys/uptime", ".well-known/core"):
        rig.send(path)
    rig.node.serve(seconds=0.5)
    got = rig.answers()
    assert [m.code for m in got] == [CONTENT] * 4, got
    assert got[0].payload == b"21.50", got[0].payload
    assert got[1].payload == b"hello from a coapy_micro node", got[1].payload
    assert got[2].payload == b"0", got[2].payload
    assert b'</sensors/temp>;rt="temperature-c"' in got[3].payload, got[3].payload
    assert rig.log == ["node: serving CoAP on 0.0.0.0:5683"], rig.log
    assert rig.node.memory_errors == 0


def test_observers_get_a_reading_a_second():
    readings = [20.0]

    def read_c():
        readings[0] += 0.25
        return readings[0]

    rig = Rig(read_c)
    rig.send("sensors/temp", observe=0, token=b"ob")
    rig.node.serve(seconds=3.5)
    got = rig.answers()
    assert [m.payload for m in got] == [b"20.25", b"20.50", b"20.75", b"21.00"], got
    assert got[0].transaction_type == ACK and all(m.token == b"ob" for m in got), got
    times = [t for t, _ in rig.net.sent(SERVER, ROGUE)]
    assert times[1:] == [1000, 2000, 3000], times


def test_serving_sets_the_collection_policy():
    # The node's loop is its own (not Server.serve()), so it sets the
    # threshold itself; one the application set stays.
    if not support.IS_MICROPYTHON:
        raise support.Skip("gc.threshold() is MicroPython's")
    before = gc.threshold()
    try:
        rig = Rig()
        heap = gc.mem_free() + gc.mem_alloc()
        gc.threshold(heap >> 1)  # half the heap
        want = gc.threshold()  # (kept in whole blocks of the heap)
        assert want > 0, want
        gc.threshold(-1)  # none: MicroPython's default
        rig.node.serve(seconds=0.01)
        assert gc.threshold() == want, (gc.threshold(), want)
        gc.threshold(4096)
        own = gc.threshold()
        rig.node.serve(seconds=0.01)
        assert gc.threshold() == own, (gc.threshold(), own)
    finally:
        gc.threshold(before)


def test_run_closes_the_socket_when_interrupted():
    # Ctrl-C at a board's REPL raises KeyboardInterrupt inside the loop; the
    # socket must be closed (else the next run gets EADDRINUSE).
    net = Net()
    ep = net.endpoint(SERVER)
    log = []

    def interrupted():
        raise KeyboardInterrupt

    rogue = net.socket(ROGUE)
    rogue.sendto(Message(CON, GET, token=b"k", uri_path="sensors/temp").encode(7), SERVER)
    e = support.raises(KeyboardInterrupt, node_app.run, ("0.0.0.0", 5683), interrupted,
                       log.append, None, None, ep)
    assert isinstance(e, KeyboardInterrupt)
    assert ep.socket not in net.bound, net.bound  # closed
    assert log == ["node: serving CoAP on 0.0.0.0:5683", "node: stopped"], log


def test_run_for_a_time_returns_the_node_closed():
    net = Net()
    ep = net.endpoint(SERVER)
    node = node_app.run(read_c=lambda: 1.0, log=lambda s: None, seconds=2, end_point=ep)
    assert net.now == 2000, net.now
    assert ep.socket not in net.bound and node.memory_errors == 0


def test_a_memory_error_while_serving_is_counted_and_survived():
    rig = Rig()
    real = rig.node.server.process
    fail = [2]

    def process(timeout_ms):
        if fail[0]:
            fail[0] -= 1
            raise MemoryError
        return real(timeout_ms)

    rig.node.server.process = process
    rig.send("hello")
    rig.node.serve(seconds=0.5)
    assert rig.node.memory_errors == 2, rig.node.memory_errors
    assert [m.payload for m in rig.answers()] == [b"hello from a coapy_micro node"]
    assert rig.log[1:] == ["node: out of memory (1 so far); datagram dropped",
                           "node: out of memory (2 so far); datagram dropped"], rig.log


def test_a_real_heap_exhaustion_is_survived():
    # The heap is filled for real, leaving only scattered small holes: a
    # request too large for any of them cannot be taken in (MemoryError
    # inside the server), small ones still can. Needs a fixed heap and a
    # gc.collect() that reclaims during a test: the unix port only (CPython
    # grows its heap; the WebAssembly VM grows its heap too, and a
    # collection made inside a running test frees nothing there).
    if support.RUNTIME != "unix port":
        raise support.Skip("a real heap exhaustion is tested on the MicroPython unix port")
    rig = Rig()
    rig.send("hello", token=b"h1")
    rig.node.serve(seconds=0.2)  # warmed up: its first answer
    big = Message(CON, 2, b"x" * 1000, token=b"b1", uri_path="hello").encode(0x999)
    small = Message(CON, GET, token=b"h2", uri_path="hello").encode(0x99A)
    ballast = None
    for size in (65536, 4096, 256, 16, 0):  # big blocks first, then the gaps
        try:
            while True:
                ballast = (ballast, bytearray(size))  # no list to grow
        except MemoryError:
            pass
    for _ in range(60):  # give back about 5 KB, in small scattered pieces
        ballast = ballast[0]
    gc.collect()
    try:  # and fill any hole the collection opened that would hold the big request
        while True:
            ballast = (ballast, bytearray(1024))
    except MemoryError:
        pass
    rig.rogue.sendto(big, SERVER)
    rig.node.serve(seconds=0.2)  # no hole holds it: counted, dropped
    errors = rig.node.memory_errors + rig.ep.memory_errors  # the node's count, or the library's
    rig.rogue.sendto(small, SERVER)
    rig.node.serve(seconds=0.2)  # still short of memory, still serving
    tokens = [m.token for m in rig.answers()]
    ballast = None
    gc.collect()
    assert errors >= 1, errors
    assert tokens == [b"h1", b"h2"], tokens

