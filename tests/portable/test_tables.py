# The hash tables a served request and a taken notification look things up
# in keep free slots on MicroPython. Portable: runs in the MicroPython VM
# and on the unix port; skipped on CPython, whose tables work otherwise.
#
# Why: MicroPython keeps a module's globals, a class's attributes and an
# instance's attributes in open-addressed tables that grow only once they
# are full (to the next of ..., 12, 17, 23, 29, 37, 47, 59, ... slots), and a
# lookup that does not find its key walks on until it meets a free slot.
# Two lookups miss on every call: a method call looks in the instance's
# table before its class's, and a builtin (len, type, ...) is looked for in
# the module's globals first. A table filled to its last slot makes each of
# those walk all of it: on the unix port a method call on an instance of 37
# attributes (a table of 37) took 2.2 times as long as on one of 38 (a table
# of 47), and an EndPoint whose tables were full cost the served request 8%
# more instructions (docs/micropython.md, "Tables that fill up"). The
# counts are kept off those edges (a default that most instances never
# change lives in the class, not in each instance); this test says which
# table filled up when a change fills one.
import support
from fakenet import CLIENT, SERVER, Net
import fakenet

SIZES = (0, 2, 4, 6, 8, 10, 12, 17, 23, 29, 37, 47, 59, 73, 97, 127, 167, 223, 293)


def slots(n):
    """The slots of the table holding n entries (grown only when full)."""
    for s in SIZES:
        if s >= n:
            return s
    return n


def full(n):
    """True if n entries leave too few free slots: fewer than an eighth of
    the table (at least 2), for tables of 17 slots or more (a walk over a
    small table costs little)."""
    s = slots(n)
    free = s - n
    return s >= 17 and free < max(2, s >> 3)


def served_request():
    """An EndPoint and a Server on the fake network that have answered a CON
    GET, and the Client EndPoint that asked."""
    from coapy_micro.server import Resource, Server

    net = Net()
    ep = net.endpoint(SERVER)
    srv = Server(ep)
    srv.add("temp", Resource(get=lambda req: (69, b"21.5")))
    peer = fakenet.Socket(net)
    peer.bind(CLIENT)
    peer.sendto(b"\x41\x01\x01\x01\x01\xb4temp", SERVER)
    srv.process(0)
    assert peer.recvfrom(64)[0][1] == 69
    return ep, srv


def test_the_request_paths_tables_have_free_slots():
    # The tables a served request calls methods through, each measured
    # (instructions per request on the unix port, tools/instr_server.py):
    # the EndPoint's and the Server's, class and instance. Others are near
    # full too and were measured to matter less, or not (docs/micropython.md).
    if not support.IS_MICROPYTHON:
        raise support.Skip("the layout of MicroPython's tables")
    from coapy_micro import connection, server

    ep, srv = served_request()
    tables = [("class EndPoint", connection.EndPoint.__dict__), ("an EndPoint", ep.__dict__),
              ("class Server", server.Server.__dict__), ("a Server", srv.__dict__)]
    bad = ["%s: %d entries in %d slots" % (name, len(d), slots(len(d)))
           for name, d in tables if full(len(d))]
    assert not bad, "tables with too few free slots: " + "; ".join(bad)


def test_the_rule_reads_the_sizes_right():
    # 37 entries fill a table of 37; 38 move to one of 47.
    assert slots(37) == 37 and full(37) and slots(38) == 47 and not full(38)
    assert full(16) and not full(15) and not full(12)  # 17 slots: two free at least
