"""The CoAP message layer (RFC 7252 §4) behind coapy's polling connection API.

An EndPoint owns one UDP socket (plus any registered multicast sockets), the
transmissions in flight and a cache of recently received messages. Nothing
happens outside `process(timeout_ms)`: it sends what is due, retransmits,
expires, and receives at most one message for the application.

The transmissions in flight (CONs retransmitted until acknowledged,
requests waiting for their response, NSTART) are a table of their own,
coapy_micro/transactions.py, which the EndPoint makes at its first send():
a node that only answers requests never loads that code. TransmissionRecord,
CapacityError and is_multicast live there and are still importable from here.

Answered here without bothering the application (RFC 7252 §4.2, §4.3, §4.5):
a CON ping gets RST; a duplicate CON gets the reply already sent; a duplicate
NON is dropped; a response whose token matches no request gets RST (CON) or
is dropped (NON); an ACK or RST matching nothing is ignored; a malformed CON
gets RST; anything else malformed, or of another CoAP version, is dropped.
A datagram that cannot be taken in for want of memory is dropped and
counted (`memory_errors`): MemoryError never leaves process().

What a request served this way costs on a board: recvfrom's result (the one
allocation no code can avoid), and a memoryview of the reply when its length
differs from the last one's. The Server takes requests in a record and
Message the EndPoint reuses (process(reuse=True)), answers them straight
into the EndPoint's buffer (ReceptionRecord.respond), and the reply is
remembered as bytes in a buffer its slot of the duplicate cache keeps.

Clock, random source, socket factory and poller are arguments so tests can run
deterministically, on CPython and in the MicroPython VM alike.
"""
import gc

try:
    import socket
except ImportError:  # the WebAssembly port: pass socket_factory/poll_factory
    socket = None

from ._compat import IS_MICROPYTHON, const, ticks_add, ticks_diff, ticks_ms
from .message import DecodeError, Message, encode_empty_into, encode_reply_into

# coapy's connection module exports these; re-exported here on purpose
# (the three of transactions.py through __getattr__ below).
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
# The duplicate cache's tables up to this size are scanned: on a board's
# small tables a scan in C (`in`, list.count) allocates nothing, where a dict
# keyed by (id, remote) builds a key per message. Larger ones (a gateway's)
# get an index.
_LINEAR = const(32)
_GEN_WRAP = const(0x1FFFFFFF)  # dedup generations stay small ints on a board
# After a read failed for want of memory: the buffer it is tried again with
# (a request of a path and a few options fits in it).
_SMALL_READ = const(128)
# The builtins the request path uses here, as names of this module: a
# builtin is looked for in the module's globals first, and MicroPython
# grows that table only once it is full, so each lookup walked on to a free
# slot (this module's 22 names in 23 slots); a name of the module is found
# in a step or two (server.py does the same, and says what it measured).
_len = len
_type = type
_int = int
_bytes = bytes
_bytearray = bytearray


def __getattr__(name):
    # TransmissionRecord, CapacityError and is_multicast live in
    # transactions.py, loaded with an EndPoint's first send(); still
    # importable from here. Called only for names not defined in this module.
    if name in ("TransmissionRecord", "CapacityError", "is_multicast"):
        from . import transactions

        return getattr(transactions, name)
    raise AttributeError(name)


