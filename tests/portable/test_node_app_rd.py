# The node app (ports/common/node_app.py) registering with a Resource
# Directory, as config.py's RD_URI asks (RFC 9176): the registration from
# the node's own loop, its refresh, a fresh one after the RD lost it, the
# removal when the node stops, an RD that never answers, and no traffic at
# all without an RD. The RD is scripted: a bare socket on fakenet answering
# what each test says. Portable: CPython (pytest), the MicroPython VM and
# the unix port.
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
from fakenet import ROGUE, SERVER, Net
import node_app  # after fakenet, which stands in for socket where it must
from coapy_micro.connection import Message
from coapy_micro import rd

CON, ACK = Message.CON, Message.ACK
GET = 1

RD = ("10.0.0.1", 5683)  # a scripted RD: a bare socket answering what a test says


def _rd_requests(net):
    # ((tid, Message), code, 'uri/path', [queries]) of each request the node
    # sent the RD (retransmissions left out)
    out = []
    seen = []
    for _, data in net.sent(SERVER, RD):
        tid, m = Message.decode(data)
        if 1 <= m.code <= 31 and tid not in seen:
            seen.append(tid)
            out.append(((tid, m), m.code, "/".join([o.value for o in m.findOptions(11)]),
                        [o.value for o in m.findOptions(15)]))
    return out


def _answer(rd, req, code, location=None):
    # The RD's piggybacked answer to the request `req` (tid, Message).
    tid, m = req
    kw = {} if location is None else {"location_path": location}
    rd.sendto(Message(ACK, code, token=m.token, **kw).encode(tid), SERVER)


def test_registers_with_the_configured_rd_and_keeps_it_alive():
    net = Net()
    rd = net.socket(RD)
    log = []
    node = node_app.Node(read_c=lambda: 21.5, log=log.append, end_point=net.endpoint(SERVER),
                         rd="coap://10.0.0.1/rd", ep_name="greenhouse-1", lt_s=60)
    assert log == ["node: serving CoAP on 0.0.0.0:5683",
                   "node: registering with the RD at coap://10.0.0.1/rd as greenhouse-1 "
                   "(lifetime 60 s)"], log
    node.serve(seconds=0.5)
    (req,) = _rd_requests(net)
    (tid, m), code, path, query = req
    # RFC 9176 §5: POST to the registration resource, ep and lt as queries,
    # the resource tree in link-format (ct=40) as the payload.
    assert (code, path, query) == (2, "rd", ["ep=greenhouse-1", "lt=60"]), req
    assert m.get_uint(12) == 40, m.get_uint(12)  # Content-Format: link-format
    assert m.payload == node.server.link_format().encode(), m.payload
    assert b'</sensors/temp>;' in m.payload and b"obs" in m.payload, m.payload
    _answer(rd, req[0], 65, "rd/4521")
    node.serve(seconds=0.5)
    assert log[2:] == ["node: registered as greenhouse-1: coap://10.0.0.1/rd/4521"], log
    assert node.registrar.registered
    # Three quarters of lt later the node refreshes (an empty POST, §5.3.1),
    # from the same loop that notifies and serves.
    node.serve(seconds=50)
    reqs = _rd_requests(net)
    assert [(r[1], r[2], r[3]) for r in reqs] == [
        (2, "rd", ["ep=greenhouse-1", "lt=60"]), (2, "rd/4521", ["lt=60"])], reqs
    t_update = [t for t, d in net.sent(SERVER, RD)][1]
    assert 45000 <= t_update <= 46000, t_update
    # The RD restarted without its table: 4.04, and the node registers anew.
    _answer(rd, reqs[1][0], 132)
    node.serve(seconds=0.5)
    reqs = _rd_requests(net)
    assert (reqs[2][1], reqs[2][2]) == (2, "rd"), reqs
    assert "node: the RD lost the registration (update answered 4.04); registering again" \
        in log, log
    _answer(rd, reqs[2][0], 65, "rd/77")
    node.serve(seconds=0.5)
    assert log[-1] == "node: registered as greenhouse-1: coap://10.0.0.1/rd/77", log


