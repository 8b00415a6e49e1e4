# Message API and wire format (RFC 7252 §3). Portable: runs under pytest on
# CPython and, through tests/test_micropython_vm.py, in the real MicroPython VM.
# Rules for this file: module-level `def test_*()` only, plain assert, no pytest.
import support
from coapy_micro import options
from coapy_micro.message import Message, DecodeError, encode_reply_into

TOKEN = b"\x01\x02\x03\x04"

# The typical request (the benchmarks' too), hand-derived (RFC 7252 §3, §3.1):
#   0x44        Ver 1 (01), T CON (00), TKL 4 (0100)
#   0x01        Code 0.01 GET
#   0x12 0x34   Message ID 0x1234
#   01 02 03 04 Token
#   0xB7        delta 11 (Uri-Path), length 7: "sensors"
#   0x0A        delta 0 (Uri-Path again), length 10: "livingroom"
#   0x04        delta 0, length 4: "temp"
#   0x46        delta 4 (11 -> 15 Uri-Query), length 6: "unit=C"
TYPICAL_REQUEST = (
    b"\x44\x01\x12\x34\x01\x02\x03\x04"
    b"\xb7sensors" b"\x0alivingroom" b"\x04temp" b"\x46unit=C"
)

PAYLOAD_100 = b"0123456789" * 10

# The typical response, hand-derived:
#   0x64        Ver 1, T ACK (10), TKL 4
#   0x45        Code 2.05 = (2 << 5) | 5 = 69
#   0x12 0x34   Message ID (echoed)
#   01 02 03 04 Token (echoed)
#   0xC1 0x32   delta 12 (Content-Format), length 1, value 50 (application/json)
#   0xFF        payload marker, then the 100 payload bytes
TYPICAL_RESPONSE = b"\x64\x45\x12\x34\x01\x02\x03\x04\xc1\x32\xff" + PAYLOAD_100


def typical_request():
    return Message(Message.CON, 1, token=TOKEN,
                   uri_path="sensors/livingroom/temp", uri_query="unit=C")


def typical_response():
    return Message(Message.ACK, 69, payload=PAYLOAD_100, token=TOKEN,
                   content_format=50)


def pairs(msg):
    # Options as comparable (number, wire bytes) pairs, in message order.
    return [(o.number, o.raw) for o in msg.options]


def values(msg, number):
    return [o.value for o in msg.findOptions(number)]


# -- construction and header fields -------------------------------------

def test_type_constants():
    assert (Message.CON, Message.NON, Message.ACK, Message.RST) == (0, 1, 2, 3)


def test_defaults():
    m = Message()
    assert m.transaction_type == Message.CON
    assert m.code == 0
    assert m.payload == b""
    assert m.token == b""
    assert m.version == 1
    assert m.options == ()


def test_positional_arguments_follow_the_seed():
    # Message(transaction_type, code, payload, token)
    m = Message(Message.NON, 2, b"body", b"\x07")
    assert m.transaction_type == Message.NON
    assert m.code == 2
    assert m.payload == b"body"
    assert m.token == b"\x07"


def test_invalid_transaction_type_raises_value_error():
    support.raises(ValueError, Message, 4)
    support.raises(ValueError, Message, -1)


def test_transaction_type_is_read_only():
    m = Message(Message.NON)

    def assign():
        m.transaction_type = Message.CON

    support.raises(AttributeError, assign)
    assert m.transaction_type == Message.NON


def test_code_is_writable():
    m = Message(Message.CON, 1)
    m.code = 2
    assert m.code == 2
    assert m.encode(1)[1] == 2


def test_payload_str_is_utf8_encoded():
    m = Message(payload="22.3 \u00b0C")
    assert m.payload == b"22.3 \xc2\xb0C"
    assert isinstance(m.payload, bytes)


def test_payload_setter_str_and_bytearray():
    m = Message()
    m.payload = "\u00e9"
    assert m.payload == b"\xc3\xa9"
    m.payload = bytearray(b"ab")
    assert m.payload == b"ab"
    assert isinstance(m.payload, bytes)
    m.payload = None
    assert m.payload == b""


