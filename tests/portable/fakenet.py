# A deterministic in-memory datagram network for EndPoint tests. Portable:
# runs unchanged on CPython and in the MicroPython VM (run.mjs copies it to /lib).
#
#   net = Net(seed=1)
#   client = net.endpoint(("10.0.0.1", 5683), ack_timeout_ms=2000, rand=fixed(0))
#   server = net.endpoint(("10.0.0.2", 5683))
#   net.link(client_addr, server_addr, loss=0.3, delay=10, jitter=50)
#   net.run(60000, on_rx)            # every endpoint, in event order
#   client.process(5000)             # or drive one endpoint: its poller moves time
#   net.sent(src, dst)               # [(ms, bytes)] of every datagram sent
#
# Time: `net.now` counts ms from 0 and only moves inside Poller.poll() (and
# net.run()). EndPoints read `net.clock()`, i.e. ticks = (base + now) mod the
# ticks period, so a test can start just before the ticks wrap.
# Randomness: one 31-bit LCG per purpose (not `random`), so CPython and
# MicroPython produce the same losses, delays and timeouts.
import errno
import sys

try:
    import socket

    # The fake network speaks ('host', port) tuples; the MicroPython unix
    # port's getaddrinfo gives raw sockaddr bytes instead.
    _TUPLES = isinstance(socket.getaddrinfo("127.0.0.1", 5683)[0][-1], tuple)
except ImportError:
    _TUPLES = False
if not _TUPLES:
    # The MicroPython WebAssembly port has no socket module, yet
    # coapy_micro.connection imports it at module level (exposed by
    # test_endpoint_import.py), and the unix port's resolves to bytes.
    # Stand in with the names it reads (importers of coapy_micro after
    # this module get this one).
    class _socket:
        AF_INET = 2
        AF_INET6 = 10
        SOCK_DGRAM = 2
        IPPROTO_UDP = 17

        @staticmethod
        def getaddrinfo(host, port):
            return [(2, 2, 17, "", (host, port))]

    sys.modules["socket"] = _socket

from coapy_micro._compat import ticks_add
from coapy_micro.connection import EndPoint

PERIOD = ticks_add(0, -1) + 1  # 2**30 on both runtimes here


class Lcg:
    """x' = (1103515245 x + 12345) mod 2**31; draws are bits 16-30 of x."""

    def __init__(self, seed):
        self.x = seed & 0x7FFFFFFF

    def draw(self):  # 0 .. 32767
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return self.x >> 16

    def chance(self, p):  # True with probability p (0.0 .. 1.0)
        return p > 0 and self.draw() < int(p * 32768)

    def below(self, n):  # 0 .. n-1 (n <= 32768)
        return self.draw() % n

    def bits(self, nbits):  # an EndPoint `rand` (nbits <= 30)
        return ((self.draw() << 15) | self.draw()) & ((1 << nbits) - 1)


def fixed(value):
    """An EndPoint `rand` always returning `value` (masked to nbits)."""

    def rand(nbits):
        return value & ((1 << nbits) - 1)

    return rand


class Seq:
    """An EndPoint `rand` returning `values` in turn, cycling; `calls` counts."""

    def __init__(self, values):
        self.values = values
        self.calls = 0

    def __call__(self, nbits):
        v = self.values[self.calls % len(self.values)]
        self.calls += 1
        return v & ((1 << nbits) - 1)


class Link:
    """How datagrams from one address to another fare (one direction).

    loss: drop probability; drop: 1-based numbers of the datagrams (sendto
    calls) on this link to drop, or callable(n, data) -> True to drop;
    dup: probability of a second copy; delay: ms; jitter: extra random
    0..jitter ms per copy (reorders); fail: numbers of the sendto calls that
    raise OSError(ENOMEM) instead of sending (as lwIP does when out of buffers).
    """

    def __init__(self, loss=0.0, drop=None, dup=0.0, delay=0, jitter=0, fail=None):
        self.loss = loss
        self.drop = drop
        self.dup = dup
        self.delay = delay
        self.jitter = jitter
        self.fail = fail
        self.count = 0  # sendto calls so far
        self.dropped = 0

    def drops(self, n, data, rng):
        d = self.drop
        if d is not None and (d(n, data) if callable(d) else n in d):
            return True
        return rng.chance(self.loss)


class _Probe(Exception):
    """Raised by a probing Poller instead of waiting (see Net.run)."""


