# The garbage collection policy for boards (server.set_gc_threshold): a
# serving loop makes MicroPython collect after a bounded amount of
# allocation, so the heap in use stays below what is alive plus that amount.
# Portable: CPython (where there is nothing to set), the MicroPython VM and
# the unix port (the only one where a collection during a test frees
# anything, so the bound is checked there).
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
import gc

import support
from fakenet import SERVER, HandOver, Net
from coapy_micro.connection import EndPoint
from coapy_micro.server import Resource, Server, set_gc_threshold

GET, CONTENT = 1, 69


def _reset(value):
    if support.IS_MICROPYTHON:
        gc.threshold(value)


def test_serve_sets_the_threshold_unless_the_application_did():
    if not support.IS_MICROPYTHON:
        assert set_gc_threshold() is None  # CPython collects by itself
        raise support.Skip("gc.threshold() is MicroPython's")
    before = gc.threshold()
    try:
        heap = gc.mem_free() + gc.mem_alloc()
        _reset(heap >> 1)  # half the heap
        want = gc.threshold()  # (kept in whole blocks of the heap)
        _reset(-1)
        net = Net()
        srv = Server(net.endpoint(SERVER))
        srv.serve(seconds=0.01)
        assert gc.threshold() == want and want > 0, (gc.threshold(), want)
        _reset(12345)  # the application's own: kept
        own = gc.threshold()
        srv.serve(seconds=0.01)
        assert gc.threshold() == own and set_gc_threshold(999) == own, (gc.threshold(), own)
        _reset(-1)
        assert set_gc_threshold(8192) == 8192 == gc.threshold(), gc.threshold()
    finally:
        _reset(before)


class _Ready(HandOver):
    """A HandOver socket whose recvfrom hands over a datagram made for each
    read, as a real one does (the garbage a served request leaves)."""

    def __init__(self):
        HandOver.__init__(self)
        self.mid = 0

    def recvfrom(self, n):
        self.mid = (self.mid + 1) & 0xFFFF
        m = self.mid
        return bytes((0x42, GET, m >> 8, m & 255, m >> 8, m & 255, 0xB1)) + b"x", ("10.0.0.9", 5683)


class _Always:
    def register(self, sock, events):
        self.ready = [(sock, 1)]

    def poll(self, timeout=-1):
        return self.ready


def _peak(requests):
    # The most heap in use while serving `requests` requests.
    sock = _Ready()
    ep = EndPoint(socket_factory=lambda f, t, p: sock, poll_factory=_Always)
    srv = Server(ep)
    srv.add("x", Resource(get=lambda r: (CONTENT, b"ok")))
    gc.collect()
    base = gc.mem_alloc()
    peak = 0
    for _ in range(requests):
        srv.process(0)
        a = gc.mem_alloc() - base
        if a > peak:
            peak = a
    return peak


def test_the_threshold_bounds_the_heap_in_use():
    if support.RUNTIME != "unix port":
        raise support.Skip("a collection during a test frees memory on the unix port only")
    before = gc.threshold()
    try:
        _reset(-1)
        unbounded = _peak(3000)  # the default: collect only when the heap is full
        _reset(16384)
        bounded = _peak(3000)
    finally:
        _reset(before)
    # The tables (dedup buffers, caches) fill during the run: a few KB are
    # alive at its end, beyond which only the threshold's worth of garbage.
    assert bounded <= 16384 + 8192, (bounded, unbounded)
    assert unbounded > 4 * bounded, (bounded, unbounded)