def test_token_lengths_0_to_8():
    for n in range(9):
        tok = bytes(range(1, n + 1))
        m = Message(Message.CON, 1, token=tok)
        assert m.token == tok
        wire = m.encode(0)
        assert wire[0] & 15 == n
        assert wire[4:4 + n] == tok


def test_token_of_9_bytes_raises_value_error():
    support.raises(ValueError, Message, Message.CON, 1, b"", b"123456789")
    m = Message(Message.CON, 1, token=b"\x01")

    def assign():
        m.token = b"123456789"

    support.raises(ValueError, assign)
    assert m.token == b"\x01"


def test_token_bytearray_becomes_bytes():
    m = Message(Message.CON, 1, token=bytearray(b"\x05\x06"))
    assert m.token == b"\x05\x06"
    assert isinstance(m.token, bytes)


def test_constructor_token_and_payload_as_the_setters_take_them():
    # The constructor sets a bytes payload and an empty token without the
    # properties; every other value still goes through their checks.
    for tok in (None, b"", bytearray(), memoryview(b"")):
        m = Message(Message.CON, 1, token=tok)
        assert m.token == b"" and type(m.token) is bytes, (tok, m.token)
    support.raises(TypeError, Message, Message.CON, 1, b"", "")
    support.raises(TypeError, Message, Message.CON, 1, b"", 0)
    for pl, want in ((None, b""), ("", b""), ("h\u00e9", b"h\xc3\xa9"), (bytearray(b"ab"), b"ab"),
                     (memoryview(b"cd"), b"cd"), (b"ef", b"ef")):
        m = Message(Message.CON, 1, pl)
        assert m.payload == want and type(m.payload) is bytes, (pl, m.payload)


# -- keywords -------------------------------------------------------------

# keyword, value, expected (number, wire value) pairs. Wire values are the
# RFC 7252 §3.2 forms: uint minimal big-endian, string UTF-8, opaque as is.
KEYWORD_CASES = (
    ("if_match", b"\xaa\xbb", [(1, b"\xaa\xbb")]),
    ("uri_host", "example.com", [(3, b"example.com")]),
    ("etag", b"\x01\x02", [(4, b"\x01\x02")]),
    ("if_none_match", b"", [(5, b"")]),
    ("observe", 0, [(6, b"")]),
    ("uri_port", 5683, [(7, b"\x16\x33")]),
    ("location_path", "new/1", [(8, b"new"), (8, b"1")]),
    ("oscore", b"\x09", [(9, b"\x09")]),
    ("uri_path", "a/b", [(11, b"a"), (11, b"b")]),
    ("content_format", 50, [(12, b"\x32")]),
    ("max_age", 3600, [(14, b"\x0e\x10")]),
    ("uri_query", "x=1&y=2", [(15, b"x=1"), (15, b"y=2")]),
    ("hop_limit", 16, [(16, b"\x10")]),
    ("accept", 60, [(17, b"\x3c")]),
    ("location_query", "a=b", [(20, b"a=b")]),
    # Block value (num << 4) | (more << 3) | szx (RFC 7959 §2.2)
    ("block2", (2, False, 6), [(23, b"\x26")]),
    ("block1", (1, True, 2), [(27, b"\x1a")]),
    ("size2", 300, [(28, b"\x01\x2c")]),
    ("proxy_uri", "coap://h/p", [(35, b"coap://h/p")]),
    ("proxy_scheme", "coap", [(39, b"coap")]),
    ("size1", 1024, [(60, b"\x04\x00")]),
    ("echo", b"\x01\x02\x03", [(252, b"\x01\x02\x03")]),
    ("no_response", 26, [(258, b"\x1a")]),
    ("request_tag", b"\x07", [(292, b"\x07")]),
)


def test_every_keyword_makes_its_option():
    for key, value, expected in KEYWORD_CASES:
        kw = {key: value}
        m = Message(Message.CON, 1, **kw)
        assert pairs(m) == expected, (key, pairs(m))


def test_every_issue_keyword_is_covered():
    names = [c[0] for c in KEYWORD_CASES]
    assert len(names) == 24
    for key in names:
        assert key in Message.OptionKeywords, key


