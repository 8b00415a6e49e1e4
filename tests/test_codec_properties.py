"""Property tests of the codec (CPython only; hypothesis).

1. Random valid messages round-trip: decode(encode(m)) has the same type, code,
   token, options and payload, and re-encodes to the same bytes.
2. Random datagrams, and mutations of valid encodings, either decode or raise
   DecodeError, nothing else; and every accessor of a message that decoded
   works without raising.
"""
import random

from hypothesis import example, given, settings, strategies as st

from coapy_micro.message import DecodeError, Message
from coapy_micro.options import UINT, Option
from strategies import REGISTERED, SETTINGS, option_value, unknown_number, unknown_value

registered_option = st.sampled_from(REGISTERED).flatmap(
    lambda cls: option_value(cls).map(cls))
unknown_option = st.builds(Option, unknown_number(), unknown_value())


def expected_options(added):
    """The model of addOption: ordered by number (stable: repeated options in
    the order added); a non-repeatable option replaces earlier ones."""
    kept = []
    for o in added:
        if not o.repeatable:
            kept = [k for k in kept if k.number != o.number]
        kept.append(o)
    return sorted(kept, key=lambda o: o.number)  # sorted() is stable on CPython


@st.composite
def messages(draw, max_payload=2000):
    mtype = draw(st.integers(0, 3))
    if draw(st.integers(0, 15)) == 0:
        # Empty message: code 0.00 and nothing else (RFC 7252 §4.1).
        return Message(mtype, 0), []
    code = draw(st.integers(1, 255))
    token = draw(st.binary(max_size=8))
    payload = draw(st.binary(max_size=max_payload))
    added = draw(st.lists(st.one_of(registered_option, unknown_option), max_size=12))
    # Make repeats likely: add some of the drawn options a second time.
    added += draw(st.lists(st.sampled_from(added), max_size=4)) if added else []
    m = Message(mtype, code, payload, token)
    for o in added:
        m.addOption(o)
    return m, expected_options(added)


def _pairs(opts):
    return [(o.number, bytes(o.raw)) for o in opts]


@settings(max_examples=400, **SETTINGS)
@given(messages(), st.integers(0, 0xFFFF))
def test_valid_messages_round_trip(built, tid):
    m, expected = built
    assert _pairs(m.options) == _pairs(expected)
    wire = m.encode(tid)
    assert len(wire) == m.wire_size()
    tid2, back = Message.decode(wire)
    assert tid2 == tid
    assert back.transaction_type == m.transaction_type
    assert back.code == m.code
    assert back.token == m.token
    assert back.payload == m.payload
    assert _pairs(back.options) == _pairs(expected)
    for o, e in zip(back.options, expected):
        assert o.value == e.value
        assert not o.malformed
    assert back.encode(tid) == wire
    buf = bytearray(len(wire) + 3)
    assert back.encode_into(buf, tid, 3) == len(wire)
    assert bytes(buf[3:]) == wire


@settings(max_examples=200, **SETTINGS)
@given(messages(max_payload=50))
def test_find_and_get_uint_agree_with_options(built):
    m, expected = built
    tid, back = Message.decode(m.encode(1))
    for number in {o.number for o in expected}:
        same = [o for o in expected if o.number == number]
        assert _pairs(back.findOptions(number)) == _pairs(same)
        assert _pairs([back.findOption(number)]) == _pairs(same[:1])
        if same[0].format == UINT and len(same[0].raw) <= 4:
            assert back.get_uint(number) == int.from_bytes(same[0].raw, "big")


# -- hostile input -------------------------------------------------------------

def check_datagram(data):
    """decode either raises DecodeError or gives a message whose every
    accessor works and which re-encodes to the same bytes."""
    data = bytes(data)
    try:
        tid, m = Message.decode(data)
    except DecodeError as e:
        assert isinstance(e, ValueError)
        if len(data) >= 4:
            assert e.transaction_id == (data[2] << 8) | data[3]
            assert e.transaction_type == (data[0] >> 4) & 3
        return None
    # Anything else escaping decode fails the test by itself.
    assert 0 <= tid <= 0xFFFF
    assert m.transaction_type in (0, 1, 2, 3)
    assert isinstance(m.token, bytes) and len(m.token) <= 8
    assert isinstance(m.payload, bytes)
    opts = m.options
    numbers = []
    for o in opts:
        assert 0 <= o.number <= 65535
        numbers.append(o.number)
        o.value
        o.malformed
        o.critical, o.unsafe, o.no_cache_key
        repr(o)
    assert numbers == sorted(numbers)
    for n in set(numbers):
        assert m.findOption(n) == m.findOptions(n)[0]
        m.get_uint(n)
    absent = next(n for n in range(65536) if n not in numbers)
    assert m.findOption(absent) is None
    assert m.findOptions(absent) == ()
    assert m.get_uint(absent, -1) == -1
    repr(m)
    assert m.encode(tid) == data  # a valid datagram has one encoding
    buf = bytearray(len(data))
    assert m.encode_into(buf, tid) == len(data)
    return m


