"""The CoAP message layer (RFC 7252 §4) behind coapy's polling connection API.

An EndPoint owns one UDP socket (plus any registered multicast sockets), the
transmissions in flight and a cache of recently received messages. Nothing
happens outside `process(timeout_ms)`: it sends what is due, retransmits,
expires, and receives at most one message for the application.

Answered here without bothering the application (RFC 7252 §4.2, §4.3, §4.5):
a CON ping gets RST; a duplicate CON gets the reply already sent; a duplicate
NON is dropped; a response whose token matches no request gets RST (CON) or
is dropped (NON); an ACK or RST matching nothing is ignored; a malformed CON
gets RST; anything else malformed, or of another CoAP version, is dropped.

Clock, random source, socket factory and poller are arguments so tests can run
deterministically, on CPython and in the MicroPython VM alike.
"""
try:
    import socket
except ImportError:  # the WebAssembly port: pass socket_factory/poll_factory
    socket = None

from ._compat import IS_MICROPYTHON, const, ticks_add, ticks_diff, ticks_ms
from .message import DecodeError, Message, encode_empty_into

# coapy's connection module exports these; re-exported here on purpose.
__all__ = ("Message", "EndPoint", "TransmissionRecord", "ReceptionRecord",
           "is_multicast", "DecodeError", "CapacityError")

_CON = const(0)
_NON = const(1)
_ACK = const(2)
_RST = const(3)
_POLLIN = const(1)
_EMSGSIZE = const(90)  # Linux's errno for "message too long"
_EINVAL = const(22)  # and for an address the socket cannot send to
_BURST = const(64)  # datagrams one timed process() call may swallow
_LINEAR_DEDUP = const(32)  # dedup caches up to this size are scanned

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

    several_responses = False
    _superseding = None  # the Message EndPoint.supersede() put in this one's place

    def __init__(self, end_point, message, remote):
        self.end_point = end_point
        self.message = message
        self.remote = remote
        self.transaction_id = None  # type: int | None
        self.created_time = None  # first transmission
        self.last_event_time = None
        self.next_event_time = None  # type: int | None
        self.remaining_attempts = 0
        self.response = None
        self.responses = []  # bounded: the last few (see _MAX_RESPONSES)
        self.response_type = None
        self.error = None  # errno of the last failed sendto, if any
        self._state = _QUEUED
        self._timeout_ms = 0
        self._gave_up = False
        self._multicast = False

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
        self.end_point._finish(self)


_MAX_RESPONSES = const(4)


class ReceptionRecord:
    """A received message (coapy's API). `ack()` and `reset()` answer it; the
    answer is remembered so a duplicate of this message gets it again."""

    # Class-level defaults, so a record sets four attributes, not eight.
    pertains_to = None
    sock = None  # the socket it arrived on (a registered multicast one?)
    _reply = None  # the Message sent in answer, or _ACK/_RST if empty
    _expires = 0

    def __init__(self, end_point, packed, remote):
        self.end_point = end_point
        self.remote = remote
        self.transaction_id, self.message = Message.decode(packed)

    def ack(self, message=None):
        """Acknowledge this CON: an empty ACK, or `message` piggybacked.

        The message's type is set to ACK and its token to the request's when
        it has none.
        """
        if self.message.transaction_type != _CON:
            raise ValueError("only a CON message is acknowledged")
        ep = self.end_point
        if message is None:
            self._reply = _ACK
            ep._send_empty(_ACK, self.transaction_id, self.remote)
            return
        message.make_ack()
        if not message.token:
            message.token = self.message.token
        if ep._transmit(message, self.transaction_id, self.remote) == _EMSGSIZE:
            ep._check_size(message)  # too large: raises, saying how large
            message.encode(self.transaction_id)  # else raises what is wrong
        self._reply = message  # remembered only once it could be sent

    def reset(self):
        """Answer this message with RST (it could not be processed)."""
        self._reply = _RST
        self.end_point._reply(self)


def _random_bits(nbits):
    import random

    return random.getrandbits(nbits)