class ReceptionRecord:
    """A received message (coapy's API). `ack()` and `reset()` answer it; the
    answer is remembered so a duplicate of this message gets it again.

    A record process() returns is the application's to keep. One that
    process(reuse=True) returns belongs to the EndPoint, which refills it on
    the next such call unless keep() was called (the Server keeps each
    request it holds on to: a deferred one, an observer's registration).
    """

    # Class-level defaults, so a record sets few attributes of its own.
    pertains_to = None
    sock = None  # the socket it arrived on, when not the primary one
    _entry = -1  # its generation in the duplicate cache (-1: not remembered)

    def __init__(self, end_point, packed, remote):
        self.end_point = end_point
        self.remote = remote
        # Message.decode(packed), without its (id, message) pair: a call
        # and a tuple the less per datagram.
        m = self.message = object.__new__(Message)
        self.transaction_id = m.decode_from(packed)

    def ack(self, message=None):
        """Acknowledge this CON: an empty ACK, or `message` piggybacked.

        The message's type is set to ACK and its token to the request's when
        it has none.
        """
        ep = self.end_point
        if message is None:
            if self.message.transaction_type != _CON:
                raise ValueError("only a CON is acknowledged")
            ep._send_empty(_ACK, self.transaction_id, self.remote)
            ep._dedup.reply(self._entry, _ACK)
            return
        # (make_ack() checks that the request is a CON, and gives the
        # message the request's token if it has none.)
        message.make_ack(self.message)
        data = ep._encode(message, self.transaction_id)
        if data is None:
            ep._check_size(message)  # too large: raises, saying how large
            message.encode(self.transaction_id)  # else raises what is wrong
            raise ValueError("message cannot be encoded")
        ep._sendto(data, self.remote)
        ep._dedup.reply(self._entry, data)  # remembered only once it could be sent

    def respond(self, code, payload=b"", options=b""):
        """Answer this request with a response made of its parts, written
        straight into the EndPoint's buffer (no Message): piggybacked on the
        ACK of a CON (and remembered for its duplicates), or a NON with a
        message ID of its own to a NON (sent at once; nothing waits for it).
        `options`: option bytes in wire form (message.encode_options());
        `payload`: bytes or str. False, and nothing sent, when the response
        is larger than max_message_size."""
        ep = self.end_point
        con = self.message.transaction_type == _CON
        tid = self.transaction_id if con else ep.next_transaction_id()
        n = encode_reply_into(ep._tx, self.message, _ACK if con else _NON, code, tid,
                              options, payload)
        if n < 0:
            return False
        # _tx[0:n] to send: a board builds a memoryview for it, so the last
        # one is kept for the next answer of that length (the same resource,
        # read again and again, answers with the same length).
        data = ep._last
        if _len(data) != n:
            data = ep._last = ep._txv[0:n]
        try:
            ep._socket.sendto(data, self.remote)
        except (OSError, TypeError, ValueError):
            pass  # the peer will retransmit a CON; a NON may be lost anyway
        if con:
            ep._dedup.reply(self._entry, data)
        return True

    def reset(self):
        """Answer this message with RST (it could not be processed)."""
        ep = self.end_point
        ep._send_empty(_RST, self.transaction_id, self.remote)
        ep._dedup.reply(self._entry, _RST)

    def keep(self):
        """Keep this record: a later process(reuse=True) will not refill it.
        (A record process() returned without reuse is kept anyway.)"""
        ep = self.end_point
        if ep._spare is self:
            ep._spare = None

    def forget(self):
        """Forget this message for duplicate detection: a retransmission of
        it is then taken as a new message (for a request that could not be
        processed, say for want of memory)."""
        self.end_point._dedup.drop(self._entry)
        self._entry = -1


