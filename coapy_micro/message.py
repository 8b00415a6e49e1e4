"""The CoAP message (RFC 7252 §3) behind the seed's Message API.

Wire layout, for reference while reading the code below:

    byte 0   Ver(2) | Type(2) | TKL(4)
    byte 1   Code (class.detail, 3.5 bits)
    byte 2-3 Message ID (the seed calls it the transaction id)
    Token (TKL bytes), Options (delta-encoded, ordered by number),
    then 0xFF and the payload, if there is one.

A decoded message keeps the received bytes and a few offsets; token, payload
and options are sliced or built only when asked for, so decoding the typical
request costs one small object and the (tid, message) pair. A message that is
encoded again without changes copies its options as received.
"""
try:
    from micropython import const
    IS_MICROPYTHON = True
except ImportError:  # CPython
    from ._compat import const
    IS_MICROPYTHON = False

from .options import KEYWORDS, Option, make

_CON = const(0)
_NON = const(1)
_ACK = const(2)
_RST = const(3)

_PAYLOAD_MARKER = const(0xFF)
_STRING = const(3)  # options.STRING, the string option format


class DecodeError(ValueError):
    """A datagram that is not a well-formed CoAP message (RFC 7252 §3, §4.2).

    Carries what could be read of the header, so an endpoint can answer a bad
    CON with RST (`transaction_type`, `transaction_id`, `code`; None when the
    datagram was too short to hold them). `bad_version` is True when the
    version is not 1: RFC 7252 says such a datagram is silently ignored.
    """

    transaction_type = None
    transaction_id = None
    code = None
    bad_version = False


def _walk(raw, pos, end, want, nth, out):
    """Walk the options in raw[pos:end], checking their format.

    Returns ((value offset << 17) | value length) of the nth option numbered
    `want`, if any (the pair packed in one int so finding an option allocates
    nothing on a board: offsets there are small); otherwise -1 - (index where
    the options end: the payload marker, or `end`). Appends every option to
    `out` when it is a list. Raises DecodeError on any format error.
    """
    number = 0
    while pos < end:
        b = raw[pos]
        pos += 1
        n = b & 15
        if b < 0xD0 and n < 13:
            # The common case: delta and length both fit in their nibbles.
            number += b >> 4
        else:
            if b == _PAYLOAD_MARKER:
                if pos >= end:  # a marker with no payload after it
                    raise DecodeError("bad payload marker")
                return -pos  # -1 - (index of the marker)
            d = b >> 4
            if d == 15 or n == 15:
                # 15 is reserved for the payload marker byte (0xFF) alone
                raise DecodeError("bad payload marker")
            if d > 12:
                if pos + d - 12 > end:
                    raise DecodeError("option past the end")
                if d == 13:
                    d = raw[pos] + 13
                    pos += 1
                else:
                    d = ((raw[pos] << 8) | raw[pos + 1]) + 269
                    pos += 2
            if n > 12:
                if pos + n - 12 > end:
                    raise DecodeError("option past the end")
                if n == 13:
                    n = raw[pos] + 13
                    pos += 1
                else:
                    n = ((raw[pos] << 8) | raw[pos + 1]) + 269
                    pos += 2
            number += d
        if number > 65535:
            raise DecodeError("option number above 65535")
        if pos + n > end:
            raise DecodeError("option past the end")
        if number == want:
            if nth == 0:
                return (pos << 17) | n
            nth -= 1
        if out is not None:
            out.append(make(number, raw[pos:pos + n]))
        pos += n
    return -1 - end


def _copy(buf, pos, src, a, n):
    # buf[pos:pos + n] = src[a:a + n], without allocating on MicroPython (a
    # slice of src would): a whole object is one slice store, a part of one
    # is a byte loop there and a memoryview slice on CPython, where speed counts.
    if a == 0 and n == len(src):
        buf[pos:pos + n] = src
    elif IS_MICROPYTHON:
        for i in range(n):
            buf[pos + i] = src[a + i]
    else:
        buf[pos:pos + n] = memoryview(src)[a:a + n]


