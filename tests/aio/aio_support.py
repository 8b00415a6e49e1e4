# Helpers for the asyncio tests (tests/aio/): this file runs unchanged on
# CPython (pytest) and on the MicroPython unix port (tests/test_aio.py runs
# the same tests there), real loopback sockets on both. Shared Python subset.
import asyncio
import sys

from coapy_micro import codes
from coapy_micro.connection import EndPoint
from coapy_micro.server import Resource, Server

IS_MICROPYTHON = sys.implementation.name == "micropython"
RUNTIME = "the MicroPython unix port" if IS_MICROPYTHON else "CPython"

try:
    from time import ticks_diff, ticks_ms
except ImportError:  # CPython: the same wrapping ticks the package uses
    from coapy_micro._compat import ticks_diff, ticks_ms  # noqa: F401


def run(main):
    """Run the coroutine `main` on a fresh event loop; return its result."""
    if IS_MICROPYTHON:
        asyncio.new_event_loop()  # nothing left over from an earlier test
    return asyncio.run(main)


async def sleep_ms(ms):
    if IS_MICROPYTHON:
        await asyncio.sleep_ms(ms)
    else:
        await asyncio.sleep(ms / 1000)


def bound_end_point(**kw):
    """(EndPoint on 127.0.0.1, its port). The unix port has no getsockname:
    a random free port is tried until one binds."""
    import random

    while True:
        port = 20000 + random.getrandbits(15) % 40000
        ep = EndPoint(**kw)
        try:
            ep.bind(("127.0.0.1", port))
            return ep, port
        except OSError:
            ep.close()


def uri(port, path=""):
    return "coap://127.0.0.1:%d/%s" % (port, path)


BIG = bytes([(i * 7 + i // 251) & 255 for i in range(3000)])


class Node:
    """A Server on loopback with resources every test can use:
    /echo (GET: b'hello', POST/PUT: the payload back), /big (3000 bytes:
    Block2), /counter (observable; tick() changes it and notifies),
    /slow (deferred: the Deferred answers are kept in `slow`), /work (1 ms
    of CPU per request)."""

    def __init__(self, **ep_kw):
        self.ep, self.port = bound_end_point(**ep_kw)
        srv = self.server = Server(self.ep)
        self.value = 0
        self.slow = []  # Deferred answers to /slow
        self.handled = 0
        srv.add("echo", Resource(get=self._hello, post=self._echo, put=self._echo))
        srv.add("big", Resource(get=lambda r: (codes.CONTENT, BIG)))
        srv.add("counter", Resource(get=lambda r: (codes.CONTENT, b"%d" % self.value), obs=True))
        srv.add("slow", Resource(get=self._slow))
        srv.add("work", Resource(get=self._work))

    def _hello(self, req):
        self.handled += 1
        return (codes.CONTENT, b"hello")

    def _echo(self, req):
        self.handled += 1
        return (codes.CHANGED, req.payload)

    def _work(self, req):
        # 1 ms of CPU per request, as a board spends on a real one.
        t0 = ticks_ms()
        while ticks_diff(ticks_ms(), t0) < 1:
            pass
        self.handled += 1
        return (codes.CONTENT, b"done")

    def _slow(self, req):
        self.slow.append(req.defer())
        return None

    def uri(self, path=""):
        return uri(self.port, path)

    def tick(self):
        self.value += 1
        return self.server.notify("counter")

    def close(self):
        self.ep.close()


async def cancel(task):
    """Cancel `task` and wait until it has ended."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


def schedstat():
    """(ns on a CPU, ns waiting on a run queue) of this process's main
    thread (Linux /proc/self/schedstat): the second is time the OS kept the
    process from running though it was ready, which no design can help."""
    with open("/proc/self/schedstat") as f:
        parts = f.read().split()
    return int(parts[0]), int(parts[1])


def cpu_ms():
    """CPU time this process has used, in ms."""
    return schedstat()[0] // 1000000


class Ticker:
    """A task that sleeps 10 ms over and over and records the gaps between
    its wake-ups: `max_gap_ms` as the clock saw it, and `max_own_gap_ms`,
    the same less the time the OS kept the process waiting on a run queue
    meanwhile (a busy machine's share, not the event loop's)."""

    def __init__(self):
        self.max_gap_ms = 0
        self.max_own_gap_ms = 0
        self.gaps = 0
        self.running = True

    async def run(self):
        last = ticks_ms()
        q0 = schedstat()[1]
        while self.running:
            await sleep_ms(10)
            now = ticks_ms()
            q1 = schedstat()[1]
            gap = ticks_diff(now, last)
            own = gap - (q1 - q0) // 1000000
            if gap > self.max_gap_ms:
                self.max_gap_ms = gap
            if own > self.max_own_gap_ms:
                self.max_own_gap_ms = own
            self.gaps += 1
            last = now
            q0 = q1
