"""Block-wise transfer (RFC 7959) for the Client: the hook "block".

Loaded by Client.hook("block") when a request's payload is larger than the
client's block size or a response carries Block2: a client that only moves
small bodies does not load it.

Uploads (§2.5): the payload goes up in Block1 blocks of Client(block_size=)
(or the request's block_size=), smaller when the server's 2.31 asks for
smaller ones; Size1 announces the whole length. A second upload to a
resource while one is under way carries a Request-Tag (RFC 9175 §3), so the
server keeps the two bodies apart.

Downloads (§2.4): a response with Block2 is read block after block, each
asked for with a new request (new token and message ID) on the same Pending
handle, up to Client(max_body=) bytes (else BlockError); when the ETag
changes between blocks the transfer starts over, at most twice (then
BodyChanged). The Pending ends with one Response carrying the whole body.

It works through the client's public calls: Pending.resend() sends a
transfer's next request, Pending.finish() ends it with an error.
"""
from ._compat import const
from .block import block_option, szx_of
from .message import Message, insert_option
from .options import Option
from .outcome import CoapError

_CON = const(0)
_NON = const(1)
_ETAG = const(4)
_URI_PATH = const(11)
_URI_QUERY = const(15)
_BLOCK2 = const(23)
_BLOCK1 = const(27)
_SIZE2 = const(28)
_SIZE1 = const(60)
_REQUEST_TAG = const(292)
_CONTINUE = const(95)  # 2.31


class BlockError(CoapError):
    """A block-wise transfer (RFC 7959) went wrong: a block out of place,
    or a body larger than the client's max_body."""


class BodyChanged(BlockError):
    """The resource kept changing (its ETag did) while read in blocks."""


class Transfer:
    """A request moving in blocks: kept on its Pending as `transfer`.

    up: the whole request body when it goes up in Block1 blocks (None
    otherwise), sent: where the last block sent ended, szx: the Block1
    size, shrunk when the server's 2.31 asks. down: the Block2 body so far
    (None until a first block comes), etag: its ETag, restarts: how often
    the body changed under us (the transfer starts over, twice at most).
    """

    def __init__(self, request, up, szx):
        base = []
        for o in request.options:
            n = o.number
            if n != _BLOCK1 and n != _BLOCK2 and n != _SIZE1 and n != _SIZE2:
                base.append(o)
        self.base = base  # the request's options, block options left out
        self.code = request.code
        self.confirmable = request.transaction_type == _CON
        self.payload = request.payload if up is None else b""
        self.up = up
        self.sent = 0
        self.szx = szx
        self.down = None  # type: bytearray | None
        self.etag = None  # type: bytes | None
        self.restarts = 0

    def uploads_to(self, remote, opts):
        """Is this an upload still going to `remote` with these Uri-Path
        and Uri-Query options?"""
        if self.up is None:
            return False
        mine = [o for o in self.base if o.number == _URI_PATH or o.number == _URI_QUERY]
        theirs = [o for o in opts if o.number == _URI_PATH or o.number == _URI_QUERY]
        return mine == theirs


class Blocks:
    """The client's block-wise part: starts uploads and follows responses."""

    def __init__(self, client):
        self.client = client
        self.tags = 0  # the last Request-Tag given to a concurrent upload

    def upload(self, msg, remote, opts, block_size):
        """Make `msg` (its payload the whole body, `opts` its URI options)
        the first request of a Block1 upload in blocks of `block_size`
        bytes at most: block 0 and Size1, and a Request-Tag when another
        upload to the same resource is under way. Returns the Transfer for
        its Pending."""
        szx = szx_of(block_size)
        whole = msg.payload
        msg.payload = whole[:16 << szx]
        msg.addOption(block_option(_BLOCK1, 0, True, szx))
        msg.addOption(Option(_SIZE1, len(whole)))
        for h in self.client.pending:
            x = h.transfer
            if x is not None and h.remote == remote and x.uploads_to(remote, opts):
                self.tags = (self.tags + 1) & 0xFFFF
                msg.addOption(Option(_REQUEST_TAG, bytes((self.tags >> 8, self.tags & 255))))
                break
        return Transfer(msg, whole, szx)

    def follow(self, h, rx):
        """Called with each response of a request that might move in
        blocks. True: the transfer goes on (the next request is out) or
        ended with an error here; False: `rx` is the response to finish
        with (its payload the whole Block2 body, when there was one)."""
        x = h.transfer
        m = rx.message
        code = m.code
        if x is None:
            x = h.transfer = Transfer(h.request, None, 6)
        if x.up is not None:
            if x.sent < len(x.up):  # the last block has not gone yet
                if x.sent == 0:
                    x.sent = 16 << x.szx  # block 0 went up with the request
                if code != _CONTINUE:
                    return False  # an error (4.13...) or an early final answer
                b = m.get_uint(_BLOCK1)
                if b is not None and (b & 7) < x.szx and (b & 7) != 7:
                    x.szx = b & 7  # the server wants smaller blocks (§2.5)
                size = 16 << x.szx
                off = x.sent
                piece = x.up[off:off + size]
                x.sent = off + len(piece)
                more = x.sent < len(x.up)
                self._next(h, x, piece, block_option(_BLOCK1, off // size, more, x.szx))
                return True
            # The answer to the last block. With Block2 the rest of the
            # response follows by the same method, without payload (§2.7).
            x.up = None
        v = m.get_uint(_BLOCK2)
        if v is None or code >> 5 != 2:
            return False
        num = v >> 4
        more = v & 8 == 8
        szx = v & 7
        if szx == 7:
            return False
        size = 16 << szx
        tag = m.findOption(_ETAG)
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
                h.finish(error=BodyChanged("the body kept changing during the transfer"))
                return True
            x.down = None
            self._next(h, x, x.payload, block_option(_BLOCK2, 0, False, szx))
            return True
        if num * size != len(x.down):
            h.finish(error=BlockError("block %d does not follow %d bytes" % (num, len(x.down))))
            return True
        x.down.extend(m.payload)
        client = self.client
        if len(x.down) > client.max_body:
            h.finish(error=BlockError("the body exceeds max_body (%d bytes)" % client.max_body))
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
        self._next(h, x, x.payload, block_option(_BLOCK2, num, False, szx))
        return True

    def _next(self, h, x, payload, opt):
        # The transfer's next request, in place of the one answered: a new
        # token and message ID; the handle stays the same.
        ep = h.record.end_point
        msg = Message(_CON if x.confirmable else _NON, x.code, payload, ep.new_token())
        opts = list(x.base)
        insert_option(opts, opt)
        msg.set_options(opts)
        h.resend(msg)


def install(client):
    """Called by Client.hook("block"): register the block-wise part."""
    client.set_hook("block", Blocks(client))