def encode_options(opts):
    """The wire form of a list of options already ordered by number."""
    out = bytearray()
    prev = 0
    for o in opts:
        v = o.raw
        h = len(out)
        out.append(0)
        # Delta, then length: 0-12 fit in their nibble; 13 and 14 announce
        # one or two extended bytes holding x - 13 or x - 269.
        d = o.number - prev
        if d > 12:
            if d < 269:
                out.append(d - 13)
                d = 13
            else:
                out.append((d - 269) >> 8)
                out.append((d - 269) & 0xFF)
                d = 14
        n = len(v)
        if n > 12:
            if n < 269:
                out.append(n - 13)
                n = 13
            else:
                out.append((n - 269) >> 8)
                out.append((n - 269) & 0xFF)
                n = 14
        out[h] = (d << 4) | n
        out += v
        prev = o.number
    return bytes(out)


class Message:
    """A CoAP message. The transaction id (Message ID) is not part of it: it is
    given to encode() and returned by decode(), as in coapy.

    Options are held in wire form (`_ob[_o0:_o1]`): for a decoded message that
    is the received datagram itself, for a built one the bytes encode_options()
    made when the options last changed. Encoding is then a copy, finding an
    option is a walk over bytes, and Option objects exist only when asked for.
    """

    CON = _CON
    NON = _NON
    ACK = _ACK
    RST = _RST
    version = 1
    OptionKeywords = KEYWORDS

    # Class-level defaults. `_raw` is the datagram a message was decoded from;
    # while it is set, a None token or payload means "still in _raw". (The
    # option bytes _ob, _o0, _o1 are set by __init__ and decode: three fewer
    # entries keep this class's dict a size smaller on a board.)
    _raw = None
    _token = None
    _payload = None

    def __init__(self, transaction_type=_CON, code=0, payload=b"", token=b"", **kw):
        if transaction_type not in (_CON, _NON, _ACK, _RST):
            raise ValueError("bad transaction type")
        self._type = transaction_type
        self.code = code
        self.payload = payload
        self.token = token
        if kw:
            # The options the keywords stand for, kept ordered by number
            # (keywords come in any order).
            opts = []
            for key in kw:
                cls = KEYWORDS.get(key)
                if cls is None:
                    raise TypeError("unknown option keyword %r" % key)
                value = kw[key]
                if value is None or value is False:
                    continue
                num = cls.number
                if isinstance(value, str) and cls.repeatable and cls.format == _STRING:
                    # Location-Path, Uri-Path, Uri-Query, Location-Query:
                    # 'a/b' -> 'a', 'b' and 'x=1&y=2' -> 'x=1', 'y=2'; one
                    # leading '/' or '?' is dropped; '' and a lone '/' make no
                    # option (RFC 7252 §6.4).
                    if value[:1] == ("/" if num < 12 else "?"):
                        value = value[1:]
                    value = value.split("/" if num < 12 else "&") if value else ()
                if not (cls.repeatable and isinstance(value, (tuple, list))):
                    value = (value,)
                i = len(opts)
                while i > 0 and opts[i - 1].number > num:
                    i -= 1
                for v in value:
                    opts.insert(i, cls(v))
                    i += 1
            self._set_list(opts)
        else:
            self._ob = b""  # no options
            self._o0 = 0
            self._o1 = 0

    # -- header fields ---------------------------------------------------

    @property
    def transaction_type(self):
        return self._type

    @property
    def token(self):
        t = self._token
        if t is None:
            raw = self._raw
            t = raw[4:4 + (raw[0] & 15)]
            self._token = t
        return t

    @token.setter
    def token(self, value):
        if value is None:
            value = b""
        elif not isinstance(value, bytes):
            if not isinstance(value, (bytearray, memoryview)):
                raise TypeError("token must be 0 to 8 bytes")
            value = bytes(value)
        if len(value) > 8:
            raise ValueError("token must be 0 to 8 bytes")
        self._token = value

    @property
    def payload(self):
        p = self._payload
        if p is None:
            p = self._raw[self._o1 + 1:]
            self._payload = p
        return p

    @payload.setter
    def payload(self, value):
        if value is None:
            value = b""
        elif isinstance(value, str):
            value = value.encode("utf-8")
        elif not isinstance(value, bytes):
            value = bytes(value)
        self._payload = value

    # -- options ---------------------------------------------------------

    def _set_list(self, opts):
        if self._raw is not None:
            # Take token and payload out of the datagram before letting it go.
            self.token
            self.payload
            self._raw = None
        ob = encode_options(opts)
        self._ob = ob
        self._o0 = 0
        self._o1 = len(ob)

    @property
    def options(self):
        """All options, ordered by number; repeated ones in the order added."""
        opts = []
        _walk(self._ob, self._o0, self._o1, -1, 0, opts)
        return tuple(opts)

    def addOption(self, opt):
        """Add an option; a non-repeatable one replaces any present."""
        opts = list(self.options)
        num = opt.number
        # Insert after every option with a number <= num (dropping those equal
        # to it if `opt` is not repeatable): a stable insertion, never a sort
        # (MicroPython's sort is not stable: Uri-Path would shuffle).
        i = 0
        while i < len(opts) and opts[i].number <= num:
            if opts[i].number == num and not opt.repeatable:
                del opts[i]
            else:
                i += 1
        opts.insert(i, opt)
        self._set_list(opts)
        return opt

    def replaceOption(self, opt):
        """Put `opt` in place of every option with its number."""
        self.deleteOption(opt.number)
        return self.addOption(opt)

    def deleteOption(self, opt):
        """Remove options: an instance removes the first option equal to it;
        a class or a number removes every option with that number."""
        opts = list(self.options)
        n = len(opts)
        one = isinstance(opt, Option)
        num = getattr(opt, "number", opt)
        i = 0
        while i < len(opts):
            if opts[i] == opt if one else opts[i].number == num:
                del opts[i]
                if one:
                    break
            else:
                i += 1
        if len(opts) != n:
            self._set_list(opts)

    def findOption(self, opt):
        """The first option with the number of `opt` (instance, class or
        number), or None."""
        num = getattr(opt, "number", opt)
        r = _walk(self._ob, self._o0, self._o1, num, 0, None)
        if r < 0:
            return None
        pos = r >> 17
        return make(num, self._ob[pos:pos + (r & 0x1FFFF)])

    def findOptions(self, opt):
        """Every option with the number of `opt`, in order, as a tuple."""
        num = getattr(opt, "number", opt)
        found = []
        for o in self.options:
            if o.number == num:
                found.append(o)
        return tuple(found)

    def get_uint(self, number, default=None):
        """The value of the first option `number` read as a uint, or default.

        Allocates nothing (the server reads Content-Format, Accept, Observe
        and Block options through this on every request).
        """
        ob = self._ob
        r = _walk(ob, self._o0, self._o1, number, 0, None)
        if r < 0:
            return default
        pos = r >> 17
        end = pos + (r & 0x1FFFF)
        v = 0
        while pos < end:
            v = (v << 8) | ob[pos]
            pos += 1
        return v

    # -- wire format -----------------------------------------------------

    def wire_size(self):
        """The number of bytes encode() produces."""
        n = len(self.payload)
        return 4 + len(self.token) + self._o1 - self._o0 + (1 + n if n else 0)

    def _check(self, transaction_id, tok, on, pl):
        code = self.code
        if not (0 <= transaction_id <= 0xFFFF and 0 <= code <= 255):
            # the Message ID is 16 bits, the code 8
            raise ValueError("bad transaction id or code")
        if code == 0 and (tok or on or pl):
            raise ValueError("Empty message with token, options or payload")

    def encode(self, transaction_id):
        """The message as bytes, with the given transaction id."""
        tok = self.token
        pl = self.payload
        ob = self._ob
        if self._o0:
            ob = ob[self._o0:self._o1]  # options still inside a received datagram
        self._check(transaction_id, tok, ob, pl)
        head = bytes((0x40 | (self._type << 4) | len(tok), self.code,
                      transaction_id >> 8, transaction_id & 0xFF))
        if pl:
            return b"".join((head, tok, ob, b"\xff", pl))
        return b"".join((head, tok, ob))

    def encode_into(self, buf, transaction_id, offset=0):
        """Write the message into `buf` at `offset`; return the length.

        Allocates nothing, also for a message re-encoded straight after
        decode (its parts are copied out of the datagram). Raises ValueError,
        writing nothing, if `buf` is too small or the message cannot be encoded.
        """
        raw = self._raw
        tok = self._token
        pl = self._payload
        tkl = len(tok) if tok is not None else raw[0] & 15
        if pl is not None:
            pn = len(pl)
        else:
            pn = len(raw) - self._o1 - 1
            if pn < 0:
                pn = 0
        a = self._o0
        on = self._o1 - a
        self._check(transaction_id, tkl, on, pn)
        pos = offset + 4 + tkl
        end = pos + on + (1 + pn if pn else 0)
        if end > len(buf):
            raise ValueError("buffer too small")
        buf[offset] = 0x40 | (self._type << 4) | tkl
        buf[offset + 1] = self.code
        buf[offset + 2] = transaction_id >> 8
        buf[offset + 3] = transaction_id & 0xFF
        if tkl:
            _copy(buf, offset + 4, raw if tok is None else tok, 4 if tok is None else 0, tkl)
        if on:
            _copy(buf, pos, self._ob, a, on)
            pos += on
        if pn:
            buf[pos] = _PAYLOAD_MARKER
            _copy(buf, pos + 1, raw if pl is None else pl, self._o1 + 1 if pl is None else 0, pn)
        return end - offset

    @classmethod
    def decode(cls, packed):
        """Parse one datagram: returns (transaction_id, message).

        Raises DecodeError, and nothing else, for every malformed datagram.
        """
        raw = packed if type(packed) is bytes else bytes(packed)
        n = len(raw)
        if n < 4:
            raise DecodeError("too short")  # than the 4-byte header
        b0 = raw[0]
        mtype = (b0 >> 4) & 3
        code = raw[1]
        tid = (raw[2] << 8) | raw[3]
        tkl = b0 & 15
        try:
            if b0 >> 6 != 1:
                e = DecodeError("CoAP version %d" % (b0 >> 6))
                e.bad_version = True
                raise e
            if tkl > 8 or 4 + tkl > n:
                # 9-15 are reserved; or the token runs past the end
                raise DecodeError("bad token length")
            if code == 0 and n > 4:
                raise DecodeError("Empty message with token, options or payload")
            pe = -1 - _walk(raw, 4 + tkl, n, -1, 0, None)
        except DecodeError as e:
            e.transaction_type = mtype
            e.transaction_id = tid
            e.code = code
            raise
        msg = object.__new__(cls)
        msg._type = mtype
        msg.code = code
        msg._raw = raw
        msg._ob = raw
        msg._o0 = 4 + tkl
        msg._o1 = pe
        return tid, msg

    def __repr__(self):
        c = self.code
        return "<Message %s %d.%02d token=%s options=%r payload=%d bytes>" % (
            ("CON", "NON", "ACK", "RST")[self._type], c >> 5, c & 31,
            self.token, self.options, len(self.payload),
        )


# The transaction types, also importable from the module.
CON = _CON
NON = _NON
ACK = _ACK
RST = _RST

