"""Observe (RFC 7641) for the Server: the observer table, the hook "observe".

Loaded by Server.hook("observe") with the first GET carrying Observe to a
Resource(obs=True): a node that is never observed does not load it.

An entry per observer: [Resource, remote, token, the registration's
Request, the registration it shares a representation with, notifications
since the last CON, ticks of the last CON, its TransmissionRecord, a spare
Message]. The table is a list bounded by counts given at construction
(Server(max_observers=, max_observers_per_resource=)), and so is each peer's
share of it (Server(max_observers_per_peer=,
max_peer_observers_per_resource=)): one client registering with many tokens,
or observing many resources, and acknowledging its notifications, would
otherwise keep every place and the next client's registration would be
refused. When there is no room, a GET with Observe 0 is answered as a plain
GET (§4.1 leaves it to the server); a registration again with the same
token replaces its own entry: of the same resource wherever the counts
stand, of another one only where that one has room (the old entry goes
either way).

A peer is a remote address as the EndPoint reports it (host and port), the
endpoint RFC 7641 identifies an observer by, with its token: clients on one
host (a gateway beside a command-line client, or behind one NAT) are peers
of their own.

A notification round (Server.notify) renders the resource once for every
group of observers that asked the same (the same options but Observe, the
same payload): the GET handler runs once per group, through the server's
render pipeline, on a Request made from the first registration of the
group. Each observer then gets that representation with its own token, on
its own TransmissionRecord and Message, kept from one notification to the
next (EndPoint.supersede()), so a round allocates per group, not per
observer.

Notifications go NON, with a CON every Server(notify_con_every=) and at
least one a day (§4.5). A NON goes out at once and holds no place in the
EndPoint's in-flight table; CON notifications hold at most half of it
(at least one place), so requests and responses always find room, however
many observers there are (and to one client, as any CON, at most NSTART at
a time: §4.5.1, the EndPoint queues the others). A CON that is due when
that share is taken goes out NON, and the CON comes with a later
notification.

While an observer's CON is still awaiting its ACK, a newer state replaces
it and keeps its retransmission counter and timeout (§4.5.2): it goes out at
the next retransmission, or at once when the older one is acknowledged.
The observer thus gets every state, or the newest one once it has
acknowledged, and one that acknowledges nothing is removed after
MAX_TRANSMIT_SPAN however fast the resource changes (§4.5). An observer also
goes on RST (§3.6), on a GET with Observe 1, and after an error
notification (§4.2).
"""
from ._compat import const, ticks_diff
from .message import Message, insert_option, option_next
from .options import Option

_CON = const(0)
_NON = const(1)
_OBSERVE = const(6)
_CONTENT_FORMAT = const(12)
_SEQ_MASK = const(0xFFFFFF)  # Observe values are 24 bits (§4.4)
_DAY_MS = const(86400000)  # §4.5: a CON at least every 24 hours
_INTERNAL_SERVER_ERROR = const(160)  # 5.00

# Entry fields (a list per observer: no object, no dict).
_RES = const(0)
_REMOTE = const(1)
_TOKEN = const(2)
_REQ = const(3)
_KEY = const(4)  # the registration whose representation this one shares
_SINCE_CON = const(5)
_LAST_CON = const(6)
_REC = const(7)  # TransmissionRecord of the last notification, or None
_SPARE = const(8)  # a Message the EndPoint does not hold, reused, or None


def observe_options(seq, cf):
    """The option bytes (wire form, a bytearray nobody changes after) of
    Observe = seq and, when cf is not None, Content-Format = cf: all a
    plain notification carries. Both
    option numbers (6, 12) and their deltas fit a header's nibble (RFC 7252
    §3.1), so this is a few bytes written in place."""
    # Each value's length, then the header and value bytes, big-endian.
    a = 0
    while seq >> (8 * a):
        a += 1
    b = 0
    if cf is not None:
        while cf >> (8 * b):
            b += 1
    out = bytearray(1 + a + (0 if cf is None else 1 + b))
    out[0] = (_OBSERVE << 4) | a
    pos = 1
    while a:
        a -= 1
        out[pos] = (seq >> (8 * a)) & 255
        pos += 1
    if cf is not None:
        out[pos] = ((_CONTENT_FORMAT - _OBSERVE) << 4) | b
        while b:
            b -= 1
            pos += 1
            out[pos] = (cf >> (8 * b)) & 255
    return out  # (set_options keeps a bytearray as it is: one allocation, not two)


def _same_ask(a, b, ca, cb):
    # Do Messages a and b ask for the same representation: the same options
    # but Observe, in the same order, and the same payload? Walks both
    # option lists with the cursors ca and cb (allocates nothing).
    if a.code != b.code or a.payload != b.payload:
        return False
    ba = a.cursor(ca)
    bb = b.cursor(cb)
    while True:
        na = option_next(ba, ca)
        while na == _OBSERVE:
            na = option_next(ba, ca)
        nb = option_next(bb, cb)
        while nb == _OBSERVE:
            nb = option_next(bb, cb)
        if na != nb:
            return False
        if na < 0:
            return True
        n = ca[1]
        if cb[1] != n:
            return False
        pa = ca[0]
        pb = cb[0]
        for i in range(n):
            if ba[pa + i] != bb[pb + i]:
                return False


