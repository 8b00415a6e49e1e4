"""What an EndPoint sends and waits on (RFC 7252 §4.2, §4.3, §4.4, §4.7).

An EndPoint's table of transmissions in flight: the CONs it retransmits
until their ACK or RST, the requests waiting for their response (matched
by token), NSTART's limit per peer, and the deadlines of all of these. The
EndPoint makes its table at its first send() (EndPoint.transmissions()),
so this module is loaded then: a node that only answers requests never
loads it, and a board keeps its heap (about 5 KB of code) for other work.
A Client, an observer's notifications and a separate response load it.

The table works through the EndPoint's public calls (transmit(), clock,
rand, the transmission parameters, next_transaction_id()) and the
EndPoint hands it what arrives for it: acknowledged() and acknowledge() for
an ACK or RST, by_token() and response() for a response.

`is_multicast` lives here because a request's destination decides how it
is sent (once to a group, answered by many; RFC 7252 §8.1).
"""
from ._compat import const, ticks_add, ticks_diff

_CON = const(0)
_NON = const(1)
_ACK = const(2)
_RST = const(3)
_EMSGSIZE = const(90)  # Linux's errno for "message too long"
_EINVAL = const(22)  # and for an address the socket cannot send to
# Tables up to this size are scanned on a board: there a scan in C (`in`,
# list.count) allocates nothing, where a dict keyed by (id, remote) builds a
# key per message. Larger ones (and every one on CPython) get indexes.
_LINEAR = const(32)
_MAX_RESPONSES = const(4)  # responses a record keeps (the last ones)

# TransmissionRecord states
_QUEUED = const(0)  # waiting for its first transmission (maybe for NSTART)
_WAIT_ACK = const(1)  # CON sent, retransmitting until ACK/RST
_WAIT_RESPONSE = const(2)  # request delivered, waiting for the response
_DONE = const(3)  # finished, no longer in the in-flight table


class CapacityError(Exception):
    """A bounded table (transmissions in flight) is full: send() refused."""


class TransmissionRecord:
    """What the EndPoint knows about one message it sends (coapy's API).

    Times are ticks_ms() values (compare them only with ticks_diff()).

    `several_responses`: set it (True) on a request that is answered more
    than once on its token, such as an Observe registration (RFC 7641): after
    a response the record stays open, with no deadline, until cancel().
    """

    # Class-level defaults: a record sets only what it changes, so one sent
    # once stays a small object (and no attribute set later grows it).
    several_responses = False
    created_time = None  # first transmission
    last_event_time = None
    next_event_time = None
    remaining_attempts = 0
    response = None
    responses = ()  # then a list, bounded: the last _MAX_RESPONSES
    response_type = None
    error = None  # errno of the last failed sendto, if any
    _timeout_ms = 0
    _gave_up = False
    _blocked = False  # queued, and found held back by NSTART at the last walk
    _multicast = False
    _timer = False  # in the table's list of records with a deadline
    _superseding = None  # the Message EndPoint.supersede() put in this one's place

    def __init__(self, end_point, message, remote):
        self.end_point = end_point
        self.message = message
        self.remote = remote
        self.transaction_id = None  # type: int | None
        self._state = _QUEUED
        self._token = message.token  # the key it is indexed under

    @property
    def packed(self):
        """The octet sequence sent (encoded anew: the record keeps no copy)."""
        return self.message.encode(self.transaction_id)

    @property
    def is_unacknowledged(self):
        """True iff this was a CON whose last wait elapsed with no ACK or RST."""
        return self._gave_up

    @property
    def done(self):
        return self._state == _DONE

    def cancel(self):
        """Stop retransmitting and stop matching responses to this record."""
        self.end_point.transmissions().finish(self)