class Socket:
    """A non-blocking UDP socket on the fake network."""

    def __init__(self, net):
        self.net = net
        self.addr = None

    def setblocking(self, flag):
        pass

    def bind(self, addr):
        self.addr = addr
        self.net.bound.append(self)

    def sendto(self, buf, addr):
        if self.addr is None:
            raise AssertionError("sendto on an unbound fake socket")
        data = bytes(buf)  # buf may be a memoryview over the EndPoint's buffer
        self.net.send(self.addr, addr, data)
        return len(data)

    def recvfrom(self, n):
        net = self.net
        e = net.take(self)
        if e is None:
            raise OSError(errno.EAGAIN)
        net.now += net.recv_cost
        return e[4][:n], e[2]  # truncated to n bytes, as UDP does

    def close(self):
        if self in self.net.bound:
            self.net.bound.remove(self)


class Poller:
    """select.poll() for fake sockets. poll() is where time passes: it returns
    at once if a datagram is deliverable, else moves net.now to the earliest of
    the next delivery to its sockets and now + timeout. No ipoll (the EndPoint
    would prefer it)."""

    def __init__(self, net):
        self.net = net
        self.socks = []
        self.probing = False  # set by Net.run: report the wait, do not wait
        self.wanted = None

    def register(self, sock, events):
        self.socks.append(sock)

    def ready(self):
        r = []
        for s in self.socks:
            d = self.net.due(s)
            if d is not None and d <= self.net.now:
                r.append((s, 1))
        return r

    def next_due(self):
        # When the next datagram for one of its sockets arrives, or None.
        due = None
        for s in self.socks:
            d = self.net.due(s)
            if d is not None and (due is None or d < due):
                due = d
        return due

    def poll(self, timeout=-1):
        net = self.net
        r = self.ready()
        if r:
            return r
        if timeout is None or timeout < 0:
            timeout = -1
        if self.probing:
            self.wanted = timeout
            raise _Probe()
        if timeout == 0:
            return r
        due = self.next_due()
        if timeout < 0:
            if due is None:
                raise AssertionError("poll(-1) with nothing on its way: the test would hang")
            target = due
        else:
            target = net.now + timeout
            if due is not None and due < target:
                target = due
        if target > net.now:
            net.now = target
        return self.ready()


class HandOver:
    """A socket for measuring what serving allocates: recvfrom hands over
    `ready`, a (datagram, address) pair made beforehand (EAGAIN while it is
    None), and sendto keeps nothing, so what a served request allocates is
    the stack's own. Its poller is HandOverPoller."""

    def __init__(self):
        self.ready = None

    def setblocking(self, flag):
        pass

    def bind(self, addr):
        pass

    def sendto(self, data, addr):
        return len(data)

    def recvfrom(self, n):
        r = self.ready
        if r is None:
            raise OSError(errno.EAGAIN)
        self.ready = None
        return r

    def close(self):
        pass


class HandOverPoller:
    """poll() for one HandOver socket: readable while it holds a datagram
    (the answer made once, so polling allocates nothing). No ipoll."""

    def __init__(self):
        self.sock = None
        self.yes = None

    def register(self, sock, events):
        self.sock = sock
        self.yes = [(sock, 1)]

    def poll(self, timeout=-1):
        return self.yes if self.sock.ready is not None else ()


