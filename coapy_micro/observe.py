"""Observe (RFC 7641): the server's observer table and the client's observations.

Loaded only when a request or a response carries Observe, or when the
application observes something: a node that never observes pays nothing.

Server side (Observers, made by Server on the first registration): an entry
per observer, [Resource, remote, token, Request, notifications since the
last CON, ticks of the last CON, TransmissionRecord of the CON in flight,
message ID of the last NON notification].
The table is a list bounded by counts given at construction (in total and
per resource): when full, a GET with Observe 0 is answered normally.

Client side (Observation, made by Client.observe): one registration, its
last sequence number and when it arrived (reordering, §3.4), and when to
re-register if no notification comes within Max-Age (§3.3.1).
"""
from ._compat import const, ticks_add, ticks_diff
from .connection import Message
from .options import Option

_CON = const(0)
_NON = const(1)
_RST = const(3)
_OBSERVE = const(6)
_MAX_AGE = const(14)
_BLOCK2 = const(23)
_SEQ_MASK = const(0xFFFFFF)  # Observe values are 24 bits (§4.4)
_HALF = const(0x800000)  # 2**23: serial arithmetic on 24-bit numbers
# §3.4: a notification more than 128 s after the last is fresh whatever
# its number (the numbers may have wrapped meanwhile).
_FRESH_MS = const(128000)
_DAY_MS = const(86400000)  # §4.5: a CON at least every 24 hours
_MAX_AGE_S = const(60)  # Max-Age when a response has none (RFC 7252 §5.10.5)

# Entry fields (a list per observer: no object, no dict).
_RES = const(0)
_REMOTE = const(1)
_TOKEN = const(2)
_REQ = const(3)
_SINCE_CON = const(4)
_LAST_CON = const(5)
_REC = const(6)
_TID = const(7)  # message ID of the last NON notification (for its RST)


