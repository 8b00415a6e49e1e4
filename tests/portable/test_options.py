# Option classes, value formats and the option header (RFC 7252 §3.1, §3.2,
# §5.4, §5.10; RFC 7641, 7959, 7967, 8613, 8768, 9175). Portable: CPython and
# the MicroPython VM. Module-level `def test_*()` only, plain assert.
import support
from coapy_micro import options
from coapy_micro.options import Option, EMPTY, OPAQUE, UINT, STRING
from coapy_micro.message import Message

# Class name, number, format, min length, max length, repeatable. Taken from
# RFC 7252 Table 4 (§5.10) and the option sections of RFC 7641 §2 (Observe),
# 7959 §2.1/§4 (Block1/2, Size2), 7967 §2 (No-Response), 8613 §2 (OSCORE),
# 8768 §3 (Hop-Limit), 9175 §2.2/§3.2 (Echo, Request-Tag).
REGISTERED = (
    ("IfMatch", 1, OPAQUE, 0, 8, True),
    ("UriHost", 3, STRING, 1, 255, False),
    ("ETag", 4, OPAQUE, 1, 8, True),
    ("IfNoneMatch", 5, EMPTY, 0, 0, False),
    ("Observe", 6, UINT, 0, 3, False),
    ("UriPort", 7, UINT, 0, 2, False),
    ("LocationPath", 8, STRING, 0, 255, True),
    ("OSCORE", 9, OPAQUE, 0, 255, False),
    ("UriPath", 11, STRING, 0, 255, True),
    ("ContentFormat", 12, UINT, 0, 2, False),
    ("MaxAge", 14, UINT, 0, 4, False),
    ("UriQuery", 15, STRING, 0, 255, True),
    ("HopLimit", 16, UINT, 1, 1, False),
    ("Accept", 17, UINT, 0, 2, False),
    ("LocationQuery", 20, STRING, 0, 255, True),
    ("Block2", 23, UINT, 0, 3, False),
    ("Block1", 27, UINT, 0, 3, False),
    ("Size2", 28, UINT, 0, 4, False),
    ("ProxyUri", 35, STRING, 1, 1034, False),
    ("ProxyScheme", 39, STRING, 1, 255, False),
    ("Size1", 60, UINT, 0, 4, False),
    ("Echo", 252, OPAQUE, 1, 40, False),
    ("NoResponse", 258, UINT, 0, 1, False),
    ("RequestTag", 292, OPAQUE, 0, 8, True),
)


def _cls(name):
    return getattr(options, name)


def _header(number, length):
    """The option header for a first option (delta == number), derived from
    RFC 7252 §3.1: a nibble holds 0-12; 13 means one extended byte holding
    value - 13; 14 means two extended bytes (big-endian) holding value - 269."""
    ext = b""
    nibbles = []
    for x in (number, length):
        if x < 13:
            nibbles.append(x)
        elif x < 269:
            nibbles.append(13)
            ext += bytes([x - 13])
        else:
            nibbles.append(14)
            ext += bytes([(x - 269) >> 8, (x - 269) & 255])
    return bytes([(nibbles[0] << 4) | nibbles[1]]) + ext


# -- registered option properties ---------------------------------------------

def test_registered_numbers():
    for name, number, fmt, lo, hi, rep in REGISTERED:
        assert _cls(name).number == number, name


def test_registered_formats():
    for name, number, fmt, lo, hi, rep in REGISTERED:
        assert _cls(name).format == fmt, name


def test_registered_length_ranges():
    for name, number, fmt, lo, hi, rep in REGISTERED:
        cls = _cls(name)
        assert (cls.min_len, cls.max_len) == (lo, hi), name


def test_registered_repeatable():
    for name, number, fmt, lo, hi, rep in REGISTERED:
        assert _cls(name).repeatable == rep, name


def test_class_is_made_once():
    assert options.UriPath is options.UriPath
    assert options.option_class(11) is options.UriPath
    assert options.option_class(2) is None


def test_from_import_of_a_class():
    from coapy_micro.options import ContentFormat
    assert ContentFormat.number == 12