class Net:
    def __init__(self, seed=1, base=0, log=True):
        self.now = 0  # ms since the start; the log uses it
        self.base = base  # ticks value at now == 0
        self.rng = Lcg(seed)  # network decisions
        self.seed = seed
        self.links = {}  # (src, dst) -> Link
        self.bound = []  # bound Sockets
        self.queue = []  # in flight: [due, seq, src, socket, data]
        self.seq = 0
        # (now, src, dst, data) of every datagram sent; None: not kept (a
        # long run's log, allocated between its garbage, would spread live
        # objects over the whole heap and leave no large free block)
        self.log = [] if log else None
        self.recv_cost = 0  # ms each recvfrom takes (to model a busy CPU)
        self.pairs = []  # (EndPoint, Poller) made by endpoint()
        self.inbox = []  # (EndPoint, ReceptionRecord) when run() has no on_rx

    def clock(self):
        return (self.base + self.now) % PERIOD

    # -- building ---------------------------------------------------------

    def endpoint(self, addr, **kw):
        """An EndPoint bound to `addr` on this network. Its `rand` defaults
        to an LCG of its own (seeded by creation order)."""
        if "rand" not in kw:
            kw["rand"] = Lcg(self.seed * 7919 + len(self.pairs) + 1).bits
        made = []

        def poll_factory():
            made.append(Poller(self))
            return made[0]

        ep = EndPoint(clock=self.clock, socket_factory=lambda f, t, p: Socket(self),
                      poll_factory=poll_factory, **kw)
        ep.bind(addr)
        self.pairs.append((ep, made[0]))
        return ep

    def socket(self, addr):
        """A bare bound socket (a rogue peer, or a multicast listener)."""
        s = Socket(self)
        s.bind(addr)
        return s

    def link(self, src, dst, **kw):
        """Set how datagrams from src to dst fare (see Link)."""
        k = Link(**kw)
        self.links[(src, dst)] = k
        return k

    def links_both(self, a, b, **kw):
        return self.link(a, b, **kw), self.link(b, a, **kw)

    # -- datagrams ----------------------------------------------------------

    def send(self, src, dst, data):
        k = self.links.get((src, dst))
        if k is None:
            k = self.links[(src, dst)] = Link()
        k.count += 1
        n = k.count
        if k.fail is not None and n in k.fail:
            raise OSError(errno.ENOMEM)
        if self.log is not None:
            self.log.append((self.now, src, dst, data))
        if k.drops(n, data, self.rng):
            k.dropped += 1
            return
        copies = 2 if self.rng.chance(k.dup) else 1
        for _ in range(copies):
            extra = self.rng.below(k.jitter + 1) if k.jitter else 0
            self.inject(src, dst, data, self.now + k.delay + extra)

    def inject(self, src, dst, data, at=None):
        """Deliver `data` from `src` to every socket bound to `dst` at time
        `at` (default now), bypassing links and the log."""
        for s in self.bound:
            if s.addr == dst:
                self.queue.append([self.now if at is None else at, self.seq, src, s, data])
                self.seq += 1

    def _first(self, sock):
        # The next datagram for `sock`: earliest due, then first sent.
        best = None
        for e in self.queue:
            if e[3] is sock and (best is None or e[0] < best[0]
                                 or (e[0] == best[0] and e[1] < best[1])):
                best = e
        return best

    def due(self, sock):
        """When the next datagram for `sock` arrives, or None."""
        e = self._first(sock)
        return None if e is None else e[0]

    def take(self, sock):
        e = self._first(sock)
        if e is None or e[0] > self.now:
            return None
        self.queue.remove(e)
        return e

    # -- the log ----------------------------------------------------------

    def sent(self, src=None, dst=None):
        """[(ms, bytes)] sent from src to dst (None: any), in order."""
        return [(e[0], e[3]) for e in self.log
                if (src is None or e[1] == src) and (dst is None or e[2] == dst)]

    def times(self, src=None, dst=None):
        return [e[0] for e in self.sent(src, dst)]

    # -- running every endpoint -------------------------------------------

    def run(self, ms, on_rx=None):
        """Run every endpoint from endpoint() for `ms` of fake time, in event
        order: at each instant each endpoint handles what is due and what has
        arrived; then time jumps to the next delivery or endpoint timer.
        on_rx(ep, rx) gets what process() returns (default: net.inbox)."""
        end = self.now + ms
        spins = 0
        while True:
            wake = end
            for ep, poller in self.pairs:
                w = self._probe(ep, poller, on_rx)
                if 0 <= w and self.now + w < wake:
                    wake = self.now + w
            due = None  # the next delivery to an endpoint (bare sockets: never read)
            for ep, poller in self.pairs:
                d = poller.next_due()
                if d is not None and (due is None or d < due):
                    due = d
            if due is not None and due <= self.now:
                continue  # a later endpoint sent to an earlier one meanwhile
            if self.now >= end:
                return
            if due is not None and due < wake:
                wake = due
            if wake <= self.now:
                spins += 1
                if spins > 100:
                    raise AssertionError("an endpoint keeps asking to wait 0 ms")
                continue
            spins = 0
            self.now = wake

    def _probe(self, ep, poller, on_rx):
        # process() until it would wait; return the wait it asked for (-1: none).
        # _Probe leaves process() before it waits, when nothing is half done.
        poller.probing = True
        try:
            while True:
                try:
                    rx = ep.process(None)
                except _Probe:
                    return poller.wanted
                if rx is None:
                    continue  # process(None) returns when a record timed out
                if on_rx is None:
                    self.inbox.append((ep, rx))
                else:
                    on_rx(ep, rx)
        finally:
            poller.probing = False


# -- reading datagrams in the log --------------------------------------------

def mtype(data):
    return (data[0] >> 4) & 3


def tid(data):
    return (data[2] << 8) | data[3]


# -- the usual cast ------------------------------------------------------------

CLIENT = ("10.0.0.1", 5683)
SERVER = ("10.0.0.2", 5683)
ROGUE = ("10.0.0.66", 40000)  # a raw socket that speaks whatever a test writes


def pair(seed=1, base=0, client=None, server=None):
    """(net, client EndPoint, server EndPoint); client/server: EndPoint kwargs."""
    net = Net(seed, base)
    c = net.endpoint(CLIENT, **(client or {}))
    s = net.endpoint(SERVER, **(server or {}))
    return net, c, s