class Observers:
    """The server's observers: at most `limit` in total and `per_resource`
    per Resource. `seq` is one 24-bit counter for every notification this
    server sends: each observer sees it increase (§4.4)."""

    def __init__(self, server, limit, per_resource, con_every):
        self.server = server
        self.limit = limit
        self.per_resource = per_resource
        self.con_every = con_every
        self.entries = []
        self.seq = 0
        ep = server.end_point
        # A CON notification that times out removes its observer (§4.5).
        # Chained: an application's own hook still hears of every record.
        self._next_hook = ep.on_unacknowledged
        ep.on_unacknowledged = self._unacknowledged
        self._next_reset = ep.on_unmatched_reset
        ep.on_unmatched_reset = self._stray_reset

    def _next_seq(self):
        self.seq = (self.seq + 1) & _SEQ_MASK
        return self.seq

    def find(self, remote, token):
        for e in self.entries:
            if e[_REMOTE] == remote and e[_TOKEN] == token:
                return e
        return None

    def count(self, res):
        n = 0
        for e in self.entries:
            if e[_RES] is res:
                n += 1
        return n

    def register(self, req, res):
        """Remember req's sender as an observer of res (a re-registration
        from the same remote and token replaces its entry). Returns the
        Observe value for the response, or None when the table is full."""
        old = self.find(req.remote, req.token)
        if old is not None:
            self._drop(old)
        elif len(self.entries) >= self.limit or self.count(res) >= self.per_resource:
            return None
        now = self.server._clock()
        self.entries.append([res, req.remote, req.token, req, 0, now, None, -1])
        return self._next_seq()

    def deregister(self, remote, token):
        e = self.find(remote, token)
        if e is not None:
            self._drop(e)

    def _drop(self, e):
        rec = e[_REC]
        if rec is not None and not rec.done:
            rec.cancel()
        if e in self.entries:
            self.entries.remove(e)

    def on_reset(self, rx):
        # An RST to a notification (CON or NON): the client is gone (§3.6).
        rec = rx.pertains_to
        if rec is None:
            return
        e = self.find(rec.remote, rec.message.token)
        if e is not None:
            self._drop(e)

    def _stray_reset(self, rx):
        # An RST whose record is finished: a NON notification's, matched by
        # its message ID (the EndPoint keeps no record of a NON response).
        for e in self.entries:
            if e[_TID] == rx.transaction_id and e[_REMOTE] == rx.remote:
                self._drop(e)
                break
        hook = self._next_reset
        if hook is not None:
            hook(rx)

    def _unacknowledged(self, rec):
        e = self.find(rec.remote, rec.message.token)
        if e is not None and (e[_REC] is rec):
            e[_REC] = None
            self._drop(e)
        hook = self._next_hook
        if hook is not None:
            hook(rec)

    def notify(self, res):
        """Send every observer of res a notification; returns how many."""
        n = 0
        for e in list(self.entries):  # a copy: an error notification removes
            if e[_RES] is res:
                self._notify(e)
                n += 1
        return n

    def _notify(self, e):
        srv = self.server
        res = e[_RES]
        old = e[_REQ]
        # A fresh Request on the registration's message: the handler sees
        # the same path, query and Accept as when it registered.
        req = old.__class__(srv, old.rx, False)
        req.confirmable = False
        srv._scan(req, req.message)
        req._observe = None
        req._block2 = None  # a notification is always block 0 (RFC 7959 §3.4)
        req._notifying = True
        handler = res.handlers[0]
        try:
            result = handler(req)
            code, payload, cf, options, total = srv._unpack(req, res, result)
        except Exception as ex:
            srv._failed(req, ex)
            code, payload, cf, options, total = 160, b"", None, (), None
        if callable(payload) or len(payload) > srv.block_size:
            from .block import block2_response

            try:
                code, payload, options = block2_response(srv, req, code, payload, options, total)
            except Exception as ex:
                srv._failed(req, ex)
                code, payload, options = 160, b"", ()
        ok = code >> 5 == 2
        if ok:
            options = with_observe(options, self._next_seq())
        now = srv._clock()
        rec = e[_REC]
        mtype = _NON
        e[_SINCE_CON] += 1
        if (rec is not None and not rec.done) or e[_SINCE_CON] >= self.con_every \
                or ticks_diff(now, e[_LAST_CON]) >= _DAY_MS:
            # §4.5.2: a newer state replaces a CON still being retransmitted
            # and goes out as CON itself.
            if rec is not None and not rec.done:
                rec.cancel()
            mtype = _CON
        e[_REC] = None
        try:
            msg = srv._message(mtype, code, payload, e[_TOKEN], cf, options)
            sent = srv.end_point.send(msg, e[_REMOTE])
        except Exception as ex:  # table full, too large: this one is skipped
            srv._failed(req, ex)
            return
        e[_TID] = sent.transaction_id
        if mtype == _CON:
            e[_REC] = sent
            e[_SINCE_CON] = 0
            e[_LAST_CON] = now
        if not ok:
            self._drop(e)  # an error notification ends the observation (§4.2)


def with_observe(options, seq):
    """options (a tuple or list of Option) plus Observe = seq."""
    out = [Option(_OBSERVE, seq)]
    for o in options:
        if o.number != _OBSERVE:
            out.append(o)
    return out


def fresh(v1, t1, v2, t2):
    """Is the notification (v2 at ticks t2) newer than (v1 at t1)? §3.4."""
    if (v1 < v2 and v2 - v1 < _HALF) or (v1 > v2 and v1 - v2 > _HALF):
        return True
    return ticks_diff(t2, t1) > _FRESH_MS


