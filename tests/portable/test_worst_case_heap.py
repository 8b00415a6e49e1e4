# The heap a node needs with every table full at once, of the largest items
# each holds: the duplicate cache remembering 16 replies of about 1 KB, 8
# observers registered with datagrams of the largest size, 2 Block1 uploads
# at max_body, the in-flight table full of large separate responses. With
# the library defaults (EndPoint and Server constructed with no arguments)
# this must leave most of a 192 KB heap (what an ESP32 without PSRAM leaves
# a program) to the application. docs/micropython.md quotes the figures.
#
# Measured in the MicroPython VM (32-bit, as boards are), where the harness
# collects garbage between test functions: each step is a test, reading the
# heap the previous ones left alive. CPython runs the same steps (the tables
# must fill as said) and skips the figures.
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
import support
from fakenet import HandOver, HandOverPoller
from coapy_micro.connection import EndPoint, Message
from coapy_micro.options import Option
from coapy_micro.server import Resource, Server

CON, NON = Message.CON, Message.NON
GET, POST, PUT = 1, 2, 3
BODY = b"r" * 1000  # a reply of about 1 KB
LIMIT = 64 * 1024  # at most, for the tables of a node with everything full (50 KB measured)

S = {}


def serve(msg, mid, port):
    # One request from 10.1.0.1:port, served.
    s = S["sock"]
    s.ready = (msg.encode(mid), ("10.1.0.1", port))
    S["srv"].process(0)


def heap():
    h = support.heap_now()
    return None if h is None else h - S["base"]


def test_0_start():
    S["base"] = support.heap_now()
    sock = S["sock"] = HandOver()
    ep = S["ep"] = EndPoint(socket_factory=lambda f, t, p: sock, poll_factory=HandOverPoller)
    srv = S["srv"] = Server(ep)
    srv.add("big", Resource(post=lambda r: (68, BODY)))
    srv.add("obs", Resource(get=lambda r: (69, b"21.5"), obs=True))
    srv.add("obs2", Resource(get=lambda r: (69, b"21.5"), obs=True))
    srv.add("up", Resource(put=lambda r: (68, b"")))

    def slow(request):
        request.defer()
        S.setdefault("deferred", []).append(request.deferred)

    srv.add("slow", Resource(get=slow))
    # Loaded now, as a busy node has them: not counted in the tables below.
    srv.hook("observe")
    srv.hook("block")
    srv.hook("upload")


def test_1_dedup_full():
    S["empty"] = heap()
    pad = b"p" * (1152 - 20)
    for i in range(16):  # 16 exchanges of the largest size, each remembered
        serve(Message(CON, POST, pad, b"d%d" % i, uri_path="big"), 0x100 + i, 40000 + i)
    ep = S["ep"]
    assert ep.dedup_count == ep.dedup_size == 16, ep.dedup_count


def test_2_observers_full():
    S["dedup"] = heap()
    srv = S["srv"]
    pad = "q=" + "x" * 250
    for i in range(8):  # registrations of about 1 KB each, all kept
        m = Message(CON, GET, b"", b"o%d" % i, uri_path="obs" if i < 4 else "obs2",
                    uri_query=[pad, pad, pad, pad[:200]], observe=0)
        serve(m, 0x200 + i, 41000 + i)
    assert srv.observers() == srv.max_observers == 8, srv.observers()
    srv.notify("obs")
    srv.notify("obs2")


def test_3_uploads_full():
    S["observers"] = heap()
    srv = S["srv"]
    chunk = b"u" * 1024
    for u in range(2):  # two uploads, each at max_body less its last block
        tag = Option(292, b"t%d" % u)
        for num in range(7):
            m = Message(CON, PUT, chunk, b"b%d" % u, uri_path="up")
            m.addOption(Option(27, (num, True, 6)))
            m.addOption(tag)
            serve(m, 0x300 + 16 * u + num, 42000 + u)
    assert srv.assemblies == srv.max_assemblies == 2, srv.assemblies


def test_4_in_flight_full():
    S["uploads"] = heap()
    ep = S["ep"]
    i = 0
    while ep.in_flight < ep.max_in_flight:  # separate responses nobody acknowledges
        serve(Message(CON, GET, b"", b"s%d" % i, uri_path="slow"), 0x400 + i, 43000 + i)
        S["deferred"][-1].respond(69, BODY)
        i += 1
    ep.process(0)  # sent: awaiting their ACKs
    assert ep.in_flight == ep.max_in_flight, ep.in_flight


def test_5_figures():
    S["in_flight"] = heap()
    if not support.IS_MICROPYTHON:
        raise support.Skip("the heap is measured in the MicroPython VM")
    if support.RUNTIME != "webassembly":
        raise support.Skip("figures for a board (32-bit) come from the VM")
    steps = ("empty", "dedup", "observers", "uploads", "in_flight")
    print("worst case, heap held in bytes (32-bit):",
          " ".join("%s %d" % (k, S[k]) for k in steps))
    tables = S["in_flight"] - S["empty"]
    assert tables <= LIMIT, [(k, S[k]) for k in steps]