class _Dedup:
    """Messages received lately, for duplicate detection (RFC 7252 §4.5):
    message ID, remote (its peer's row), expiry and the reply sent, in parallel lists made
    at construction, one slot per message.

    A reply is kept as its bytes, copied into a buffer the slot keeps for
    the messages it holds after: remembering one allocates nothing once the
    buffers have grown to the replies' size, and at worst the cache holds
    size * max_message_size bytes of replies.

    When every slot is taken, a newcomer from remote P takes the oldest
    entry, unless its owner holds fewer entries than P: then P gives up its
    own oldest instead. So a peer sending a burst only pushes out its own
    entries, and the table is shared out evenly among busy peers; another
    peer's entry goes only to a newcomer, or to a peer holding fewer. (A
    peer is a remote address: an attacker with many ports is many peers,
    and a burst of enough of them still flushes the table.)

    Each peer's entries are also chained oldest first, and the peer's table
    entry says how many it holds and where its chain starts and ends, so
    finding the entry a peer gives up costs the same however the table is
    shared. (A walk from the oldest entry to the peer's own took a step per
    entry of the others: with a table of 256 shared by two peers, 128 steps
    on every datagram, which a second peer can bring about at will.)

    Each insertion gives its slot a new generation (slot + k * size): a
    ReceptionRecord holds it, so a reply to an entry pushed out meanwhile is
    not stored against the newcomer in its slot.
    """

    def __init__(self, size):
        self.size = size
        self.tids = [-1] * size  # -1: a free slot
        # Each slot's peer row (below; None: a free slot): the row, not the
        # address, so the owner of the entry a newcomer may take is found
        # without hashing its address, and a busy peer's entries share one
        # copy of its address.
        self.rows = [None] * size  # type: list
        self.expires = [0] * size
        self.gens = list(range(size))
        self.lens = [0] * size  # the reply: 0 none yet, _ACK/_RST (2, 3) empty, else its length
        self.bufs = [None] * size  # type: list  # each slot's reply: a buffer (grown on demand; bytes on CPython)
        # Insertion order, oldest first: a doubly linked list over the slots,
        # so an entry leaves from anywhere in it without a shift.
        self.older = [-1] * size
        self.newer = [-1] * size
        self.head = -1
        self.tail = -1
        # The same, per peer: each slot's older and newer entry of its peer.
        self.peer_older = [-1] * size
        self.peer_newer = [-1] * size
        self.free = list(range(size))  # a stack of free slots
        self.nfree = size
        # remote -> [entries it holds, its oldest slot, its newest slot,
        # remote(, its index)]: who yields when the table is full, and where
        # its own oldest is. A key per peer with entries, so a busy node
        # keeps a few.
        self.peers = {}
        # A large table is indexed on CPython: each peer's row holds a dict
        # of its entries' message IDs -> slot, found through the row, so
        # the address is hashed once per datagram (a key of (id, remote)
        # hashed the address again at each of its three uses) and the
        # index's keys are small ints. MicroPython scans even a large
        # table: `in` over a list of small ints is quick in C there, and
        # allocates nothing, where a dict whose keys come and go fills with
        # deleted slots that every lookup of a new key walks past.
        self.indexed = size > _LINEAR and not IS_MICROPYTHON

    def note(self, tid, remote, now, expires):
        """Take a message in: -2 - its slot if it duplicates an entry that has
        not expired, else its generation once remembered until `expires`
        (-1: size 0, nothing is)."""
        # Every step here counts: a full table takes an entry out on every
        # datagram. So the address is made a key once and hashed once (its
        # peer's row), and lists used more than once are read into locals.
        # (This frame is over 11 words either way: MicroPython takes it
        # from the heap.)
        tids = self.tids
        at = self.expires
        rows = self.rows
        k = _bytes(remote) if _type(remote) is _bytearray else remote  # _key(), inline
        p = self.peers.get(k)
        # A duplicate is an entry of this peer's: none without a row.
        if p is not None:
            if self.indexed:
                s = p[4].get(tid, -1)
                if s >= 0 and ticks_diff(at[s], now) > 0:
                    return -2 - s
            elif tid in tids:  # (one scan in C: the common case is a miss)
                for s in range(self.size):
                    if tids[s] == tid and rows[s] is p and ticks_diff(at[s], now) > 0:
                        return -2 - s
        if not self.size:
            return -1
        moved = False
        if self.nfree:
            self.nfree -= 1
            s = self.free[self.nfree]
        else:
            s = self.head
            q = rows[s]  # the oldest entry's owner
            if p is not None and q is p and p[0] > 1:
                # The newcomer's peer holds the oldest entry and others (a
                # busy table's common case: one peer at a time). That entry,
                # the peer's oldest too, moves from the head of both chains
                # to their tail, its peer's row and count unchanged, and the
                # new entry takes its slot: no _unlink() call, none of its
                # cases, no appending below. (As p holds others, the slots
                # read here, q and last, are entries, never -1.)
                moved = True
                q = self.newer[s]  # off the head of the chain of all
                self.head = q
                self.older[q] = -1
                q = self.peer_newer[s]  # and of its peer's
                p[1] = q
                self.peer_older[q] = -1
                last = self.tail  # onto the tail of both
                self.older[s] = last
                self.newer[s] = -1
                self.newer[last] = s
                self.tail = s
                last = p[2]
                self.peer_older[s] = last
                self.peer_newer[last] = s
                self.peer_newer[s] = -1
                p[2] = s
                if self.indexed:
                    q = p[4]
                    last = q.pop(tids[s], s)
                    if last != s:  # (it points at a newer slot: stays)
                        q[tids[s]] = last
                    q[tid] = s
            else:
                if (p is not None and q is not p and ticks_diff(at[s], now) > 0
                        and p[0] >= q[0]):
                    s = p[1]  # it gives up its own oldest
                self._unlink(s)
                if p is not None and p[0] == 0:
                    p = None  # that was its only entry: its row went
        tids[s] = tid
        at[s] = expires
        self.lens[s] = 0
        g = self.gens[s] + self.size
        if g > _GEN_WRAP:
            g = s
        self.gens[s] = g
        if not moved:
            # Appended as the newest entry of both chains (its peer's row
            # made if it has none), and to its peer's index.
            if p is None:
                p = rows[s] = self.peers[k] = [1, s, s, k, {}] if self.indexed else [1, s, s, k]
                self.peer_older[s] = -1
            else:
                rows[s] = p
                last = p[2]
                p[0] += 1
                self.peer_older[s] = last
                self.peer_newer[last] = s
                p[2] = s
            self.peer_newer[s] = -1
            t = self.tail  # the newest, at the tail
            self.older[s] = t
            self.newer[s] = -1
            if t >= 0:
                self.newer[t] = s
            else:
                self.head = s
            self.tail = s
            if self.indexed:
                p[4][tid] = s
        return g

    def _unlink(self, s):
        # Takes slot s out of both chains, its peer's count and index: on
        # every datagram once the table is full, so this frame is kept
        # within the 11 words MicroPython holds on the C stack (o and n
        # serve both chains, p ends as the index's).
        o = self.older[s]
        n = self.newer[s]
        if o >= 0:
            self.newer[o] = n
        else:
            self.head = n
        if n >= 0:
            self.older[n] = o
        else:
            self.tail = o
        p = self.rows[s]  # its peer's row
        o = self.peer_older[s]
        n = self.peer_newer[s]
        if o >= 0:
            self.peer_newer[o] = n
        else:
            p[1] = n
        if n >= 0:
            self.peer_older[n] = o
        else:
            p[2] = o
        p[0] -= 1
        if not p[0]:
            del self.peers[p[3]]  # (its index with it)
        elif self.indexed:
            # Its ID leaves the peer's index, unless that points at a newer
            # slot (the same ID taken in again once this entry had expired).
            p = p[4]
            o = self.tids[s]
            n = p.pop(o, s)
            if n != s:
                p[o] = n
        # (Its ID and row stay: note() writes the next entry's over them at
        # once, drop() marks the slot free.)

    def drop(self, gen):
        """Free the entry of generation `gen`, if it is still there."""
        if gen >= 0:
            s = gen % self.size
            if self.gens[s] == gen and self.tids[s] >= 0:
                self._unlink(s)
                self.tids[s] = -1
                self.rows[s] = None
                self.free[self.nfree] = s
                self.nfree += 1

    def reply(self, gen, data):
        """Record the reply to the entry of generation `gen`, if it is still
        there: _ACK or _RST for an empty one, else the bytes sent."""
        if gen < 0:
            return
        s = gen % self.size
        if self.gens[s] != gen:
            return  # pushed out meanwhile: nothing to replay it to
        if _type(data) is _int:
            self.lens[s] = data
            return
        n = _len(data)
        if IS_MICROPYTHON:
            buf = self.bufs[s]
            if buf is None or _len(buf) < n:
                # Grown in steps of 32 bytes: replies of about one size
                # settle into buffers that are reused from then on.
                buf = self.bufs[s] = _bytearray((n + 31) & ~31)
            buf[0:n] = data
        else:
            # CPython keeps bytes, which never change, as they are: what
            # encode() returns there is not copied again (a view of the
            # EndPoint's buffer, which the next answer overwrites, is).
            self.bufs[s] = data if _type(data) is _bytes else _bytes(data)
        self.lens[s] = n