def test_all_keywords_together_are_ordered_by_number():
    kw = {}
    expected = []
    for key, value, exp in KEYWORD_CASES:
        kw[key] = value
        expected += exp
    m = Message(Message.CON, 1, **kw)
    # Each keyword's options are contiguous and already in number order, and
    # the table above is in number order: the message must match it exactly.
    assert pairs(m) == expected
    tid, back = Message.decode(m.encode(9))
    assert pairs(back) == expected


def test_uri_path_segments_in_order():
    m = Message(Message.CON, 1, uri_path="a/b/c")
    assert values(m, 11) == ["a", "b", "c"]


def test_uri_path_leading_slash_is_dropped():
    m = Message(Message.CON, 1, uri_path="/a/b")
    assert values(m, 11) == ["a", "b"]


def test_uri_path_empty_and_slash_make_no_option():
    # RFC 7252 §6.4 step 8: a path of "" or "/" adds no Uri-Path option.
    assert Message(Message.CON, 1, uri_path="").options == ()
    assert Message(Message.CON, 1, uri_path="/").options == ()


def test_uri_path_tuple_is_one_option_per_item():
    m = Message(Message.CON, 1, uri_path=("a", "b/c"))
    assert values(m, 11) == ["a", "b/c"]


def test_uri_query_splits_on_ampersand():
    m = Message(Message.CON, 1, uri_query="x=1&y=2")
    assert values(m, 15) == ["x=1", "y=2"]
    m = Message(Message.CON, 1, uri_query=("x=1", "y=2&z"))
    assert values(m, 15) == ["x=1", "y=2&z"]


def test_keyword_none_adds_nothing():
    assert Message(Message.CON, 1, content_format=None).options == ()


def test_unknown_keyword_raises_type_error():
    support.raises(TypeError, Message, Message.CON, 1, no_such_option=1)


def test_if_none_match_true_is_an_empty_option():
    # If-None-Match is an empty option (RFC 7252 §5.10.8.2, length 0): the
    # natural spelling if_none_match=True must give the empty value, not the
    # uint 1 (which would make a malformed option the server must reject).
    m = Message(Message.CON, 3, if_none_match=True)
    opts = m.options
    assert len(opts) == 1
    assert opts[0].number == 5
    assert opts[0].raw == b""
    assert not opts[0].malformed


# -- options API ------------------------------------------------------------

def test_options_is_a_tuple_ordered_by_number():
    m = Message(Message.CON, 1)
    m.addOption(options.UriQuery("q"))
    m.addOption(options.UriHost("h"))
    m.addOption(options.ContentFormat(0))
    m.addOption(options.UriPath("p"))
    assert isinstance(m.options, tuple)
    assert [o.number for o in m.options] == [3, 11, 12, 15]


def test_repeated_options_keep_insertion_order():
    m = Message(Message.CON, 1)
    for seg in ("h", "d", "g", "e", "f", "b", "a", "c", "q"):
        m.addOption(options.UriPath(seg))
        m.addOption(options.UriQuery(seg + "=1"))
        m.addOption(options.ContentFormat(0))
    assert values(m, 11) == ["h", "d", "g", "e", "f", "b", "a", "c", "q"]
    assert values(m, 15)[0] == "h=1"
    assert values(m, 15)[8] == "q=1"
    assert [o.number for o in m.options] == [11] * 9 + [12] + [15] * 9


def test_add_option_returns_it():
    m = Message(Message.CON, 1)
    o = options.UriPath("x")
    assert m.addOption(o) is o


def test_add_option_non_repeatable_replaces():
    m = Message(Message.CON, 1)
    m.addOption(options.ContentFormat(0))
    m.addOption(options.ContentFormat(50))
    assert pairs(m) == [(12, b"\x32")]


def test_replace_option_removes_every_same_number():
    m = Message(Message.CON, 1, uri_path="a/b", uri_query="q")
    m.replaceOption(options.UriPath("c"))
    assert pairs(m) == [(11, b"c"), (15, b"q")]


def test_replace_option_adds_when_absent():
    m = Message(Message.CON, 1, uri_query="q")
    m.replaceOption(options.UriHost("h"))
    assert pairs(m) == [(3, b"h"), (15, b"q")]


def test_delete_option_instance_removes_first_equal():
    m = Message(Message.CON, 1, uri_path=("a", "b", "a"))
    m.deleteOption(options.UriPath("a"))
    assert values(m, 11) == ["b", "a"]