def test_unknown_class_name_is_attribute_error():
    support.raises(AttributeError, getattr, options, "NoSuchOption")


def test_content_type_alias_from_coapy():
    assert options.ContentType is options.ContentFormat


def test_keyword_names_match_classes():
    kw = Message.OptionKeywords
    assert len(kw) == 24
    assert kw["uri_path"] is options.UriPath
    assert kw["content_format"] is options.ContentFormat
    assert kw["block2"] is options.Block2
    assert kw["oscore"] is options.OSCORE
    for key in kw:
        assert kw[key].name == key
    assert kw.get("nope") is None
    assert "nope" not in kw
    support.raises(KeyError, kw.__getitem__, "nope")


# -- critical / unsafe / no-cache-key (RFC 7252 §5.4.6) -----------------------
# Critical = bit 0; Unsafe = bit 1; NoCacheKey = bits 1-4 are 1110 (the
# number & 0x1e == 0x1c). Expected flags below were worked out by hand from
# the binary of each number and agree with RFC 7252 Table 4 (C, U, N columns)
# and the tables of RFC 7641, 7959, 7967, 8613, 8768, 9175.
# number: (critical, unsafe, no_cache_key)
FLAGS = (
    (1, True, False, False),     # If-Match      0b000001
    (3, True, True, False),      # Uri-Host      0b000011
    (4, False, False, False),    # ETag          0b000100
    (5, True, False, False),     # If-None-Match 0b000101
    (6, False, True, False),     # Observe       0b000110
    (7, True, True, False),      # Uri-Port      0b000111
    (8, False, False, False),    # Location-Path
    (9, True, False, False),     # OSCORE        0b001001
    (11, True, True, False),     # Uri-Path      0b001011
    (12, False, False, False),   # Content-Format
    (14, False, True, False),    # Max-Age       0b001110
    (15, True, True, False),     # Uri-Query     0b001111
    (16, False, False, False),   # Hop-Limit     0b010000
    (17, True, False, False),    # Accept        0b010001
    (20, False, False, False),   # Location-Query 0b010100
    (23, True, True, False),     # Block2        0b010111
    (27, True, True, False),     # Block1        0b011011
    (28, False, False, True),    # Size2         0b011100
    (35, True, True, False),     # Proxy-Uri     0b100011
    (39, True, True, False),     # Proxy-Scheme  0b100111
    (60, False, False, True),    # Size1         0b111100
    (252, False, False, True),   # Echo          0b11111100
    (258, False, True, False),   # No-Response   0b100000010
    (292, False, False, False),  # Request-Tag   0b100100100
    # Unregistered numbers through the generic Option:
    (2, False, True, False),
    (29, True, False, True),     # 0b11101
    (30, False, True, False),    # 0b11110: unsafe, so not NoCacheKey
    (65532, False, False, True),  # 0xFFFC
    (65535, True, True, False),
)


def test_critical_from_number():
    for number, crit, unsafe, nck in FLAGS:
        assert Option(number).critical == crit, number


def test_unsafe_from_number():
    for number, crit, unsafe, nck in FLAGS:
        assert Option(number).unsafe == unsafe, number


def test_no_cache_key_from_number():
    for number, crit, unsafe, nck in FLAGS:
        assert Option(number).no_cache_key == nck, number


def test_flags_on_registered_instances():
    assert options.UriPath("a").critical
    assert options.UriPath("a").unsafe
    assert not options.ETag(b"\x01").critical
    assert options.Size1(5).no_cache_key
    assert not options.MaxAge(5).critical
    assert options.MaxAge(5).unsafe


# -- uint values (RFC 7252 §3.2) ------------------------------------------------

def test_uint_zero_is_empty():
    assert options.uint_bytes(0) == b""
    assert options.ContentFormat(0).raw == b""
    assert options.Observe(0).raw == b""


