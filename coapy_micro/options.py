"""CoAP options: a class per registered option number, and a generic Option.

Registered here: RFC 7252 (core), 7641 (Observe), 7959 (Block1/2, Size2),
7967 (No-Response), 8613 (OSCORE), 8768 (Hop-Limit), 9175 (Echo, Request-Tag).

Every option keeps its value as the bytes that go on the wire (`raw`), so
encoding is a copy and an unknown option survives decode/encode untouched.
`value` converts on access: int for uint options, str for string options,
bytes for opaque and empty ones, (num, more, szx) for Block1/Block2.

A value whose length is outside the option's range is kept, not rejected:
`malformed` is then True, and the server treats the option as unrecognized
(RFC 7252 §5.4.3). The codec does not decide what to do about it.

The registered classes (UriPath, ContentFormat, ...) are made from the table
below the first time they are named, not at import: a class costs about 170
bytes of heap on a board and a node uses a handful of the 24. They are plain
subclasses of Option: one __init__ serves both, told apart by whether the
class has a number.
"""
try:
    from micropython import const
except ImportError:  # CPython (a board need not load _compat with the codec)
    from ._compat import const

# Value formats (RFC 7252 §3.2)
EMPTY = const(0)
OPAQUE = const(1)
UINT = const(2)
STRING = const(3)

# The largest value length the option header can express: 65535 + 269.
MAX_LENGTH = const(65804)