def test_delete_option_class_removes_all():
    m = Message(Message.CON, 1, uri_path="a/b/a", content_format=0)
    m.deleteOption(options.UriPath)
    assert pairs(m) == [(12, b"")]


def test_delete_option_number_removes_all():
    m = Message(Message.CON, 1, uri_path="a/b", uri_query="q")
    m.deleteOption(11)
    assert pairs(m) == [(15, b"q")]


def test_delete_absent_option_changes_nothing():
    m = Message(Message.CON, 1, uri_path="a")
    m.deleteOption(options.UriQuery("x"))
    m.deleteOption(options.UriQuery)
    m.deleteOption(15)
    assert pairs(m) == [(11, b"a")]


def test_find_option_by_instance_class_and_number():
    m = Message(Message.CON, 1, uri_path="first/second", content_format=50)
    for key in (options.UriPath("zzz"), options.UriPath, 11):
        o = m.findOption(key)
        assert o is not None
        assert o.number == 11
        assert o.value == "first"
    assert m.findOption(options.ContentFormat).value == 50


def test_find_option_absent_is_none():
    m = Message(Message.CON, 1, uri_path="a")
    assert m.findOption(15) is None
    assert m.findOption(options.Observe) is None


def test_find_options_all_in_order():
    m = Message(Message.CON, 1, uri_path="x/y/z")
    for key in (options.UriPath("q"), options.UriPath, 11):
        found = m.findOptions(key)
        assert isinstance(found, tuple)
        assert [o.value for o in found] == ["x", "y", "z"]
    assert m.findOptions(15) == ()


def test_get_uint():
    m = Message(Message.CON, 1, content_format=50, max_age=0x12345, observe=0)
    assert m.get_uint(12) == 50
    assert m.get_uint(14) == 0x12345
    # Present with the zero-length value 0 is not the same as absent.
    assert m.get_uint(6) == 0
    assert m.get_uint(17) is None
    assert m.get_uint(17, 7) == 7


def test_get_uint_on_decoded_message():
    tid, m = Message.decode(TYPICAL_RESPONSE)
    assert m.get_uint(12) == 50
    assert m.get_uint(17) is None


# -- encode / decode ------------------------------------------------------

def test_encode_typical_request_bytes():
    assert typical_request().encode(0x1234) == TYPICAL_REQUEST


def test_encode_typical_response_bytes():
    assert typical_response().encode(0x1234) == TYPICAL_RESPONSE


def test_decode_typical_request():
    tid, m = Message.decode(TYPICAL_REQUEST)
    assert tid == 0x1234
    assert m.transaction_type == Message.CON
    assert m.code == 1
    assert m.token == TOKEN
    assert values(m, 11) == ["sensors", "livingroom", "temp"]
    assert values(m, 15) == ["unit=C"]
    assert m.payload == b""


def test_decode_typical_response():
    tid, m = Message.decode(TYPICAL_RESPONSE)
    assert tid == 0x1234
    assert m.transaction_type == Message.ACK
    assert m.code == 69
    assert m.token == TOKEN
    assert pairs(m) == [(12, b"\x32")]
    assert m.payload == PAYLOAD_100


def test_encode_returns_bytes_of_wire_size():
    m = typical_response()
    wire = m.encode(1)
    assert isinstance(wire, bytes)
    assert len(wire) == m.wire_size()


def test_transaction_id_is_big_endian_and_bounded():
    m = Message(Message.NON, 1)
    assert m.encode(0)[2:4] == b"\x00\x00"
    assert m.encode(0xABCD)[2:4] == b"\xab\xcd"
    assert m.encode(0xFFFF)[2:4] == b"\xff\xff"
    support.raises(ValueError, m.encode, 0x10000)
    support.raises(ValueError, m.encode, -1)


def test_no_payload_means_no_marker():
    wire = Message(Message.CON, 1, uri_path="a").encode(1)
    assert wire == b"\x40\x01\x00\x01\xb1a"


def test_every_type_in_header():
    for t in (Message.CON, Message.NON, Message.ACK, Message.RST):
        wire = Message(t, 1).encode(5)
        assert wire[0] == 0x40 | (t << 4)
        tid, m = Message.decode(wire)
        assert m.transaction_type == t