def test_uint_minimal_length():
    assert options.uint_bytes(1) == b"\x01"
    assert options.uint_bytes(255) == b"\xff"
    assert options.uint_bytes(256) == b"\x01\x00"
    assert options.uint_bytes(65535) == b"\xff\xff"
    assert options.uint_bytes(65536) == b"\x01\x00\x00"
    assert options.MaxAge(255).raw == b"\xff"
    assert options.MaxAge(256).raw == b"\x01\x00"


def test_uint_four_bytes():
    # 2**32 - 1 is a long int on a 32-bit board: it must still encode.
    v = (1 << 32) - 1
    o = options.MaxAge(v)
    assert o.raw == b"\xff\xff\xff\xff"
    assert o.value == v


def test_uint_negative_is_value_error():
    support.raises(ValueError, options.MaxAge, -1)
    support.raises(ValueError, options.uint_bytes, -5)


def test_uint_value_reads_any_length():
    assert options.make(12, b"").value == 0
    assert options.make(12, b"\x32").value == 50
    assert options.make(14, b"\x00\x01\x00").value == 256  # leading zero kept


def test_string_and_opaque_values():
    assert options.UriPath("temp").value == "temp"
    assert options.UriPath("\u00e9").raw == b"\xc3\xa9"
    assert options.ETag(b"\x01\x02").value == b"\x01\x02"
    assert options.ETag(bytearray(b"\x03")).raw == b"\x03"


def test_wrong_value_types_raise_type_error():
    support.raises(TypeError, options.ContentFormat, "json")
    support.raises(TypeError, options.UriPath, 5)
    support.raises(TypeError, options.ETag, 1.5)


# -- Block1 / Block2 (RFC 7959 §2.2) ------------------------------------------
# value = num << 4 | M << 3 | SZX, as a minimal uint.

def test_block_tuple_to_wire():
    assert options.Block2((0, False, 0)).raw == b""
    assert options.Block2((0, True, 6)).raw == b"\x0e"
    assert options.Block2((5, True, 3)).raw == b"\x5b"
    assert options.Block1((16, False, 2)).raw == b"\x01\x02"
    assert options.Block1((0xFFFFF, False, 6)).raw == b"\xff\xff\xf6"


def test_block_wire_to_tuple():
    assert options.make(23, b"").value == (0, False, 0)
    assert options.make(23, b"\x0e").value == (0, True, 6)
    assert options.make(27, b"\x5b").value == (5, True, 3)
    assert options.make(27, b"\xff\xff\xf6").value == (0xFFFFF, False, 6)


def test_block_round_trip_in_message():
    m = Message(Message.CON, 1, block2=(9, True, 5), block1=(3, False, 1))
    tid, back = Message.decode(m.encode(1))
    assert back.findOption(23).value == (9, True, 5)
    assert back.findOption(27).value == (3, False, 1)
    assert back.get_uint(23) == (9 << 4) | 8 | 5


def test_block_bad_values():
    support.raises(ValueError, options.Block2, (1 << 20, False, 0))
    support.raises(ValueError, options.Block2, (0, False, 8))
    support.raises(ValueError, options.Block2, (-1, False, 0))


# -- the generic Option ---------------------------------------------------------

def test_generic_option_for_registered_number():
    o = Option(11, "a")
    assert o == options.UriPath("a")
    assert o.format == STRING
    assert o.name == "uri_path"
    assert o.repeatable
    assert o.value == "a"
    c = Option(12, 50)
    assert c.raw == b"\x32"
    assert c.value == 50
    assert c == options.ContentFormat(50)


# Regression: the generic class took a registered option's format but not its
# Block nature, so Option(23, (2, True, 6)) raised TypeError while
# Block2((2, True, 6)) worked (the generic class promises to equal it).

def test_generic_option_for_a_block_number_takes_the_tuple():
    for number, cls in ((23, options.Block2), (27, options.Block1)):
        o = Option(number, (2, True, 6))
        assert o == cls((2, True, 6)) and o.raw == b"\x2e", (number, o.raw)
        assert o.value == (2, True, 6), o.value
        assert Option(number, 0x2E) == o, number  # the uint form too


