"""Block-wise uploads (RFC 7959 §2.5) for the Server: the hook "upload".

Loaded by Server.hook("upload") with the first request that carries Block1,
or the first answer to a request that changes state which is larger than a
block (server_block.py keeps it here): a node that only sends large bodies
(Block2, server_block.py) or none does not load it.

Block1 (§2.5): blocks are assembled in a table bounded by
Server(max_assemblies=), keyed by remote, Request-Tag (RFC 9175) and
resource, each entry dropped after Server(assembly_ms=) without a block.
One peer must not take that table from the others, and an upload that is
making progress must not be pushed out by newcomers: a new upload (block 0)
finding the table full takes the place of an upload that has stalled (no
block for three ACK timeouts of the EndPoint: a client that goes on sends
its next block within a round trip of the 2.31, or retransmits it within
one timeout), else of one still at its first block from a peer holding more
than its share (half the table); otherwise it is answered 5.03 Service
Unavailable with Max-Age saying when to try again (RFC 7252 §5.9.3.4).
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

When the response to a finished upload, or to any request that changes
state (POST, PUT, DELETE, PATCH, iPATCH), is itself larger than a block, it
is kept (in the same table, same rules) for the follow-up requests that ask
for its further blocks with Block2 (§2.7): the handler is not run again for
them. A Block2 number above 0 in such a request with nothing kept for it is
refused (4.02) before the handler runs: it would apply the change again
for a block of an answer that is not there.
"""
from ._compat import const, ticks_diff
from .block import block_option, szx_of
from .options import Option

_BLOCK1 = const(27)
_SIZE1 = const(60)
_REQUEST_TAG = const(292)
_MAX_AGE = const(14)

_CONTINUE = const(95)  # 2.31
_BAD_REQUEST = const(128)
_BAD_OPTION = const(130)
_INCOMPLETE = const(136)  # 4.08
_TOO_LARGE = const(141)  # 4.13
_UNAVAILABLE = const(163)  # 5.03

# Table entry fields.
_KEY = const(0)
_BODY = const(1)  # the body so far (a bytearray), or None
_NEXT = const(2)  # offset of the next block; -1 for a kept answer
_LAST = const(3)  # ticks of the last block (or follow-up)
_ANSWER = const(4)  # a kept answer, or None
_ONWARD = const(5)  # True once past its first block (or follow-up)


def _stream(fn, more):
    # A Resource's block1_stream function called as a handler for one block.
    return lambda req: fn(req, req.block1 >> 4, req.payload, more)