def test_empty_message_encodes_to_four_bytes():
    assert Message(Message.ACK, 0).encode(0x1234) == b"\x60\x00\x12\x34"
    assert Message(Message.RST, 0).encode(0x1234) == b"\x70\x00\x12\x34"


def test_empty_message_with_token_or_payload_or_option_cannot_encode():
    support.raises(ValueError, Message(Message.ACK, 0, token=b"\x01").encode, 1)
    support.raises(ValueError, Message(Message.ACK, 0, payload=b"x").encode, 1)
    support.raises(ValueError, Message(Message.ACK, 0, uri_path="a").encode, 1)


def test_round_trip_keeps_everything():
    m = Message(Message.NON, 3, payload=b"\x00\xff\x10", token=b"\xfe\xed",
                uri_host="h", uri_path="a/b", uri_query="x=1&y", accept=60,
                etag=(b"\x01", b"\x02"), block1=(3, True, 4))
    wire = m.encode(0xBEEF)
    tid, back = Message.decode(wire)
    assert tid == 0xBEEF
    assert back.transaction_type == Message.NON
    assert back.code == 3
    assert back.token == b"\xfe\xed"
    assert back.payload == b"\x00\xff\x10"
    assert pairs(back) == pairs(m)
    assert back.findOption(27).value == (3, True, 4)
    assert back.encode(0xBEEF) == wire


def test_decoded_message_reencodes_with_another_id():
    tid, m = Message.decode(TYPICAL_RESPONSE)
    again = m.encode(0x0102)
    assert again[:2] == TYPICAL_RESPONSE[:2]
    assert again[2:4] == b"\x01\x02"
    assert again[4:] == TYPICAL_RESPONSE[4:]


def test_changing_a_decoded_message_keeps_token_and_payload():
    tid, m = Message.decode(TYPICAL_RESPONSE)
    m.addOption(options.MaxAge(60))
    m.addOption(options.ETag(b"\x0e"))
    tid, back = Message.decode(m.encode(tid))
    assert back.token == TOKEN
    assert back.payload == PAYLOAD_100
    assert pairs(back) == [(4, b"\x0e"), (12, b"\x32"), (14, b"\x3c")]


def test_changing_payload_and_token_of_a_decoded_message():
    tid, m = Message.decode(TYPICAL_REQUEST)
    m.payload = b"new"
    m.token = b"\x09"
    tid, back = Message.decode(m.encode(tid))
    assert back.payload == b"new"
    assert back.token == b"\x09"
    assert values(back, 11) == ["sensors", "livingroom", "temp"]


def test_decoded_message_does_not_follow_the_buffer():
    # An endpoint reuses its receive buffer: a decoded message must not
    # change when the buffer is overwritten afterwards.
    buf = bytearray(TYPICAL_RESPONSE)
    tid, m = Message.decode(buf)
    for i in range(len(buf)):
        buf[i] = 0
    assert m.token == TOKEN
    assert m.payload == PAYLOAD_100
    assert m.get_uint(12) == 50
    assert m.encode(tid) == TYPICAL_RESPONSE


def test_five_uri_path_and_three_uri_query_round_trip_in_order():
    # The case MicroPython's unstable sort would shuffle (docs/micropython.md).
    path = ("one", "two", "three", "four", "five")
    query = ("q=1", "r=2", "s=3")
    m = Message(Message.CON, 1, token=TOKEN, uri_path="/".join(path),
                uri_query="&".join(query), content_format=0, accept=50)
    assert tuple(values(m, 11)) == path
    assert tuple(values(m, 15)) == query
    wire = m.encode(77)
    tid, back = Message.decode(wire)
    assert tuple(values(back, 11)) == path
    assert tuple(values(back, 15)) == query
    assert [o.number for o in back.options] == [11] * 5 + [12, 15, 15, 15, 17]
    assert back.encode(77) == wire


def test_interleaved_add_option_round_trips_in_order():
    path = ("p5", "p4", "p3", "p2", "p1")
    query = ("z", "y", "x")
    m = Message(Message.CON, 1)
    m.addOption(options.Accept(50))
    for i in range(5):
        m.addOption(options.UriPath(path[i]))
        if i < 3:
            m.addOption(options.UriQuery(query[i]))
        m.addOption(options.UriHost("h"))
    tid, back = Message.decode(m.encode(1))
    assert tuple(values(back, 11)) == path
    assert tuple(values(back, 15)) == query