# One record of 6 bytes per registered option, ordered by number:
# number (2 bytes), format | 4 if repeatable | 8 if Block, min length,
# max length (2 bytes).
_SPEC = (
    b"\x00\x01\x05\x00\x00\x08"  # 1 If-Match
    b"\x00\x03\x03\x01\x00\xff"  # 3 Uri-Host
    b"\x00\x04\x05\x01\x00\x08"  # 4 ETag
    b"\x00\x05\x00\x00\x00\x00"  # 5 If-None-Match
    b"\x00\x06\x02\x00\x00\x03"  # 6 Observe
    b"\x00\x07\x02\x00\x00\x02"  # 7 Uri-Port
    b"\x00\x08\x07\x00\x00\xff"  # 8 Location-Path
    b"\x00\x09\x01\x00\x00\xff"  # 9 OSCORE
    b"\x00\x0b\x07\x00\x00\xff"  # 11 Uri-Path
    b"\x00\x0c\x02\x00\x00\x02"  # 12 Content-Format
    b"\x00\x0e\x02\x00\x00\x04"  # 14 Max-Age
    b"\x00\x0f\x07\x00\x00\xff"  # 15 Uri-Query
    b"\x00\x10\x02\x01\x00\x01"  # 16 Hop-Limit
    b"\x00\x11\x02\x00\x00\x02"  # 17 Accept
    b"\x00\x14\x07\x00\x00\xff"  # 20 Location-Query
    b"\x00\x17\x0a\x00\x00\x03"  # 23 Block2
    b"\x00\x1b\x0a\x00\x00\x03"  # 27 Block1
    b"\x00\x1c\x02\x00\x00\x04"  # 28 Size2
    b"\x00\x23\x03\x01\x04\x0a"  # 35 Proxy-Uri (1..1034)
    b"\x00\x27\x03\x01\x00\xff"  # 39 Proxy-Scheme
    b"\x00\x3c\x02\x00\x00\x04"  # 60 Size1
    b"\x00\xfc\x01\x01\x00\x28"  # 252 Echo (1..40)
    b"\x01\x02\x02\x00\x00\x01"  # 258 No-Response
    b"\x01\x24\x05\x00\x00\x08"  # 292 Request-Tag
)
# Class name and Message keyword of each record, in the same order: one
# string, not a tuple of 48, because every separate name would cost a qstr.
_NAMES = (
    " IfMatch if_match UriHost uri_host ETag etag IfNoneMatch if_none_match"
    " Observe observe UriPort uri_port LocationPath location_path OSCORE oscore"
    " UriPath uri_path ContentFormat content_format MaxAge max_age"
    " UriQuery uri_query HopLimit hop_limit Accept accept"
    " LocationQuery location_query Block2 block2 Block1 block1 Size2 size2"
    " ProxyUri proxy_uri ProxyScheme proxy_scheme Size1 size1 Echo echo"
    " NoResponse no_response RequestTag request_tag "
)
_COUNT = const(24)
# Bit n is set for each registered option number n (all are below 296): an
# unknown number is told apart at once, without a walk of _SPEC (a request
# may carry hundreds of unknown options). tests/portable/test_options.py
# checks it against _SPEC.
KNOWN = (b"\xfa\xdb\x93\x18\x88\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
         b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10\x04\x00\x00\x00\x10")

_classes = {}  # option number -> class, filled as classes are first named


def uint_bytes(value):
    """Minimal big-endian bytes of an int >= 0: 0 is no bytes (RFC 7252 §3.2)."""
    if value < 0:
        raise ValueError("negative uint")
    n = 0
    while value >> (8 * n):
        n += 1
    return value.to_bytes(n, "big")


def uint_at(buf, pos, n):
    """The uint held big-endian in buf[pos:pos + n] (RFC 7252 §3.2), read
    without slicing: the one uint decoder, allocation-free for the small
    values options carry (up to 4 bytes)."""
    v = 0
    end = pos + n
    while pos < end:
        v = (v << 8) | buf[pos]
        pos += 1
    return v


class Option:
    """An option of any number: `Option(number, value)`.

    For a registered number the value is converted as that option's format
    says (so `Option(11, 'a')` equals `UriPath('a')`); for an unknown number
    the value is opaque bytes (a str is UTF-8 encoded, an int is a uint).

    The registered classes (made by option_class()) know their number and
    take the value alone: `UriPath('a')`, `Block2((0, True, 6))`.

    Read-only attributes: `value`; `critical`, `unsafe`, `no_cache_key`
    (from the number, RFC 7252 §5.4.6); `malformed` (see the module doc).
    """

    # Defaults describe an unknown option; registered classes override them.
    number = None
    name = None
    format = OPAQUE
    min_len = 0
    max_len = MAX_LENGTH
    repeatable = True
    _block = False  # Block1/Block2 (RFC 7959 §2.2): value is (num, more, szx)

    def __init__(self, number=None, value=None):
        if self.number is None:
            # The generic class: Option(number, value).
            if number is None or not 0 <= number <= 65535:
                raise ValueError("option number out of range: %r" % (number,))
            self.number = number
            cls = option_class(number)
            if cls is not None:
                # Take the registered option's description for this instance.
                self.name = cls.name
                self.format = cls.format
                self.min_len = cls.min_len
                self.max_len = cls.max_len
                self.repeatable = cls.repeatable
                self._block = cls._block  # Option(23, (2, True, 6)) as Block2((2, True, 6))
        elif number is not None:
            # A registered class takes the value first: UriPath("a") (or
            # UriPath(value="a")).
            value = number
        if self._block:
            # Block1/Block2 (only the registered classes have _block set).
            # The block size is 2 ** (szx + 4); szx 7 is reserved (the server
            # answers 4.00), so it is representable here and left for the
            # layer above to refuse.
            if value is None:
                value = 6  # the default: (0, False, 6)
            if isinstance(value, tuple):
                num, more, szx = value
                if not 0 <= szx <= 7 or not 0 <= num < (1 << 20):
                    raise ValueError("bad block value %r" % (value,))
                value = (num << 4) | (8 if more else 0) | szx
        # The value as the bytes of an option of this format.
        fmt = self.format
        if isinstance(value, str) and fmt != UINT:
            value = value.encode("utf-8")
        elif value is None or (fmt == EMPTY and value is True):
            value = b""  # If-None-Match=True: present, with its empty value
        elif isinstance(value, (bytes, bytearray, memoryview)):
            value = bytes(value)
        # bool is not an int on MicroPython, so name both.
        elif (isinstance(value, int) or isinstance(value, bool)) and fmt != STRING:
            value = uint_bytes(int(value))
        else:
            raise TypeError("bad value for option %d: %r" % (self.number, value))
        self.raw = value

    @property
    def value(self):
        raw = self.raw
        f = self.format
        if f == UINT:
            v = uint_at(raw, 0, len(raw))
            if self._block:
                return (v >> 4, v & 8 == 8, v & 7)
            return v
        if f == STRING:
            try:
                return raw.decode("utf-8")
            except ValueError:  # UnicodeError: not UTF-8, so `malformed`
                return raw
        return raw

    def __getattr__(self, name):
        # Only called for attributes not found the usual way: the flags
        # below, read rarely, are derived here in one method (a property
        # each costs about 100 bytes of heap on a board).
        n = self.number
        if n is None:  # the generic class itself: no number, no flags
            raise AttributeError(name)
        if name == "critical":  # RFC 7252 §5.4.6
            return n & 1 == 1
        if name == "unsafe":
            return n & 2 == 2
        if name == "no_cache_key":
            return n & 0x1E == 0x1C
        if name == "malformed":
            # The value breaks the option's length range (or, for a string
            # option, is not UTF-8): RFC 7252 §5.4.3 treats it as unrecognized.
            n = len(self.raw)
            if n < self.min_len or n > self.max_len:
                return True
            return self.format == STRING and self.value is self.raw
        raise AttributeError(name)

    def __eq__(self, other):
        return (
            isinstance(other, Option)
            and self.number == other.number
            and self.raw == other.raw
        )

    def __repr__(self):
        return "<%s %d %r>" % (self.name or "Option", self.number, self.value)


def option_class(number):
    """The registered class for an option number, or None.

    Each class is made from its _SPEC record the first time it is asked for,
    and kept.
    """
    cls = _classes.get(number)
    if cls is None and number >> 3 < len(KNOWN) and KNOWN[number >> 3] >> (number & 7) & 1:
        for s in range(0, len(_SPEC), 6):
            if (_SPEC[s] << 8) | _SPEC[s + 1] == number:
                f = _SPEC[s + 2]
                attrs = {
                    "number": number,
                    "name": _word(s // 3 + 1),
                    "format": f & 3,
                    "min_len": _SPEC[s + 3],
                    "max_len": (_SPEC[s + 4] << 8) | _SPEC[s + 5],
                    "repeatable": f & 4 == 4,
                }
                if f & 8:
                    attrs["_block"] = True
                cls = type(_word(s // 3), (Option,), attrs)
                _classes[number] = cls
                break
    return cls


def make(number, raw):
    """An option object for `number` holding `raw` wire bytes (used by decode)."""
    cls = option_class(number)
    opt = object.__new__(cls or Option)
    if cls is None:
        opt.number = number  # an unknown option: the generic class
    opt.raw = raw
    return opt


def _word(k):
    # The k-th word of _NAMES.
    start = 1
    for _ in range(k):
        start = _NAMES.find(" ", start) + 1
    return _NAMES[start:_NAMES.find(" ", start)]


def _named(name, step, error):
    # The class whose class name (step 0) or keyword (step 1) is `name`; if
    # there is none, raises `error(name)`, or returns None when error is None.
    # Class names are CamelCase and keywords snake_case, so a word found at
    # the other parity is no match.
    at = _NAMES.find(" " + name + " ")
    if at >= 0:
        k = _NAMES.count(" ", 0, at)
        if k % 2 == step:
            s = k // 2 * 6
            return option_class((_SPEC[s] << 8) | _SPEC[s + 1])
    if error is not None:
        raise error(name)
    return None


def __getattr__(name):
    # `options.UriPath` and `from coapy_micro.options import UriPath` land
    # here the first time (PEP 562; MicroPython's module __getattr__ too).
    # ContentType is coapy's (draft-era) name for Content-Format.
    return _named("ContentFormat" if name == "ContentType" else name, 0, AttributeError)


class _Keywords:
    """Message keyword -> option class (coapy's Message.OptionKeywords),
    a read-only mapping that makes each class only when it is looked up.

    `in` needs no __contains__: both Pythons fall back on __iter__.
    """

    def get(self, key, default=None):
        return _named(key, 1, None) or default

    def __getitem__(self, key):
        return _named(key, 1, KeyError)

    def keys(self):
        out = []
        for i in range(_COUNT):
            out.append(_word(2 * i + 1))
        return out

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return _COUNT


KEYWORDS = _Keywords()  # upy-ok: one small object, no table: classes come on lookup
