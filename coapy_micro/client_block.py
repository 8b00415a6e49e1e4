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
handle, up to Client(max_body=) bytes, or the request's own max_body (else
BodyTooLarge, a BlockError, before the block that would pass it is kept);
when the ETag
changes between blocks the transfer starts over, at most twice (then
BodyChanged). The Pending ends with one Response carrying the whole body.

Every transfer ends after a bounded number of requests: each block either
moves the transfer on by a whole block (16 bytes at least) or ends it with
a BlockError that says what the server did wrong, so a body of max_body
bytes takes at most max_body / 16 + 1 requests per attempt (three attempts
at most). A server that breaks the block-wise rules is not followed:

- a Block2 block other than the last (M set) carries exactly its block
  size (§2.2: every block but the last is full, §2.4), so an empty block 0
  with M set, which would be asked for again and again, is an error;
- a block must start where the body so far ends (§2.4), and a transfer
  that has begun ends only with the block that has M unset: a 2.xx without
  Block2 in its middle would silently cut the body short;
- an upload's block that is not the last must be acknowledged with Block1
  (2.31 Continue, or a 2.xx with Block1 from a server that stores blocks as
  they come, §2.5): a final 2.xx without Block1 after the first block means
  the server did not take the body in blocks, although Block1 is critical
  (§2.1, RFC 7252 §5.4.1: it should have answered 4.02) and has probably
  stored the first block alone;
- the reserved SZX 7 (§2.2) is an error in a response's Block2.

An error response (4.xx, 5.xx) in the middle of a transfer ends it with
that response, as it is: the application sees the code.

It works through the client's public calls: Pending.resend() sends a
transfer's next request, Pending.finish() ends it with an error.
"""
from ._compat import const
from .block import block_option, szx_of
from .message import Message, insert_option
from .options import Option
from .outcome import CoapError, peer_text
from .transactions import is_multicast

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
    """A block-wise transfer (RFC 7959) went wrong: the server broke the
    rules (a block out of place, short, missing, an upload not taken in
    blocks; the message says which and cites the RFC), or the body is
    larger than the client's max_body."""


class BodyChanged(BlockError):
    """The resource kept changing (its ETag did) while read in blocks."""


class BodyTooLarge(BlockError):
    """The body read in Block2 blocks would be larger than the request's
    max_body (Client(max_body=), or start(max_body=)): the transfer ends
    before the block that would pass it is kept. `max_body` says the bound."""

    max_body = None  # type: int | None


def _code(code):
    return "%d.%02d" % (code >> 5, code & 31)


