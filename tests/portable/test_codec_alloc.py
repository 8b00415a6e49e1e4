# Allocation of the codec, measured in the real MicroPython VM. On CPython
# support.assert_no_alloc is a no-op and support.alloc_bytes returns None:
# there each test checks the results of the calls, then reports a skip, since
# the measurement itself needs MicroPython.
import support
from coapy_micro.message import Message

TOKEN = b"\x01\x02\x03\x04"
PAYLOAD_100 = b"0123456789" * 10
# Bytes per decode of the typical request on a 32-bit board, which the
# WebAssembly VM is; on the 64-bit unix port every object is about twice as
# large, so there the same code is held to twice the figure.
DECODE_BUDGET_32 = 300
DECODE_BUDGET = DECODE_BUDGET_32 * support.WORD_BYTES // 4


def typical_request():
    return Message(Message.CON, 1, token=TOKEN,
                   uri_path="sensors/livingroom/temp", uri_query="unit=C")


def typical_response():
    return Message(Message.ACK, 69, payload=PAYLOAD_100, token=TOKEN,
                   content_format=50)


# Buffers made once, at import, so the calls under test allocate nothing of
# their own (a test module may allocate at import; the codec may not).
BUF = bytearray(256)
OUT = [0]


def _encode(msg, tid):
    OUT[0] = msg.encode_into(BUF, tid)


def _encode_at(msg, tid):
    OUT[0] = msg.encode_into(BUF, tid, 17)


def _on_micropython(what):
    if not support.IS_MICROPYTHON:
        raise support.Skip(what + " is measured in the MicroPython VM")


def test_encode_into_typical_request_allocates_nothing():
    m = typical_request()
    expected = m.encode(0x1234)
    support.assert_no_alloc(_encode, m, 0x1234)
    n = m.encode_into(BUF, 0x1234)
    assert bytes(BUF[:n]) == expected
    _on_micropython("encode_into")


def test_encode_into_typical_response_allocates_nothing():
    m = typical_response()
    expected = m.encode(0x1234)
    support.assert_no_alloc(_encode, m, 0x1234)
    n = m.encode_into(BUF, 0x1234)
    assert bytes(BUF[:n]) == expected
    _on_micropython("encode_into")


def test_encode_into_direct_call_allocates_nothing():
    # The bound method itself, called directly, with its return value.
    m = typical_request()
    support.assert_no_alloc(m.encode_into, BUF, 0x1234)
    support.assert_no_alloc(typical_response().encode_into, BUF, 0x1234)
    _on_micropython("encode_into")


def test_encode_into_at_offset_allocates_nothing():
    m = typical_response()
    expected = m.encode(7)
    _encode_at(m, 7)
    assert OUT[0] == len(expected)
    assert bytes(BUF[17:17 + OUT[0]]) == expected
    support.assert_no_alloc(_encode_at, m, 7)
    _on_micropython("encode_into")


def test_encode_into_of_a_decoded_message_allocates_nothing():
    # Forwarding or answering from a received datagram: token, options and
    # payload are copied out of the received bytes (encode_into's docstring).
    for wire in (typical_request().encode(5), typical_response().encode(6)):
        tid, m = Message.decode(wire)
        support.assert_no_alloc(_encode, m, tid)  # first, straight after decode
        _encode(m, tid)
        assert bytes(BUF[:OUT[0]]) == wire
        support.assert_no_alloc(_encode_at, m, tid)
        _encode_at(m, tid)
        assert bytes(BUF[17:17 + OUT[0]]) == wire
    _on_micropython("encode_into")


def test_get_uint_on_decoded_message_allocates_nothing():
    tid, req = Message.decode(typical_request().encode(1))
    tid, resp = Message.decode(typical_response().encode(2))
    assert resp.get_uint(12) == 50
    assert req.get_uint(12) is None
    assert req.get_uint(17, 0) == 0
    support.assert_no_alloc(resp.get_uint, 12)    # present
    support.assert_no_alloc(req.get_uint, 12)     # absent
    support.assert_no_alloc(req.get_uint, 6, 0)   # absent, with a default
    support.assert_no_alloc(req.get_uint, 60000)  # past every option
    _on_micropython("get_uint")


def test_get_uint_block_and_observe_allocate_nothing():
    m = Message(Message.CON, 1, token=TOKEN, uri_path="a/b",
                observe=0x123456, block2=(1000, True, 6), accept=50)
    tid, d = Message.decode(m.encode(3))
    assert d.get_uint(6) == 0x123456
    assert d.get_uint(23) == (1000 << 4) | 8 | 6
    for number in (6, 17, 23):
        support.assert_no_alloc(d.get_uint, number)
    _on_micropython("get_uint")


def test_decode_typical_request_within_budget():
    wire = typical_request().encode(0x1234)
    n = support.alloc_bytes(Message.decode, wire)
    tid, m = Message.decode(wire)
    assert tid == 0x1234
    _on_micropython("decode allocation")
    print("decode of the typical request allocates %d bytes (%s, %d-bit)"
          % (n, support.RUNTIME, support.WORD_BYTES * 8))
    assert n <= DECODE_BUDGET, n


def test_decode_typical_response_within_budget():
    wire = typical_response().encode(0x1234)
    n = support.alloc_bytes(Message.decode, wire)
    _on_micropython("decode allocation")
    print("decode of the typical response allocates %d bytes (%s, %d-bit)"
          % (n, support.RUNTIME, support.WORD_BYTES * 8))
    assert n <= DECODE_BUDGET, n