class Observation:
    """An observation made by Client.observe. `callback(response)` is
    called per fresh notification (the first response included); `last` is
    the latest Response, `notifications` how many were delivered, `error`
    set (and `done` True) when the server ended it without Observe, or with
    an error, RST or no answer. cancel() deregisters."""

    def __init__(self, client, ep, remote, msg, callback, margin_ms, uri=None):
        self.client = client
        self.uri = uri
        self.end_point = ep
        self.remote = remote
        self.request = msg
        self.token = msg.token
        self.callback = callback
        self.margin_ms = margin_ms
        self.done = False
        self.error = None
        self.last = None
        self.notifications = 0
        self.reregistrations = 0
        self._seq = None
        self._t = 0
        self._due = None  # ticks when to re-register (Max-Age + margin)
        self.record = ep.send(msg, remote)

    def _renew(self):
        # Re-register: the same request and token again (§3.3.1).
        rec = self.record
        if rec is not None and not rec.done:
            rec.cancel()
        self.reregistrations += 1
        m = self.request
        msg = Message(m.transaction_type, m.code, b"", m.token)
        msg._set_list(list(m.options))
        self.request = msg
        self._due = None
        self.record = self.end_point.send(msg, self.remote)

    def _rx(self, rx, now):
        # A message pertaining to our record: a notification, an ACK, an RST.
        m = rx.message
        if m.transaction_type == _RST:
            self._end("reset")
            return
        if m.code == 0:
            return  # the empty ACK of a separate response
        if m.transaction_type == _CON:
            rx.ack()  # CON notifications are acknowledged (§4.5)
        v = m.get_uint(_OBSERVE)
        age = m.get_uint(_MAX_AGE, _MAX_AGE_S)
        self._due = ticks_add(now, age * 1000 + self.margin_ms)
        if v is not None and self._seq is not None and not fresh(self._seq, self._t, v, now):
            return  # older than what we have: reordered (§3.4)
        from .client import Response

        if v is not None:
            self._seq = v
            self._t = now
        b2 = m.get_uint(_BLOCK2)
        if b2 is not None and b2 & 8 and m.code >> 5 == 2 and self.uri is not None:
            # The first block of a larger notification (RFC 7959 §3.4): the
            # body is fetched with a plain GET, which the client reads block
            # by block; the callback gets the whole body, unless a newer
            # notification arrived meanwhile.
            seq = v

            def whole(h):
                if h.response is not None and self._seq == seq and not self.done:
                    self._deliver(h.response)

            try:
                self.client.start("get", self.uri, callback=whole)
                return
            except Exception:  # table full: deliver the first block as it is
                pass
        self._deliver(Response(rx))
        if v is None or m.code >> 5 != 2:
            # Answered without Observe (not registered), or an error: over.
            self._end(None if m.code >> 5 == 2 and v is None else "ended")

    def _deliver(self, r):
        self.last = r
        self.notifications += 1
        if self.callback is not None:
            self.callback(r)

    def _end(self, why):
        self.done = True
        if why is not None:
            self.error = why
        rec = self.record
        if rec is not None and not rec.done:
            rec.cancel()
        self.client._unobserve(self)

    def _check(self, now):
        # Called from the client's loop: re-register after Max-Age, notice
        # a registration that was never answered.
        if self.done:
            return
        rec = self.record
        if rec.is_unacknowledged or (rec.done and rec.response is None):
            self._end("no answer")
            return
        if self._due is not None and ticks_diff(now, self._due) >= 0:
            self._renew()

    def wait_ms(self, now):
        if self.done or self._due is None:
            return None
        d = ticks_diff(self._due, now)
        return 0 if d < 0 else d

    def cancel(self):
        """Deregister: a GET with Observe 1 on the same token (§3.6). The
        record is dropped, so a notification still on its way is answered
        RST by the EndPoint."""
        if self.done:
            return
        m = self.request
        msg = Message(m.transaction_type, m.code, b"", m.token)
        opts = []
        for o in m.options:
            opts.append(Option(_OBSERVE, 1) if o.number == _OBSERVE else o)
        msg._set_list(opts)
        self._end(None)
        try:
            self.end_point.send(msg, self.remote)
        except Exception:  # table full: the RST path still ends it
            pass