def test_registered_number_set_matches_the_table():
    # options.KNOWN, the bitmap that tells an unknown number at once,
    # names exactly the registered numbers.
    numbers = [r[1] for r in REGISTERED]
    for n in range(0, 300):
        known = n >> 3 < len(options.KNOWN) and options.KNOWN[n >> 3] >> (n & 7) & 1 == 1
        assert known == (n in numbers), n
        assert (options.option_class(n) is not None) == (n in numbers), n
    assert options.option_class(65535) is None and options.option_class(2000) is None


def test_generic_option_for_unknown_number():
    o = Option(65000, b"\x01\x02")
    assert o.number == 65000
    assert o.name is None
    assert o.format == OPAQUE
    assert o.repeatable
    assert o.value == b"\x01\x02"
    assert Option(65000, "ab").raw == b"ab"
    assert Option(65000, 258).raw == b"\x01\x02"
    assert Option(2).raw == b""


def test_generic_option_number_range():
    support.raises(ValueError, Option, 65536)
    support.raises(ValueError, Option, -1)
    assert Option(0).number == 0
    assert Option(65535).number == 65535


def test_option_equality():
    assert options.UriPath("a") == options.UriPath("a")
    assert not (options.UriPath("a") == options.UriPath("b"))
    assert not (options.UriPath("a") == options.LocationPath("a"))
    assert not (options.UriPath("a") == "a")


def test_make_gives_registered_class():
    o = options.make(11, b"x")
    assert isinstance(o, options.UriPath)
    u = options.make(2, b"y")
    assert isinstance(u, Option)
    assert u.number == 2
    assert u.raw == b"y"


def test_unknown_options_survive_decode_and_encode():
    # Unknown numbers 2 (delta in the nibble), 1000 (delta 989 after Uri-Path:
    # two extended bytes) and 65000 with a value longer than 269 bytes.
    big = bytes(range(256)) + b"tail-bytes-0123"
    m = Message(Message.CON, 1, token=b"\x01")
    m.addOption(Option(65000, big))
    m.addOption(Option(2, b"\x00\xff"))
    m.addOption(options.UriPath("x"))
    m.addOption(Option(1000, b""))
    m.addOption(Option(2, b"second"))
    wire = m.encode(42)
    tid, back = Message.decode(wire)
    got = [(o.number, o.raw) for o in back.options]
    assert got == [(2, b"\x00\xff"), (2, b"second"), (11, b"x"),
                   (1000, b""), (65000, big)]
    assert back.encode(42) == wire
    # Copied option by option into a new message: same bytes again.
    copy = Message(Message.CON, 1, token=b"\x01")
    for o in back.options:
        copy.addOption(o)
    assert copy.encode(42) == wire


# -- malformed values (RFC 7252 §5.4.3) ----------------------------------------

def _decode_one(number, value):
    wire = b"\x40\x01\x00\x01" + _header(number, len(value)) + value
    tid, m = Message.decode(wire)
    opts = m.options
    assert len(opts) == 1
    assert opts[0].number == number
    assert opts[0].raw == value
    return opts[0]


def test_length_outside_range_decodes_and_is_malformed():
    cases = (
        (12, b"\x01\x02\x03"),   # Content-Format: 0-2
        (4, b""),                # ETag: 1-8
        (4, b"123456789"),       # ETag: 1-8
        (3, b""),                # Uri-Host: 1-255
        (5, b"\x01"),            # If-None-Match: 0
        (16, b""),               # Hop-Limit: 1
        (6, b"\x01\x02\x03\x04"),  # Observe: 0-3
        (252, b""),              # Echo: 1-40
        (11, b"x" * 256),        # Uri-Path: 0-255
    )
    for number, value in cases:
        o = _decode_one(number, value)
        assert o.malformed, number
        o.value  # readable all the same


def test_length_inside_range_is_not_malformed():
    cases = ((12, b""), (12, b"\x01\x02"), (4, b"\x01"), (4, b"12345678"),
             (3, b"h"), (5, b""), (16, b"\x01"), (11, b"x" * 255),
             (65000, b"y" * 300))
    for number, value in cases:
        assert not _decode_one(number, value).malformed, number


