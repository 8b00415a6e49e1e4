"""Block-wise transfer (RFC 7959) for the Server and the Client.

Imported by server.py and client.py only when a Block1/Block2 option or a
body larger than one block appears, so a node that never moves large
bodies does not load it.

Server, Block2 (§2.2-2.4): a handler's payload longer than the block size
(Server(block_size=1024), or the smaller size the client asked for in its
Block2 option: early negotiation) goes out one block per request, with
Block2 (num, more, szx), Size2 on block 0 and an ETag derived from the body
(4 bytes of its SHA-256, or of FNV-1a where hashlib is missing) unless the
handler gave one. The handler runs for every block: it stays stateless, so
the server holds nothing between block requests. A handler that cannot
afford to build the whole body returns
`Response(69, body, total=N, options=(ETag(...),))` with `body` a callable
`body(num, size) -> bytes` giving block `num` of `size` bytes; `total` (the
length, for Size2 and `more`) is needed, and an ETag (the app knows when
its content changes; nothing here can hash bytes it never sees) should be
given. Block2 SZX 7 (reserved) is answered 4.00; a block past the end 4.02.

Server, Block1 (§2.5): blocks are assembled in a table bounded by
Server(max_assemblies=), keyed by remote, Request-Tag (RFC 9175) and
resource, each entry dropped after Server(assembly_ms=) without a block.
Each non-final block is answered 2.31 Continue with Block1 echoed; the
handler sees the whole body once (request.payload), and its response
carries Block1 (num, False, szx). A body beyond Server(max_body=) is 4.13
with Size1 = the limit (also when the request's Size1 announces it); a
block that does not continue the assembly (missing, out of order, none
begun) is 4.08. Streaming: Resource(put=..., block1_stream=fn) calls
fn(request, num, data, more) for every block instead of assembling: for a
non-final block a None return means "go on" (2.31), anything else is the
response and ends the transfer; for the final block its return is the
response, as a handler's. Only the offset of the next block is kept.
When the response to a finished upload is itself larger than a block, it
is kept (in the same table, same expiry) for the follow-up requests that
ask for its further blocks with Block2 and no payload (§2.7): the handler
is not run again for them.

Client: see Client.request (block2 reassembly, block1 uploads).
"""
try:
    from micropython import const
except ImportError:  # CPython
    from ._compat import const

from ._compat import ticks_add, ticks_diff
from .options import Option

ETAG = const(4)
BLOCK2 = const(23)
BLOCK1 = const(27)
SIZE2 = const(28)
SIZE1 = const(60)
REQUEST_TAG = const(292)

_CONTINUE = const(95)  # 2.31
_BAD_REQUEST = const(128)
_BAD_OPTION = const(130)
_INCOMPLETE = const(136)  # 4.08
_TOO_LARGE = const(141)  # 4.13


def szx_of(size):
    """The SZX for a block size (16 .. 1024, rounded down to a power of two)."""
    if size < 16:
        raise ValueError("block size below 16: %r" % (size,))
    szx = 0
    while szx < 6 and (32 << szx) <= size:
        szx += 1
    return szx


def block_option(number, num, more, szx):
    """A Block1/Block2 Option (num, more, szx), from its uint form."""
    return Option(number, (num << 4) | (8 if more else 0) | szx)


def etag_of(body):
    """A 4-byte ETag from the body's bytes: changes when the body does."""
    try:
        import hashlib

        return hashlib.sha256(body).digest()[:4]
    except (ImportError, AttributeError):  # a port without hashlib
        h = 0x811C9DC5
        for b in body:
            h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
        return bytes((h >> 24, (h >> 16) & 255, (h >> 8) & 255, h & 255))


def _has(options, number):
    for o in options:
        if o.number == number:
            return True
    return False


def block2_response(srv, req, code, payload, options, total):
    """(code, payload, options) to send for `req`: one block of the body,
    with Block2/Size2/ETag added, or the body as it is when it fits and no
    later block was asked for. Also echoes a final Block1 (§2.5)."""
    options = list(options)
    if req._block1 is not None:
        v = req._block1
        options.append(block_option(BLOCK1, v >> 4, False, v & 7))
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    size = 16 << szx_of(srv.block_size)  # a power of two, as SZX says
    num = 0
    v = req._block2
    if v is not None:
        asked = 16 << (v & 7)
        offset = (v >> 4) * asked
        if asked < size:
            size = asked  # early negotiation: the client wants smaller blocks
        num = offset // size
    if callable(payload):
        if total is None:
            raise ValueError("a callable body needs Response(total=)")
    else:
        total = len(payload)
        if total <= size and num == 0:
            return code, payload, options
    offset = num * size
    if offset >= total and not (offset == 0 and total == 0):
        return _BAD_OPTION, b"Block2 past the end", ()
    more = offset + size < total
    if callable(payload):
        piece = payload(num, size)
        if isinstance(piece, str):
            piece = piece.encode("utf-8")
    else:
        if not _has(options, ETAG):
            options.append(Option(ETAG, etag_of(payload)))
        piece = payload[offset:offset + size]
    options.append(block_option(BLOCK2, num, more, szx_of(size)))
    if num == 0:
        options.append(Option(SIZE2, total))
    return code, piece, options


