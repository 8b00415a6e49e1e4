# Message.decode on hostile input (RFC 7252 §3, §3.1, §4.1): every format
# error raises DecodeError (a ValueError) carrying the header fields that could
# be read. Portable: CPython and the MicroPython VM.
import support
from coapy_micro.message import Message, DecodeError

# Ver 1, CON, TKL 0, GET, MID 0x1234: the valid start of most cases below.
HDR = b"\x40\x01\x12\x34"


def rejected(datagram):
    """Decode must raise DecodeError; check the header fields it carries."""
    e = support.raises(DecodeError, Message.decode, datagram)
    assert isinstance(e, ValueError)
    if len(datagram) >= 4:
        assert e.transaction_type == (datagram[0] >> 4) & 3
        assert e.transaction_id == (datagram[2] << 8) | datagram[3]
        assert e.code == datagram[1]
    else:
        assert e.transaction_id is None
        assert e.transaction_type is None
    return e


def accepted(datagram):
    tid, m = Message.decode(datagram)
    return m


# -- header -----------------------------------------------------------------

def test_shorter_than_four_bytes():
    for d in (b"", b"\x40", b"\x40\x01", b"\x40\x01\x12"):
        e = rejected(d)
        assert not e.bad_version


def test_four_bytes_is_enough():
    m = accepted(HDR)
    assert m.code == 1
    assert m.options == ()
    assert m.payload == b""


def test_bad_version_is_flagged():
    # Version bits (top two) 0, 2 and 3, each with another type, so the
    # carried transaction_type is checked too.
    for b0 in (0x00, 0x90, 0xE0, 0xF4):
        e = rejected(bytes([b0]) + b"\x01\xab\xcd")
        assert e.bad_version, b0
        assert e.transaction_id == 0xABCD


def test_version_1_is_not_flagged():
    e = rejected(b"\x49\x01\x00\x01" + b"\x00" * 9)  # TKL 9
    assert not e.bad_version


def test_token_length_9_to_15_is_reserved():
    for tkl in range(9, 16):
        d = bytes([0x40 | tkl]) + b"\x01\x00\x07" + b"\x01" * 20
        e = rejected(d)
        assert not e.bad_version


def test_token_longer_than_datagram():
    rejected(b"\x48\x01\x00\x01" + b"\x01" * 7)
    rejected(b"\x41\x01\x00\x01")


def test_token_of_8_exactly():
    m = accepted(b"\x48\x01\x00\x01" + b"\x01" * 8)
    assert m.token == b"\x01" * 8


def test_header_fields_of_a_rejected_non():
    e = rejected(b"\x52\x45\xfe\xdc\x01")  # NON 2.05, TKL 2, one token byte
    assert e.transaction_type == Message.NON
    assert e.transaction_id == 0xFEDC
    assert e.code == 69


# -- Empty message (RFC 7252 §4.1) -------------------------------------------

def test_empty_message_is_accepted():
    for b0 in (0x40, 0x60, 0x70):  # CON (ping), ACK, RST
        m = accepted(bytes([b0]) + b"\x00\x00\x05")
        assert m.code == 0
        assert m.token == b""


def test_empty_message_with_token():
    rejected(b"\x61\x00\x00\x05\xaa")


def test_empty_message_with_option():
    rejected(b"\x60\x00\x00\x05\xb1a")


def test_empty_message_with_payload():
    rejected(b"\x70\x00\x00\x05\xffx")


def test_empty_message_with_bare_marker():
    rejected(b"\x70\x00\x00\x05\xff")


# -- options ------------------------------------------------------------------

def test_delta_nibble_15_without_length_15():
    for b in (0xF0, 0xF1, 0xFC, 0xFD, 0xFE):
        rejected(HDR + bytes([b]) + b"\x00\x00\x00")


def test_length_nibble_15():
    for b in (0x0F, 0x1F, 0xBF, 0xDF, 0xEF):
        rejected(HDR + bytes([b]) + b"\x00\x00\x00")


def test_nibble_15_after_a_valid_option():
    rejected(HDR + b"\xb1a" + b"\x0f")


def test_payload_marker_with_nothing_after_it():
    rejected(HDR + b"\xff")
    rejected(HDR + b"\xb4temp\xff")
    rejected(b"\x41\x01\x12\x34\x20\xff")


def test_extended_delta_bytes_missing():
    rejected(HDR + b"\xd0")          # delta 13 needs one byte
    rejected(HDR + b"\xe0")          # delta 14 needs two bytes
    rejected(HDR + b"\xe0\x00")      # ... has one


def test_extended_length_bytes_missing():
    rejected(HDR + b"\x0d")          # length 13 needs one byte
    rejected(HDR + b"\x0e")          # length 14 needs two bytes
    rejected(HDR + b"\x0e\x01")
    rejected(HDR + b"\xdd\x00")      # delta byte present, length byte missing
    rejected(HDR + b"\xee\x00\x00\x00")  # two delta bytes, one length byte


def test_option_value_past_the_end():
    rejected(HDR + b"\xb5ab")
    rejected(HDR + b"\x0d\x10" + b"x" * 28)   # length 13 + 16 = 29, 28 there
    rejected(HDR + b"\x0e\x00\x00" + b"x" * 268)  # length 269, 268 there
    rejected(HDR + b"\xb1a\x05abcd")  # second option one byte short


def test_option_value_exactly_to_the_end():
    m = accepted(HDR + b"\x0d\x10" + b"x" * 29)
    assert len(m.options[0].raw) == 29


def test_option_number_above_65535_with_two_extended_deltas():
    # 269 + 0x8000 = 33037 each: the sum 66074 is past the largest number.
    rejected(HDR + b"\xe0\x80\x00" + b"\xe0\x80\x00")


def test_option_number_65535_is_accepted():
    # 269 + 0xFEF2 = 65535 in one delta.
    m = accepted(HDR + b"\xe0\xfe\xf2")
    assert m.options[0].number == 65535


def test_option_delta_past_65535_in_one_extended_delta():
    # 269 + 0xFF00 = 65549.
    rejected(HDR + b"\xe0\xff\x00")


def test_option_number_above_65535_by_a_small_delta():
    # Option 65535 (delta 14, 0xFEF2), then an option with delta 1 in the
    # nibble: number 65536. The delta is legal on its own; the sum is not.
    rejected(HDR + b"\xe0\xfe\xf2" + b"\x10")
    rejected(HDR + b"\xe0\xfe\xf2" + b"\xc0")


# -- accepted input types ----------------------------------------------------

WIRE = b"\x44\x01\x12\x34\x01\x02\x03\x04\xb4temp\xffhello"


def _check(m):
    assert m.token == b"\x01\x02\x03\x04"
    assert m.findOption(11).value == "temp"
    assert m.payload == b"hello"


def test_decode_bytes():
    tid, m = Message.decode(WIRE)
    assert tid == 0x1234
    _check(m)


def test_decode_bytearray():
    tid, m = Message.decode(bytearray(WIRE))
    assert tid == 0x1234
    _check(m)


def test_decode_memoryview():
    tid, m = Message.decode(memoryview(WIRE))
    assert tid == 0x1234
    _check(m)


def test_decode_memoryview_of_part_of_a_buffer():
    buf = bytearray(200)
    buf[0:len(WIRE)] = WIRE
    tid, m = Message.decode(memoryview(buf)[:len(WIRE)])
    _check(m)


def test_errors_on_bytearray_and_memoryview_input():
    bad = HDR + b"\xff"
    rejected(bytearray(bad))
    e = support.raises(DecodeError, Message.decode, memoryview(bad))
    assert e.transaction_id == 0x1234
