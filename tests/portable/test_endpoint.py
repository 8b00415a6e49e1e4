# EndPoint exchanges on the fake network (RFC 7252 §4.2, §4.3, §5.2): the
# retransmission schedule, giving up, ACK/RST, piggybacked, separate and NON
# responses, process() timing. Portable: CPython (pytest) and the MicroPython VM.
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
import errno

import support
from fakenet import CLIENT, SERVER, PERIOD, Net, fixed, mtype, pair, tid
from coapy_micro.connection import Message

CON, NON, ACK, RST = Message.CON, Message.NON, Message.ACK, Message.RST
GET, POST, CHANGED, CONTENT = 1, 2, 68, 69


def silent_server_schedule(rand_value, **kw):
    # A CON to a server that never answers: (send times, give-up time, record).
    net = Net()
    c = net.endpoint(CLIENT, rand=fixed(rand_value), **kw)
    net.socket(SERVER)  # bound, never read
    gave_up = []
    c.on_unacknowledged = lambda rec: gave_up.append((net.now, rec))
    rec = c.send(Message(CON, GET, token=b"t1", uri_path="x"), SERVER)
    r = c.process(1000000)
    assert r is None, r
    return net, net.times(CLIENT, SERVER), gave_up, rec


# -- retransmission (RFC 7252 §4.2) -------------------------------------------

def test_retransmission_schedule_with_known_random():
    # ack_timeout 2000, factor 1.5: initial timeout 2000 + (1000 * 32768 >> 16)
    # = 2500 ms, doubled after each retransmission.
    net, times, gave_up, rec = silent_server_schedule(32768)
    assert times == [0, 2500, 7500, 17500, 37500], times
    data = [d for _, d in net.sent(CLIENT, SERVER)]
    assert data == [rec.packed] * 5, data
    assert mtype(data[0]) == CON and tid(data[0]) == rec.transaction_id, (data[0], rec.transaction_id)
    # The last wait is 16 x 2500: the record gives up at 37500 + 40000.
    assert [t for t, _ in gave_up] == [77500], gave_up


def test_initial_timeout_spans_the_random_factor():
    cases = (
        (0, {}, 2000),  # ACK_TIMEOUT
        (65535, {}, 2999),  # just under ACK_TIMEOUT x ACK_RANDOM_FACTOR
        (16384, {"ack_timeout_ms": 1000, "ack_random_factor": 2.0}, 1250),
        (0, {"ack_timeout_ms": 10000}, 10000),  # a slow link
    )
    for r, kw, first in cases:
        net, times, gave_up, rec = silent_server_schedule(r, **kw)
        want = [0, first, 3 * first, 7 * first, 15 * first]
        assert times == want, (r, kw, times, want)
        assert gave_up[0][0] == 31 * first, (r, kw, gave_up)


def test_record_times_during_retransmission():
    net = Net()
    c = net.endpoint(CLIENT, rand=fixed(0))  # timeout 2000
    net.socket(SERVER)
    rec = c.send(Message(CON, GET, token=b"t"), SERVER)
    assert rec.created_time is None and rec.response_type is None, (rec.created_time, rec.response_type)
    c.process(1000)
    got = (rec.created_time, rec.last_event_time, rec.next_event_time, rec.remaining_attempts)
    assert got == (0, 0, 2000, 4), got
    c.process(2000)  # now 3000: retransmitted once at 2000
    got = (rec.created_time, rec.last_event_time, rec.next_event_time, rec.remaining_attempts)
    assert got == (0, 2000, 6000, 3), got
    assert rec.is_unacknowledged is False and not rec.done, (rec.is_unacknowledged, rec.done)


def test_gives_up_after_max_retransmit():
    net, times, gave_up, rec = silent_server_schedule(0)
    assert len(times) == 5, times  # MAX_RETRANSMIT = 4 retransmissions
    assert len(gave_up) == 1 and gave_up[0][1] is rec, gave_up  # hook called once
    got = (rec.is_unacknowledged, rec.done, rec.next_event_time, rec.remaining_attempts, rec.response_type)
    assert got == (True, True, None, 0, None), got
    c = rec.end_point
    assert c.in_flight == 0, c.in_flight  # the record left the in-flight table


def test_max_retransmit_is_tunable():
    net, times, gave_up, rec = silent_server_schedule(0, max_retransmit=0)
    assert times == [0], times
    assert [t for t, _ in gave_up] == [2000], gave_up
    net, times, gave_up, rec = silent_server_schedule(0, max_retransmit=6)
    assert times == [0, 2000, 6000, 14000, 30000, 62000, 126000], times
    assert [t for t, _ in gave_up] == [254000], gave_up


