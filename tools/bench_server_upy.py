# What serving costs on a board, inside the MicroPython VM with the package
# loaded from .mpy as a board loads it. tools/bench_alloc.py runs this
# through tools/mpvm/run.mjs and reads the `name value` lines it prints:
#
# bytes of heap allocated per request served and per notification (one
# observer; then per observer of 16). What a running node holds is measured
# by tools/node_heap.py's probe instead: read here, inside a running script,
# it would count what the loader left behind (a collection in the VM frees
# nothing while a frame is live).
#
# The socket here is a stand-in that costs nothing: recvfrom hands back a
# (datagram, address) pair built before the measurement and sendto keeps
# nothing, so every byte counted is the stack's own (on a board recvfrom's
# result comes on top). Each per-request figure is the mean over ROUNDS
# requests in the steady state (dedup ring full, caches warm), each with its
# own message ID.
import gc

from coapy_micro.connection import EndPoint
from coapy_micro.message import Message
from coapy_micro.server import Resource, Server

ROUNDS = 32
ADDR = ("10.0.0.1", 5683)


class Sock:
    def __init__(self):
        self.ready = None  # the (data, addr) pair recvfrom returns next
        self.sent = 0
        self.eagain = OSError(11)

    def setblocking(self, flag):
        pass

    def bind(self, addr):
        pass

    def sendto(self, data, addr):
        self.sent += 1
        return len(data)

    def recvfrom(self, n):
        r = self.ready
        if r is None:
            raise self.eagain
        self.ready = None
        return r

    def close(self):
        pass


class Poller:
    def __init__(self):
        self.sock = None
        self.yes = None
        self.no = []

    def register(self, sock, events):
        self.sock = sock
        self.yes = [(sock, 1)]

    def ipoll(self, timeout):
        return self.yes if self.sock.ready is not None else self.no


SOCK = Sock()

ep = EndPoint(clock=lambda: 1000, rand=lambda n: 0, socket_factory=lambda f, t, p: SOCK,
              poll_factory=Poller)
srv = Server(ep, max_observers=16, max_observers_per_resource=16)
READING = [21.5]
srv.add("sensors/temp", Resource(get=lambda r: (69, "%.2f" % READING[0]), rt="temperature-c",
                                 if_="sensor", ct=0, title="Temperature", obs=True))
srv.add("sys/uptime", Resource(get=lambda r: (69, "12345"), rt="uptime-s", ct=0))
srv.add("hello", Resource(get=lambda r: (69, "hello from a coapy_micro node"), ct=0))

MID = [0]


def datagrams(mtype, path, n, **kw):
    # n datagrams of one request, each with its own message ID and token.
    out = []
    for _ in range(n):
        MID[0] += 1
        m = Message(mtype, 1, b"", bytes((MID[0] >> 8, MID[0] & 255)), uri_path=path, **kw)
        out.append((m.encode(MID[0]), ADDR))
    return out


def serve(batch):
    for d in batch:
        SOCK.ready = d
        srv.process(0)


def per_request(mtype, path, **kw):
    serve(datagrams(mtype, path, ROUNDS, **kw))  # warm: dedup full, caches made
    batch = datagrams(mtype, path, ROUNDS, **kw)
    gc.collect()
    before = gc.mem_alloc()
    serve(batch)
    return (gc.mem_alloc() - before) // ROUNDS


print("alloc_con_get_temp", per_request(0, "sensors/temp"))
print("alloc_con_get_hello", per_request(0, "hello"))
print("alloc_non_get_temp", per_request(1, "sensors/temp"))
print("alloc_not_found", per_request(0, "nothing/here"))
print("alloc_discovery", per_request(0, ".well-known/core"))

# One observer of /sensors/temp, then notifications (NON; a CON every 20th).
SOCK.ready = datagrams(0, "sensors/temp", 1, observe=0)[0]
srv.process(0)
SOCK.ready = None
srv.process(0)  # nothing waiting: the next waits poll, as on a quiet network
assert srv.observers("sensors/temp") == 1


def notify_rounds():
    for _ in range(ROUNDS):
        READING[0] += 0.25
        srv.notify("sensors/temp")
        srv.process(0)  # sends it


notify_rounds()
gc.collect()
before = gc.mem_alloc()
notify_rounds()
print("alloc_notification", (gc.mem_alloc() - before) // ROUNDS)

# The same with the Resource itself (Server.notify(path) builds the path's
# string to look it up), then with 16 observers: per observer, what a round
# costs once the representation is rendered once for all of them.
TEMP = srv.find("sensors/temp")


def notify_resource(rounds):
    for _ in range(rounds):
        READING[0] += 0.25
        srv.notify(TEMP)
        srv.process(0)


def per_round():
    notify_resource(ROUNDS)  # warm: every observer's record and message made
    gc.collect()
    before = gc.mem_alloc()
    notify_resource(ROUNDS)
    return (gc.mem_alloc() - before) // ROUNDS


print("alloc_notification_resource", per_round())
for i in range(15):
    MID[0] += 1
    m = Message(0, 1, b"", bytes((MID[0] >> 8, MID[0] & 255, i)), uri_path="sensors/temp",
                observe=0)
    SOCK.ready = (m.encode(MID[0]), ("10.0.1.%d" % i, 5683))
    srv.process(0)
SOCK.ready = None
srv.process(0)
assert srv.observers("sensors/temp") == 16
print("alloc_notification_16_observers_each", per_round() // 16)