def _random_bits(nbits):
    import random

    return random.getrandbits(nbits)


class EndPoint:
    """A CoAP endpoint over UDP (coapy's API), polled with process(timeout_ms).

    Transmission parameters (RFC 7252 §4.8) are per endpoint: slow links want
    a longer ack_timeout_ms. Bounds: `max_in_flight` transmissions tracked at
    once (send() raises CapacityError beyond it) and `dedup_size` received
    messages remembered for duplicate detection (fixed at construction; the
    replies it keeps take at most dedup_size * max_message_size bytes); the
    small defaults suit a board, a gateway raises them.

    Counters, for monitoring: `dropped` (datagrams ignored: malformed,
    unmatched, oversized, or lost for want of memory), `duplicates`
    (answered from the cache or dropped) and `memory_errors` (datagrams lost
    to a MemoryError, also counted in `dropped`).
    """

    # The callbacks: None here, in the class, until the application (or a
    # layer above: the Client, Observe, asyncio) sets one on its EndPoint.
    # Class defaults rather than attributes each instance sets: MicroPython
    # grows an attribute table only when it is full, and a method call first
    # misses in the instance's table, walking to a free slot. Set in
    # __init__, these four filled both this class's table and an instance's
    # to their last slot (37 of 37), which cost a served request 8% more
    # instructions on the unix port (tests/portable/test_tables.py).
    on_unacknowledged = None  # callable(record) when a CON gives up
    # callable(rx) for an empty RST that matches no record in flight: an RST
    # to a NON we sent, whose record is already finished (a server that
    # notifies observers learns this way that one has gone).
    on_unmatched_reset = None
    # callable(remote, reason) when a datagram is dropped for a reason the
    # application should hear of: larger than max_message_size, or malformed
    # (`reason` says which, in words). The Client sets it to say why a
    # request timed out; called on the drop path only.
    on_dropped = None
    # callable(record) when send() has queued a message: process() transmits
    # it, so an event loop driving this EndPoint wakes up.
    on_queued = None

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
        self._sockets = []  # every socket received on, the primary first (sockets)
        self.register(sock)
        self._tx = bytearray(max_message_size)
        self._txv = memoryview(self._tx)
        self._last = self._txv[0:0]  # the view of _tx sent last
        self._empty = bytearray(4)  # empty ACK/RST go out of this, whole
        # The transmissions in flight (transactions.Transmissions), made at
        # the first send(): None until then, so a node that only answers
        # requests never loads that module.
        self._out = None
        self._dedup = _Dedup(dedup_size)
        self._spare = None  # the ReceptionRecord process(reuse=True) refills
        self._reading = None  # the socket of a recvfrom in progress
        self._taking = None  # the record being dispatched
        self._busy = False  # the last process() call received something
        self._now = 0  # process(): the time of the datagram being taken in
        self._reuse = False  # process(): its `reuse`, for _take()
        self._life = (0, 0, 0, 0, 0)  # the parameters, EXCHANGE_LIFETIME, NON_LIFETIME
        self._tid = self.rand(16)
        # (The callbacks, on_unacknowledged and the others, are None in the
        # class until set.)
        # Counters, for monitoring (and the abuse test).
        self.dropped = 0  # datagrams ignored: malformed, unmatched, oversized
        self.duplicates = 0  # duplicates answered or dropped
        self.memory_errors = 0  # datagrams lost for want of memory

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
        out = self._out
        return 0 if out is None else len(out.records)

    @property
    def dedup_count(self):
        """How many received messages are remembered for duplicate
        detection: at most dedup_size."""
        return self._dedup.size - self._dedup.nfree

    # -- sockets ------------------------------------------------------------

    @property
    def socket(self):
        """The primary socket; every answer leaves from it."""
        return self._socket

    def bind(self, address):
        """Bind the primary socket: ('host', port) or an address as returned
        by getaddrinfo (raw bytes on the MicroPython unix port)."""
        self._socket.bind(resolve(address))

    @property
    def sockets(self):
        """Every socket this EndPoint receives on, the primary one first
        (then those added by register()): what an event loop waits on.
        Read-only."""
        return self._sockets

    def register(self, sock):
        """Also receive on `sock` (e.g. a multicast socket)."""
        sock.setblocking(False)
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
            if not t or self._out is None or not self._out.has_token(t):
                return t

    # -- sending ------------------------------------------------------------

    def transmissions(self):
        """The table of this EndPoint's transmissions in flight
        (coapy_micro.transactions.Transmissions), made, and its module
        loaded, at the first call: send() and supersede() make it."""
        out = self._out
        if out is None:
            from .transactions import Transmissions

            # (Indexed from the start on CPython: see Transmissions.)
            out = self._out = Transmissions(self, not IS_MICROPYTHON)
        return out

    def send(self, message, remote):
        """Queue `message` (CON or NON) for `remote`; process() transmits it.
        Returns its TransmissionRecord. Raises ValueError for an ACK or RST
        (ReceptionRecord.ack() and reset() answer) or a message larger than
        max_message_size, and CapacityError when max_in_flight transmissions
        are already in flight."""
        if message.transaction_type > _NON:
            raise ValueError("send CON or NON; answer with ReceptionRecord.ack/reset")
        self._check_size(message)
        return self.transmissions().send(message, remote)

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
        return self.transmissions().supersede(record, message)

    def transmit(self, message, transaction_id, remote):
        """Encode `message` under Message ID `transaction_id` and send it to
        `remote` now, once: no record, nothing retransmitted (what the
        table of transmissions sends goes through here). Returns None, or
        an errno: the socket's, 90 (EMSGSIZE) for a message larger than
        max_message_size, 22 (EINVAL) for an address the socket cannot
        send to."""
        data = self._encode(message, transaction_id)
        if data is None:
            return _EMSGSIZE
        return self._sendto(data, remote)

    def _check_size(self, message):
        if message.wire_size() > self.max_message_size:
            raise ValueError("message of %d bytes exceeds max_message_size %d"
                             % (message.wire_size(), self.max_message_size))

    def _encode(self, message, tid):
        # The message as something to send (a view of _tx on a board, where
        # encoding into the buffer allocates nothing; bytes on CPython,
        # faster there), or None when it is larger than max_message_size.
        try:
            if IS_MICROPYTHON:
                n = message.encode_into(self._tx, tid)
                data = self._last
                if len(data) != n:
                    data = self._last = self._txv[0:n]
                return data
            data = message.encode(tid)
        except ValueError:
            return None  # larger than the buffer (grown since send() checked?)
        return data if len(data) <= self.max_message_size else None

    def _sendto(self, data, remote):
        # Send; returns an errno or None.
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
        # An empty ACK or RST, written into a buffer of its own (no Message,
        # no slice: the 4 bytes are the whole buffer).
        buf = self._empty
        encode_empty_into(buf, mtype, tid)
        try:
            self._socket.sendto(buf, remote)
        except (OSError, TypeError, ValueError):
            pass  # the peer will retransmit, or did not deserve an answer

    def next_event_ms(self, now):
        """ms from `now` (ticks) until process() has something to do
        without a datagram arriving: a first transmission (0), a
        retransmission, a wait for a response that expires; -1 for nothing.
        A CON held back by NSTART has no time of its own: the ACK that frees
        its slot, or the timer of the CON holding it, comes first. Read-only:
        how long an event loop may sleep between datagrams. (It looks at the
        queue and the records with a deadline only: not at the Observe
        registrations waiting for their next notification.)"""
        out = self._out
        return -1 if out is None else out.next_event_ms(now)

    # -- receiving ----------------------------------------------------------

    def process(self, timeout_ms=None, reuse=False):
        """Transmit and retransmit what is due, then wait at most timeout_ms
        (None: no limit) for one message for the application.

        Returns its ReceptionRecord, or None when the time is up (with no
        limit: when a CON gave up or a wait for a response expired, so the
        application gets to look). Messages the message layer answers itself
        (pings, duplicates, ...) do not end the wait.

        With `reuse`, the record may be one the EndPoint refills on the next
        such call (a request handled at once needs nothing of its own);
        ReceptionRecord.keep() keeps it. A response to a request in flight
        is always a record of its own.
        """
        # Written as small functions, each within the 11 words of frame
        # MicroPython keeps on the C stack (larger ones are a heap
        # allocation per call, tools/frames.py): the time of this step and
        # `reuse` ride on self._now and self._reuse down to _take(), as a
        # function with a try has room for two locals only. (Set again
        # before each read: a callback may have called process() meanwhile.)
        # The clock is read here and then after each wait or swallowed
        # datagram, not again where _ready() begins, microseconds later: a
        # call the less per request (on CPython ticks_ms is Python code).
        start = self._now = self.clock()
        swallowed = 0
        while True:
            if self._busy and (self._out is None or timeout_ms is not None):
                # Under load on CPython (never on a board: see _receive()),
                # the socket is read straight away, without _ready(): a
                # datagram is likely waiting, and the poll system call would
                # cost as much as the read. What is due is transmitted first
                # (_due_ms() without its call: with a time limit it never
                # says -2; with none, _ready() polls as it does otherwise).
                # Up to three calls the less (1k each of a CPython
                # request's 60k instructions, or of a notification's).
                self._busy = False
                if self._out is not None:
                    self._out.service(self._now)
                sock = None  # (read straight away: the primary socket)
            else:
                sock = self._ready(timeout_ms, start)
                if sock is None:
                    return None
            self._reuse = reuse
            rx = self._guarded(sock or self._socket)
            if rx is not None:
                return rx
            if sock is None and not self._busy and timeout_ms == 0:
                # The read straight away found the socket empty: process(0)
                # is done. (Going on, _ready() would service the table again
                # and poll for 0 ms, a system call and two clock reads at
                # the end of each drain of a socket: once per two or three
                # notifications in a gateway under load. No local for this:
                # one more would take this frame past the C stack's 11
                # words on MicroPython, which never comes here anyway.)
                return None
            # Swallowed by the message layer (a ping, a duplicate, junk): keep
            # going while data is ready, but a flood must not hold the
            # application's loop past its timeout, nor process(0) for long.
            swallowed += 1
            self._now = self.clock()
            if timeout_ms is not None and (
                    ticks_diff(self._now, start) > timeout_ms or swallowed >= _BURST):
                return None

    def _ready(self, timeout_ms, start):
        # process()'s wait: transmissions due are made, then a socket to read
        # (its time in self._now, which holds the time read last), or None
        # when the call is to end. With no table of transmissions nothing
        # is due: no call to _due_ms().
        now = self._now
        while True:
            wait = -1 if self._out is None else self._due_ms(now, timeout_ms)
            if wait == -2:
                return None
            if timeout_ms is not None:
                left = int(timeout_ms) - ticks_diff(now, start)
                if left < 0:
                    left = 0
                if wait < 0 or left < wait:
                    wait = left
            sock = self._wait(wait)
            now = self.clock()
            if sock is not None:
                self._now = now
                return sock
            if timeout_ms is not None and ticks_diff(now, start) >= timeout_ms:
                return None

    def _due_ms(self, now, timeout_ms):
        # What is due transmitted; ms until the next thing is (-1: nothing
        # waits), or -2 when process() is to return: with no time limit, a
        # CON gave up or a wait expired, and a quiet network would otherwise
        # hide it forever.
        out = self._out
        if out is None:  # (_ready() calls this only with a table)
            return -1
        finished = out.timed_out
        wait = out.service(now)
        if timeout_ms is None and out.timed_out != finished:
            return -2
        return wait

    def _guarded(self, sock):
        # _receive(sock); short of memory, this call ends here, whatever it
        # got, so the application's loop runs (and may free some).
        try:
            return self._receive(sock)
        except MemoryError:
            return self._starved(sock)

    def _starved(self, sock):
        # Out of memory while taking in a datagram: counted, and the record
        # taken in, if any, forgotten (its retransmission is then new). If
        # the read itself failed, the datagram is still queued and the next
        # poll would fail the same way at once, forever while no hole in the
        # heap fits a full-size read buffer: so collect, and read it with a
        # small buffer. A small datagram (most requests) is then served
        # still; a larger one, truncated, is dropped.
        self.memory_errors += 1
        self._busy = False
        rx = self._taking
        if rx is not None:
            self._taking = None
            rx.forget()
        if self._reading is None:
            self.dropped += 1
            return None
        self._reading = None
        gc.collect()
        try:
            got = sock.recvfrom(_SMALL_READ + 1)
            if len(got[0]) <= _SMALL_READ:
                return self._take(got, sock)
        except OSError:
            return None  # gone after all
        except MemoryError:
            # Not even that: read one byte, which leaves nothing queued.
            self.memory_errors += 1
            self._taking = None
            try:
                sock.recvfrom(1)
            except Exception:  # (still no memory: the next call tries again)
                pass
        self.dropped += 1
        return None

    def _wait(self, wait_ms):
        # One readable socket, or None when wait_ms (-1: forever) passes.
        # (_ipoll read twice, not held in a local: a `for` keeps four words
        # of stack, and one local more would take this frame past the 11
        # words MicroPython keeps on the C stack, to the heap at every call.)
        if self._ipoll is not None:
            for ev in self._ipoll(wait_ms):
                return ev[0]
            return None
        for ev in self._poller.poll(wait_ms):
            s = ev[0]
            return self._socks[s] if isinstance(s, int) else s  # upy-ok: fd or socket
        return None

    def _receive(self, sock):
        # One datagram off `sock`, through the message layer: the record to
        # hand up, or None.
        self._reading = sock
        got = self._read(sock)
        self._reading = None
        if got is None:
            return None
        # Under load, the next call reads straight away, without a poll: on
        # CPython, where the poll system call costs about what a read does.
        # Not on a board: there a read that finds nothing allocates its full
        # buffer and an OSError, where ipoll allocates nothing.
        self._busy = not IS_MICROPYTHON and len(self._sockets) == 1
        return self._take(got, sock)

    def _read(self, sock):
        # recvfrom's (datagram, remote), or None for nothing to read. (The
        # try has a function of its own: a handler takes six words of stack
        # and three more, so no more than two locals fit with it in the 11
        # words MicroPython keeps on the C stack; _receive, with it, would
        # take its frame from the heap at every call. Two stack frames cost
        # less than that one.)
        try:
            return sock.recvfrom(self.max_message_size + 1)
        except OSError:  # EAGAIN, or an ICMP error reported on the socket
            return None

    def _take(self, got, sock):
        # The (datagram, remote) pair recvfrom gave, through the message layer.
        # (got[0] and got[1] read where needed, and the try in _decoded(): six
        # locals, a frame MicroPython keeps on the C stack.)
        if _len(got[0]) > self.max_message_size:
            self.dropped += 1  # truncated: cannot be trusted
            if self.on_dropped is not None:
                self.on_dropped(got[1], "larger than max_message_size (%d bytes)"
                                % self.max_message_size)
            return None
        rx = self._spare if self._reuse else None
        if rx is not None:
            # The reused record: made with every attribute it will ever
            # set, so refilling it never grows its table (nor its Message's).
            if not _decoded(rx, got[0]):
                return self._malformed(got)
            rx.pertains_to = None
            rx.sock = None
            rx._entry = -1
            rx.remote = got[1]
        else:
            rx = _received(self, got)
            if rx is None:
                return self._malformed(got)
            if self._reuse:
                rx.pertains_to = None
                rx.sock = None
                rx._entry = -1
                self._spare = rx
        if sock is not self._socket:
            rx.sock = sock
        self._taking = rx
        rx = self._dispatch(rx, self._now)
        self._taking = None
        return rx

    def _malformed(self, got):
        # A datagram that did not decode: dropped, and a CON of CoAP version
        # 1 gets RST. Decoded again for the error (only bad datagrams pay
        # for that), so the common path has no `except ... as`.
        try:
            Message.decode(got[0])
        except DecodeError as e:
            self.dropped += 1
            if self.on_dropped is not None:
                self.on_dropped(got[1], "malformed (%s)" % (e,))
            if e.transaction_type == _CON and not e.bad_version:
                self._send_empty(_RST, e.transaction_id, got[1])
        return None

    def _dispatch(self, rx, now):
        m = rx.message
        mtype = m.transaction_type
        code = m.code
        tid = rx.transaction_id
        remote = rx.remote
        if mtype >= _ACK:
            return self._ack_or_reset(rx, mtype, code, now)
        if code == 0 or 32 <= code <= 63 or code >= 192:
            # A ping (RFC 7252 §4.3) gets RST; so does a CON of a reserved
            # class (1, 6, 7: RFC 7252 §12.1); the rest is dropped.
            if code:
                self.dropped += 1
            if mtype == _CON:
                self._send_empty(_RST, tid, remote)
            elif not code:
                self.dropped += 1
            return None
        # How long it is remembered: EXCHANGE_LIFETIME (CON), NON_LIFETIME
        # (NON). Derived once, not per message (float arithmetic); again if
        # the application retunes the parameters.
        life = self._life
        if (life[0] != self.ack_timeout_ms or life[1] != self.ack_random_factor
                or life[2] != self.max_retransmit):
            life = self._life = (self.ack_timeout_ms, self.ack_random_factor,
                                 self.max_retransmit, self.exchange_lifetime_ms,
                                 self.non_lifetime_ms)
        d = self._dedup
        g = d.note(tid, remote, now, ticks_add(now, life[3] if mtype == _CON else life[4]))
        if g < -1:
            # A duplicate: a CON gets the reply again, if one was sent.
            self.duplicates += 1
            if mtype == _CON:
                s = -2 - g
                n = d.lens[s]
                if n == _ACK or n == _RST:
                    self._send_empty(n, tid, remote)
                elif n:
                    self._sendto(memoryview(d.bufs[s])[0:n], remote)
            return None
        rx._entry = g
        if code >= 64:
            rec = None if self._out is None else self._out.by_token(m.token, remote)
            if rec is None:
                # Nobody asked: reject a CON, ignore a NON (RFC 7252 §5.3.2).
                self.dropped += 1
                if mtype == _CON:
                    rx.reset()
                return None
            rx.keep()  # it stays with its record: never refilled
            self._out.response(rec, rx, now)  # pyright: ignore[reportOptionalMemberAccess]: a record was found, so the table is there
        return rx

    def _ack_or_reset(self, rx, mtype, code, now):
        # An ACK or RST: taken in by the record in flight it is for, or
        # dropped (matching nothing, or not a valid ACK or RST: RFC 7252
        # §4.2, §4.3). An empty RST that matches nothing goes to
        # on_unmatched_reset.
        rec = None if self._out is None else self._out.acknowledged(rx)
        if rec is None or (mtype == _RST and code != 0) or code < 64 and code != 0 or code >= 192:
            self.dropped += 1
            if rec is None and mtype == _RST and code == 0 and self.on_unmatched_reset is not None:
                rx.keep()  # the callback may keep it
                self.on_unmatched_reset(rx)
            return None
        rx.keep()  # it stays with its record: never refilled
        return self._out.acknowledge(rec, rx, now)  # pyright: ignore[reportOptionalMemberAccess]: a record was found, so the table is there


# -- taking a datagram in, and addresses ------------------------------------


def _decoded(rx, data):
    # Refill the ReceptionRecord `rx` with the datagram `data`: False if it
    # is malformed. (The try in a function of two locals: with a handler's
    # share of the stack, that is what fits in the 11 words MicroPython
    # keeps on the C stack.)
    try:
        rx.transaction_id = rx.message.decode_from(data)
    except DecodeError:
        return False
    return True


def _received(ep, got):
    # A new ReceptionRecord of recvfrom's (datagram, remote), or None if the
    # datagram is malformed. (As _decoded(): two locals with the try.)
    try:
        return ReceptionRecord(ep, got[0], got[1])
    except DecodeError:
        return None


def resolve(address):
    """('host', port) -> the address form this platform's sockets take.

    A tuple with an IP literal or host name goes through getaddrinfo (the
    MicroPython unix port wants raw sockaddr bytes); anything else is passed
    through unchanged.
    """
    if isinstance(address, tuple):
        return socket.getaddrinfo(address[0], address[1])[0][-1]  # pyright: ignore[reportOptionalMemberAccess]: tuples come only where there are sockets
    return address
