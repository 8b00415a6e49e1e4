"""The CoAP message (RFC 7252 §3) behind coapy's Message API.

Wire layout, for reference while reading the code below:

    byte 0   Ver(2) | Type(2) | TKL(4)
    byte 1   Code (class.detail, 3.5 bits)
    byte 2-3 Message ID (coapy calls it the transaction id)
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
except ImportError:  # CPython. (Not from _compat on a board: it would load
    from ._compat import IS_MICROPYTHON, const  # one more module with the codec.)
from struct import pack_into

from .options import KEYWORDS, KNOWN, Option, make, uint_at

_CON = const(0)
_NON = const(1)
_ACK = const(2)
_RST = const(3)

_PAYLOAD_MARKER = const(0xFF)
_STRING = const(3)  # options.STRING, the string option format
_PAST = const(65536)  # an option number no option has: walk to the end
RECOGNIZED = const(-2)  # option_next(): the next registered or critical option


class DecodeError(ValueError):
    """A datagram that is not a well-formed CoAP message (RFC 7252 §3, §4.2).

    Carries what could be read of the header, so an endpoint can answer a bad
    CON with RST (`transaction_type`, `transaction_id`, `code`; None when the
    datagram was too short to hold them). `bad_version` is True when the
    version is not 1: RFC 7252 says such a datagram is silently ignored.
    """

    transaction_type = None  # type: int | None
    transaction_id = None  # type: int | None
    code = None  # type: int | None
    bad_version = False


# -- the option cursor ----------------------------------------------------------
#
# Every reader of option bytes walks them with option_next(), over a cursor:
# a list of five ints owned by the caller (`[0] * 5`, pointed at a message's
# options by Message.cursor()), so a walk allocates nothing.
#   cur[0], cur[1]  offset and length of the current option's value
#   cur[2]          offset of the next option header
#   cur[3]          where the option bytes end (the payload marker, once seen)
#   cur[4]          the current option's number (deltas add up from it)


def option_next(buf, cur, want=-1):
    """Step the cursor `cur` to the next option in `buf`; return its number,
    or -1 at the end of the options (cur[3] is then where they end).

    With `want` >= 0, step to the next option numbered `want` instead,
    checking the ones before it: -1 once an option numbered above it comes
    (options are ordered), the cursor left on that one. With `want` ==
    RECOGNIZED (-2), step to the next option that is registered or critical,
    passing over the unrecognized elective ones, which a recipient ignores
    (RFC 7252 §5.4.1): a server reads a request so, and a datagram of
    hundreds of junk options costs it one tight loop. Raises DecodeError on
    any format error (RFC 7252 §3.1): the walk is also decode's check.
    """
    # (Eight locals, no more: with at most three values on its stack the
    # frame fits the 11 words MicroPython keeps on the C stack; a larger one
    # would be allocated on the heap at every call, once per option. So the
    # header byte goes straight into d, and where the option began is worked
    # out again on the one path that needs it.)
    pos = cur[2]
    end = cur[3]
    number = cur[4]
    while pos < end:
        d = buf[pos]
        pos += 1
        n = d & 15
        d >>= 4
        if d > 12 or n > 12:
            if d == 15 and n == 15:  # the payload marker
                if pos >= end:  # a marker with no payload after it
                    raise DecodeError("bad payload marker")
                if number > 65535:
                    raise DecodeError("option number above 65535")
                pos -= 1
                cur[2] = pos
                cur[3] = pos
                return -1
            if d == 15 or n == 15:
                # 15 is reserved for the payload marker byte (0xFF) alone
                raise DecodeError("bad payload marker")
            if d > 12:
                if pos + d - 12 > end:
                    raise DecodeError("option past the end")
                if d == 13:
                    d = buf[pos] + 13
                    pos += 1
                else:
                    d = buf[pos + 1] + (buf[pos] << 8) + 269
                    pos += 2
            if n > 12:
                if pos + n - 12 > end:
                    raise DecodeError("option past the end")
                if n == 13:
                    n = buf[pos] + 13
                    pos += 1
                else:
                    n = buf[pos + 1] + (buf[pos] << 8) + 269
                    pos += 2
        number += d
        if pos + n > end:
            raise DecodeError("option past the end")
        if number >= want:  # (numbers only grow: a walk to the end checks them there)
            if number > 65535:
                raise DecodeError("option number above 65535")
            if number == want or want == -1 or (want == -2 and (
                    number & 1 or number >> 3 < len(KNOWN) and KNOWN[number >> 3] >> (number & 7) & 1)):
                cur[0] = pos
                cur[1] = n
                cur[2] = pos + n
                cur[4] = number
                return number
            if want >= 0:
                # Left before the option past `want`'s place: back over its
                # header, a byte and one or two more for a delta or a length
                # above 12 (above 268).
                pos -= 1
                if d > 12:
                    pos -= 1 if d < 269 else 2
                if n > 12:
                    pos -= 1 if n < 269 else 2
                cur[2] = pos
                cur[4] = number - d
                return -1
        pos += n
    if number > 65535:
        raise DecodeError("option number above 65535")
    cur[2] = pos
    cur[4] = number
    return -1


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


def insert_option(opts, opt, replace=False):
    """Insert `opt` into the list `opts`, kept ordered by option number:
    after every option numbered <= its number, so repeated options keep
    the order they were added in (never a sort: MicroPython's is not
    stable, and Uri-Path segments would be shuffled). With `replace`, the
    options with its number are removed first. Returns `opts`."""
    num = opt.number
    i = len(opts)
    while i > 0 and opts[i - 1].number > num:
        i -= 1
    if replace:
        while i > 0 and opts[i - 1].number == num:
            i -= 1
            del opts[i]
    opts.insert(i, opt)
    return opts


def encode_empty_into(buf, transaction_type, transaction_id):
    """Write an Empty message (code 0.00: an empty ACK or RST, or a ping)
    into buf[0:4]; returns 4. Allocates nothing."""
    buf[0] = 0x40 | (transaction_type << 4)
    buf[1] = 0
    buf[2] = transaction_id >> 8
    buf[3] = transaction_id & 0xFF
    return 4


def encode_reply_into(buf, request, mtype, code, tid, ob, payload):
    """Write a message answering `request` (a Message) into `buf`: the
    given type, code and message ID, the request's token, the options `ob`
    (wire form, as encode_options() makes them) and `payload` (bytes, or
    str: UTF-8). Returns its length, or -1 (nothing written) if `buf` is
    too small; the bytes of `buf` past the length returned, up to 12, may
    have been written too. No response Message is made, and nothing is
    allocated for a bytes payload: this is how a server answers."""
    # No local beyond the seven parameters, each reused once read (mtype
    # becomes the first byte, code and then tid where the writing is): with
    # at most four values on the stack the frame is the 11 words MicroPython
    # keeps on the C stack. One more would put it on the heap at every
    # answer, an allocation of some 15 blocks that also counts towards the
    # next collection.
    if type(payload) is str:
        payload = payload.encode("utf-8")
    mtype = 0x40 | (mtype << 4) | (
        len(request._token) if request._token is not None else request._raw[0] & 15)
    if 4 + (mtype & 15) + len(ob) + len(payload) + (1 if payload else 0) > len(buf):
        return -1
    if mtype & 15:
        _token_into(buf, request, mtype)  # (it may write the header: written below)
    buf[0] = mtype
    buf[1] = code
    buf[2] = tid >> 8
    buf[3] = tid & 0xFF
    code = 4 + (mtype & 15)
    if ob:  # (truth, not len(): a call the less, each)
        tid = code + len(ob)
        buf[code:tid] = ob
        code = tid
    if payload:
        buf[code] = _PAYLOAD_MARKER
        tid = code + 1 + len(payload)
        buf[code + 1:tid] = payload
        code = tid
    return code


def _token_into(buf, request, first):
    # encode_reply_into()'s token, its length the low nibble of `first`,
    # into buf[4:]. From a datagram as received: its first 12 bytes (the
    # header and up to 8 of token, zeros where it is shorter) in one
    # struct.pack_into, the header and whatever lies past the token then
    # written over, or past the answer's end, which a caller does not read.
    # Not a slice of the token, which would allocate on MicroPython, nor a
    # loop byte by byte, which costs a served request there some 1 µs of
    # its 50. (The loop remains for a buffer under 12 bytes.)
    tok = request._token
    if tok is not None:
        buf[4:4 + len(tok)] = tok
    elif len(buf) >= 12:
        pack_into("12s", buf, 0, request._raw)
    else:
        request = request._raw  # the token sits at offset 4 in both
        first = (first & 15) + 4
        while first > 4:
            first -= 1
            buf[first] = request[first]


# The cursor the codec's own walks use. One per module on MicroPython, where
# a walk must not allocate and the stack runs on one thread; a fresh one per
# walk on CPython, where threads share this module (and a list is cheap).
_scratch = [0, 0, 0, 0, 0]
# The option bytes set_options() checked last: a server sets the same cached
# Content-Format bytes on response after response, checked once that way.
_checked = None


def _cursor(start, end):
    cur = _scratch if IS_MICROPYTHON else [0, 0, 0, 0, 0]
    cur[2] = start
    cur[3] = end
    cur[4] = 0
    return cur


def _options_end(buf, start, end):
    # Where the options in buf[start:end] end (their payload marker, or
    # `end`), every one of them checked on the way (DecodeError).
    cur = _cursor(start, end)
    option_next(buf, cur, _PAST)
    return cur[3]


def _walk(raw, cur):
    # Walk the cursor `cur` over the options of the datagram `raw` to their
    # end, checking each: a DecodeError for a bad one carries the header's
    # fields. (A function of its own for its try: a handler takes about six
    # words of stack and three more, so only two locals fit with it in the
    # 11 words MicroPython keeps on the C stack, and decode_from() would
    # take its frame from the heap with it. Both stay on the C stack so.)
    try:
        option_next(raw, cur, _PAST)
    except DecodeError:
        raise _malformed(raw)


def _malformed(raw):
    # The DecodeError for a datagram Message.decode_from() refused, saying
    # what is wrong and carrying what its header holds. Found again here,
    # the checks in decode's order: only a bad datagram pays for this.
    n = len(raw)
    b0 = raw[0]
    tkl = b0 & 15
    if b0 >> 6 != 1:
        e = DecodeError("CoAP version %d" % (b0 >> 6))
        e.bad_version = True
    elif tkl > 8 or 4 + tkl > n:
        # 9-15 are reserved; or the token runs past the end
        e = DecodeError("bad token length")
    elif raw[1] == 0 and n > 4:
        e = DecodeError("Empty message with token, options or payload")
    else:
        e = DecodeError("malformed options")  # (not kept: the walk raises what it found)
        try:
            _options_end(raw, 4 + tkl, n)
        except DecodeError as err:
            e = err
    e.transaction_type = (b0 >> 4) & 3
    e.transaction_id = (raw[2] << 8) | raw[3]
    e.code = raw[1]
    return e


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

    # Class-level defaults. `_raw` is the datagram a message was decoded from
    # (b"" for one built here: a datagram is never empty); while it is set,
    # a None token or payload means "still in _raw". (The
    # option bytes _ob, _o0, _o1 are set by __init__ and decode: three fewer
    # entries keep this class's dict a size smaller on a board.)
    _raw = b""
    _token = None
    _payload = None

    def __init__(self, transaction_type=_CON, code=0, payload=b"", token=b"", **kw):
        if transaction_type not in (_CON, _NON, _ACK, _RST):
            raise ValueError("bad transaction type")
        self._type = transaction_type
        self.code = code
        # The common values set without the properties' checks: a call
        # the less, each, for a message built per answer.
        if type(payload) is bytes:
            self._payload = payload
        else:
            self.payload = payload
        if token == b"":
            self._token = b""
        else:
            self.token = token
        if kw:
            # The options the keywords stand for (keywords come in any order).
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
                for v in value:
                    insert_option(opts, cls(v))
            self._keep(encode_options(opts))
        else:
            self._ob = b""  # no options
            self._o0 = 0
            self._o1 = 0

    # -- header fields ---------------------------------------------------

    @property
    def transaction_type(self):
        return self._type

    def make_ack(self, request=None):
        """Make this message an ACK: the answer piggybacked on the
        acknowledgement of a CON (RFC 7252 §5.2.1), with the token of
        `request` (the Message answered) if it has none of its own;
        ValueError, and nothing changed, if `request` is not a CON.
        ReceptionRecord.ack() does this to the message it is given;
        otherwise the transaction type stays as created."""
        if request is not None:
            if request._type != _CON:
                raise ValueError("only a CON is acknowledged")
            if not self.token:
                self._token = request.token  # (a token as decoded: no check)
        self._type = _ACK

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

    def _keep(self, ob):
        # Hold `ob` (well-formed option bytes) as this message's options.
        if self._raw:
            # Take token and payload out of the datagram before letting it go.
            self.token
            self.payload
            self._raw = b""
        self._ob = ob
        self._o0 = 0
        self._o1 = len(ob)

    def set_options(self, opts):
        """Replace every option: `opts` is a sequence of Option (in any
        order; kept ordered by number, repeated ones in the order given), or
        option bytes in wire form (encode_options() made them: a server
        caches the bytes of a lone Content-Format this way). Bytes are
        checked: DecodeError if they are not well-formed options. A
        bytearray is kept as it is, not copied (a notification's fresh
        Observe bytes cost no second allocation): it must not change
        while the message holds it."""
        global _checked
        t = type(opts)
        if t is bytes or t is bytearray:  # (a tuple of types would be built per call on a board)
            ob = opts
            if ob is not _checked:
                if _options_end(ob, 0, len(ob)) != len(ob):
                    raise DecodeError("a payload marker among the options")
                if t is bytes:  # (a bytearray could change before the next call)
                    _checked = ob
            if self._raw:
                self._keep(ob)
            else:  # (the server's case, once per response: no call)
                self._ob = ob
                self._o0 = 0
                self._o1 = len(ob)
            return
        ordered = []
        for o in opts:
            insert_option(ordered, o)
        self._keep(encode_options(ordered))

    def cursor(self, cur):
        """Point the cursor `cur` (a list of five ints) at this message's first
        option; returns the bytes to walk with option_next(buf, cur), where
        each option's value is buf[cur[0]:cur[0] + cur[1]]."""
        cur[2] = self._o0
        cur[3] = self._o1
        cur[4] = 0
        return self._ob

    @property
    def options(self):
        """All options, ordered by number; repeated ones in the order added."""
        return self.findOptions(-1)  # (the cursor's -1: every option)

    def addOption(self, opt):
        """Add an option; a non-repeatable one replaces any present."""
        self.set_options(insert_option(list(self.options), opt, not opt.repeatable))
        return opt

    def replaceOption(self, opt):
        """Put `opt` in place of every option with its number."""
        self.set_options(insert_option(list(self.options), opt, True))
        return opt

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
            self.set_options(opts)

    def findOption(self, opt):
        """The first option with the number of `opt` (instance, class or
        number), or None."""
        num = getattr(opt, "number", opt)
        ob = self._ob
        cur = _cursor(self._o0, self._o1)
        if option_next(ob, cur, num) < 0:
            return None
        return make(num, ob[cur[0]:cur[0] + cur[1]])

    def findOptions(self, opt):
        """Every option with the number of `opt`, in order, as a tuple."""
        num = getattr(opt, "number", opt)
        ob = self._ob
        cur = _cursor(self._o0, self._o1)
        found = []
        n = option_next(ob, cur, num)
        while n >= 0:
            found.append(make(n, ob[cur[0]:cur[0] + cur[1]]))
            n = option_next(ob, cur, num)
        return tuple(found)

    def get_uint(self, number, default=None):
        """The value of the first option `number` read as a uint, or default.

        Allocates nothing (read for Content-Format, Accept, Observe and
        Block options on every response a client gets).
        """
        ob = self._ob
        cur = _cursor(self._o0, self._o1)
        if option_next(ob, cur, number) < 0:
            return default
        return uint_at(ob, cur[0], cur[1])

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
        # (_token and _payload read first: the properties slice them out of
        # a received datagram only when they are not there yet.)
        tok = self._token
        if tok is None:
            tok = self.token
        pl = self._payload
        if pl is None:
            pl = self.payload
        ob = self._ob
        if self._o0:
            ob = ob[self._o0:self._o1]  # options still inside a received datagram
        code = self.code
        if not (0 <= transaction_id <= 0xFFFF and 0 <= code <= 255) or (
                code == 0 and (tok or ob or pl)):
            self._check(transaction_id, tok, ob, pl)  # raises the ValueError
        head = bytes((0x40 | (self._type << 4) | len(tok), code,
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
        msg = object.__new__(cls)
        return msg.decode_from(packed), msg

    def decode_from(self, packed):
        """Make this message the decoding of the datagram `packed`, in
        place, and return its transaction id. Raises DecodeError (the
        message is then unusable until the next decode) as decode() does.

        decode() builds a new message and a pair for its answer; an EndPoint
        that reuses one message for every datagram it takes in calls this,
        which allocates nothing.
        """
        # (No try here, and five locals: the frame stays within the 11 words
        # MicroPython keeps on the C stack, where a handler's share of the
        # stack would put it on the heap at every call. _walk() holds the try,
        # and what is wrong with a bad datagram is found by _malformed().)
        if type(packed) is not bytes:
            packed = bytes(packed)  # (kept: token and payload are sliced from it later)
        end = len(packed)
        if end < 4:
            raise DecodeError("too short")  # than the 4-byte header
        o0 = 4 + (packed[0] & 15)  # where the options start, after the token
        if packed[0] >> 6 != 1 or o0 > 12 or o0 > end or (packed[1] == 0 and end > 4):
            raise _malformed(packed)  # a bad version, token length, or Empty message
        if o0 < end:
            # _cursor(o0, end), written out: one call fewer per datagram.
            if IS_MICROPYTHON:
                cur = _scratch
                cur[2] = o0
                cur[3] = end
                cur[4] = 0
            else:
                cur = [0, 0, o0, end, 0]
            _walk(packed, cur)  # checks every option
            end = cur[3]
        self._type = (packed[0] >> 4) & 3
        self.code = packed[1]
        self._raw = packed
        self._ob = packed
        self._o0 = o0
        self._o1 = end  # the payload marker, or the end
        # Token and payload are sliced from the datagram when first asked
        # for; a reused message forgets the ones it sliced before.
        if self._token is not None:
            self._token = None
        if self._payload is not None:
            self._payload = None
        return (packed[2] << 8) | packed[3]

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