class Transmissions:
    """An EndPoint's transmissions in flight (EndPoint.transmissions()).

    `records`: the TransmissionRecords in flight, oldest first (read-only:
    at most the EndPoint's max_in_flight). `timed_out`: how many records
    their own deadline finished (retransmissions spent, or a wait for a
    response expired), a count process() watches.
    """

    def __init__(self, end_point, indexed):
        self.ep = end_point
        self.records = []
        self.timed_out = 0
        # What service() looks at: the records queued for their first
        # transmission, and those with a deadline. An Observe registration
        # waiting for its next notification is in neither: a thousand of
        # them cost nothing per process() call.
        self._queue = []
        self._timers = []
        self._walk = False  # True: a queued record may start (new, or an NSTART slot freed)
        # The peers whose NSTART slot freed since the last walk, and the
        # nstart that walk went by: a record found held back is looked at
        # again only for those (or once nstart changes), so a queue of many
        # waits costs a walk per response only for its own peer's.
        self._freed = []
        self._walked_nstart = end_point.nstart
        self._due = None  # no deadline in _timers comes before this (None: none has one)
        # Indexes of a large in-flight table, kept from when it first grows
        # past _LINEAR (a small one is scanned, which allocates nothing):
        # token -> record (or a list of those sharing it), message ID ->
        # record, and remote -> its CONs awaiting their ACK (for NSTART).
        # `indexed`: from the start (the EndPoint asks for it on CPython,
        # where a scan is bytecode, a step per record: finding the record of
        # a notification among a gateway shard's 32 observations took about
        # 3k instructions, where a dict lookup is one step in C).
        self._indexed = indexed
        self._tokens = {}
        self._tids = {}
        self._waiting = {}

    def has_token(self, token):
        """True iff a record in flight or queued is indexed under `token`."""
        if self._indexed:
            return token in self._tokens
        for rec in self.records:
            if rec._token == token:
                return True
        return False

    # -- sending ------------------------------------------------------------

    def send(self, message, remote):
        """EndPoint.send() once the message is checked: a new record, queued."""
        ep = self.ep
        recs = self.records
        if len(recs) >= ep.max_in_flight:
            raise CapacityError("%d transmissions already in flight" % len(recs))
        rec = TransmissionRecord(ep, message, remote)
        if message.code < 32:  # a request: to a group? (responses go to one peer)
            rec._multicast = is_multicast(remote)
        rec.transaction_id = ep.next_transaction_id()
        rec.next_event_time = ep.clock()  # pyright: ignore[reportAttributeAccessIssue]: the stubs give ticks a type of their own; they are ints
        self._queued(rec)
        return rec

    def _queued(self, rec):
        # `rec` joins the in-flight table, queued: in the table, its indexes
        # and the queue the next service() starts from.
        recs = self.records
        recs.append(rec)
        rec._state = _QUEUED
        self._queue.append(rec)
        self._walk = True
        if self._indexed:
            self._index(rec, True)
        elif len(recs) > _LINEAR:
            # Grown past what a scan handles well: indexed from now on.
            self._indexed = True
            for r in recs:
                self._index(r, True)
                if r._state == _WAIT_ACK:
                    k = _key(r.remote)
                    self._waiting[k] = self._waiting.get(k, 0) + 1
        if self.ep.on_queued is not None:
            self.ep.on_queued(rec)  # an event loop wakes for it

    def supersede(self, record, message):
        """EndPoint.supersede() once the message is checked."""
        state = record._state
        if state == _WAIT_ACK:
            if message.transaction_type != _CON:
                raise ValueError("only a CON takes the place of a CON awaiting its ACK")
            record._superseding = message
            return record
        if state == _WAIT_RESPONSE:
            raise ValueError("a request awaiting its response is not superseded")
        if state == _QUEUED and record in self.records:
            self._carry(record, message, record.transaction_id)
            return record
        if message.transaction_type == _CON and len(self.records) >= self.ep.max_in_flight:
            raise CapacityError("%d transmissions already in flight" % len(self.records))
        record._state = _DONE  # (a new record that never went out)
        self._renew(record, message, self.ep.clock())
        return record

    def _carry(self, rec, message, tid):
        # `rec` carries `message` under Message ID `tid` from now on (its
        # indexes follow: the token may differ).
        indexed = self._indexed and rec._state != _DONE
        if indexed:
            self._index(rec, False)
        rec.message = message
        rec._token = message.token
        rec.transaction_id = tid
        if indexed:
            self._index(rec, True)
        rec._superseding = None

    def _renew(self, rec, message, now):
        # `rec` carries `message` from now on, as a new transmission with a
        # new Message ID (supersede()): a NON is sent now and finished, a
        # CON queued for service() to start.
        self._carry(rec, message, self.ep.next_transaction_id())
        rec._gave_up = False
        if message.transaction_type == _NON:
            rec.created_time = rec.last_event_time = now
            rec.response_type = _NON
            rec.error = self._transmit(rec)
            self.finish(rec)
            return
        rec.next_event_time = now
        if rec._state == _DONE:
            self._queued(rec)
            return
        # In the table (acknowledged just now): back to the queue.
        self._deadline(rec, None)
        rec.next_event_time = now
        self._set_state(rec, _QUEUED)
        rec._blocked = False
        self._queue.append(rec)
        self._walk = True
        if self.ep.on_queued is not None:
            self.ep.on_queued(rec)

    def _index(self, rec, add):
        # Put `rec` in the token and message ID indexes, or take it out.
        tokens = self._tokens
        t = rec._token
        r = tokens.get(t)
        if add:
            self._tids[rec.transaction_id] = rec
            if r is None:
                tokens[t] = rec
            elif type(r) is list:
                r.append(rec)
            else:
                tokens[t] = [r, rec]  # a token shared (tokens of length 0, say)
            return
        if self._tids.get(rec.transaction_id) is rec:
            del self._tids[rec.transaction_id]
        if r is rec:
            del tokens[t]
        elif type(r) is list:
            r.remove(rec)
            if len(r) == 1:
                tokens[t] = r[0]

    def _outstanding(self, remote):
        # CON messages to `remote` still waiting for their ACK (for NSTART).
        if self._indexed:
            return self._waiting.get(_key(remote), 0)
        n = 0
        for rec in self.records:
            if rec._state == _WAIT_ACK and rec.remote == remote:
                n += 1
        return n

    def _set_state(self, rec, state):
        # Every change of state comes here, so the count of CONs awaiting
        # their ACK stays true.
        old = rec._state
        rec._state = state
        if old == _WAIT_ACK or state == _WAIT_ACK:
            if self._indexed:
                w = self._waiting
                k = _key(rec.remote)
                n = w.get(k, 0) + (1 if state == _WAIT_ACK else -1)
                if n:
                    w[k] = n
                else:
                    del w[k]
            if old == _WAIT_ACK and self._queue:
                self._walk = True  # an NSTART slot is free: a queued CON may go
                self._freed.append(rec.remote)

    def _transmit(self, rec):
        # Encode and send a record's message; returns an errno or None.
        return self.ep.transmit(rec.message, rec.transaction_id, rec.remote)

    def finish(self, rec):
        """`rec` leaves the table: no more retransmissions, no response
        matched (TransmissionRecord.cancel())."""
        if rec._state != _DONE:
            if rec._state == _QUEUED and rec in self._queue:
                self._queue.remove(rec)
            self._set_state(rec, _DONE)
            self._deadline(rec, None)
            self.records.remove(rec)
            if self._indexed:
                self._index(rec, False)

    def _deadline(self, rec, t):
        # Give `rec` the deadline `t` (None: none); service() watches it.
        rec.next_event_time = t
        if t is None:
            if rec._timer:
                rec._timer = False
                self._timers.remove(rec)
            return
        if not rec._timer:
            rec._timer = True
            self._timers.append(rec)
        if self._due is None or ticks_diff(t, self._due) < 0:
            self._due = t

    def service(self, now):
        """Transmit what is due; return ms until the next timed event (or -1).
        Cheap when nothing is: process() calls it every round."""
        wait = -1
        due = self._due
        if due is not None and ticks_diff(due, now) <= 0:
            wait = self._expire(now)
            self._due = due = ticks_add(now, wait) if wait >= 0 else None
        if self._walk or self._walked_nstart != self.ep.nstart:
            self._start_queued(now)
            due = self._due
        if due is None:
            return -1
        wait = ticks_diff(due, now)
        return wait if wait > 0 else 0

    def _expire(self, now):
        # A deadline passed: retransmit or give up what is due; returns ms
        # until the next deadline (-1: none).
        wait = -1
        timers = self._timers
        i = 0
        while i < len(timers):
            rec = timers[i]
            if ticks_diff(rec.next_event_time, now) <= 0:
                if rec._state == _WAIT_ACK and rec.remaining_attempts > 0:
                    self._again(rec, now)
                else:
                    self._give_up(rec)
                    continue  # it left the list: index i is the next record
            d = ticks_diff(rec.next_event_time, now)
            if wait < 0 or d < wait:
                wait = d if d > 0 else 0
            i += 1
        return wait

    def _again(self, rec, now):
        # A retransmission (RFC 7252 §4.2: the timeout doubles).
        rec.remaining_attempts -= 1
        rec._timeout_ms *= 2
        rec.last_event_time = now
        rec.next_event_time = ticks_add(now, rec._timeout_ms)
        if rec._superseding is not None:
            # supersede(): the newer message goes out in this one's place, on
            # its counter and timeout.
            self._carry(rec, rec._superseding, self.ep.next_transaction_id())
        rec.error = self._transmit(rec)

    def _give_up(self, rec):
        # Its last wait is over: a CON unacknowledged, or a response that
        # never came.
        rec._gave_up = rec._state == _WAIT_ACK
        self.timed_out += 1
        self.finish(rec)
        if rec._gave_up and self.ep.on_unacknowledged is not None:
            self.ep.on_unacknowledged(rec)

    def _start_queued(self, now):
        # New records, an NSTART slot freed (maybe just now, by a CON that
        # gave up), or nstart changed: first transmissions, each that NSTART
        # allows.
        self._walk = False
        freed = self._freed
        again = self._walked_nstart != self.ep.nstart
        self._walked_nstart = self.ep.nstart
        queue = self._queue
        i = 0
        while i < len(queue):
            rec = queue[i]
            if rec._blocked and not again and rec.remote not in freed:
                i += 1  # still held back: its peer freed no slot
            elif (rec.message.transaction_type == _CON
                    and self._outstanding(rec.remote) >= self._walked_nstart):
                rec._blocked = True
                i += 1  # NSTART: wait for an ACK to free a slot
            else:
                del queue[i]
                self._start(rec, now)
        del freed[:]

    def _start(self, rec, now):
        # First transmission of a queued record (already off the queue).
        ep = self.ep
        rec.created_time = now
        rec.last_event_time = now
        rec.error = self._transmit(rec)
        if rec.error == _EMSGSIZE or rec.error == _EINVAL:
            self.finish(rec)  # cannot go out at all; `error` says why
        elif rec.message.transaction_type == _CON and not rec._multicast:
            span = int(ep.ack_timeout_ms * (ep.ack_random_factor - 1))
            rec._timeout_ms = ep.ack_timeout_ms + ((span * ep.rand(16)) >> 16)
            rec.remaining_attempts = ep.max_retransmit
            self._set_state(rec, _WAIT_ACK)
            self._deadline(rec, ticks_add(now, rec._timeout_ms))
        elif 1 <= rec.message.code <= 31:
            # A NON request (or a CON to a multicast group, sent once):
            # responses are matched by token until NON_LIFETIME has passed.
            rec.response_type = _NON
            self._set_state(rec, _WAIT_RESPONSE)
            self._deadline(rec, ticks_add(now, ep.non_lifetime_ms))
        else:
            rec.response_type = _NON
            self.finish(rec)

    def next_event_ms(self, now):
        """EndPoint.next_event_ms() for this table."""
        # (After a walk every record still queued is held back by NSTART,
        # until a slot frees, a record joins or nstart changes: _walk then.)
        if self._walk or self._walked_nstart != self.ep.nstart:
            for rec in self._queue:
                if (rec.message.transaction_type != _CON
                        or self._outstanding(rec.remote) < self.ep.nstart):
                    return 0
        wait = -1
        for rec in self._timers:
            d = ticks_diff(rec.next_event_time, now)
            if d <= 0:
                return 0
            if wait < 0 or d < wait:
                wait = d
        return wait

    # -- what arrives for the table ------------------------------------------

    def acknowledged(self, rx):
        """The record an ACK or RST `rx` is for (its Message ID and remote,
        sent and not merely queued), or None."""
        tid = rx.transaction_id
        if self._indexed:
            r = self._tids.get(tid)
            if r is not None and r.remote == rx.remote and r._state != _QUEUED:
                return r
            return None
        for r in self.records:
            if r.transaction_id == tid and r.remote == rx.remote and r._state != _QUEUED:
                return r
        return None

    def acknowledge(self, rec, rx, now):
        """A valid ACK or RST `rx` for `rec` (acknowledged()): returns `rx`
        for the application, or None when there is nothing to tell it (a
        second ACK). `rx` is kept (ReceptionRecord.keep()) by the caller."""
        rx.pertains_to = rec
        rec.last_event_time = now
        if rx.message.transaction_type == _RST:
            rec.response_type = _RST
            rec.response = rec.response or rx
            self.finish(rec)
            return rx
        if rec._state != _WAIT_ACK:
            return None  # a second ACK for a CON already acknowledged
        rec.response_type = _ACK
        rec.remaining_attempts = 0
        if rx.message.code != 0 and rx.message.token == rec.message.token:
            self.response(rec, rx, now)  # piggybacked response
        elif 1 <= rec.message.code <= 31:
            # Empty ACK to a request: the response comes separately.
            self._set_state(rec, _WAIT_RESPONSE)
            self._deadline(rec, ticks_add(now, self.ep.exchange_lifetime_ms))
        elif rec._superseding is not None:
            self._renew(rec, rec._superseding, now)  # supersede(): its turn now
        else:
            self.finish(rec)
        return rx

    def response(self, rec, rx, now):
        """`rx`, a response on `rec`'s token, taken in (kept by the caller)."""
        rx.pertains_to = rec
        rec.last_event_time = now
        rec.response = rec.response or rx  # the first one
        responses = rec.responses
        if not responses:
            rec.responses = [rx]
        else:
            if len(responses) >= _MAX_RESPONSES:
                del responses[0]
            responses.append(rx)
        if rec._state == _WAIT_ACK:
            # A separate response can overtake the lost ACK: it acknowledges.
            rec.response_type = _ACK
            rec.remaining_attempts = 0
        if rec._multicast:
            # Every group member may answer (RFC 7252 §8.2): keep collecting
            # until the NON_LIFETIME set when the request went out.
            self._set_state(rec, _WAIT_RESPONSE)
        elif rec.several_responses:
            # More responses come on this token (notifications, say) until
            # the sender cancels the record. (Only the first finds it with a
            # deadline, its ACK's or its response's: from the second on the
            # record waits for them already, and nothing changes.)
            if rec._timer:
                self._set_state(rec, _WAIT_RESPONSE)
                self._deadline(rec, None)
        else:
            self.finish(rec)

    def by_token(self, token, remote):
        """The request in flight with this token (and remote, unless the
        request went to a multicast group: answers come from unicast), or
        None."""
        recs = self.records
        if self._indexed:
            r = self._tokens.get(token)
            if r is None:
                return None
            recs = r if type(r) is list else (r,)
        for rec in recs:
            if (rec._token == token and rec._state != _QUEUED and 1 <= rec.message.code <= 31
                    and (remote is None or rec.remote == remote or rec._multicast)):
                return rec
        return None


