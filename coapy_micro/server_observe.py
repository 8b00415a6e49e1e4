"""Observe (RFC 7641) for the Server: the observer table, the hook "observe".

Loaded by Server.hook("observe") with the first GET carrying Observe to a
Resource(obs=True): a node that is never observed does not load it.

An entry per observer: [Resource, remote, token, the registration's
Request, notifications since the last CON, ticks of the last CON,
TransmissionRecord of the CON in flight, message ID of the last NON
notification]. The table is a list bounded by counts given at construction
(Server(max_observers=, max_observers_per_resource=)): when full, a GET with
Observe 0 is answered as a plain GET.

A notification (Server.notify) calls the resource's GET handler again with
a fresh Request on the registration's message, through the server's render
pipeline: NON, with a CON every Server(notify_con_every=) and at least one
a day (§4.5); a newer state replaces a CON still being retransmitted
(§4.5.2). An observer goes on RST (§3.6), on a CON notification that times
out (§4.5), on a GET with Observe 1, and after an error notification (§4.2).
"""
from ._compat import const, ticks_diff
from .options import Option

_CON = const(0)
_NON = const(1)
_OBSERVE = const(6)
_SEQ_MASK = const(0xFFFFFF)  # Observe values are 24 bits (§4.4)
_DAY_MS = const(86400000)  # §4.5: a CON at least every 24 hours

# Entry fields (a list per observer: no object, no dict).
_RES = const(0)
_REMOTE = const(1)
_TOKEN = const(2)
_REQ = const(3)
_SINCE_CON = const(4)
_LAST_CON = const(5)
_REC = const(6)
_TID = const(7)  # message ID of the last NON notification (for its RST)


def with_observe(options, seq):
    """options (a tuple or list of Option) plus Observe = seq."""
    out = [Option(_OBSERVE, seq)]
    for o in options:
        if o.number != _OBSERVE:
            out.append(o)
    return out


class Observers:
    """The server's observers: at most Server.max_observers in total and
    Server.max_observers_per_resource per Resource. `seq` is one 24-bit
    counter for every notification this server sends: each observer sees
    it increase (§4.4)."""

    def __init__(self, server):
        self.server = server
        self.entries = []
        self.seq = 0
        ep = server.end_point
        # A CON notification that times out removes its observer (§4.5);
        # an RST to a NON one does too (the EndPoint keeps no record of a
        # NON response). Chained: an application's own hooks still hear
        # of every record.
        self._next_hook = ep.on_unacknowledged
        ep.on_unacknowledged = self._unacknowledged
        self._next_reset = ep.on_unmatched_reset
        ep.on_unmatched_reset = self._stray_reset

    def _next_seq(self):
        self.seq = (self.seq + 1) & _SEQ_MASK
        return self.seq

    def _find(self, remote, token):
        for e in self.entries:
            if e[_REMOTE] == remote and e[_TOKEN] == token:
                return e
        return None

    def count(self, res=None):
        """How many observers (of `res`, or in total)."""
        if res is None:
            return len(self.entries)
        n = 0
        for e in self.entries:
            if e[_RES] is res:
                n += 1
        return n

    def respond(self, req, res, code, options):
        """A GET with Observe to an observable resource (§4.1), answered
        with `code`: Observe 0 registers (when 2.xx and the table has room:
        the response then carries Observe), 1 deregisters. Returns the
        response's options."""
        if req.observe == 1 or code >> 5 != 2:
            self._deregister(req.remote, req.token)
            return options
        if req.observe != 0:
            return options
        srv = self.server
        old = self._find(req.remote, req.token)
        if old is not None:
            self._drop(old)  # a re-registration replaces the entry
        elif (len(self.entries) >= srv.max_observers
              or self.count(res) >= srv.max_observers_per_resource):
            return options  # full: answered as a plain GET
        self.entries.append([res, req.remote, req.token, req, 0, srv.now(), None, -1])
        return with_observe(options, self._next_seq())

    def _deregister(self, remote, token):
        e = self._find(remote, token)
        if e is not None:
            self._drop(e)

    def _drop(self, e):
        rec = e[_REC]
        if rec is not None and not rec.done:
            rec.cancel()
        if e in self.entries:
            self.entries.remove(e)

    def reset(self, rx):
        """An RST to a notification (CON or NON): the client is gone (§3.6)."""
        rec = rx.pertains_to
        if rec is None:
            return
        e = self._find(rec.remote, rec.message.token)
        if e is not None:
            self._drop(e)

    def _stray_reset(self, rx):
        # An RST whose record is finished: a NON notification's, matched by
        # its message ID.
        for e in self.entries:
            if e[_TID] == rx.transaction_id and e[_REMOTE] == rx.remote:
                self._drop(e)
                break
        hook = self._next_reset
        if hook is not None:
            hook(rx)

    def _unacknowledged(self, rec):
        e = self._find(rec.remote, rec.message.token)
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
        # A fresh Request on the registration's message: the handler sees
        # the same path, query and Accept as when it registered.
        req = srv.notification_request(e[_REQ])
        p = srv.render(req, res, srv.call(req, res.handlers[0]))
        code = p[0]
        options = p[3]
        ok = code >> 5 == 2
        if ok:
            options = with_observe(options, self._next_seq())
        now = srv.now()
        rec = e[_REC]
        mtype = _NON
        e[_SINCE_CON] += 1
        if (rec is not None and not rec.done) or e[_SINCE_CON] >= srv.notify_con_every \
                or ticks_diff(now, e[_LAST_CON]) >= _DAY_MS:
            # §4.5.2: a newer state replaces a CON still being retransmitted
            # and goes out as CON itself.
            if rec is not None and not rec.done:
                rec.cancel()
            mtype = _CON
        e[_REC] = None
        try:
            msg = srv.message(mtype, code, p[1], e[_TOKEN], p[2], options)
            sent = srv.end_point.send(msg, e[_REMOTE])
        except Exception as ex:  # table full, too large: this one is skipped
            srv.fail(req, ex)
            return
        e[_TID] = sent.transaction_id
        if mtype == _CON:
            e[_REC] = sent
            e[_SINCE_CON] = 0
            e[_LAST_CON] = now
        if not ok:
            self._drop(e)  # an error notification ends the observation (§4.2)


def install(server):
    """Called by Server.hook("observe"): register the observer table."""
    server.set_hook("observe", Observers(server))
