# Heap of the running sensor node, read inside MicroPython by
# tools/node_heap.py. The same steps run on two runtimes:
#
#   micropython node_heap_probe.py LIBDIR [ROMFS_IMAGE]
#       The unix port (64-bit): the test_* steps below in order, with a
#       gc.collect() before each; the node serves on real UDP sockets.
#   node tools/mpvm/run.mjs --echo --pkg DIR [--file IMAGE /rom.img] --tests node_heap_probe.py
#       The WebAssembly VM (32-bit): its harness calls the test_* steps in
#       source order and collects between them (there a collection made
#       while Python code runs frees nothing, which is why the work is split
#       into steps on both runtimes). The package is what --pkg put in
#       /lib, or the image at /rom.img, mounted. The VM has no sockets: the
#       node serves on the project's fake network (tests/portable/fakenet.py).
#
# Prints, each the growth of gc.mem_alloc() (heap in use, not heap size:
# the VM grows its heap on demand) after a collection over the reading
# taken before the import:
#   heap import N    node_app and the package imported
#   heap running N   then the Node made (EndPoint bound, resources added) and
#                    one CON GET /sensors/temp served; the peer that sends
#                    it (a socket, or the fake network) is made in a step of
#                    its own and what it holds is not counted
#   heap observed N  then an observer of /sensors/temp registered and one
#                    notification sent, as beside a gateway (printed after
#                    the peak, which does not count this step)
#   heap peak N      the most ever allocated at once on the way, over the
#                    same start (micropython.mem_peak(): compiling .py
#                    source needs room that is given back afterwards, but
#                    must be there); `heap peak none` where the build has
#                    no mem_peak
# or `heap romfs-unsupported WHY` if an image was given and cannot be mounted.
# A ROMFS image is read into the heap before the first reading (on a board
# it is in flash), so it is not counted.
import gc
import micropython
import os
import sys

# CON GET /sensors/temp, token 0x01, message ID 0x0101.
GET = b"\x41\x01\x01\x01\x01\xb7sensors\x04temp"
# The same with Observe: 0 (RFC 7641), token 0x02, message ID 0x0102.
OBSERVE = b"\x41\x01\x01\x02\x02\x60\x57sensors\x04temp"
# Made before the first reading, filled in place (small ints only).
R = {"base": 0, "base_current": 0, "import": 0, "net": 0, "running": 0}
HELD = [None, None]  # the peer, the node
ROM = [None]  # the image's bytes, kept while mounted
UNSUPPORTED = [None]  # why the image could not be mounted


def read_c():
    return 21.5


def quiet(line):
    pass


class UdpPeer:
    """The client on the unix port: a real UDP socket on the loopback."""

    def __init__(self):
        import socket

        self.socket = socket
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(socket.getaddrinfo("127.0.0.1", 0)[0][-1])
        self.sock.settimeout(10)  # an answer that never comes fails the probe, not hangs it
        self.to = None

    def make_node(self, node_app):
        # A free port: bind 0 is not reported back on this port (no
        # getsockname), so try a few.
        for port in range(47300, 47400):
            try:
                node = node_app.Node(("127.0.0.1", port), read_c=read_c, log=quiet)
            except OSError:
                continue
            self.to = self.socket.getaddrinfo("127.0.0.1", port)[0][-1]
            return node
        raise OSError("no free port in 47300..47399")

    def ask(self, data):
        self.sock.sendto(data, self.to)

    def answer(self):
        return self.sock.recv(64)