class Transfer:
    """A request moving in blocks: kept on its Pending as `transfer`.

    up: the whole request body when it goes up in Block1 blocks (None
    otherwise), sent: where the last block sent ended, szx: the Block1
    size, shrunk when the server's 2.31 asks. down: the Block2 body so far
    (None until a first block comes), etag: its ETag, restarts: how often
    the body changed under us (the transfer starts over, twice at most).
    want: the Block2 number the request asked for (an application that
    asks for a block other than 0 gets that block alone). requests: how
    many requests the transfer has sent so far.
    """

    def __init__(self, request, up, szx):
        base = []
        want = 0
        for o in request.options:
            n = o.number
            if n != _BLOCK1 and n != _BLOCK2 and n != _SIZE1 and n != _SIZE2:
                base.append(o)
            elif n == _BLOCK2 and up is None:
                want = o.value[0]
        self.base = base  # the request's options, block options left out
        self.code = request.code
        self.confirmable = request.transaction_type == _CON
        self.payload = request.payload if up is None else b""
        self.up = up  # type: bytes | None
        self.sent = 0
        self.szx = szx
        self.down = None  # type: bytearray | None
        self.etag = None  # type: bytes | None
        self.restarts = 0
        self.want = want
        self.requests = 1

    @property
    def moved(self):
        """Bytes moved so far: the body received, else the body sent."""
        if self.down is not None:
            return len(self.down)
        return self.sent

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
            going = self._uploaded(h, x, m, code)
            if going is not None:
                return going
        v = m.get_uint(_BLOCK2)
        if x.down is not None:
            # In the middle of a Block2 transfer.
            if code >> 5 != 2:
                return False  # an error response: the application sees it
            if v is None:
                return self._fail(h, "after %d bytes in blocks %s answered %s without "
                                  "Block2: the rest of the body is missing (RFC 7959 "
                                  "§2.4: the last block is the one with M unset)"
                                  % (len(x.down), peer_text(h.remote), _code(code)))
        elif v is None or code >> 5 != 2:
            return False  # not (or no longer) a transfer in blocks
        num = v >> 4
        more = v & 8 == 8
        szx = v & 7
        if szx == 7:
            return self._fail(h, "%s sent Block2 with the reserved SZX 7 (RFC 7959 §2.2)"
                              % (peer_text(h.remote),))
        size = 16 << szx
        n = len(m.payload)
        if n > size or (more and n != size):
            # §2.2, §2.4: every block but the last (M unset) is exactly its
            # block size; the last may be shorter, none is longer.
            return self._fail(h, "%s sent Block2 %d/%d/%d with %d bytes of payload: a block "
                              "%s (RFC 7959 §2.2, §2.4)"
                              % (peer_text(h.remote), num, 1 if more else 0, size, n,
                                 "with M set carries exactly its block size" if more
                                 else "carries at most its block size"))
        tag = m.findOption(_ETAG)
        tag = tag.raw if tag is not None else b""
        if x.down is None:
            if num != x.want:
                return self._fail(h, "%s answered a request for block %d with block %d "
                                  "(RFC 7959 §2.4)" % (peer_text(h.remote), x.want, num))
            if num != 0:
                return False  # the application asked for this block alone
            if more and is_multicast(h.remote):
                # A request to a group answered in blocks (RFC 7959 §2.8):
                # the rest is asked of the member that answered, by
                # unicast, and confirmable, as RFC 7252 §8.1's reason for
                # NON (one request, many answers) no longer holds. Asked of
                # the group, every member would answer every block.
                h.remote = rx.remote
                x.confirmable = True
            x.down = bytearray()
            x.etag = tag
        elif tag != x.etag:
            # The body changed between blocks (§2.4): start over, at most twice.
            x.restarts += 1
            if x.restarts > 2:
                h.finish(error=BodyChanged("the body at %s kept changing during the transfer "
                                           "(its ETag changed %d times, RFC 7959 §2.4)"
                                           % (peer_text(h.remote), x.restarts)))
                return True
            x.down = None
            self._next(h, x, x.payload, block_option(_BLOCK2, 0, False, szx))
            return True
        if num * size != len(x.down):
            return self._fail(h, "%s sent block %d of %d bytes (offset %d) where the body "
                              "so far ends at %d (RFC 7959 §2.4)"
                              % (peer_text(h.remote), num, size, num * size, len(x.down)))
        client = self.client
        limit = h.max_body
        if limit is None:
            limit = client.max_body
        if len(x.down) + n > limit:
            # Refused before it is kept: the heap never holds more than
            # max_body of it (a board's reason to set one).
            e = BodyTooLarge("the body from %s exceeds max_body (%d bytes): %d bytes "
                             "in blocks so far, and block %d brings %d more"
                             % (peer_text(h.remote), limit, len(x.down), num, n))
            e.max_body = limit
            h.finish(error=e)
            return True
        x.down.extend(m.payload)
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

    def _uploaded(self, h, x, m, code):
        # The answer to a Block1 block: True (the next block is out, or the
        # transfer failed), False (the final answer), None (the last block
        # was answered: read the response on as a download).
        up = x.up
        if up is None:
            return None
        if x.sent == 0:
            x.sent = 16 << x.szx  # block 0 went up with the request
        if x.sent >= len(up):
            if code == _CONTINUE:
                return self._fail(h, "%s answered the last block of %d bytes with 2.31 "
                                  "Continue (RFC 7959 §2.5: that asks for more)"
                                  % (peer_text(h.remote), len(up)))
            # The answer to the last block. With Block2 the rest of the
            # response follows by the same method, without payload (§2.7).
            x.up = None
            return None
        if code >> 5 != 2:
            return False  # an error (4.13, 4.08...): the application sees it
        b = m.get_uint(_BLOCK1)
        if b is None and code != _CONTINUE:
            return self._fail(h, "%s answered block %d of an upload of %d bytes with a final "
                              "%s without Block1: it did not take the body in blocks and "
                              "may have kept only the first %d bytes (Block1 is critical: "
                              "RFC 7959 §2.1, §2.5; RFC 7252 §5.4.1)"
                              % (peer_text(h.remote), (x.sent - 1) >> (x.szx + 4), len(up),
                                 _code(code), x.sent))
        if b is not None and (b & 7) < x.szx:
            x.szx = b & 7  # the server wants smaller blocks (§2.5)
        size = 16 << x.szx
        off = x.sent
        piece = up[off:off + size]
        x.sent = off + len(piece)
        self._next(h, x, piece, block_option(_BLOCK1, off // size, x.sent < len(up), x.szx))
        return True

    def _fail(self, h, text):
        h.finish(error=BlockError(text))
        return True

    def _next(self, h, x, payload, opt):
        # The transfer's next request, in place of the one answered: a new
        # token and message ID; the handle stays the same.
        ep = h.record.end_point
        msg = Message(_CON if x.confirmable else _NON, x.code, payload, ep.new_token())
        opts = list(x.base)
        insert_option(opts, opt)
        msg.set_options(opts)
        x.requests += 1
        h.resend(msg)


def install(client):
    """Called by Client.hook("block"): register the block-wise part."""
    client.set_hook("block", Blocks(client))
