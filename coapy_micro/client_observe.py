"""Observe (RFC 7641) for the Client: observations, the hook "observe".

Loaded by Client.hook("observe") when the application first calls
Client.observe(): a client that never observes does not load it.

An Observation is one registration: its last sequence number and when it
arrived (to drop reordered notifications, §3.4), and when to register again
if no notification comes within Max-Age (§3.3.1). Its request's
TransmissionRecord is marked several_responses, so the EndPoint keeps it
open for the notifications that come on its token. The client passes it
every message that pertains to that record (handle()), and calls check()
while its registration waits for an answer (`waiting`) and when the time
wait_ms() gave has come; it forgets the observation once `done`.

Max-Age comes from the network: a week (or a 9-byte value) must neither
overflow ticks_add (which raises beyond half the ticks period, 2**29 ms on
a board) nor wrap around into the past (which would re-register after
every notification). It is capped at MAX_AGE_CAP_S: an observation whose
server allows longer re-registers once a day, which §3.3.1 permits (a
client may re-register at any time).
"""
from ._compat import const, ticks_add, ticks_diff
from .message import Message, option_next
from .options import Option, uint_at
from .outcome import CoapError, RequestTimeout, Reset, Response, Unreachable, peer_text

_CON = const(0)
_RST = const(3)
_OBSERVE = const(6)
_CONTENT_FORMAT = const(12)
_MAX_AGE = const(14)
_BLOCK2 = const(23)
# What handle() reads of every notification, in one walk (_read()), in the
# order of their numbers: the Content-Format too, handed to the Response,
# which need not walk again.
_READ = (_OBSERVE, _CONTENT_FORMAT, _MAX_AGE, _BLOCK2)
_HALF = const(0x800000)  # 2**23: serial arithmetic on 24-bit numbers
# §3.4: a notification more than 128 s after the last is fresh whatever
# its number (the numbers may have wrapped meanwhile).
_FRESH_MS = const(128000)
_MAX_AGE_S = const(60)  # Max-Age when a response has none (RFC 7252 §5.10.5)
MAX_AGE_CAP_S = const(86400)  # the longest Max-Age taken from a server: a day
_MAX_MARGIN_MS = const(3600000)  # margin_ms beyond an hour is taken as an hour


class ObservationEnded(CoapError):
    """The server ended the observation with an error response (RFC 7641
    §4.2); `code` is that response's code."""

    code = None


def fresh(v1, t1, v2, t2):
    """Is the notification (v2 at ticks t2) newer than (v1 at t1)? §3.4."""
    if (v1 < v2 and v2 - v1 < _HALF) or (v1 > v2 and v1 - v2 > _HALF):
        return True
    return ticks_diff(t2, t1) > _FRESH_MS


def _read(m, out):
    # The options of _READ in the message `m`, in one walk of the option
    # cursor: out[5 + i] is the uint value of the first option _READ[i],
    # or None; out[0:5] is the cursor. Allocates nothing. (Here rather than
    # a Message method: a board's server never loads it. Four locals: the
    # frame stays on MicroPython's C stack.)
    ob = m.cursor(out)
    i = 0
    while i < 4:
        if out[2] < out[3] and option_next(ob, out, _READ[i]) >= 0:
            # (An empty value is 0, RFC 7252 §3.2: no call for it, as for
            # the Content-Format text/plain most notifications carry.)
            out[5 + i] = uint_at(ob, out[0], out[1]) if out[1] else 0
        else:
            out[5 + i] = None
        i += 1