# -- encode_into --------------------------------------------------------------

def test_encode_into_returns_length_and_writes_bytes():
    m = typical_request()
    buf = bytearray(100)
    n = m.encode_into(buf, 0x1234)
    assert n == len(TYPICAL_REQUEST)
    assert bytes(buf[:n]) == TYPICAL_REQUEST
    assert len(buf) == 100


def test_encode_into_at_offset_leaves_the_rest_alone():
    m = typical_response()
    buf = bytearray(b"\xaa" * 200)
    n = m.encode_into(buf, 0x1234, 10)
    assert n == len(TYPICAL_RESPONSE)
    assert bytes(buf[10:10 + n]) == TYPICAL_RESPONSE
    assert bytes(buf[:10]) == b"\xaa" * 10
    assert bytes(buf[10 + n:]) == b"\xaa" * (200 - 10 - n)
    assert len(buf) == 200


def test_encode_into_exact_size_buffer():
    m = typical_response()
    buf = bytearray(len(TYPICAL_RESPONSE))
    assert m.encode_into(buf, 0x1234) == len(buf)
    assert bytes(buf) == TYPICAL_RESPONSE


def test_encode_into_too_small_raises_and_writes_nothing():
    for m, wire in ((typical_request(), TYPICAL_REQUEST),
                    (typical_response(), TYPICAL_RESPONSE)):
        buf = bytearray(len(wire) - 1)
        support.raises(ValueError, m.encode_into, buf, 0x1234)
        assert len(buf) == len(wire) - 1  # not grown
        assert bytes(buf) == bytes(len(wire) - 1)  # nothing written


def test_encode_into_too_small_at_offset():
    m = typical_request()
    buf = bytearray(len(TYPICAL_REQUEST) + 4)
    support.raises(ValueError, m.encode_into, buf, 0x1234, 5)
    assert len(buf) == len(TYPICAL_REQUEST) + 4
    assert bytes(buf) == bytes(len(buf))
    assert m.encode_into(buf, 0x1234, 4) == len(TYPICAL_REQUEST)


def test_encode_into_from_a_decoded_message():
    tid, m = Message.decode(TYPICAL_REQUEST)
    buf = bytearray(80)
    n = m.encode_into(buf, tid, 3)
    assert bytes(buf[3:3 + n]) == TYPICAL_REQUEST


def test_encode_into_memoryview():
    m = typical_request()
    buf = bytearray(64)
    n = m.encode_into(memoryview(buf), 0x1234)
    assert bytes(buf[:n]) == TYPICAL_REQUEST


# -- RFC 7252 Appendix A, Figures 16 and 17 -----------------------------------
# Figure 16: CON GET coap://server/temperature, MID 0x7d34, empty token,
# 16 bytes; piggybacked ACK 2.05 with payload "22.3 C", 11 bytes.
#   request:  0x40 (Ver 1, CON, TKL 0), 0x01 GET, 0x7d 0x34,
#             0xBB (delta 11 Uri-Path, length 11) "temperature"
#   response: 0x60 (Ver 1, ACK, TKL 0), 0x45 (2.05 = 69), 0x7d 0x34,
#             0xFF, "22.3 C"
FIG16_REQUEST = b"\x40\x01\x7d\x34\xbbtemperature"
FIG16_RESPONSE = b"\x60\x45\x7d\x34\xff22.3 C"
# Figure 17: the same with Token 0x20 and MID 0x7d35, 17 and 12 bytes:
# TKL becomes 1 (0x41 / 0x61) and the token byte follows the header.
FIG17_REQUEST = b"\x41\x01\x7d\x35\x20\xbbtemperature"
FIG17_RESPONSE = b"\x61\x45\x7d\x35\x20\xff22.3 C"


def test_rfc7252_figure16_sizes():
    assert len(FIG16_REQUEST) == 16
    assert len(FIG16_RESPONSE) == 11
    assert len(FIG17_REQUEST) == 17
    assert len(FIG17_RESPONSE) == 12