def test_invalid_utf8_string_is_malformed_and_value_does_not_raise():
    o = _decode_one(11, b"\xff\xfe")
    assert o.malformed
    v = o.value
    assert v == b"\xff\xfe"
    o2 = _decode_one(3, b"ok\xc3")  # truncated two-byte sequence
    assert o2.malformed


def test_valid_utf8_string_is_not_malformed():
    o = _decode_one(11, b"caf\xc3\xa9")
    assert not o.malformed
    assert o.value == "caf\u00e9"


def test_malformed_message_still_reencodes():
    wire = b"\x40\x01\x00\x01" + _header(12, 3) + b"\x01\x02\x03"
    tid, m = Message.decode(wire)
    assert m.encode(1) == wire


# -- extended delta and length boundaries (RFC 7252 §3.1) ----------------------

def test_header_helper_matches_rfc_examples():
    # Spot checks of _header itself against values worked out by hand.
    assert _header(11, 7) == b"\xb7"
    assert _header(13, 0) == b"\xd0\x00"
    assert _header(268, 0) == b"\xd0\xff"
    assert _header(269, 0) == b"\xe0\x00\x00"
    assert _header(65535, 0) == b"\xe0\xfe\xf2"
    assert _header(0, 65804) == b"\x0e\xff\xff"


def test_option_number_boundaries():
    # A lone option of each number with an empty value: the header alone.
    expected = (
        (12, b"\xc0"),
        (13, b"\xd0\x00"),           # 13 - 13 = 0
        (268, b"\xd0\xff"),          # 268 - 13 = 255
        (269, b"\xe0\x00\x00"),      # 269 - 269 = 0
        (270, b"\xe0\x00\x01"),      # 270 - 269 = 1
        (65535, b"\xe0\xfe\xf2"),    # 65535 - 269 = 0xFEF2
    )
    for number, header in expected:
        m = Message(Message.CON, 1)
        m.addOption(Option(number, b""))
        wire = m.encode(0)
        assert wire == b"\x40\x01\x00\x00" + header, number
        tid, back = Message.decode(wire)
        assert [(o.number, o.raw) for o in back.options] == [(number, b"")]


def test_option_delta_boundaries_between_options():
    # Second option's delta 12, 13, 268, 269, 270 after option 1.
    for delta in (12, 13, 268, 269, 270):
        m = Message(Message.CON, 1)
        m.addOption(Option(1, b""))
        m.addOption(Option(1 + delta, b""))
        wire = m.encode(0)
        assert wire == b"\x40\x01\x00\x00\x10" + _header(delta, 0), delta
        tid, back = Message.decode(wire)
        assert [o.number for o in back.options] == [1, 1 + delta]


def test_option_length_boundaries():
    # Unknown option 2 (delta nibble 2) with values of each boundary length.
    expected = (
        (12, b"\x2c"),
        (13, b"\x2d\x00"),
        (268, b"\x2d\xff"),
        (269, b"\x2e\x00\x00"),
        (270, b"\x2e\x00\x01"),
        (65804, b"\x2e\xff\xff"),    # the largest length: 65535 + 269
    )
    for length, header in expected:
        value = b"v" * length
        m = Message(Message.NON, 2)
        m.addOption(Option(2, value))
        wire = m.encode(0)
        assert len(wire) == 4 + len(header) + length, length
        assert wire[:4 + len(header)] == b"\x50\x02\x00\x00" + header, length
        tid, back = Message.decode(wire)
        opts = back.options
        assert len(opts) == 1
        assert opts[0].number == 2
        assert len(opts[0].raw) == length
        assert opts[0].raw == value
        assert back.encode(0) == wire


def test_number_and_length_both_extended():
    m = Message(Message.CON, 1)
    m.addOption(Option(300, b"z" * 20))
    wire = m.encode(0)
    # delta 300 -> 14, 00 1F; length 20 -> 13, 07
    assert wire[4:9] == b"\xed\x00\x1f\x07z"
    tid, back = Message.decode(wire)
    assert back.findOption(300).raw == b"z" * 20