class Observation:
    """An observation made by Client.observe. `callback(response)` is
    called per fresh notification (the first response included); `last` is
    the latest Response, `notifications` how many were delivered. `done`
    turns True when it ends; `error` is then the CoapError that says why
    (Reset: RST; Unreachable: the registration was never acknowledged;
    RequestTimeout: it was never answered; ObservationEnded: an error
    response), or None when it was cancelled or the server answered
    without registering. cancel() deregisters.

    on_end: None, or callable(observation), called once when it ends, for
    whatever reason (cancel() included), so an application need not poll
    `done`. waiting: True while the (re-)registration has had no answer.

    A notification larger than a block (RFC 7959 §3.4) is fetched whole
    with a GET before it is delivered: at most one such GET at a time per
    observation. Notifications that come while one runs lead to one more
    GET when it ends (the newest state, once), not to one each: a server
    that notifies faster than its bodies can be fetched cannot fill the
    client's table. `missed` counts the large notifications not delivered:
    no room to fetch, or the fetch failed. A first block alone is never
    delivered as if it were the body.
    """

    on_end = None
    waiting = True
    missed = 0
    _fetching = None  # the Pending of the GET of a large notification's body
    _again = False  # a newer large notification came while it ran

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
        self.record = None
        # _read()'s cursor (0-4) and the values of _READ it found (5-8)
        self._opts = [0, 0, 0, 0, 0, None, None, None, None]  # type: list
        self._send(msg)

    def _send(self, msg):
        rec = self.end_point.send(msg, self.remote)
        rec.several_responses = True  # notifications keep coming on the token
        self.record = rec

    def _renew(self):
        # Re-register: the same request and token again (§3.3.1).
        rec = self.record
        if rec is not None and not rec.done:
            rec.cancel()
        self.reregistrations += 1
        self.waiting = True
        m = self.request
        msg = Message(m.transaction_type, m.code, b"", m.token)
        msg.set_options(m.options)
        self.request = msg
        self._due = None
        self._send(msg)

    def handle(self, rx, now):
        """A message pertaining to this observation's record: a
        notification, an ACK, an RST."""
        # (Five locals and at most six values on the stack: the frame fits
        # the 11 words MicroPython keeps on the C stack, where a larger one
        # would be taken from the heap for every notification. So the
        # values read stay in self._opts rather than in locals, the endings,
        # rare, build their errors in _end_by(), and the time to register
        # again is set by _set_due().)
        m = rx.message
        v = m.transaction_type  # (read once: a property)
        if v == _RST:
            self._end_by(-1)
            return
        if m.code == 0:
            return  # the empty ACK of a separate response
        if v == _CON:
            rx.ack()  # CON notifications are acknowledged (§4.5)
        self.waiting = False
        _read(m, self._opts)  # one walk over the options
        v = self._opts[5]  # Observe
        if v is not None:
            # fresh()'s first case, the common one (a number a little above
            # the last), tested here: a call the less per notification.
            if (self._seq is not None and not self._seq < v < self._seq + _HALF
                    and not fresh(self._seq, self._t, v, now)):
                return  # older than what we have: reordered (§3.4)
            self._seq = v
            self._t = now
        # Max-Age, of a notification that is not stale: an older one,
        # reordered on the way, says nothing about how fresh the newer
        # one already taken is (§3.3.1), so it does not move the time to
        # register again.
        self._set_due(now, self._opts[7])
        if (self._opts[8] is not None and self._opts[8] & 8  # Block2, more blocks
                and m.code >> 5 == 2 and self.uri is not None):
            self._fetch()
            return
        # _deliver(), written out (a call the less per notification).
        self.last = Response(rx, self._opts[6])  # its Content-Format
        self.notifications += 1
        if self.callback is not None:
            self.callback(self.last)
        if m.code >> 5 != 2:
            self._end_by(m.code)
        elif v is None:
            self.end()  # answered without Observe: not registered (§3.1)

    def _set_due(self, now, age):
        # When to register again after a notification at `now` with Max-Age
        # `age` (None: absent): Max-Age, clamped before it meets ticks_add
        # (see the module notes), and margin_ms, within its bounds.
        if age is None:
            age = _MAX_AGE_S
        elif age > MAX_AGE_CAP_S:
            age = MAX_AGE_CAP_S
        margin = self.margin_ms
        if not 0 <= margin <= _MAX_MARGIN_MS:
            margin = 0 if margin < 0 else _MAX_MARGIN_MS
        self._due = ticks_add(now, age * 1000 + margin)

    def _end_by(self, code):
        # End on an RST (`code` -1) or an error response (its code).
        if code < 0:
            self.end(Reset("%s answered with RST" % (peer_text(self.remote),)))
            return
        e = ObservationEnded("the server ended the observation with %d.%02d"
                             % (code >> 5, code & 31))
        e.code = code
        self.end(e)

    def _fetch(self):
        # The first block of a larger notification (RFC 7959 §3.4): the body
        # is fetched with a plain GET, which the client reads block by block
        # (bounded by its max_body and transfer_timeout_ms), and delivered
        # whole. One GET at a time: while one runs, a newer notification
        # only asks for one more after it. (A method of its own: a closure
        # in handle() would cost handle() a heap cell on every call on a
        # board.)
        h = self._fetching
        if h is not None and not h.done:
            self._again = True
            return
        self._again = False

        def whole(h):
            if self._fetching is h:
                self._fetching = None
            if self.done:
                return
            if h.response is not None and h.response.code >> 5 == 2:
                # The state when the GET was answered: newer than (or as
                # new as) the notification that asked for it.
                self._deliver(h.response)
            elif not self._again:
                self.missed += 1
            if self._again:
                self._fetch()  # the newest state, once

        try:
            self._fetching = self.client.start("get", self.uri, callback=whole)
        except Exception:
            # The table is full: this notification is missed (the next one
            # tries again); its first block alone is not the body.
            self._fetching = None
            self.missed += 1

    def _deliver(self, r):
        self.last = r
        self.notifications += 1
        if self.callback is not None:
            self.callback(r)

    def end(self, error=None):
        """End the observation here, sending nothing (the client forgets it
        at once; a notification still on its way is answered RST by the
        EndPoint), then call on_end. `error`: the CoapError saying why, if
        any."""
        if self.done:
            return
        self.done = True
        self.waiting = False
        if error is not None:
            self.error = error
        rec = self.record
        if rec is not None and not rec.done:
            rec.cancel()
        h = self._fetching
        if h is not None:
            self._fetching = None
            h.cancel()  # a body nobody will be given
        self.client.ended(self)  # no longer looked up, checked or waited for
        if self.on_end is not None:
            self.on_end(self)

    def check(self, now):
        """Called by the client when the time wait_ms() gave has come, and
        when the record of a registration still `waiting` is finished:
        register again once `now` has reached Max-Age + margin_ms after the
        last notification (the client may pass a time a little ahead, to
        see to several in one walk), notice a registration that was never
        answered."""
        if self.done:
            return
        rec = self.record
        if rec is None:  # not sent yet
            return
        if rec.is_unacknowledged:
            self.end(Unreachable("no acknowledgement from %s" % (peer_text(self.remote),)))
            return
        if rec.done and rec.response is None:
            if rec.error is not None:
                e = Unreachable("cannot send to %s: errno %d" % (peer_text(self.remote), rec.error))
                e.errno = rec.error
                self.end(e)
            else:
                self.end(RequestTimeout("no response from %s" % (peer_text(self.remote),)))
            return
        if self._due is not None and ticks_diff(now, self._due) >= 0:
            self._renew()

    def wait_ms(self, now):
        """ms until this observation has something to do at a time of its
        own (re-registration), None for nothing. While `waiting`, what it
        waits for is its record's (the EndPoint's timers), not a time."""
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
        msg.set_options(opts)
        self.end()
        try:
            self.end_point.send(msg, self.remote)
        except Exception:  # table full: the RST path still ends it
            pass


def install(client):
    """Called by Client.hook("observe"): Observation is what the client
    makes an observation with."""
    client.set_hook("observe", Observation)