class FakePeer:
    """The client in the VM, on tests/portable/fakenet.py's network."""

    def __init__(self):
        import fakenet

        self.fakenet = fakenet
        self.net = fakenet.Net(log=False)
        self.sock = self.net.socket(fakenet.CLIENT)
        self.net.links_both(fakenet.CLIENT, fakenet.SERVER)  # made now: the network's

    def make_node(self, node_app):
        from coapy_micro.connection import EndPoint

        # The EndPoint Node() would make (its defaults), with the fake
        # socket and poller where the real ones would be. The socket is bound
        # on the fake network directly: EndPoint.bind() resolves a (host,
        # port) through the socket module, which this VM lacks.
        fakenet = self.fakenet
        sock = fakenet.Socket(self.net)
        sock.bind(fakenet.SERVER)
        poller = fakenet.Poller(self.net)
        ep = EndPoint(clock=self.net.clock, socket_factory=lambda f, t, p: sock,
                      poll_factory=lambda: poller)
        return node_app.Node(fakenet.SERVER, read_c=read_c, log=quiet, end_point=ep)

    def ask(self, data):
        self.net.send(self.fakenet.CLIENT, self.fakenet.SERVER, data)

    def answer(self):
        return self.sock.recvfrom(64)[0]


def mount(lib, image):
    try:
        import vfs

        rom_fs = vfs.VfsRom
    except (ImportError, AttributeError):
        UNSUPPORTED[0] = "this MicroPython has no vfs.VfsRom"
        return
    with open(image, "rb") as f:
        ROM[0] = f.read()
    vfs.mount(rom_fs(ROM[0]), lib)


def test_1_start():
    R["base"] = gc.mem_alloc()
    if hasattr(micropython, "mem_current"):
        R["base_current"] = micropython.mem_current()


def test_2_import():
    import node_app  # noqa: F401


def test_3_imported():
    R["import"] = gc.mem_alloc() - R["base"]


def test_4_peer():
    try:
        import socket

        real = hasattr(socket, "socket")
    except ImportError:
        real = False
    HELD[0] = UdpPeer() if real else FakePeer()


def test_5_peer_held():
    R["net"] = gc.mem_alloc() - R["base"] - R["import"]


def test_6_serve():
    import node_app

    peer = HELD[0]
    node = HELD[1] = peer.make_node(node_app)
    peer.ask(GET)
    node.serve(seconds=0.3)
    answer = peer.answer()
    if answer[1] != 69 or not answer.endswith(b"21.50"):  # 2.05 Content, the reading
        raise RuntimeError("not the answer expected: %r" % answer)


def test_7_report():
    if UNSUPPORTED[0] is not None:
        print("heap romfs-unsupported", UNSUPPORTED[0])
        return
    print("heap import", R["import"])
    print("heap running", gc.mem_alloc() - R["base"] - R["net"])
    if hasattr(micropython, "mem_peak"):
        print("heap peak", micropython.mem_peak() - R["base_current"])
    else:
        print("heap peak none")


def test_8_observe():
    # As the demo node runs beside a gateway: an observer of /sensors/temp
    # registered, and the notification of the next tick sent. This loads
    # what answering GETs does not: server_observe.py and the EndPoint's
    # transmission table (transactions.py).
    peer = HELD[0]
    node = HELD[1]
    peer.ask(OBSERVE)
    node.serve(seconds=1.3)  # the registration answered; the tick after 1 s notifies
    for what in ("registration", "notification"):
        answer = peer.answer()
        if answer[1] != 69:
            raise RuntimeError("not the %s expected: %r" % (what, answer))


def test_9_observed():
    if UNSUPPORTED[0] is None:
        print("heap observed", gc.mem_alloc() - R["base"] - R["net"])


STEPS = (test_1_start, test_2_import, test_3_imported, test_4_peer, test_5_peer_held,
         test_6_serve, test_7_report, test_8_observe, test_9_observed)

if __name__ == "__main__":
    LIB = sys.argv[1]
    if len(sys.argv) > 2 and sys.argv[2]:
        mount(LIB, sys.argv[2])
else:  # imported by the VM's harness: the image is there if it is the form measured
    try:
        os.stat("/rom.img")
        LIB = "/rom"
        mount(LIB, "/rom.img")
    except OSError:
        LIB = "/lib"
sys.path.insert(0, LIB)
if __name__ == "__main__":
    if UNSUPPORTED[0] is not None:
        test_7_report()
        sys.exit(0)
    for step in STEPS:
        gc.collect()
        step()
    HELD[1].close()