class Uploads:
    """The server's Block1 uploads being assembled (or streamed), and the
    answers kept for Block2 follow-ups, in one table bounded by
    Server.max_assemblies.

    An entry: [key, body bytearray or None when streamed, next offset,
    ticks of its last block, None, past its first block?], or [key, None,
    -1, ticks, answer, ...] for an answer that goes out in blocks (see
    keep()). A list, searched in order: few uploads run at once.
    """

    def __init__(self, server):
        self.server = server
        self.table = []

    @property
    def count(self):
        """How many uploads (and kept answers) the table holds."""
        return len(self.table)

    def _expire(self, now):
        t = self.table
        life = self.server.assembly_ms
        i = 0
        while i < len(t):
            if ticks_diff(now, t[i][_LAST]) >= life:
                del t[i]
            else:
                i += 1

    def _room(self, req, now):
        # Room in the table for a new entry of req's peer: None, after
        # making it if need be, or the seconds until there may be some.
        t = self.table
        srv = self.server
        if len(t) < srv.max_assemblies:
            return None
        # No block for `stall` ms, an upload has stalled: a client that goes
        # on sends the next block within a round trip of the 2.31, or
        # retransmits a lost one within an ACK timeout (RFC 7252 §4.2); three
        # of them are the second retransmission's time.
        ep = srv.end_point
        stall = int(ep.ack_timeout_ms * ep.ack_random_factor) * 3
        if stall > srv.assembly_ms:
            stall = srv.assembly_ms
        victim = None
        for e in t:  # a stalled entry, the longest stalled first
            if ticks_diff(now, e[_LAST]) >= stall and (
                    victim is None or ticks_diff(e[_LAST], victim[_LAST]) < 0):
                victim = e
        if victim is None:
            # One still at its first block, of a peer holding more than its
            # share (half the table): a peer may use what others leave, and
            # gives it back when another peer comes.
            share = srv.max_assemblies >> 1
            if share < 1:
                share = 1
            for e in t:
                peer = e[_KEY][0]
                if e[_ONWARD] or peer == req.remote:
                    continue
                n = 0
                for x in t:
                    if x[_KEY][0] == peer:
                        n += 1
                if n > share and (victim is None or ticks_diff(e[_LAST], victim[_LAST]) < 0):
                    victim = e
        if victim is not None:
            t.remove(victim)
            return None
        wait = stall
        for e in t:
            w = stall - ticks_diff(now, e[_LAST])
            if w < wait:
                wait = w
        return (wait + 999) // 1000 if wait > 0 else 1

    def upload(self, req, res, handler):
        """Take a request with Block1. Returns the handler to run now (with
        req.payload the whole body, or the last block when streamed), or
        None when the request was answered here (2.31, 4.08, 4.13, 4.00,
        or a streamed block's own answer)."""
        srv = self.server
        m = req.message
        v = req.block1
        num = v >> 4
        more = v & 8 == 8
        szx = v & 7
        if szx == 7:
            srv.answer(req, _BAD_REQUEST, b"Block1 SZX 7")
            return None
        size = 16 << szx
        data = m.payload
        limit = srv.max_body
        size1 = m.get_uint(_SIZE1)
        if size1 is not None and size1 > limit:
            return self._too_large(req)
        if more and len(data) != size:
            srv.answer(req, _BAD_REQUEST, b"Block1 size mismatch")
            return None
        now = srv.now()
        self._expire(now)
        key = self._key(req, res)
        offset = num * size
        stream = res.block1_stream
        t = self.table
        entry = None
        for e in t:
            if e[_KEY] == key:
                entry = e
                break
        if num == 0:
            if entry is not None:
                t.remove(entry)  # a new body replaces the unfinished one
            if not more:
                return handler if stream is None else _stream(stream, False)  # one block
            wait = self._room(req, now)
            if wait is not None:
                # 5.03: the table is full of uploads making progress (RFC
                # 7252 §5.9.3.4: Max-Age says when to try again).
                srv.answer(req, _UNAVAILABLE, b"uploads in progress", None,
                           (Option(_MAX_AGE, wait if wait > 0 else 1),))
                return None
            entry = [key, None if stream is not None else bytearray(), 0, now, None, False]
            t.append(entry)
        elif entry is None or entry[_NEXT] != offset:
            if entry is not None:
                t.remove(entry)
            srv.answer(req, _INCOMPLETE)
            return None
        else:
            entry[_ONWARD] = True
        if offset + len(data) > limit:
            t.remove(entry)
            return self._too_large(req)
        entry[_NEXT] = offset + len(data)
        entry[_LAST] = now
        if stream is None:
            entry[_BODY].extend(data)
            if more:
                self._continue(req, num, szx)
                return None
            t.remove(entry)
            req.payload = bytes(entry[_BODY])
            return handler
        if not more:
            t.remove(entry)
            return _stream(stream, False)
        # A block in the middle of a streamed upload: the stream function
        # says whether to go on (None) or answers itself.
        result = srv.call(req, _stream(stream, True))
        if result is None:
            self._continue(req, num, szx)
        else:
            t.remove(entry)
            p = srv.render(req, res, result)
            srv.answer(req, p[0], p[1], p[2], p[3])
        return None

    def _key(self, req, res):
        tag = req.message.findOption(_REQUEST_TAG)
        return (req.remote, tag.raw if tag is not None else b"", res,
                req.path if res.subtree else None)

    def keep(self, req, res, answer):
        """Keep the answer to a finished Block1 upload, or to a request that
        changes state, when it goes out in Block2 blocks: the rest is asked
        for by the same request with Block2 (§2.7), which must not run the
        handler again. `answer`: (code, payload, content_format, options,
        total). Not kept when the table is full of uploads in progress: the
        follow-ups are then refused (later())."""
        now = self.server.now()
        self._expire(now)
        key = self._key(req, res)
        t = self.table
        for e in t:
            if e[_KEY] == key:
                t.remove(e)
                break
        if self._room(req, now) is None:
            t.append([key, None, -1, now, answer, False])

    def kept(self, req, res):
        """The kept answer for a Block2 follow-up (a tuple a handler could
        return: Server.render takes it), or None; dropped once its last
        block is asked for."""
        srv = self.server
        now = srv.now()
        self._expire(now)
        key = self._key(req, res)
        for e in self.table:
            if e[_KEY] == key and e[_NEXT] == -1:
                a = e[_ANSWER]
                v = req.block2
                size = 16 << (v & 7)
                mine = 16 << szx_of(srv.block_size)
                if size > mine:
                    size = mine
                total = a[4] if a[4] is not None else len(a[1])
                if (v >> 4) * (16 << (v & 7)) + size >= total:
                    self.table.remove(e)
                else:
                    e[_LAST] = now
                    e[_ONWARD] = True
                return a
        return None

    def later(self, req, res):
        """Answer a request that changes state (not GET or FETCH) asking
        with Block2 for a block after the first: from the answer kept for
        it (§2.7), or 4.02 when there is none, before any handler runs (a
        second run would apply the change again, for a block of an answer
        that is not there)."""
        srv = self.server
        a = self.kept(req, res)
        if a is None:
            srv.answer(req, _BAD_OPTION, b"Block2: no answer kept to continue")
            return
        p = srv.render(req, res, a)
        srv.answer(req, p[0], p[1], p[2], p[3])

    def _continue(self, req, num, szx):
        # 2.31 with the block echoed; the server's own limit on the size
        # asks the client for smaller blocks (late negotiation, §2.5).
        mine = szx_of(self.server.block_size)
        if szx > mine:
            num = (num << szx) >> mine
            szx = mine
        self.server.answer(req, _CONTINUE, b"", None, (block_option(_BLOCK1, num, True, szx),))

    def _too_large(self, req):
        srv = self.server
        srv.answer(req, _TOO_LARGE, b"", None, (Option(_SIZE1, srv.max_body),))
        return None


def install(server):
    """Called by Server.hook("upload"): register the upload table."""
    server.set_hook("upload", Uploads(server))