def test_schedule_across_the_ticks_wrap():
    # Start 3 s before the ticks counter wraps: nothing may compare ticks with <.
    net = Net(base=PERIOD - 3000)
    c = net.endpoint(CLIENT, rand=fixed(0))
    net.socket(SERVER)
    gave_up = []
    c.on_unacknowledged = lambda rec: gave_up.append(net.now)
    rec = c.send(Message(CON, GET, token=b"w"), SERVER)
    c.process(1000)
    assert rec.next_event_time == (PERIOD - 3000 + 2000) % PERIOD, rec.next_event_time
    c.process(100000)
    times = net.times(CLIENT, SERVER)
    assert times == [0, 2000, 6000, 14000, 30000], times
    assert gave_up == [62000], gave_up


def test_sendto_error_is_recorded_and_retransmission_recovers():
    net = Net()
    c = net.endpoint(CLIENT, rand=fixed(0))
    s = net.endpoint(SERVER)
    net.link(CLIENT, SERVER, fail=[1])  # the first sendto raises ENOMEM
    rec = c.send(Message(CON, GET, token=b"e"), SERVER)
    c.process(0)
    assert rec.error == errno.ENOMEM, rec.error
    assert net.times(CLIENT, SERVER) == [], net.log
    c.process(2000)  # ends at 2000: what is due then waits for the next call
    c.process(0)
    assert net.times(CLIENT, SERVER) == [2000], net.log
    assert rec.error is None, rec.error
    rx = s.process(0)
    assert rx is not None and rx.transaction_id == rec.transaction_id, rx


# -- ACK and RST -------------------------------------------------------------

def test_ack_stops_retransmission():
    net, c, s = pair(client={"rand": fixed(0)})
    net.link(CLIENT, SERVER, drop=[1])  # the first transmission is lost

    def on_rx(ep, rx):
        if ep is s:
            rx.ack(Message(ACK, CONTENT, payload=b"v"))

    rec = c.send(Message(CON, GET, token=b"a"), SERVER)
    net.run(100000, on_rx)
    assert net.times(CLIENT, SERVER) == [0, 2000], net.times(CLIENT, SERVER)
    assert net.times(SERVER, CLIENT) == [2000], net.times(SERVER, CLIENT)
    assert rec.done and rec.response_type == ACK, (rec.done, rec.response_type)
    assert not rec.is_unacknowledged and rec.remaining_attempts == 0, (rec.is_unacknowledged,
                                                                       rec.remaining_attempts)


def test_rst_sets_response_type_rst():
    net, c, s = pair(client={"rand": fixed(0)})
    rec = c.send(Message(CON, GET, token=b"r", uri_path="nope"), SERVER)
    c.process(0)
    rx = s.process(0)
    assert rx is not None, rx
    rx.reset()
    sent = net.sent(SERVER, CLIENT)
    assert sent == [(0, bytes([0x70, 0, rec.transaction_id >> 8, rec.transaction_id & 255]))], sent
    got = c.process(0)
    assert got is not None and got.pertains_to is rec, got
    assert got.message.transaction_type == RST, got.message
    assert rec.response_type == RST and rec.response is got and rec.done, (rec.response_type, rec.done)
    assert c.process(100000) is None
    assert net.times(CLIENT, SERVER) == [0], net.times(CLIENT, SERVER)


def test_ping_gets_rst_and_the_application_sees_nothing():
    net, c, s = pair()
    rec = c.send(Message(CON, 0), SERVER)  # an Empty CON: a ping (RFC 7252 §4.3)
    c.process(0)
    assert s.process(0) is None  # answered by the message layer
    sent = net.sent(SERVER, CLIENT)
    assert sent == [(0, bytes([0x70, 0, rec.transaction_id >> 8, rec.transaction_id & 255]))], sent
    got = c.process(0)
    assert got is not None and got.pertains_to is rec and rec.response_type == RST, (got, rec.response_type)
    assert rec.done, rec.done


# -- responses (RFC 7252 §5.2) -----------------------------------------------