@settings(max_examples=1500, **SETTINGS)
@given(st.binary(max_size=300))
@example(b"\x40\x01\x00\x01\xe0\xfe\xf2\x10")  # option 65535, then delta 1
@example(b"\x40\x01\x00\x01\xe0\x80\x00\xe0\x80\x00")
@example(b"\x40\x01\x00\x01\xff")
def test_random_datagrams_decode_or_raise_decode_error(data):
    check_datagram(data)


@settings(max_examples=1500, **SETTINGS)
@given(st.binary(min_size=4, max_size=300).map(lambda b: bytes([0x40 | (b[0] & 0x3F)]) + b[1:]))
def test_random_version_1_datagrams(data):
    # Version 1 always: the header checks pass, so the option walk is reached.
    check_datagram(data)


def _mutate(wire, ops, rnd):
    b = bytearray(wire)
    for op in ops:
        if op == "flip" and b:
            i = rnd.randrange(len(b))
            b[i] ^= 1 << rnd.randrange(8)
        elif op == "set" and b:
            b[rnd.randrange(len(b))] = rnd.choice((0x0D, 0x0E, 0x0F, 0xD0, 0xE0, 0xF0, 0xFF, rnd.randrange(256)))
        elif op == "insert":
            b.insert(rnd.randrange(len(b) + 1), rnd.randrange(256))
        elif op == "delete" and b:
            del b[rnd.randrange(len(b))]
        elif op == "truncate":
            del b[rnd.randrange(len(b) + 1):]
    return bytes(b)


@settings(max_examples=800, **SETTINGS)
@given(messages(max_payload=40), st.integers(0, 0xFFFF),
       st.lists(st.sampled_from(("flip", "set", "insert", "delete", "truncate")),
                min_size=1, max_size=4),
       st.randoms(use_true_random=False))
def test_mutated_encodings_decode_or_raise_decode_error(built, tid, ops, rnd):
    m, _ = built
    wire = m.encode(tid)
    check_datagram(wire)  # the unmutated encoding decodes
    check_datagram(_mutate(wire, ops, rnd))


def test_all_truncations_of_a_rich_message():
    # Deterministic: every prefix of a message with extended deltas and lengths.
    m = Message(Message.CON, 1, b"payload", b"\x01\x02", uri_host="h",
                uri_path="a/b", uri_query="q=1", block2=(3, True, 6))
    m.addOption(Option(300, b"x" * 20))
    m.addOption(Option(2000, b"y" * 300))
    wire = m.encode(7)
    assert check_datagram(wire) is not None
    for n in range(len(wire)):
        check_datagram(wire[:n])


def test_every_single_byte_change_of_a_rich_message():
    m = Message(Message.NON, 69, b"\x00\xff", b"\x09", content_format=50,
                etag=(b"\x01", b"\x02\x03"), location_path="x/y")
    m.addOption(Option(270, b"z" * 13))
    wire = m.encode(0x4242)
    for i in range(len(wire)):
        for v in (0x00, 0x0D, 0x0E, 0x0F, 0x10, 0xD0, 0xE0, 0xF0, 0xFF, wire[i] ^ 0x80):
            b = bytearray(wire)
            b[i] = v
            check_datagram(b)


def test_random_seeded_mutation_sweep():
    # Cheap breadth beyond hypothesis: a fixed-seed sweep of mutations.
    rnd = random.Random(7252)
    base = [
        Message(Message.CON, 1, b"", b"\x01\x02\x03\x04", uri_path="sensors/livingroom/temp",
                uri_query="unit=C").encode(0x1234),
        Message(Message.ACK, 69, b"0123456789" * 10, b"\x01\x02\x03\x04",
                content_format=50).encode(0x1234),
    ]
    ops = ("flip", "set", "insert", "delete", "truncate")
    for _ in range(3000):
        wire = rnd.choice(base)
        check_datagram(_mutate(wire, [rnd.choice(ops) for _ in range(rnd.randint(1, 3))], rnd))
