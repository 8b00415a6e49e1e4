# EndPoint.supersede(record, message): a newer message in place of one the
# EndPoint sent, as the Observe server sends the next notification (RFC 7641
# §4.5.2). In place of a CON awaiting its ACK it keeps that CON's
# retransmission counter and timeout; otherwise it is a new transmission on
# the same record (a NON goes out at once and holds no place in flight).
# Portable: CPython (pytest) and the MicroPython VM, on fakenet.
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
import support  # noqa: F401
from fakenet import CLIENT, SERVER, Net, fixed, tid
from coapy_micro.connection import CapacityError, Message, TransmissionRecord

CON, NON, ACK, RST = Message.CON, Message.NON, Message.ACK, Message.RST
CONTENT = 69


def _net():
    net = Net()
    s = net.endpoint(SERVER, rand=fixed(0), max_in_flight=2)  # ack_timeout 2 s exactly
    return net, s


def _note(mtype, payload):
    return Message(mtype, CONTENT, payload, b"tk")


def _sent(net):
    return [(t, (d[0] >> 4) & 3, tid(d), Message.decode(d)[1].payload)
            for t, d in net.sent(SERVER, CLIENT)]


def test_a_non_in_place_of_a_finished_record_goes_out_at_once_without_a_place():
    net, s = _net()
    net.socket(CLIENT)
    rec = TransmissionRecord(s, _note(NON, b"1"), CLIENT)  # never sent
    assert s.supersede(rec, rec.message) is rec
    assert s.in_flight == 0 and rec.done, (s.in_flight, rec.done)
    first = rec.transaction_id
    s.supersede(rec, _note(NON, b"2"))
    sent = _sent(net)
    assert [x[3] for x in sent] == [b"1", b"2"], sent
    assert sent[0][2] == first and sent[1][2] == rec.transaction_id != first, sent
    assert s.in_flight == 0, s.in_flight


def test_a_con_in_place_of_a_con_in_flight_keeps_its_counter_and_timeout():
    net, s = _net()
    net.socket(CLIENT)  # never answers
    rec = s.send(_note(CON, b"a"), CLIENT)
    s.process(0)
    net.now = 500
    support.raises(ValueError, s.supersede, rec, _note(NON, b"n"))  # only a CON
    assert s.supersede(rec, _note(CON, b"b")) is rec
    s.process(0)
    net.now = 1000
    s.supersede(rec, _note(CON, b"c"))  # replaces b before it went out
    gave_up = []
    s.on_unacknowledged = gave_up.append
    while not gave_up:
        s.process(None)  # (returns when a CON gives up)
    sent = _sent(net)
    # 0, 2, 6, 14, 30 s as for one CON; the newest state from the first
    # retransmission on, with a Message ID of its own.
    assert [x[0] for x in sent] == [0, 2000, 6000, 14000, 30000], sent
    assert [x[3] for x in sent] == [b"a", b"c", b"c", b"c", b"c"], sent
    assert sent[0][2] != sent[1][2] == sent[4][2], sent
    assert gave_up == [rec] and rec.done and net.now == 62000, (gave_up, net.now)


def test_an_ack_of_the_con_in_flight_sends_the_newer_one_at_once():
    net, s = _net()
    net.socket(CLIENT)
    rec = s.send(_note(CON, b"z"), CLIENT)
    s.supersede(rec, _note(CON, b"a"))  # still queued: a simply goes instead
    s.process(0)
    net.now = 100
    s.supersede(rec, _note(CON, b"b"))
    ack = Message(ACK, 0, b"", b"")
    net.inject(CLIENT, SERVER, ack.encode(rec.transaction_id), 300)
    s.process(500)  # the ACK of a, at 300: b goes at once, as a new CON
    assert not rec.done, rec.done
    net.inject(CLIENT, SERVER, ack.encode(rec.transaction_id), 600)
    s.process(1000)
    sent = _sent(net)
    assert [(x[0], x[3]) for x in sent] == [(0, b"a"), (300, b"b")], sent
    assert sent[0][2] != sent[1][2], sent
    assert rec.done and not rec.is_unacknowledged and s.in_flight == 0, (rec.done, s.in_flight)


def test_an_rst_ends_the_record_and_what_superseded_it():
    net, s = _net()
    net.socket(CLIENT)
    rec = s.send(_note(CON, b"a"), CLIENT)
    s.process(0)
    s.supersede(rec, _note(CON, b"b"))
    rst = Message(RST, 0, b"", b"")
    net.inject(CLIENT, SERVER, rst.encode(rec.transaction_id))
    rx = s.process(0)
    assert rx is not None and rx.pertains_to is rec and rec.done, rx
    s.process(100000)
    assert [x[3] for x in _sent(net)] == [b"a"], _sent(net)


def test_supersede_refuses_what_send_refuses():
    net, s = _net()
    net.socket(CLIENT)
    s.send(_note(CON, b"x"), CLIENT)
    s.send(_note(CON, b"y"), CLIENT)
    fresh = TransmissionRecord(s, _note(CON, b"z"), CLIENT)
    support.raises(CapacityError, s.supersede, fresh, fresh.message)
    assert not fresh.done and s.in_flight == 2, s.in_flight  # untouched
    s.supersede(fresh, _note(NON, b"n"))  # a NON needs no place
    assert fresh.done, fresh.done
    support.raises(ValueError, s.supersede, fresh, Message(ACK, CONTENT, b"", b"tk"))
    net2, s2 = _net()
    req = s2.send(Message(NON, 1, b"", b"rq"), CLIENT)  # a request: awaits its response
    s2.process(0)
    support.raises(ValueError, s2.supersede, req, _note(NON, b"r"))