def test_piggybacked_response():
    net, c, s = pair()
    rec = c.send(Message(CON, GET, token=b"tok1", uri_path="temp"), SERVER)
    c.process(0)
    rx = s.process(0)
    assert rx.message.code == GET and rx.message.token == b"tok1", rx.message
    assert rx.transaction_id == rec.transaction_id and rx.remote == CLIENT, (rx.transaction_id, rx.remote)
    assert rx.pertains_to is None, rx.pertains_to
    # Any type becomes ACK; the request's token is used when the reply has none.
    rx.ack(Message(NON, CONTENT, payload=b"21.5"))
    (t, data), = net.sent(SERVER, CLIENT)
    assert (mtype(data), tid(data), data[4:8]) == (ACK, rec.transaction_id, b"tok1"), data
    got = c.process(0)
    assert got is not None and got.pertains_to is rec, got
    assert got.message.payload == b"21.5" and got.message.code == CONTENT, got.message
    assert rec.response is got and rec.responses == [got], (rec.response, rec.responses)
    assert rec.response_type == ACK and rec.done, (rec.response_type, rec.done)
    assert c.process(100000) is None
    assert net.times(CLIENT, SERVER) == [0], net.times(CLIENT, SERVER)


def test_separate_response():
    net, c, s = pair(server={"rand": fixed(0)})
    rec = c.send(Message(CON, GET, token=b"sep1"), SERVER)
    c.process(0)
    rx = s.process(0)
    rx.ack()  # an empty ACK now, the response later (RFC 7252 §5.2.2)
    assert net.sent(SERVER, CLIENT) == [(0, bytes([0x60, 0]) + net.sent(CLIENT, SERVER)[0][1][2:4])], net.log
    got = c.process(0)
    assert got is not None and got.pertains_to is rec and got.message.code == 0, got
    assert rec.response_type == ACK and rec.response is None and not rec.done, (rec.response_type, rec.done)
    assert rec.remaining_attempts == 0, rec.remaining_attempts
    assert s.process(1000) is None  # the server works for a second
    srec = s.send(Message(CON, CONTENT, token=rx.message.token, payload=b"late"), rx.remote)
    s.process(0)
    resp = c.process(0)
    assert resp is not None and resp.message.transaction_type == CON, resp
    assert resp.pertains_to is rec and rec.response is resp and rec.done, (resp.pertains_to, rec.done)
    assert resp.transaction_id == srec.transaction_id != rec.transaction_id, (resp.transaction_id,
                                                                             srec.transaction_id)
    resp.ack()
    ack = s.process(0)
    assert ack is not None and ack.pertains_to is srec, ack
    assert srec.response_type == ACK and srec.done, (srec.response_type, srec.done)
    assert s.process(100000) is None and c.process(0) is None
    assert net.times(SERVER, CLIENT) == [0, 1000], net.times(SERVER, CLIENT)
    assert net.times(CLIENT, SERVER) == [0, 1000], net.times(CLIENT, SERVER)


def test_separate_con_response_retransmitted_until_acked():
    net, c, s = pair(server={"rand": fixed(0)})  # the server's timeout: 2000 ms
    rec = c.send(Message(CON, GET, token=b"sep2"), SERVER)
    c.process(0)
    rx = s.process(0)
    rx.ack()
    c.process(0)
    s.process(1000)
    srec = s.send(Message(CON, CONTENT, token=rx.message.token, payload=b"x"), CLIENT)
    s.process(0)  # the CON response leaves at 1000
    resp = c.process(0)
    assert resp is not None and resp.pertains_to is rec, resp
    # The client does not acknowledge yet: the server retransmits at 3000; the
    # copy is recognised as a duplicate and not handed to the application.
    s.process(2000)
    s.process(0)
    assert c.process(500) is None
    assert c.duplicates == 1, c.duplicates
    assert net.now == 3500, net.now
    resp.ack()
    ack = s.process(10000)
    assert ack is not None and ack.pertains_to is srec and srec.done, (ack, srec.done)
    assert s.process(100000) is None
    assert net.times(SERVER, CLIENT) == [0, 1000, 3000], net.times(SERVER, CLIENT)
    assert net.times(CLIENT, SERVER) == [0, 3500], net.times(CLIENT, SERVER)


def test_non_request_with_non_response():
    net, c, s = pair()
    rec = c.send(Message(NON, GET, token=b"n1"), SERVER)
    c.process(0)
    assert rec.response_type == NON and not rec.done, (rec.response_type, rec.done)
    assert rec.remaining_attempts == 0, rec.remaining_attempts
    rx = s.process(0)
    assert rx.message.transaction_type == NON, rx.message
    support.raises(ValueError, rx.ack)  # only a CON is acknowledged
    srec = s.send(Message(NON, CONTENT, token=rx.message.token, payload=b"7"), rx.remote)
    s.process(0)
    assert srec.done and srec.response_type == NON, (srec.done, srec.response_type)
    got = c.process(0)
    assert got is not None and got.pertains_to is rec and rec.response is got, got
    assert rec.done and rec.response_type == NON and rec.responses == [got], (rec.done, rec.responses)
    assert c.process(200000) is None
    assert net.times(CLIENT, SERVER) == [0], net.times(CLIENT, SERVER)  # NON: never repeated