class Observers:
    """The server's observers: at most Server.max_observers in total,
    Server.max_observers_per_resource per Resource, and of one remote
    Server.max_observers_per_peer in total (None: half the table) and
    Server.max_peer_observers_per_resource per Resource. `seq` is one 24-bit
    counter for every representation this server sends: each observer sees
    it increase (§4.4)."""

    def __init__(self, server):
        self.server = server
        self.entries = []
        self.seq = 0
        self._ca = [0, 0, 0, 0, 0]  # option cursors for _same_ask
        self._group = [None, 0, b"", b""]  # what _render() made: key, code, payload, options
        self._cb = [0, 0, 0, 0, 0]
        ep = server.end_point
        # A CON notification that times out removes its observer (§4.5);
        # an RST to a NON one does too (the EndPoint keeps no record of a
        # NON response in flight). Chained: an application's own hooks
        # still hear of every record.
        self._next_hook = ep.on_unacknowledged
        ep.on_unacknowledged = self._unacknowledged
        self._next_reset = ep.on_unmatched_reset
        ep.on_unmatched_reset = self._stray_reset

    def _next_seq(self):
        self.seq = (self.seq + 1) & _SEQ_MASK
        return self.seq

    def count(self, res=None):
        """How many observers (of `res`, or in total)."""
        if res is None:
            return len(self.entries)
        n = 0
        for e in self.entries:
            if e[_RES] is res:
                n += 1
        return n

    def _room(self, remote, res):
        # Is there a place for a new observer of `res` at `remote`: in the
        # table, among res's observers, and in the remote's share of both?
        # (One pass, no allocation: remotes compare as they are.)
        srv = self.server
        entries = self.entries
        n = srv.max_observers
        if len(entries) >= n:
            return False
        share = srv.max_observers_per_peer
        if share is None:
            share = (n + 1) >> 1  # half the table (Server's class notes)
        of_res = of_peer = both = 0
        for e in entries:
            mine = e[_RES] is res
            if mine:
                of_res += 1
            if e[_REMOTE] == remote:
                of_peer += 1
                if mine:
                    both += 1
        return (of_res < srv.max_observers_per_resource
                and of_peer < share
                and both < srv.max_peer_observers_per_resource)

    def in_flight(self):
        """How many CON notifications await their ACK (or wait to go out)."""
        n = 0
        for e in self.entries:
            rec = e[_REC]
            if rec is not None and not rec.done:
                n += 1
        return n

    def respond(self, req, res, code, options):
        """A GET with Observe to an observable resource (§4.1), answered
        with `code`: Observe 0 registers (when 2.xx and the table has room:
        the response then carries Observe), 1 deregisters. Returns the
        response's options."""
        if req.observe > 1 and code >> 5 == 2:
            return options  # neither registers nor deregisters
        srv = self.server
        # The entry of this token goes: deregistered (1), ended by an error
        # answer (§4.2), or replaced by a registration again (0).
        old = None
        for e in self.entries:
            if e[_REMOTE] == req.remote and e[_TOKEN] == req.token:
                old = e
                self._drop(e)
                break
        if req.observe or code >> 5 != 2:
            return options
        if (old is None or old[_RES] is not res) and not self._room(req.remote, res):
            # Full: answered as a plain GET. (A token moved to another
            # resource is a new observer there, counted as one: else a peer
            # could take a resource's places by moving tokens it holds
            # elsewhere onto it.)
            return options
        key = req
        m = req.message
        for e in self.entries:
            if e[_RES] is res and _same_ask(e[_KEY].message, m, self._ca, self._cb):
                key = e[_KEY]  # asks what another observer asked: rendered once
                break
        self.entries.append([res, req.remote, req.token, req, key, 0, srv.now(), None, None])
        return insert_option(list(options), Option(_OBSERVE, self._next_seq()), True)

    def _drop(self, e):
        # The observer is gone: nothing more is sent to it.
        rec = e[_REC]
        if rec is not None and not rec.done:
            rec.cancel()
        if e in self.entries:
            self.entries.remove(e)

    def _lost(self, rec, rx):
        # The observer is gone whose notifications go out on the record
        # `rec`, or (rec None) whose last one went to rx.remote with rx's
        # Message ID.
        for e in self.entries:
            r = e[_REC]
            if r is not None and (r is rec or (rec is None and r.transaction_id == rx.transaction_id
                                               and e[_REMOTE] == rx.remote)):
                self._drop(e)
                return

    def reset(self, rx):
        """An RST to a CON notification: the client is gone (§3.6)."""
        rec = rx.pertains_to
        if rec is not None:
            self._lost(rec, rx)

    def _stray_reset(self, rx):
        # An RST whose record is finished: a NON notification's, matched by
        # the Message ID it went out with.
        self._lost(None, rx)
        hook = self._next_reset
        if hook is not None:
            hook(rx)

    def _unacknowledged(self, rec):
        # A CON notification gave up after MAX_TRANSMIT_SPAN (§4.5).
        self._lost(rec, None)
        hook = self._next_hook
        if hook is not None:
            hook(rec)

    def notify(self, res):
        """Send every observer of `res` its current state: now, or, to an
        observer whose CON is still in flight, in that CON's place (§4.5.2).
        Returns how many observers were notified."""
        srv = self.server
        ep = srv.end_point
        entries = self.entries
        share = ep.max_in_flight >> 1
        if share < 1:
            share = 1
        cons = self.in_flight()
        now = srv.now()
        # What this round rendered: the first group's key, code, payload and
        # option bytes in locals (most resources have one group: nothing is
        # allocated to hold it), any other group's as a tuple in a list.
        fkey = None
        fcode = 0
        fpayload = fopts = None
        others = None
        n = 0
        i = 0
        while i < len(entries):
            e = entries[i]
            i += 1
            if e[_RES] is not res:
                continue
            key = e[_KEY]
            if key is fkey:
                code = fcode
                payload = fpayload
                opts = fopts
            else:
                g = None
                if others is not None:
                    for x in others:
                        if x[0] is key:
                            g = x
                            break
                if g is None:
                    g = self._render(res, key)  # (the list self._group)
                    if fkey is None:
                        fkey = key
                        fcode = g[1]
                        fpayload = g[2]
                        fopts = g[3]
                    else:
                        g = (key, g[1], g[2], g[3])
                        if others is None:
                            others = [g]
                        else:
                            others.append(g)
                code = g[1]
                payload = g[2]
                opts = g[3]
            rec = e[_REC]
            busy = rec is not None and not rec.done
            if busy:
                mtype = _CON  # in place of the CON in flight (§4.5.2)
            elif (cons < share and ep.in_flight < ep.max_in_flight
                  and (e[_SINCE_CON] + 1 >= srv.notify_con_every
                       or ticks_diff(now, e[_LAST_CON]) >= _DAY_MS)):
                mtype = _CON
            else:
                mtype = _NON
            m = self._message(e, mtype)
            m.code = code
            m.payload = payload
            m.set_options(opts)
            try:
                if rec is None:
                    # The record this observer's notifications go out on,
                    # for its life. (transactions.py is imported here: the
                    # EndPoint loads it at its first send, which is the
                    # supersede() below, and the server itself does not
                    # import it.)
                    from .transactions import TransmissionRecord

                    rec = TransmissionRecord(ep, m, e[_REMOTE])
                ep.supersede(rec, m)
            except Exception as ex:  # too large for max_message_size
                srv.fail(e[_REQ], ex)
                continue
            e[_REC] = rec
            n += 1
            if busy:
                e[_SPARE] = m  # waiting in the record, not yet sent
            elif mtype == _CON:
                cons += 1
                e[_SINCE_CON] = 0
                e[_LAST_CON] = now
            else:
                e[_SINCE_CON] += 1
            if code >> 5 != 2:
                # An error notification ends the observation (§4.2): the
                # entry goes, the record delivers it on its own.
                i -= 1
                del entries[i]
        return n

    def _render(self, res, key):
        # The notification for the observers sharing registration `key`:
        # [key, code, payload, option bytes with Observe on a 2.xx], in the
        # list self._group, filled again by the next call.
        srv = self.server
        g = self._group
        # A fresh Request on the registration's message: the handler sees
        # the same path, query and Accept as when it registered.
        req = srv.notification_request(key)
        p = srv.render(req, res, srv.call(req, res.handlers[0]))
        code = p[0]
        options = p[3]
        ok = code >> 5 == 2
        if ok and not options:
            payload = p[1]
            if isinstance(payload, str):
                payload = payload.encode("utf-8")
            g[3] = observe_options(self._next_seq(), p[2])
        else:
            try:
                if ok:
                    options = insert_option(list(options), Option(_OBSERVE, self._next_seq()), True)
                t = srv.message(_NON, code, p[1], b"", p[2], options)
            except Exception as ex:  # options a Message cannot hold
                srv.fail(req, ex)
                code = _INTERNAL_SERVER_ERROR  # ends the observations (§4.2)
                payload = b""
                opts = b""
            else:
                payload = t.payload
                opts = t.cursor(self._ca)
            g[3] = opts
        g[0] = key
        g[1] = code
        g[2] = payload
        return g

    def _message(self, e, mtype):
        # A Message of type `mtype` for observer e's next notification that
        # the EndPoint is not sending: the one it sent last when that is done
        # (or the spare), else a new one, kept for the next time.
        rec = e[_REC]
        cur = None if rec is None else rec.message
        spare = e[_SPARE]
        if rec is not None and not rec.done:  # (busy: cur is still being sent)
            if spare is not None and spare is not cur and spare.transaction_type == mtype:
                return spare
            return Message(mtype, 0, b"", e[_TOKEN])
        if cur is not None and cur.transaction_type == mtype:
            return cur
        if spare is not None and spare.transaction_type == mtype:
            e[_SPARE] = cur
            return spare
        e[_SPARE] = cur
        return Message(mtype, 0, b"", e[_TOKEN])


def install(server):
    """Called by Server.hook("observe"): register the observer table."""
    server.set_hook("observe", Observers(server))