def _key(remote):
    # `remote` as a dict key: an address may come as a bytearray, which is
    # not hashable (raw sockaddr bytes on the MicroPython unix port).
    return bytes(remote) if type(remote) is bytearray else remote


def is_multicast(address):
    """True iff `address` is an IPv4 or IPv6 multicast address.

    Takes ('host', port) tuples (IPv4 or IPv6) and the raw sockaddr bytes of
    the MicroPython unix port (16 bytes for IPv4, 28 for IPv6). Allocates
    nothing for a str host (every send asks): characters are read one by one.
    """
    t = type(address)
    if t is bytes or t is bytearray:
        if len(address) == 16:  # sockaddr_in: family, port, 4-byte address
            return 224 <= address[4] <= 239
        if len(address) >= 24:  # sockaddr_in6: family, port, flowinfo, address
            return address[8] == 0xFF
        return False
    host = address[0] if t is tuple else address
    if type(host) is bytes:
        host = host.decode("utf-8")
    if ":" in host:  # IPv6: ff00::/8
        return len(host) > 1 and host[0] in "fF" and host[1] in "fF"
    # IPv4: the first number of the dotted quad is 224 to 239.
    n = 0
    for i in range(len(host)):
        c = ord(host[i])
        if c == 46:  # "."
            return i > 0 and 224 <= n <= 239
        if not 48 <= c <= 57 or n > 255:
            return False
        n = n * 10 + c - 48
    return len(host) > 0 and 224 <= n <= 239