def test_send_takes_only_con_and_non():
    net, c, s = pair()
    support.raises(ValueError, c.send, Message(ACK, CONTENT), SERVER)
    support.raises(ValueError, c.send, Message(RST, 0), SERVER)
    assert c.in_flight == 0, c.in_flight


def test_send_queues_until_process():
    net, c, s = pair()
    c.send(Message(NON, GET, token=b"q"), SERVER)
    assert net.log == [], net.log
    c.process(0)
    assert len(net.log) == 1, net.log


# -- process() timing ----------------------------------------------------------

def test_process_zero_returns_none_when_idle():
    net, c, s = pair()
    assert c.process(0) is None
    assert net.now == 0, net.now


def test_process_timeout_returns_none_after_exactly_that_time():
    net, c, s = pair(client={"rand": fixed(0)})
    assert c.process(1234) is None
    assert net.now == 1234, net.now
    # With a CON retransmitting meanwhile (at 1234 + 2000 and + 6000).
    c.send(Message(CON, GET, token=b"p"), ("10.0.0.99", 5683))
    assert c.process(7000) is None
    assert net.now == 8234, net.now
    assert net.times(CLIENT, None) == [1234, 3234, 7234], net.times(CLIENT, None)


def test_process_returns_the_message_when_it_arrives():
    net, c, s = pair()
    net.link(CLIENT, SERVER, delay=37)
    c.send(Message(NON, GET, token=b"d"), SERVER)
    c.process(0)
    rx = s.process(None)  # no limit: returns when the datagram arrives
    assert rx is not None and net.now == 37, (rx, net.now)
    assert s.process(0) is None


# -- process() must not raise because of what the application queued ------------
# Regression (failed on 3c4eca4): a message that could not be encoded into the
# endpoint's buffer (longer than max_message_size, or an Empty message with a
# payload) was accepted by send(), then encode_into raised ValueError inside
# process(); the record stayed queued, so every later process() raised too.

def test_unsendable_message_does_not_wedge_process():
    net, c, s = pair(client={"max_message_size": 64})
    for bad in (Message(NON, POST, payload=b"x" * 100), Message(CON, 0, payload=b"p")):
        try:
            c.send(bad, SERVER)
        except ValueError:
            pass  # refusing at send() is fine
        ok = c.send(Message(NON, GET, token=b"ok"), SERVER)
        try:
            c.process(0)
        except Exception as e:
            raise AssertionError("process() raised %r for %r" % (e, bad))
        assert ok.created_time is not None, (bad, ok.created_time)
        rx = s.process(0)
        assert rx is not None and rx.message.token == b"ok", (bad, rx)


# Regression (failed on 3c4eca4): ack(message) stored the reply before encoding
# it; when encoding failed (the application's error, reported to it as
# ValueError: fine) the peer's next retransmission made process() replay the
# stored reply and raise from inside the message layer.

def test_failed_ack_does_not_make_duplicates_raise():
    net, c, s = pair(client={"rand": fixed(0)}, server={"max_message_size": 64})
    rec = c.send(Message(CON, GET, token=b"big"), SERVER)
    c.process(0)
    rx = s.process(0)
    support.raises(ValueError, rx.ack, Message(ACK, CONTENT, payload=b"x" * 100))
    c.process(2000)
    c.process(0)  # the client retransmits at 2000
    try:
        got = s.process(0)
    except Exception as e:
        raise AssertionError("a duplicate CON made process() raise %r" % (e,))
    assert got is None, got
    assert not rec.done, rec.done


# Regression (failed on 3c4eca4): the timeout was only checked when a poll
# returned nothing, so while datagrams the message layer answers itself (pings,
# duplicates, junk) kept arriving, process(timeout_ms) did not return: a ping
# flood starved the sensor loop.

def test_process_timeout_holds_under_a_ping_flood():
    net, c, s = pair()
    net.recv_cost = 1  # each datagram takes the CPU 1 ms
    rogue = net.socket(("10.0.0.66", 40000))
    for i in range(1000):
        net.inject(rogue.addr, SERVER, bytes([0x40, 0, i >> 8, i & 255]))
    assert s.process(100) is None
    assert net.now <= 101, net.now  # at most one datagram's work late