def test_stopping_deregisters():
    net = Net()
    rd = net.socket(RD)
    log = []
    ep = net.endpoint(SERVER)
    node = node_app.Node(log=log.append, end_point=ep, rd="coap://10.0.0.1/rd", ep_name="n1")
    node.serve(seconds=0.5)
    _answer(rd, _rd_requests(net)[0][0], 65, "rd/9")
    node.serve(seconds=0.5)
    assert node.registrar.registered, log
    node.close()  # the RD does not answer: close() gives up after RD_CLOSE_MS
    req, code, path, query = _rd_requests(net)[-1]
    assert (code, path) == (4, "rd/9"), (code, path)  # DELETE (§5.3.2)
    assert ep.socket not in net.bound, net.bound
    assert log[-1].startswith("node: RD: removal: no response"), log
    assert net.now <= 1000 + node_app.RD_CLOSE_MS + 100, net.now


def _drain(sock):
    # Take what waits for a bare socket (the fake network keeps it until
    # read), acknowledging CONs as an observer must (RFC 7641 §4.5: an
    # observer that acknowledges none is dropped).
    n = 0
    while True:
        try:
            data, remote = sock.recvfrom(1500)
        except OSError:
            return n
        n += 1
        tid, m = Message.decode(data)
        if m.transaction_type == CON:
            sock.sendto(Message(ACK, 0).encode(tid), remote)


def test_an_rd_that_does_not_answer_does_not_stop_the_node():
    # The RD's host is down: registration retries with back-off while the
    # node goes on serving and notifying.
    net = Net()
    rd = net.socket(RD)  # bound, never answers
    log = []
    node = node_app.Node(read_c=lambda: 20.0, log=log.append, end_point=net.endpoint(SERVER),
                         rd="coap://10.0.0.1", ep_name="n2")
    rogue = net.socket(ROGUE)
    rogue.sendto(Message(CON, GET, token=b"ob", uri_path="sensors/temp", observe=0).encode(5),
                 SERVER)
    notes = [0]

    def take():  # called by the loop each round: read as they come (a board's heap is small)
        notes[0] += _drain(rogue)
        _drain(rd)

    node.serve(seconds=120, feed=take)
    assert notes[0] >= 119, notes  # a reading a second throughout
    reqs = _rd_requests(net)
    # No path in RD_URI: the node asks for the registration resource (§4.3).
    assert all((r[1], r[2], r[3]) == (1, ".well-known/core", ["rt=core.rd*"]) for r in reqs), reqs
    # Each discovery is a CON retransmitted 4 times (5 datagrams), then a
    # back-off: a few attempts in two minutes, not a storm.
    assert 2 <= len(reqs) <= 25, len(reqs)
    assert any(line.startswith("node: RD: no RD answered the discovery") for line in log), log
    node.close()


def test_without_an_rd_nothing_is_registered():
    net = Net()
    log = []
    node = node_app.Node(log=log.append, end_point=net.endpoint(SERVER))
    node.serve(seconds=5)
    assert node.registrar is None and net.sent(SERVER) == [], net.sent(SERVER)
    assert log == ["node: serving CoAP on 0.0.0.0:5683"], log
    node.close()


def test_endpoint_name_without_one_configured():
    name = rd.endpoint_name(5683)
    # A board: "coapy-" and its unique id in hex; elsewhere the port.
    assert name == "coapy-node-5683" or (name.startswith("coapy-") and len(name) > 6), name
    assert len(name.encode()) <= 63, name


def test_settings_that_cannot_work_are_said_and_the_node_serves_anyway():
    # A board would reset over and over if a bad RD_URI or RD_EP stopped it.
    for rd, name in (("http://10.0.0.1/rd", "n1"), ("coap://10.0.0.1/rd", "x" * 64)):
        net = Net()
        log = []
        node = node_app.Node(log=log.append, end_point=net.endpoint(SERVER), rd=rd,
                             ep_name=name)
        assert node.registrar is None, log
        assert log[0] == "node: serving CoAP on 0.0.0.0:5683", log
        assert log[1].startswith("node: not registering with the RD at %r" % rd), log
        rogue = net.socket(ROGUE)
        rogue.sendto(Message(CON, GET, token=b"h", uri_path="hello").encode(9), SERVER)
        node.serve(seconds=0.5)
        assert [Message.decode(d)[1].code for _, d in net.sent(SERVER, ROGUE)] == [69], log
        node.close()


def test_no_lifetime_configured_is_the_default():
    for lt in (None, 0):
        node = node_app.Node(log=lambda s: None, end_point=Net().endpoint(SERVER),
                             rd="coap://10.0.0.1/rd", ep_name="n1", lt_s=lt)
        assert node.registrar.lt_s == node_app.RD_LT_S, node.registrar.lt_s
        node.close()
