# One observation, 1000 notifications, over a lossy link (RFC 7641 on
# fakenet): the client keeps receiving, never goes backwards, the server
# keeps exactly one observer, and memory does not grow with the count.
# Portable: CPython (pytest) and the MicroPython VM, where the heap is
# measured. Rules: module-level `def test_*()` only, asserts show values.
import support
from fakenet import CLIENT, SERVER, pair
from coapy_micro.client import Client
from coapy_micro.server import Resource, Server

N = 1000


def _tables(ep_c, ep_s, srv, cl, ob):
    # The size of every table that could grow per notification.
    return (ep_c.in_flight, ep_s.in_flight, ep_c.dedup_count, ep_s.dedup_count,
            srv.observers(), len(cl.observations), len(cl.pending),
            len(ob.record.responses))


# The run is split over three tests that share this dict, because the heap
# can only be read after the harness's collection between tests (see
# support.heap_now): the first registers and sends 100 notifications, the
# second reads the heap and sends 900 more, the third reads it again.
_run = {}


def _notify(upto):
    r = _run
    net, c, s, srv, cl, ob = r["net"], r["c"], r["s"], r["srv"], r["cl"], r["ob"]
    for i in range(r["sent"] + 1, upto + 1):
        r["state"][0] = i
        srv.notify("n")
        net.run(300, r["on_rx"])
        cl.check()
        del net.log[:]  # fakenet logs every datagram: that is not coapy's heap
    r["sent"] = upto


def test_a_thousand_notifications_1_register_and_first_100():
    net, c, s = pair(seed=7, client={"ack_timeout_ms": 500, "ack_random_factor": 1.0},
                     server={"ack_timeout_ms": 500, "ack_random_factor": 1.0})
    net.link(SERVER, CLIENT, loss=0.2)
    net.link(CLIENT, SERVER, loss=0.2)
    srv = Server(s, notify_con_every=10)
    state = [0]
    srv.add("n", Resource(get=lambda r: (69, b"%d" % state[0]), obs=True))
    cl = Client(c)
    got = [0, -1, 0]  # notifications delivered, the last value, values going back

    def cb(r):
        v = int(r.payload)
        if v < got[1]:
            got[2] += 1
        got[0] += 1
        got[1] = v

    def on_rx(ep, rx):
        if ep is s:
            srv.handle(rx)
        else:
            cl.handle(rx)

    ob = cl.observe("coap://10.0.0.2/n", cb)
    while srv.observers() == 0:  # the registration may be lost: retransmitted
        net.run(200, on_rx)
    _run.update(net=net, c=c, s=s, srv=srv, cl=cl, ob=ob, got=got, state=state,
                on_rx=on_rx, sent=0)
    _notify(100)
    _run["t100"] = _tables(c, s, srv, cl, ob)
    assert not ob.done and srv.observers() == 1, (ob.error, srv.observers())


def test_a_thousand_notifications_2_next_900():
    _run["h100"] = support.heap_now()  # what is alive after 100
    _notify(N)
    _run["net"].run(3000, _run["on_rx"])


def test_a_thousand_notifications_3_nothing_grew():
    h_end = support.heap_now()  # what is alive after 1000
    r = _run
    ob, srv, got = r["ob"], r["srv"], r["got"]
    assert not ob.done, ob.error
    assert srv.observers() == 1, srv.observers()
    assert got[2] == 0, got  # never delivered an older value after a newer one
    # 20 % loss each way: most notifications arrive, and the last CONs get through.
    assert got[0] > N * 0.6, got
    assert got[1] > N - 30, got
    # Every table is bounded: none is larger than after the first 100.
    t100 = r["t100"]
    t_end = _tables(r["c"], r["s"], srv, r["cl"], ob)
    assert all(t_end[k] <= t100[k] for k in range(len(t100))), (t100, t_end)
    # The heap neither (MicroPython only): at most a little harness noise.
    if h_end is not None:
        assert h_end - r["h100"] <= 1024, (r["h100"], h_end)