class EndPoint:
    """A CoAP endpoint over UDP (coapy's API), polled with process(timeout_ms).

    Transmission parameters (RFC 7252 §4.8) are per endpoint: slow links want
    a longer ack_timeout_ms. Bounds: `max_in_flight` transmissions tracked at
    once (send() raises CapacityError beyond it) and `dedup_size` received
    messages remembered for duplicate detection; the small defaults suit a
    board, a gateway raises them.
    """

    def __init__(
        self,
        address_family=2,  # AF_INET, SOCK_DGRAM, IPPROTO_UDP as in coapy:
        socket_type=2,  # numbers, so this module imports where there is no
        socket_proto=17,  # socket module (tests in the WebAssembly VM)
        ack_timeout_ms=2000,
        ack_random_factor=1.5,
        max_retransmit=4,
        nstart=1,
        max_in_flight=8,
        dedup_size=16,
        max_message_size=1152,
        token_length=4,
        clock=None,
        rand=None,
        socket_factory=None,
        poll_factory=None,
    ):
        if not 0 <= token_length <= 8:
            raise ValueError("token_length is 0 to 8")
        self.ack_timeout_ms = ack_timeout_ms
        self.ack_random_factor = ack_random_factor
        self.max_retransmit = max_retransmit
        self.nstart = nstart
        self.max_in_flight = max_in_flight
        self.dedup_size = dedup_size
        self.max_message_size = max_message_size
        self.token_length = token_length
        # Public so the layers above (Server, Client) share one time base and
        # one random source with their EndPoint, as the tests inject them.
        self.clock = clock or ticks_ms
        self.rand = rand or _random_bits
        make_socket = socket_factory or socket.socket  # pyright: ignore[reportOptionalMemberAccess]: no socket module: socket_factory= is given
        sock = make_socket(address_family, socket_type, socket_proto)
        sock.setblocking(False)
        self._socket = sock
        if poll_factory is None:
            import select

            poll_factory = select.poll
        self._poller = poll_factory()
        # MicroPython's ipoll yields one reused tuple instead of building a
        # list; its bound method is taken once here, since making it on every
        # wait would allocate on every process() call.
        self._ipoll = getattr(self._poller, "ipoll", None)
        self._socks = {}  # fileno -> socket, for CPython's poll results
        self._nsocks = 0
        self._sockets = []  # every socket received on, the primary first (sockets)
        self._register(sock)
        self._tx = bytearray(max_message_size)
        self._txv = memoryview(self._tx)
        self._records = []  # TransmissionRecords in flight, oldest first
        self._dedup = []  # ReceptionRecords remembered, a ring of dedup_size
        self._dedup_next = 0
        # A gateway's large cache gets a (tid, remote) index; a board's small
        # one is scanned, which allocates nothing (a key tuple would).
        self._dedup_index = {} if dedup_size > _LINEAR_DEDUP else None
        self._busy = False  # the last process() call received something
        self._timed_out = 0  # records finished by their own timers
        self._lifetimes = None  # the parameters, EXCHANGE_LIFETIME, NON_LIFETIME
        self._tid = self.rand(16)
        self.on_unacknowledged = None  # callable(record) when a CON gives up
        # callable(rx) for an empty RST that matches no record in flight: an
        # RST to a NON we sent, whose record is already finished (a server
        # that notifies observers learns this way that one has gone).
        self.on_unmatched_reset = None
        # callable(remote, reason) when a datagram is dropped for a reason
        # the application should hear of: larger than max_message_size, or
        # malformed (`reason` says which, in words). The Client sets it to
        # say why a request timed out; called on the drop path only.
        self.on_dropped = None
        # callable(record) when send() has queued a message: process()
        # transmits it, so an event loop driving this EndPoint wakes up.
        self.on_queued = None
        # Counters, for monitoring (and the abuse test).
        self.dropped = 0  # datagrams ignored: malformed, unmatched, oversized
        self.duplicates = 0  # duplicates answered or dropped

    # -- derived transmission parameters (RFC 7252 §4.8.2) ------------------

    @property
    def max_transmit_span_ms(self):
        return int(self.ack_timeout_ms * ((1 << self.max_retransmit) - 1)
                   * self.ack_random_factor)

    @property
    def exchange_lifetime_ms(self):
        # MAX_TRANSMIT_SPAN + 2 * MAX_LATENCY (100 s) + PROCESSING_DELAY
        return self.max_transmit_span_ms + 200000 + self.ack_timeout_ms

    @property
    def non_lifetime_ms(self):
        return self.max_transmit_span_ms + 100000

    # -- table sizes (read-only; for monitoring and tests) --------------------

    @property
    def in_flight(self):
        """How many transmissions are in flight (queued, or awaiting an ACK
        or a response): at most max_in_flight."""
        return len(self._records)

    @property
    def dedup_count(self):
        """How many received messages are remembered for duplicate
        detection: at most dedup_size."""
        return len(self._dedup)

    # -- sockets ------------------------------------------------------------

    @property
    def socket(self):
        """The primary socket; every answer leaves from it."""
        return self._socket

    def bind(self, address):
        """Bind the primary socket: ('host', port) or an address as returned
        by getaddrinfo (raw bytes on the MicroPython unix port)."""
        self._socket.bind(resolve(address))

    def register(self, sock):
        """Also receive on `sock` (e.g. a multicast socket)."""
        sock.setblocking(False)
        self._register(sock)

    @property
    def sockets(self):
        """Every socket this EndPoint receives on, the primary one first
        (then those added by register()): what an event loop waits on.
        Read-only."""
        return self._sockets

    def _register(self, sock):
        self._nsocks += 1
        self._sockets.append(sock)
        self._poller.register(sock, _POLLIN)
        fileno = getattr(sock, "fileno", None)
        if fileno is not None:
            self._socks[fileno()] = sock

    def close(self):
        for s in self._socks.values():
            s.close()
        self._socks = {}
        self._socket.close()

    # -- identifiers --------------------------------------------------------

    def next_transaction_id(self):
        """Message IDs are sequential from a random start (RFC 7252 §4.4)."""
        self._tid = (self._tid + 1) & 0xFFFF
        return self._tid

    def new_token(self):
        """A random token of token_length bytes, unused by any request in
        flight or queued."""
        while True:
            t = bytearray(self.token_length)
            for i in range(len(t)):
                t[i] = self.rand(8)
            t = bytes(t)
            if not t:
                return t
            for rec in self._records:
                if rec.message.token == t:
                    break
            else:
                return t

    # -- sending ------------------------------------------------------------

    def send(self, message, remote):
        """Queue `message` (CON or NON) for `remote`; process() transmits it."""
        if message.transaction_type > _NON:
            raise ValueError("send CON or NON; answer with ReceptionRecord.ack/reset")
        self._check_size(message)
        if len(self._records) >= self.max_in_flight:
            raise CapacityError("%d transmissions already in flight" % len(self._records))
        rec = TransmissionRecord(self, message, remote)
        if message.code < 32:  # a request: to a group? (responses go to one peer)
            rec._multicast = is_multicast(remote)
        rec.transaction_id = self.next_transaction_id()
        rec.next_event_time = self.clock()  # pyright: ignore[reportAttributeAccessIssue]: the stubs give ticks a type of their own; they are ints
        self._records.append(rec)
        if self.on_queued is not None:
            self.on_queued(rec)
        return rec

    def supersede(self, record, message):
        """Send `message` in place of `record`: a newer state of what
        `record` carried, such as the next notification to an observer (RFC
        7641 §4.5.2). Returns `record`, which now carries `message`.

        While `record` is a CON awaiting its ACK, `message` takes its place
        but keeps its retransmission counter and timeout: it goes out, with a
        new Message ID, at the record's next retransmission, so however often
        a record is superseded, a peer that acknowledges nothing makes it
        give up after MAX_TRANSMIT_SPAN. An ACK of the message in transit
        (the peer is there) sends `message` at once, as a new transmission;
        an RST or the last timeout ends both. Only a CON takes a CON's place.

        Otherwise (`record` finished, or made with TransmissionRecord(end_point,
        message, remote) and never sent) `message` is a new transmission on
        the same record, with a new Message ID: a NON goes out at once and
        takes no place in the in-flight table; a CON is queued as send()
        queues it (CapacityError when the table is full). A record still
        queued just carries `message` when its turn comes. Raises ValueError
        as send() does, and for a request awaiting its response."""
        if message.transaction_type > _NON:
            raise ValueError("send CON or NON; answer with ReceptionRecord.ack/reset")
        self._check_size(message)
        state = record._state
        if state == _WAIT_ACK:
            if message.transaction_type != _CON:
                raise ValueError("only a CON takes the place of a CON awaiting its ACK")
            record._superseding = message
            return record
        if state == _WAIT_RESPONSE:
            raise ValueError("a request awaiting its response is not superseded")
        recs = self._records
        if state == _QUEUED and record in recs:
            record.message = message
            return record
        if message.transaction_type == _CON and len(recs) >= self.max_in_flight:
            raise CapacityError("%d transmissions already in flight" % len(recs))
        record._state = _DONE  # (a new record that never went out)
        self._renew(record, message, self.clock())
        return record

    def _renew(self, rec, message, now):
        # `rec` carries `message` from now on, as a new transmission with a
        # new Message ID (supersede()): a NON is sent now and finished, a
        # CON queued for _service() to start.
        rec.message = message
        rec._superseding = None
        rec._gave_up = False
        rec.transaction_id = self.next_transaction_id()
        if message.transaction_type == _NON:
            rec.created_time = rec.last_event_time = now
            rec.response_type = _NON
            rec.error = self._transmit(message, rec.transaction_id, rec.remote)
            self._finish(rec)
            return
        if rec._state == _DONE:
            self._records.append(rec)
        rec._state = _QUEUED
        rec.next_event_time = now
        if self.on_queued is not None:
            self.on_queued(rec)  # as send() does: an event loop wakes for it

    def _check_size(self, message):
        if message.wire_size() > self.max_message_size:
            raise ValueError("message of %d bytes exceeds max_message_size %d"
                             % (message.wire_size(), self.max_message_size))

    def _transmit(self, message, tid, remote):
        # Encode and send; returns an errno or None. A board encodes into the
        # endpoint's buffer (no allocation); CPython builds bytes, faster there.
        try:
            if IS_MICROPYTHON:
                data = self._txv[:message.encode_into(self._tx, tid)]
            else:
                data = message.encode(tid)
                if len(data) > self.max_message_size:
                    return _EMSGSIZE
        except ValueError:
            # Larger than the buffer (grown since send() checked?): never sent.
            return _EMSGSIZE
        try:
            self._socket.sendto(data, remote)
        except OSError as e:
            return e.args[0]
        except (TypeError, ValueError):
            # Not an address this socket can send to (say an IPv6 tuple on
            # an IPv4 socket): it never will be, so the record is finished.
            return _EINVAL
        return None

    def _send_empty(self, mtype, tid, remote):
        # An empty ACK or RST, written straight into the buffer (no Message).
        try:
            self._socket.sendto(self._txv[:encode_empty_into(self._tx, mtype, tid)], remote)
        except (OSError, TypeError, ValueError):
            pass  # the peer will retransmit, or did not deserve an answer

    def _reply(self, rx):
        reply = rx._reply
        if isinstance(reply, Message):
            self._transmit(reply, rx.transaction_id, rx.remote)
        else:
            self._send_empty(reply, rx.transaction_id, rx.remote)

    def _outstanding(self, remote):
        # CON messages to `remote` still waiting for their ACK (for NSTART).
        n = 0
        for rec in self._records:
            if rec._state == _WAIT_ACK and rec.remote == remote:
                n += 1
        return n

    def _start(self, rec, now):
        # First transmission of a queued record.
        m = rec.message
        rec.created_time = now
        rec.last_event_time = now
        rec.error = self._transmit(m, rec.transaction_id, rec.remote)
        if rec.error == _EMSGSIZE or rec.error == _EINVAL:
            self._finish(rec)  # cannot go out at all; `error` says why
            return
        if m.transaction_type == _CON and not rec._multicast:
            span = int(self.ack_timeout_ms * (self.ack_random_factor - 1))
            rec._timeout_ms = self.ack_timeout_ms + ((span * self.rand(16)) >> 16)
            rec.remaining_attempts = self.max_retransmit
            rec._state = _WAIT_ACK
            rec.next_event_time = ticks_add(now, rec._timeout_ms)
        elif 1 <= m.code <= 31:
            # A NON request (or a CON to a multicast group, sent once):
            # responses are matched by token until NON_LIFETIME has passed.
            rec.response_type = _NON
            rec._state = _WAIT_RESPONSE
            rec.next_event_time = ticks_add(now, self.non_lifetime_ms)
        else:
            rec.response_type = _NON
            self._finish(rec)

    def _finish(self, rec):
        if rec._state != _DONE:
            rec._state = _DONE
            rec.next_event_time = None
            self._records.remove(rec)

    def _service(self, now):
        """Transmit what is due; return ms until the next timed event (or -1)."""
        wait = -1
        recs = self._records
        i = 0
        while i < len(recs):
            rec = recs[i]
            if rec._state == _QUEUED:
                if (rec.message.transaction_type == _CON
                        and self._outstanding(rec.remote) >= self.nstart):
                    i += 1  # NSTART: wait for an ACK to free a slot
                    continue
                self._start(rec, now)
            elif rec.next_event_time is not None and ticks_diff(rec.next_event_time, now) <= 0:
                if rec._state == _WAIT_ACK and rec.remaining_attempts > 0:
                    rec.remaining_attempts -= 1
                    rec._timeout_ms *= 2
                    rec.last_event_time = now
                    rec.next_event_time = ticks_add(now, rec._timeout_ms)
                    if rec._superseding is not None:
                        # supersede(): the newer message goes out in this
                        # one's place, on its counter and timeout.
                        rec.message = rec._superseding
                        rec._superseding = None
                        rec.transaction_id = self.next_transaction_id()
                    rec.error = self._transmit(rec.message, rec.transaction_id, rec.remote)
                else:
                    rec._gave_up = rec._state == _WAIT_ACK
                    self._timed_out += 1
                    self._finish(rec)
                    if rec._gave_up and self.on_unacknowledged is not None:
                        self.on_unacknowledged(rec)
            if rec._state == _DONE:
                continue  # removed from the list: index i is the next record
            if rec.next_event_time is not None:
                d = ticks_diff(rec.next_event_time, now)
                if d < 0:
                    d = 0
                if wait < 0 or d < wait:
                    wait = d
            i += 1
        return wait

    def next_event_ms(self, now):
        """ms from `now` (ticks) until process() has something to do
        without a datagram arriving: a first transmission (0), a
        retransmission, a wait for a response that expires; -1 for nothing.
        A CON held back by NSTART has no time of its own: the ACK that frees
        its slot, or the timer of the CON holding it, comes first. Read-only:
        how long an event loop may sleep between datagrams."""
        wait = -1
        for rec in self._records:
            if rec._state == _QUEUED:
                if (rec.message.transaction_type == _CON
                        and self._outstanding(rec.remote) >= self.nstart):
                    continue
                return 0
            t = rec.next_event_time
            if t is not None:
                d = ticks_diff(t, now)
                if d <= 0:
                    return 0
                if wait < 0 or d < wait:
                    wait = d
        return wait

    # -- receiving ----------------------------------------------------------

    def process(self, timeout_ms=None):
        """Transmit and retransmit what is due, then wait at most timeout_ms
        (None: no limit) for one message for the application.

        Returns its ReceptionRecord, or None when the time is up (with no
        limit: when a CON gave up or a wait for a response expired, so the
        application gets to look). Messages the message layer answers itself
        (pings, duplicates, ...) do not end the wait.
        """
        clock = self.clock
        start = now = clock()
        swallowed = 0
        while True:
            finished = self._timed_out
            wait = self._service(now) if self._records else -1
            if timeout_ms is None and self._timed_out != finished:
                # With no time limit, a CON giving up (or a wait expiring)
                # ends the call: otherwise a quiet network would hide it forever.
                return None
            if timeout_ms is not None:
                left = int(timeout_ms) - ticks_diff(now, start)
                if left < 0:
                    left = 0
                if wait < 0 or left < wait:
                    wait = left
            sock = self._wait(wait)
            now = clock()
            if sock is None:
                if timeout_ms is not None and ticks_diff(now, start) >= timeout_ms:
                    return None
                continue
            rx = self._receive(sock, now)
            if rx is not None:
                return rx
            # Swallowed by the message layer (a ping, a duplicate, junk): keep
            # going while data is ready, but a flood must not hold the
            # application's loop past its timeout, nor process(0) for long.
            swallowed += 1
            if timeout_ms is not None and (
                    ticks_diff(now, start) > timeout_ms or swallowed >= _BURST):
                return None

    def _wait(self, wait_ms):
        # One readable socket, or None when wait_ms (-1: forever) passes.
        if self._busy:
            # Under load, read the socket straight away: a datagram is likely
            # waiting, and the poll system call would cost as much as the
            # read. (Only with one socket, so none is starved.)
            self._busy = False
            return self._socket
        ipoll = self._ipoll
        if ipoll is not None:
            for ev in ipoll(wait_ms):
                return ev[0]
            return None
        for ev in self._poller.poll(wait_ms):
            s = ev[0]
            return self._socks[s] if isinstance(s, int) else s  # upy-ok: fd or socket
        return None

    def _receive(self, sock, now):
        try:
            data, remote = sock.recvfrom(self.max_message_size + 1)
        except OSError:  # EAGAIN, or an ICMP error reported on the socket
            return None
        self._busy = self._nsocks == 1
        if len(data) > self.max_message_size:
            self.dropped += 1  # truncated: cannot be trusted
            if self.on_dropped is not None:
                self.on_dropped(remote, "larger than max_message_size (%d bytes)"
                                % self.max_message_size)
            return None
        try:
            rx = ReceptionRecord(self, data, remote)
        except DecodeError as e:
            self.dropped += 1
            if self.on_dropped is not None:
                self.on_dropped(remote, "malformed (%s)" % (e,))
            if e.transaction_type == _CON and not e.bad_version:
                self._send_empty(_RST, e.transaction_id, remote)
            return None
        rx.sock = sock
        return self._dispatch(rx, now)

    def _dispatch(self, rx, now):
        m = rx.message
        mtype = m.transaction_type
        code = m.code
        if mtype >= _ACK:
            return self._on_ack_or_reset(rx, mtype, code, now)
        if code == 0:
            if mtype == _CON:  # a ping (RFC 7252 §4.3)
                self._send_empty(_RST, rx.transaction_id, rx.remote)
            else:
                self.dropped += 1
            return None
        if 32 <= code <= 63 or code >= 192:
            # Classes 1, 6 and 7 are reserved (RFC 7252 §12.1): reject.
            self.dropped += 1
            if mtype == _CON:
                self._send_empty(_RST, rx.transaction_id, rx.remote)
            return None
        old = self._find_duplicate(rx, now)
        if old is not None:
            self.duplicates += 1
            if mtype == _CON and old._reply is not None:
                self._reply(old)
            return None
        self._remember(rx, now)
        if code >= 64:
            rec = self._by_token(m.token, rx.remote)
            if rec is None:
                # Nobody asked: reject a CON, ignore a NON (RFC 7252 §5.3.2).
                self.dropped += 1
                if mtype == _CON:
                    rx.reset()
                return None
            self._response(rec, rx, now)
        return rx

    def _on_ack_or_reset(self, rx, mtype, code, now):
        tid = rx.transaction_id
        rec = None
        for r in self._records:
            if r.transaction_id == tid and r.remote == rx.remote and r._state != _QUEUED:
                rec = r
                break
        if rec is None or (mtype == _RST and code != 0) or code < 64 and code != 0 or code >= 192:
            self.dropped += 1  # matches nothing, or not a valid ACK/RST
            if rec is None and mtype == _RST and code == 0 and self.on_unmatched_reset is not None:
                self.on_unmatched_reset(rx)
            return None
        rx.pertains_to = rec
        rec.last_event_time = now
        if mtype == _RST:
            rec.response_type = _RST
            rec.response = rec.response or rx
            self._finish(rec)
            return rx
        if rec._state != _WAIT_ACK:
            return None  # a second ACK for a CON already acknowledged
        rec.response_type = _ACK
        rec.remaining_attempts = 0
        if code != 0 and rx.message.token == rec.message.token:
            self._response(rec, rx, now)  # piggybacked response
        elif 1 <= rec.message.code <= 31:
            # Empty ACK to a request: the response comes separately.
            rec._state = _WAIT_RESPONSE
            rec.next_event_time = ticks_add(now, self.exchange_lifetime_ms)
        elif rec._superseding is not None:
            self._renew(rec, rec._superseding, now)  # supersede(): its turn now
        else:
            self._finish(rec)
        return rx

    def _response(self, rec, rx, now):
        rx.pertains_to = rec
        rec.last_event_time = now
        if rec.response is None:
            rec.response = rx
        responses = rec.responses
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
            rec._state = _WAIT_RESPONSE
        elif rec.several_responses:
            # More responses come on this token (notifications, say) until
            # the sender cancels the record.
            rec._state = _WAIT_RESPONSE
            rec.next_event_time = None
        else:
            self._finish(rec)

    def _by_token(self, token, remote):
        # The request in flight with this token (and remote, unless the
        # request went to a multicast group: answers come from unicast).
        for rec in self._records:
            if (rec.message.token == token and rec._state != _QUEUED
                    and 1 <= rec.message.code <= 31
                    and (remote is None or rec.remote == remote or rec._multicast)):
                return rec
        return None

    # -- duplicate detection (RFC 7252 §4.5) -------------------------------

    def _find_duplicate(self, rx, now):
        tid = rx.transaction_id
        index = self._dedup_index
        if index is not None:
            old = index.get((tid, rx.remote))
        else:
            old = None
            for e in self._dedup:
                if e.transaction_id == tid and e.remote == rx.remote:
                    old = e
                    break
        if old is not None and ticks_diff(old._expires, now) > 0:
            return old
        return None

    def _remember(self, rx, now):
        # A ring: the slot reused is the oldest one. Entries live for
        # EXCHANGE_LIFETIME (CON) or NON_LIFETIME (NON), or until dedup_size
        # newer messages have pushed them out.
        life = self._lifetimes
        if (life is None or life[0] != self.ack_timeout_ms
                or life[1] != self.ack_random_factor or life[2] != self.max_retransmit):
            # Derived once (float arithmetic, two properties), not per message;
            # made again if the application retunes the parameters.
            life = self._lifetimes = (self.ack_timeout_ms, self.ack_random_factor,
                                      self.max_retransmit, self.exchange_lifetime_ms,
                                      self.non_lifetime_ms)
        rx._expires = ticks_add(now, life[3] if rx.message.transaction_type == _CON else life[4])
        if self.dedup_size <= 0:
            return
        d = self._dedup
        index = self._dedup_index
        if len(d) < self.dedup_size:
            d.append(rx)
        else:
            victim = d[self._dedup_next]
            if index is not None:
                key = (victim.transaction_id, victim.remote)
                if index.get(key) is victim:
                    del index[key]
            d[self._dedup_next] = rx
            self._dedup_next = (self._dedup_next + 1) % self.dedup_size
        if index is not None:
            index[(rx.transaction_id, rx.remote)] = rx


# -- addresses -------------------------------------------------------------


def resolve(address):
    """('host', port) -> the address form this platform's sockets take.

    A tuple with an IP literal or host name goes through getaddrinfo (the
    MicroPython unix port wants raw sockaddr bytes); anything else is passed
    through unchanged.
    """
    if isinstance(address, tuple):
        return socket.getaddrinfo(address[0], address[1])[0][-1]  # pyright: ignore[reportOptionalMemberAccess]: tuples come only where there are sockets
    return address


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
