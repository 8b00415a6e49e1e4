"""Block-wise transfer (RFC 7959) for the Server: the hook "block".

Loaded by Server.hook("block") when a request carries Block1 or Block2, or
a response body is larger than one block: a node that never moves large
bodies does not load it.

Block2 (§2.2-2.4): a payload longer than the block size (Server(block_size=
1024), or the smaller size the client asked for in its Block2 option: early
negotiation) goes out one block per request, with Block2 (num, more, szx),
Size2 on block 0 and an ETag derived from the body (4 bytes of its SHA-256,
or of FNV-1a where hashlib is missing) unless the handler gave one. The
handler runs for every block: it stays stateless, so the server holds
nothing between block requests. A handler that cannot afford to build the
whole body returns `Response(69, body, total=N, options=(ETag(...),))` with
`body` a callable `body(num, size) -> bytes` giving block `num` of `size`
bytes; `total` (the length, for Size2 and `more`) is needed, and an ETag
(the app knows when its content changes; nothing here can hash bytes it
never sees) should be given. Block2 SZX 7 (reserved) is answered 4.00 by
the server; a block past the end 4.02.

Block1 (§2.5) uploads, and the answers kept for the follow-ups of a
request that changed state (§2.7), are server_upload.py's (the hook
"upload", loaded with the first of them): shape() hands such an answer
there when it needs several blocks, and echoes a final Block1.

ETags: the one derived from a body is remembered with the body for the
two most recent bodies, so a download of a large body hashes it once, not
once per block (the next block finds the same body, or an equal one,
compared byte for byte, which is far cheaper than hashing it).
"""
from ._compat import const
from .block import block_option, szx_of
from .options import Option

_ETAG = const(4)
_BLOCK2 = const(23)
_BLOCK1 = const(27)
_SIZE2 = const(28)
_GET = const(1)
_FETCH = const(5)

_CONTINUE = const(95)  # 2.31
_BAD_OPTION = const(130)


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


class Blocks:
    """The server's Block2 side: cuts a body into the block asked for,
    with the ETags of the last two bodies it hashed."""

    def __init__(self, server):
        self.server = server
        self._etags = [None, None, None, None]  # type: list[bytes | None]  # body, its ETag; the one before

    def shape(self, req, res, code, payload, cf, options, total):
        """(code, payload, options) to send for `req`: one block of the
        body with Block2/Size2/ETag added, or the body as it is when it fits
        and no later block was asked for; a final Block1 echoed (§2.5).
        When the answer to an upload needs several blocks, it is kept for
        the requests that fetch them (the hook "upload"; res: its Resource,
        None for an answer that cannot be asked for again). Raises
        ValueError for a callable body without `total`."""
        srv = self.server
        b1 = req.block1
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        size = 16 << szx_of(srv.block_size)  # a power of two, as SZX says
        num = 0
        v = req.block2
        if v is not None:
            asked = 16 << (v & 7)
            offset = (v >> 4) * asked
            if asked < size:
                size = asked  # early negotiation: the client wants smaller blocks
            num = offset // size
        if (num == 0 and res is not None and code != _CONTINUE
                and (b1 is not None or (req.code != _GET and req.code != _FETCH))
                and (callable(payload) or len(payload) > size)):
            # The rest is asked for by the same request with Block2 (§2.7):
            # kept, so the change is not made again for each block.
            srv.hook("upload").keep(req, res, (code, payload, cf, options, total))
        options = list(options)
        if b1 is not None:
            options.append(block_option(_BLOCK1, b1 >> 4, False, b1 & 7))
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
            for o in options:
                if o.number == _ETAG:
                    break
            else:
                options.append(Option(_ETAG, self._etag(payload)))
            piece = payload[offset:offset + size]
        options.append(block_option(_BLOCK2, num, more, szx_of(size)))
        if num == 0:
            options.append(Option(_SIZE2, total))
        return code, piece, options

    def _etag(self, body):
        # The ETag of `body`, hashed only when it is not one of the last two
        # bodies (the same object, or equal bytes).
        c = self._etags
        i = 0
        while i < 4:
            b = c[i]
            if b is not None and (b is body or (len(b) == len(body) and b == body)):
                return c[i + 1]
            i += 2
        tag = etag_of(body)
        c[2] = c[0]
        c[3] = c[1]
        c[0] = body
        c[1] = tag
        return tag

def install(server):
    """Called by Server.hook("block"): register the Block2 side."""
    server.set_hook("block", Blocks(server))