class Assemblies:
    """Block1 uploads being assembled (or streamed), bounded by a count.

    An entry: [key, body bytearray or None when streamed, next offset,
    deadline ticks], or [key, None, -1, deadline, answer] for the response
    to a finished upload that goes out in blocks (keep()). A list,
    searched in order: few uploads run at once.
    """

    def __init__(self, srv):
        self.srv = srv
        self.table = []

    def _expire(self, now):
        t = self.table
        i = 0
        while i < len(t):
            if ticks_diff(now, t[i][3]) >= 0:
                del t[i]
            else:
                i += 1

    def take(self, req, res):
        """Handle a request with Block1. True: the handler (or the stream
        function) should run now with req.payload the whole body (or the
        last block). False: answered here (2.31, 4.08, 4.13, 4.00)."""
        srv = self.srv
        m = req.message
        v = req._block1
        num = v >> 4
        more = v & 8 == 8
        szx = v & 7
        if szx == 7:
            srv._answer(req, _BAD_REQUEST, b"Block1 SZX 7", None, ())
            return False
        size = 16 << szx
        data = m.payload
        limit = srv.max_body
        size1 = m.get_uint(SIZE1)
        if size1 is not None and size1 > limit:
            return self._too_large(req)
        if more and len(data) != size:
            srv._answer(req, _BAD_REQUEST, b"Block1 size mismatch", None, ())
            return False
        now = srv._clock()
        self._expire(now)
        key = self._key(req, res)
        offset = num * size
        stream = res.block1_stream
        t = self.table
        entry = None
        for e in t:
            if e[0] == key:
                entry = e
                break
        if num == 0:
            if entry is not None:
                t.remove(entry)  # a new body replaces the unfinished one
            if not more:
                return True  # the whole body in one block
            self._room(t)
            entry = [key, None if stream is not None else bytearray(), 0, 0]
            t.append(entry)
        elif entry is None or entry[2] != offset:
            if entry is not None:
                t.remove(entry)
            srv._answer(req, _INCOMPLETE, b"", None, ())
            return False
        if offset + len(data) > limit:
            t.remove(entry)
            return self._too_large(req)
        entry[2] = offset + len(data)
        entry[3] = ticks_add(now, srv.assembly_ms)
        if stream is None:
            entry[1].extend(data)
            if more:
                self._continue(req, num, szx)
                return False
            t.remove(entry)
            req._body = bytes(entry[1])
            return True
        if not more:
            t.remove(entry)
            return True
        try:
            result = stream(req, num, data, True)
        except Exception as e:
            t.remove(entry)
            srv._failed(req, e)
            srv._answer(req, 160, b"", None, ())
            return False
        if result is None:
            self._continue(req, num, szx)
        else:
            t.remove(entry)
            srv._result(req, res, result)
        return False

    def _key(self, req, res):
        tag = req.message.findOption(REQUEST_TAG)
        return (req.remote, tag.raw if tag is not None else b"", res,
                req.path if res.subtree else None)

    def _room(self, t):
        # Full: the entry with the earliest deadline goes (no dict order).
        if len(t) >= self.srv.max_assemblies:
            old = t[0]
            for e in t:
                if ticks_diff(e[3], old[3]) < 0:
                    old = e
            t.remove(old)

    def keep(self, req, res, answer):
        """Keep the response to a finished Block1 upload when it goes out
        in Block2 blocks: the rest is asked for by the same method with
        Block2 and no payload (§2.7), which must not run the handler again.
        `answer`: (code, payload, cf, options, total)."""
        now = self.srv._clock()
        self._expire(now)
        key = self._key(req, res)
        t = self.table
        for e in t:
            if e[0] == key:
                t.remove(e)
                break
        self._room(t)
        t.append([key, None, -1, ticks_add(now, self.srv.assembly_ms), answer])

    def kept(self, req, res):
        """The kept answer for a Block2 follow-up of an upload, or None;
        dropped once its last block is asked for."""
        now = self.srv._clock()
        self._expire(now)
        key = self._key(req, res)
        for e in self.table:
            if e[0] == key and e[2] == -1:
                a = e[4]
                v = req._block2
                size = 16 << (v & 7)
                mine = 16 << szx_of(self.srv.block_size)
                if size > mine:
                    size = mine
                total = a[4] if a[4] is not None else len(a[1])
                if (v >> 4) * (16 << (v & 7)) + size >= total:
                    self.table.remove(e)
                else:
                    e[3] = ticks_add(now, self.srv.assembly_ms)
                return a
        return None

    def _continue(self, req, num, szx):
        # 2.31 with the block echoed; the server's own limit on the size
        # asks the client for smaller blocks (late negotiation, §2.5).
        mine = szx_of(self.srv.block_size)
        if szx > mine:
            num = (num << szx) >> mine
            szx = mine
        self.srv._answer(req, _CONTINUE, b"", None, (block_option(BLOCK1, num, True, szx),))

    def _too_large(self, req):
        self.srv._answer(req, _TOO_LARGE, b"", None, (Option(SIZE1, self.srv.max_body),))
        return False