def test_rfc7252_figure16_encode():
    req = Message(Message.CON, 1, uri_path="temperature")
    assert req.encode(0x7D34) == FIG16_REQUEST
    resp = Message(Message.ACK, 69, payload="22.3 C")
    assert resp.encode(0x7D34) == FIG16_RESPONSE


def test_rfc7252_figure16_decode():
    tid, req = Message.decode(FIG16_REQUEST)
    assert tid == 0x7D34
    assert req.transaction_type == Message.CON
    assert req.code == 1
    assert req.token == b""
    assert pairs(req) == [(11, b"temperature")]
    assert req.payload == b""
    tid, resp = Message.decode(FIG16_RESPONSE)
    assert tid == 0x7D34
    assert resp.transaction_type == Message.ACK
    assert resp.code == 69
    assert resp.options == ()
    assert resp.payload == b"22.3 C"


def test_rfc7252_figure17_encode():
    req = Message(Message.CON, 1, token=b"\x20", uri_path="temperature")
    assert req.encode(0x7D35) == FIG17_REQUEST
    resp = Message(Message.ACK, 69, payload=b"22.3 C", token=b"\x20")
    assert resp.encode(0x7D35) == FIG17_RESPONSE


def test_rfc7252_figure17_decode():
    tid, req = Message.decode(FIG17_REQUEST)
    assert tid == 0x7D35
    assert req.token == b"\x20"
    assert values(req, 11) == ["temperature"]
    tid, resp = Message.decode(FIG17_RESPONSE)
    assert tid == 0x7D35
    assert resp.token == b"\x20"
    assert resp.code == 69
    assert resp.payload == b"22.3 C"


def test_repr_does_not_raise():
    assert "Message" in repr(typical_request())
    tid, m = Message.decode(TYPICAL_RESPONSE)
    assert "Message" in repr(m)


def test_decode_error_is_a_value_error():
    assert issubclass(DecodeError, ValueError)


# -- encode_reply_into: how a server answers, straight into a buffer ----------

def _request_with_token(tkl, slice_token):
    # A CON GET decoded from the wire with a token of tkl bytes; with
    # slice_token its token read once (then held sliced off the datagram).
    tok = bytes(range(0xA1, 0xA1 + tkl))
    wire = Message(Message.CON, 1, uri_path="a", token=tok).encode(0x0102)
    m = Message.decode(wire)[1]
    if slice_token:
        assert m.token == tok
    return m, tok


def test_encode_reply_into_every_token_length_and_source():
    ob = Message(Message.ACK, 69, content_format=0).encode(7)[4:]  # one option, no token
    for tkl in range(9):
        for slice_token in (False, True):
            req, tok = _request_with_token(tkl, slice_token)
            for opts, payload in ((b"", b""), (ob, b""), (b"", b"ok"), (ob, "h\u00e9")):
                want = Message(Message.ACK, 69, token=tok, payload=payload).encode(0x0BCD)
                if opts:
                    want = Message(Message.ACK, 69, token=tok, payload=payload,
                                   content_format=0).encode(0x0BCD)
                # A roomy buffer, one of exactly the answer's size (under 12
                # bytes for short ones) and one byte short of it.
                for size in (64, len(want)):
                    buf = bytearray(b"\xee" * size)
                    n = encode_reply_into(buf, req, Message.ACK, 69, 0x0BCD, opts, payload)
                    assert bytes(buf[:n]) == want, (tkl, slice_token, opts, payload, size)
                    assert len(buf) == size
                buf = bytearray(b"\xee" * (len(want) - 1))
                assert encode_reply_into(buf, req, Message.ACK, 69, 0x0BCD, opts, payload) == -1
                assert bytes(buf) == b"\xee" * (len(want) - 1), "nothing written"


REPLY_BUF = bytearray(64)
REPLY_REQ = _request_with_token(8, False)[0]


def _reply():
    OUT_N[0] = encode_reply_into(REPLY_BUF, REPLY_REQ, 2, 69, 0x0BCD, b"", b"ok")


OUT_N = [0]


def test_encode_reply_into_allocates_nothing():
    _reply()
    support.assert_no_alloc(_reply)
    assert bytes(REPLY_BUF[:OUT_N[0]]) == Message(
        Message.ACK, 69, token=bytes(range(0xA1, 0xA9)), payload=b"ok").encode(0x0BCD)
