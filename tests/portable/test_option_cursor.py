# The codec's option cursor (message.option_next over Message.cursor) and the
# helpers every layer builds options with: insert_option, set_options (an
# option list or checked option bytes), encode_empty_into, make_ack.
# Portable: CPython (pytest) and the MicroPython VM, where the walk must not
# allocate. Rules: module-level `def test_*()` only, asserts show values.
import support
from coapy_micro.message import (DecodeError, Message, encode_empty_into, encode_options,
                                 insert_option, option_next)
from coapy_micro.options import Option

# Uri-Path sensors/temp, Content-Format 0, Uri-Query a=1 and b=2, Size1 2000.
MSG = Message(Message.CON, 1, token=b"t", uri_path="sensors/temp", content_format=0,
              uri_query="a=1&b=2", size1=2000)


def walk(msg, want=-1):
    # [(number, value bytes)] the cursor visits.
    cur = [0] * 5
    buf = msg.cursor(cur)
    out = []
    n = option_next(buf, cur, want)
    while n >= 0:
        out.append((n, bytes(buf[cur[0]:cur[0] + cur[1]])))
        n = option_next(buf, cur, want)
    return out


def test_the_cursor_visits_every_option_in_order():
    got = walk(MSG)
    assert got == [(11, b"sensors"), (11, b"temp"), (12, b""), (15, b"a=1"), (15, b"b=2"),
                   (60, b"\x07\xd0")], got


def test_the_cursor_walks_a_received_datagram_in_place():
    tid, m = Message.decode(MSG.encode(7))
    assert walk(m) == walk(MSG), walk(m)
    cur = [0] * 5
    assert m.cursor(cur) is not None and cur[2] > 4, cur  # the options start after the token


def test_want_steps_to_that_number_and_stops_past_it():
    assert walk(MSG, 15) == [(15, b"a=1"), (15, b"b=2")], walk(MSG, 15)
    assert walk(MSG, 14) == [], walk(MSG, 14)  # none: stops at 15 (options are ordered)
    cur = [0] * 5
    buf = MSG.cursor(cur)
    assert option_next(buf, cur, 13) == -1, cur
    # Left before the option past 13: a plain step reads it next.
    assert option_next(buf, cur) == 15 and bytes(buf[cur[0]:cur[0] + cur[1]]) == b"a=1", cur


def test_at_the_end_cur3_is_where_the_options_end():
    data = Message(Message.CON, 1, b"pay", b"", uri_path="x").encode(1)
    cur = [0, 0, 4, len(data), 0]
    assert option_next(data, cur) == 11 and option_next(data, cur) == -1, cur
    assert data[cur[3]] == 0xFF and cur[3] == len(data) - 4, (cur, data)


def test_format_errors_raise_decode_error():
    for bad in (b"\xf0", b"\x0f", b"\x35ab", b"\xd1", b"\xff"):
        cur = [0, 0, 0, len(bad), 0]
        support.raises(DecodeError, option_next, bad, cur)


def test_walking_allocates_nothing_on_micropython():
    tid, m = Message.decode(MSG.encode(7))
    cur = [0] * 5

    def steps():
        buf = m.cursor(cur)
        while option_next(buf, cur) >= 0:
            pass

    steps()
    support.assert_no_alloc(steps)
    support.assert_no_alloc(m.get_uint, 60)
    if not support.IS_MICROPYTHON:
        raise support.Skip("allocation is measured in the MicroPython VM")


def test_insert_option_keeps_order_and_replaces_on_request():
    opts = []
    for o in (Option(15, "q"), Option(11, "a"), Option(11, "b"), Option(12, 0), Option(11, "c")):
        insert_option(opts, o)
    assert [(o.number, o.value) for o in opts] == [(11, "a"), (11, "b"), (11, "c"), (12, 0),
                                                 (15, "q")], opts
    insert_option(opts, Option(11, "z"), True)
    assert [(o.number, o.value) for o in opts] == [(11, "z"), (12, 0), (15, "q")], opts


def test_set_options_takes_a_list_in_any_order_or_checked_bytes():
    m = Message(Message.CON, 1, token=b"t")
    m.set_options([Option(15, "q"), Option(11, "a"), Option(11, "b")])
    assert [(o.number, o.value) for o in m.options] == [(11, "a"), (11, "b"), (15, "q")], m
    ob = encode_options((Option(12, 50),))
    m.set_options(ob)
    assert m.get_uint(12) == 50 and m.findOption(11) is None, m
    assert Message.decode(m.encode(3))[1].get_uint(12) == 50
    support.raises(DecodeError, m.set_options, b"\xc1")  # value past the end
    support.raises(DecodeError, m.set_options, b"\xc0\xff\x01")  # a payload marker


def test_set_options_on_a_received_message_keeps_token_and_payload():
    tid, m = Message.decode(Message(Message.CON, 1, b"body", b"tk", uri_path="x").encode(9))
    m.set_options([Option(11, "y")])
    tid, back = Message.decode(m.encode(9))
    assert (back.token, back.payload, [o.value for o in back.options]) == (b"tk", b"body", ["y"]), back


def test_empty_messages_come_from_the_codec():
    buf = bytearray(8)
    assert encode_empty_into(buf, Message.RST, 0xBEEF) == 4
    tid, m = Message.decode(bytes(buf[:4]))
    assert (tid, m.transaction_type, m.code, m.token) == (0xBEEF, Message.RST, 0, b""), m
    support.assert_no_alloc(encode_empty_into, buf, Message.ACK, 1)


def test_make_ack():
    m = Message(Message.CON, 69, b"x")
    m.make_ack()
    assert m.transaction_type == Message.ACK and Message.decode(m.encode(1))[1].transaction_type == Message.ACK


def test_make_ack_takes_the_requests_token_when_it_has_none():
    # ReceptionRecord.ack() gives its message the request's token this way.
    _, req = Message.decode(bytes((0x42, 1, 0, 7, 0xAB, 0xCD)))
    m = Message(code=69, payload=b"x")
    m.make_ack(req)
    assert (m.transaction_type, m.token) == (Message.ACK, b"\xab\xcd")
    own = Message(code=69, token=b"\x01")
    own.make_ack(req)  # a token of its own stays
    assert own.token == b"\x01"
    tid, back = Message.decode(m.encode(7))
    assert (tid, back.transaction_type, back.token, back.payload) == (7, Message.ACK, b"\xab\xcd", b"x")
    # Only a CON is acknowledged: a NON request leaves the message as it was.
    _, non = Message.decode(bytes((0x52, 1, 0, 8, 0xAB, 0xCD)))
    m = Message(code=69)
    support.raises(ValueError, m.make_ack, non)
    assert (m.transaction_type, m.token) == (Message.CON, b""), m