# -- the client side ------------------------------------------------------------

_CONTINUE_CODE = const(95)


class Transfer:
    """A Client request moving in blocks (kept on its Pending as _xfer).

    up: the whole request body when it goes up in Block1 blocks (None
    otherwise), sent: where the last block sent ended, szx: the Block1
    size, shrunk when the server's 2.31 asks. down: the Block2 body so far
    (None until a first block comes), etag: its ETag, restarts: how often
    the body changed under us (the transfer starts over, twice at most).
    """

    def __init__(self, client, h, up, szx):
        self.client = client
        base = []
        for o in h.request.options:
            n = o.number
            if n != BLOCK1 and n != BLOCK2 and n != SIZE1 and n != SIZE2:
                base.append(o)
        self.base = base  # the request's options, block options left out
        self.code = h.request.code
        self.confirmable = h.request.transaction_type == 0
        self.payload = h.request.payload if up is None else b""
        self.up = up
        self.sent = 0
        self.szx = szx
        self.down = None
        self.etag = None
        self.restarts = 0


def upload_first(msg, payload, szx):
    """Make `msg` the first Block1 request of `payload`: block 0, Size1."""
    size = 16 << szx
    msg.payload = payload[:size]
    msg.addOption(block_option(BLOCK1, 0, True, szx))
    msg.addOption(Option(SIZE1, len(payload)))


def _send(client, h, x, payload, opt, size1=None):
    # The next request of the transfer, in place of the one answered: a
    # new token and message id; the handle stays the same.
    from .connection import Message

    ep = h.record.end_point
    msg = Message(0 if x.confirmable else 1, x.code, payload, ep.new_token())
    opts = list(x.base)
    extra = [opt] if size1 is None else [opt, Option(SIZE1, size1)]
    for o in extra:
        i = len(opts)
        while i > 0 and opts[i - 1].number > o.number:
            i -= 1
        opts.insert(i, o)
    if opts:
        msg._set_list(opts)
    h.record.cancel()
    h.record = ep.send(msg, h.remote)
    h.request = msg
    h.acknowledged = False
    h._tried = False
    client._renew(h)


def follow(client, h, rx):
    """Called with each response of a request that might move in blocks.
    True: the transfer goes on (the next request is out) or ended with an
    error here; False: `rx` is the response to finish with (its payload
    the whole Block2 body, when there was one)."""
    from .client import BlockError, BodyChanged

    x = h._xfer
    m = rx.message
    code = m.code
    if x is None:
        x = h._xfer = Transfer(client, h, None, 6)
    if x.up is not None:
        if x.sent < len(x.up):  # the last block has not gone yet
            if x.sent == 0:
                x.sent = 16 << x.szx  # block 0 went up with the request
            if code != _CONTINUE_CODE:
                return False  # an error (4.13...) or an early final answer
            b = m.get_uint(BLOCK1)
            if b is not None and (b & 7) < x.szx and (b & 7) != 7:
                x.szx = b & 7  # the server wants smaller blocks (§2.5)
            size = 16 << x.szx
            off = x.sent
            piece = x.up[off:off + size]
            x.sent = off + len(piece)
            more = x.sent < len(x.up)
            _send(client, h, x, piece, block_option(BLOCK1, off // size, more, x.szx))
            return True
        # The answer to the last block. With Block2 the rest of the
        # response follows by the same method, without payload (§2.7).
        x.up = None
    v = m.get_uint(BLOCK2)
    if v is None or code >> 5 != 2:
        return False
    num = v >> 4
    more = v & 8 == 8
    szx = v & 7
    if szx == 7:
        return False
    size = 16 << szx
    tag = m.findOption(ETAG)
    tag = tag.raw if tag is not None else b""
    if x.down is None:
        if num != 0:
            return False  # a block we did not ask for: let the caller see it
        x.down = bytearray()
        x.etag = tag
    elif tag != x.etag:
        # The body changed between blocks (§2.4): start over, at most twice.
        x.restarts += 1
        if x.restarts > 2:
            client._finish(h, None, BodyChanged("the body kept changing during the transfer"))
            return True
        x.down = None
        _send(client, h, x, x.payload, block_option(BLOCK2, 0, False, szx))
        return True
    if num * size != len(x.down):
        client._finish(h, None, BlockError("block %d does not follow %d bytes" % (num, len(x.down))))
        return True
    x.down.extend(m.payload)
    if len(x.down) > client.max_body:
        client._finish(h, None, BlockError("the body exceeds max_body (%d bytes)" % client.max_body))
        return True
    if not more:
        m.payload = bytes(x.down)
        x.down = None
        return False
    # The next block; smaller than the server's when the client's own
    # block size is (late negotiation, §2.4: same offset, new num).
    mine = szx_of(client.block_size)
    num += 1
    if szx > mine:
        num = (num << szx) >> mine
        szx = mine
    _send(client, h, x, x.payload, block_option(BLOCK2, num, False, szx))
    return True

