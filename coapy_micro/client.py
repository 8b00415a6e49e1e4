"""CoAP requests on top of the EndPoint (RFC 7252 §5.2, §5.3, §8.1).

    c = Client()                                   # EndPoints made on demand
    resp = c.request("get", "coap://node.local/sensors/temp")
    print(codes.dotted(resp.code), resp.payload)

    h = c.start("put", "coap://192.168.1.7/led", b"1", callback=done)
    while not h.done:                              # a node's own loop
        c.process(50)                              # or c.handle(rx) per rx
        do_other_work()

The EndPoint does the message layer (retransmission, ACK/RST matching,
duplicates); this module adds what a request needs on top: a token per
request, the destination from the URI, the separate response (an empty ACK
first, the response later in a CON that is acknowledged here, RFC 7252
§5.2.2), and a deadline. A request ends with a Response (whatever its code:
4.04 is an answer, not an error) or one of the typed errors below.

Timeouts: `timeout_ms` bounds the whole request (transmissions, the wait for
a separate response); for a request that moves in blocks, each block's
exchange, and `transfer_timeout_ms` (None by default; a request may have
its own, start(transfer_timeout_ms=)) the whole transfer.
The default, DEFAULT_TIMEOUT_MS = 30 s, covers the first four
transmissions of a CON (at 0, 2-3, 6-9 and 14-21 s with the RFC's
defaults) plus time for a slow separate response, without a caller
waiting MAX_TRANSMIT_WAIT (93 s) for a node that is simply off.
`timeout_ms=None` waits as long as the RFC allows: the EndPoint's own
give-up (MAX_TRANSMIT_SPAN, then Unreachable), EXCHANGE_LIFETIME for a
separate response, NON_LIFETIME for the answer to a NON request. Durations
are capped at LONGEST_MS (2**28 ms, about 3 days): ticks cannot reach
further (ticks_add raises beyond half their period on a board).

Why a request failed: when an EndPoint drops a datagram from the peer of a
pending request (larger than its max_message_size, malformed; see
EndPoint.on_dropped, which the client sets on its EndPoints), the error the
request ends with says how many were dropped and why; a RequestTimeout
that is really "the answers were too large" says so.

Block-wise transfer (RFC 7959, client_block.py) and Observe (RFC 7641,
client_observe.py) are loaded the first time a request needs them, by
Client.hook() (through _extension(), the one place that names them); they
work through the client's public calls (Pending.resend, Pending.finish,
start).

Runs on boards too: ticks only, positional arguments to built-ins, nothing
done at import time.
"""
try:
    import socket
except ImportError:  # the WebAssembly port: pass getaddrinfo and end_point
    socket = None

from ._compat import const, ticks_add, ticks_diff, ticks_ms
from .connection import EndPoint, Message
from .transactions import is_multicast
from .message import insert_option
from .options import Option
from .outcome import CoapError, RequestTimeout, Reset, Response, Unreachable, peer_text

__all__ = ("Client", "Pending", "Response", "CoapError", "RequestTimeout",
           "Reset", "Unreachable", "BlockError", "BodyChanged", "BodyTooLarge",
           "DEFAULT_TIMEOUT_MS")

DEFAULT_TIMEOUT_MS = 30000

_CON = const(0)
_NON = const(1)
_RST = const(3)
_OBSERVE = const(6)
_CONTENT_FORMAT = const(12)
_ACCEPT = const(17)
_BLOCK2 = const(23)
# With several EndPoints (IPv4 and IPv6) process() polls them in turns of
# this many ms: they do not share a poller.
_SLICE_MS = const(10)
# The longest wait while a request is held back before its first
# transmission (NSTART: behind another request to the same peer).
_UNSENT_MS = const(1000)
# The longest duration the client puts on ticks: 2**28 ms, half of what
# ticks_diff can tell apart on a board (2**29 ms).
LONGEST_MS = const(0x10000000)
# When the time of one observation has come, those whose time comes within
# this many ms are seen to in the same walk (re-registering up to this
# early is allowed, RFC 7641 §3.3.1): so walks come at most about once per
# this interval, however their times are spread.
_OBS_SLACK_MS = const(1000)
# URIs whose destination is remembered (IP-literal hosts only): a gateway
# polling a few nodes' resources, or many tasks of an AsyncClient asking
# the same few, parse and resolve each URI once.

# sendto errors that mean the peer cannot be reached at all, as opposed to a
# passing shortage (ENOMEM, ENOBUFS) that the next retransmission may get
# past. Names, not numbers: errno values differ between ports.
_HARD_ERRORS = ("ECONNREFUSED", "ENETUNREACH", "EHOSTUNREACH", "ENETDOWN",
                "EHOSTDOWN", "EADDRNOTAVAIL", "EAFNOSUPPORT")


def _extension(name):
    # The one place that names the client's extension modules, imported
    # the first time they are needed: Client.hook() and the names below.
    if name == "block":
        from . import client_block as module
    elif name == "observe":
        from . import client_observe as module
    else:
        raise KeyError(name)
    return module


def __getattr__(name):
    # BlockError, BodyChanged and BodyTooLarge live with the code that
    # raises them (client_block.py, loaded only when a transfer needs it),
    # and are importable from here as well.
    if name == "BlockError" or name == "BodyChanged" or name == "BodyTooLarge":
        return getattr(_extension("block"), name)
    raise AttributeError(name)


def _capped(ms):
    # A duration as an int ticks can carry (LONGEST_MS at most, 0 at least).
    ms = int(ms)
    if ms > LONGEST_MS:
        return LONGEST_MS
    return 0 if ms < 0 else ms


def _is_hard_error(err):
    import errno

    for name in _HARD_ERRORS:
        if err == getattr(errno, name, None):
            return True
    return False


class Pending:
    """A request in progress (Client.start). `done` turns True when it ends,
    with `response` (a Response) or `error` (a CoapError) set; `callback`,
    if any, is then called with this handle. `record` is the EndPoint's
    TransmissionRecord, `request` the Message sent, `acknowledged` True once
    an empty ACK said a separate response will follow. `transfer`: the
    block-wise state (client_block.Transfer) of a request that moves in
    blocks, else None. `dropped`: how many datagrams from its peer an
    EndPoint dropped while it was pending (`drop_reason`: why the last one).
    `transfer_timeout_ms`, `max_body`: the bounds on a transfer in blocks
    that start() gave this request alone (None where it gave none: the
    client's apply, or, for a transfer_timeout_ms of None, no bound).
    """

    dropped = 0
    drop_reason = None
    # Class defaults: set on a handle only when its request has a bound of
    # its own (a board's handle for a plain request stays a size smaller).
    transfer_timeout_ms = None  # type: int | None
    max_body = None  # type: int | None

    def __init__(self, client, record, deadline, callback, limit=None):
        self.client = client
        self.record = record
        self.request = record.message
        self.remote = record.remote
        self.deadline = deadline  # ticks, or None: the EndPoint's limits only
        self._limit = limit  # ticks: when transfer_timeout_ms ends, or None
        self.callback = callback
        self.done = False
        self.response = None
        self.error = None
        self.acknowledged = False
        self.transfer = None
        self._tried = False  # process() has had a chance to send it
        self._timeout_ms = None  # type: int | None  # per exchange, to renew the deadline per block

    def result(self):
        """The Response, or raise the error the request ended with."""
        if not self.done:
            raise ValueError("the request has not finished")
        if self.error is not None:
            raise self.error
        return self.response

    def cancel(self):
        """Give up on the request (no callback): the EndPoint stops
        retransmitting it and answers a late response with RST."""
        if not self.done:
            self.client._finish(self, None, CoapError("request cancelled"), False)

    def finish(self, response=None, error=None):
        """End the request now with `response` (a Response) or `error` (a
        CoapError), and call the callback: how an extension (block-wise
        transfer) ends a request it has been carrying."""
        if not self.done:
            self.client._finish(self, response, error)

    def resend(self, message):
        """Send `message` in place of the request in flight, on the same
        handle: the next request of a block-wise transfer (a new token and
        message ID). The current record is cancelled; the new exchange gets
        the request's whole timeout, up to the end of its transfer_timeout_ms."""
        rec = self.record
        rec.cancel()
        self.record = rec.end_point.send(message, self.remote)
        self.request = message
        self.acknowledged = False
        self._tried = False
        t = self._timeout_ms
        d = None if t is None else ticks_add(self.client.now(), _capped(t))
        lim = self._limit
        if lim is not None and (d is None or ticks_diff(lim, d) < 0):
            d = lim
        self.deadline = d

    def __repr__(self):
        state = "waiting" if not self.done else (self.error or self.response)
        return "<Pending %s>" % (state,)


def _told(h, text):
    # An error's text, with what the EndPoint dropped from the peer and, for
    # a transfer in blocks, how far it got.
    x = h.transfer
    if x is not None and x.requests > 1:
        text += " (the transfer had moved %d bytes in %d requests)" % (x.moved, x.requests)
    n = h.dropped
    if n:
        text += "; %d datagram%s from %s dropped: %s" % (
            n, "" if n == 1 else "s", peer_text(h.remote), h.drop_reason)
    return text


def _earlier(wait, d):
    # min(wait, d) where wait None means "no limit" and d < 0 counts as 0.
    if d < 0:
        d = 0
    return d if wait is None or d < wait else wait


def _sooner(wait, d):
    # The sooner of two waits in ms (each >= 0, or -1 for none).
    if d < 0:
        return wait
    return d if wait < 0 or d < wait else wait


def _method_code(method):
    # 'get', 'GET' or codes.GET -> 1; anything but a request method is refused.
    if isinstance(method, str):
        from . import codes

        code = codes.parse(method)
    else:
        code = method
    if type(code) is not int or not 1 <= code <= 31:  # a bool is no method
        raise ValueError("not a request method: %r" % (method,))
    return code


def _format_number(value):
    # Content-Format / Accept: a number, or a name codes.content_format knows.
    if isinstance(value, str):
        from . import codes

        return codes.content_format(value)
    return value


class Client:
    """Sends requests and matches their responses, on one EndPoint per
    address family.

    end_point: use this EndPoint for every request (it may also serve: pass
      the messages the client does not take to your server, see process()
      and on_unhandled). None: the client makes an EndPoint per address
      family the first time a URI needs one (end_point_factory(family) ->
      bound EndPoint; default: bound to an ephemeral port on any address)
      and closes them in close().
    timeout_ms: the default for each request (see the module notes).
    getaddrinfo: resolver with socket.getaddrinfo's (host, port) signature.
    clock: ticks source; default the EndPoint's (so a test's fake clock
      governs timeouts too), else ticks_ms.
    block_size: the largest block (16 .. 1024 bytes) of a Block1 upload: a
      longer payload goes up in blocks (RFC 7959; smaller if the server
      asks). A response with Block2 is read block after block up to
      max_body bytes (else BodyTooLarge, a BlockError), restarting when its ETag changes
      (BodyChanged after two restarts). A transfer is one request to the
      application (one Pending); timeout_ms then bounds each block's exchange.
      A second upload to a resource while one is under way carries a
      Request-Tag (RFC 9175), so the server keeps the two bodies apart.
      A server that breaks the block-wise rules ends the request with a
      BlockError saying how (client_block.py).
    transfer_timeout_ms: None, or the longest a request may take as a
      whole, all its blocks included (RequestTimeout then, saying how far
      it got): timeout_ms alone bounds each block's exchange, and a server
      holding 16-byte blocks makes max_body / 16 exchanges of a body.
    max_destinations: how many URIs (with an IP-literal host) the client
      remembers parsed and resolved, so that polling one costs no parsing
      and no getaddrinfo per request; past that one is forgotten for each
      newcomer. A gateway polling more URIs than that in turn raises it.
    """

    def __init__(self, end_point=None, timeout_ms=DEFAULT_TIMEOUT_MS,
                 end_point_factory=None, getaddrinfo=None, clock=None,
                 block_size=1024, max_body=65536, transfer_timeout_ms=None,
                 max_destinations=32):
        self.timeout_ms = timeout_ms
        self.max_destinations = max_destinations
        self.block_size = block_size
        self.max_body = max_body
        self.transfer_timeout_ms = transfer_timeout_ms
        self.on_unhandled = None  # callable(rx) for what request() does not take
        self._given = end_point
        self._factory = end_point_factory
        self._getaddrinfo = getaddrinfo
        self._clock = clock
        self._made = []  # [family, EndPoint] pairs this client made
        self._pending = []
        self._dests = {}  # uri -> _destination(uri), for IP-literal hosts (max_destinations)
        self._hooks = {}  # extension name -> the object it registered (set_hook)
        # Observations (made by observe()): all of them, a record ->
        # observation index for handle(), those whose registration awaits an
        # answer (checked each round), and the earliest time one of the
        # others may have something to do (a lower bound: notifications
        # only move an observation's time later), so a round walks them all
        # only when that time has come, not on every process().
        self._observations = []
        self._obs_index = {}
        self._obs_waiting = []
        self._obs_wake = None  # type: int | None
        if end_point is not None:
            self._adopt(end_point)

    # -- end points ---------------------------------------------------------

    @property
    def end_points(self):
        """The EndPoints in use (the one given, or those made so far)."""
        if self._given is not None:
            return [self._given]
        return [pair[1] for pair in self._made]

    def _adopt(self, ep):
        if self._clock is None:
            # The client must measure time with the EndPoint's (injectable) clock.
            self._clock = getattr(ep, "clock", None)
        if getattr(ep, "on_dropped", 0) is None:
            ep.on_dropped = self.on_dropped  # why a request may time out

    def on_dropped(self, remote, reason):
        """What the client sets as its EndPoints' on_dropped (unless one
        was set already: an application that sets its own can call this
        from it): counts a datagram from `remote` dropped for `reason` on
        the requests pending to `remote`, so their errors can say so."""
        for h in self._pending:
            if h.remote == remote:
                h.dropped += 1
                h.drop_reason = reason

    def now(self):
        """The client's clock: the EndPoint's (so a test's fake clock
        governs timeouts too), else ticks_ms()."""
        return (self._clock or ticks_ms)()

    # -- the extension boundary ---------------------------------------------

    def hook(self, name):
        """The extension registered as `name`, loading it the first time:
        "block" (client_block.py), "observe" (client_observe.py). The
        module's install(client) registers it with set_hook()."""
        h = self._hooks.get(name)
        if h is None:
            _extension(name).install(self)
            h = self._hooks[name]
        return h

    def set_hook(self, name, hook):
        """Register `hook` as the extension `name` (an extension's install()
        does this; an application may register its own in place of one)."""
        self._hooks[name] = hook

    def _end_point(self, family):
        if self._given is not None:
            return self._given
        for pair in self._made:
            if pair[0] == family:
                return pair[1]
        if self._factory is not None:
            ep = self._factory(family)
        else:
            ep = EndPoint(family)
            v4 = getattr(socket, "AF_INET", 2)
            try:
                ep.bind(("0.0.0.0" if family == v4 else "::", 0))
            except OSError:
                ep.close()
                raise
        self._made.append([family, ep])
        self._adopt(ep)
        return ep

    def resolve(self, host, port):
        """(family, address) of `host` as this client sends to it: through
        its getaddrinfo, an address of its given EndPoint's family (when
        the socket says which); Unreachable when there is none. Called for
        each request to a host name (an IP literal's is remembered): a
        caller that sends to one name for long (a registrar to its RD)
        may resolve it once here and send to the address."""
        # Always through getaddrinfo: the MicroPython unix port wants its
        # raw sockaddr bytes even for an IP.
        gai = self._getaddrinfo or socket.getaddrinfo  # pyright: ignore[reportOptionalMemberAccess]: no socket module: getaddrinfo= is given
        try:
            infos = gai(host, port)
        except OSError as e:  # CPython's lookup error is an OSError subclass
            err = Unreachable("cannot resolve %r: %s" % (host, e))
            err.errno = e.args[0] if e.args else None
            raise err
        if not infos:
            raise Unreachable("cannot resolve %r: no address" % host)
        if self._given is not None:
            # Only the given EndPoint's family will do (when its socket says
            # which: CPython's does): an address of the other family makes
            # sendto raise TypeError there, not OSError.
            family = getattr(self._given.socket, "family", None)
            if family is not None:
                for ai in infos:
                    if ai[0] == family:
                        return ai[0], ai[-1]
                raise Unreachable("%r has no address of the EndPoint's family" % host)
        return infos[0][0], infos[0][-1]

    def _destination(self, uri):
        # (family, address, [Option], is it a multicast group?) for `uri`.
        # Remembered when the host is an IP literal (nothing to look up
        # again): polling a URI then costs no parsing and no getaddrinfo
        # per request. The table has max_destinations entries; when full,
        # one goes for the newcomer (the oldest on CPython; on MicroPython,
        # whose dict keeps no order, one in hash order).
        dests = self._dests
        dest = dests.get(uri)
        if dest is not None:
            return dest
        from . import uri as uri_mod

        i = uri.find(":") if isinstance(uri, str) else -1
        if i > 0 and uri[:i].lower() == "coaps":
            raise uri_mod.UriError("coaps:// needs DTLS, which this client does not speak: %r" % uri)
        host, port, opts = uri_mod.to_options(uri)
        family, remote = self.resolve(host, port)
        dest = (family, remote, opts, is_multicast(remote))
        if uri_mod.is_ip_literal(host):
            if len(dests) >= self.max_destinations:
                for old in dests:
                    del dests[old]
                    break
            if self.max_destinations > 0:
                dests[uri] = dest
        return dest

    # -- starting requests --------------------------------------------------

    def start(self, method, uri, payload=b"", content_format=None, accept=None,
              options=(), confirmable=True, timeout_ms=-1, callback=None, block_size=None,
              transfer_timeout_ms=-1, max_body=None):
        """Send a request without waiting: returns its Pending handle.

        method: a code (codes.GET) or a name ('get'). uri: coap://...
        (uri.UriError if malformed). payload: bytes or str.
        content_format, accept: numbers or names ('json'). options: more
        Option instances for the request. confirmable=False sends NON (a
        request to a multicast address is always NON, RFC 7252 §8.1).
        timeout_ms: -1 the client's default, None no limit of its own.
        block_size: for this request's Block1 upload (default the client's).
        transfer_timeout_ms: the longest this request may take as a whole,
        all its blocks included (RequestTimeout then): -1 the client's
        transfer_timeout_ms, None no such bound. max_body: the largest body
        this request reads in Block2 blocks (BodyTooLarge beyond; None: the
        client's max_body). Both let a caller bound one request more
        tightly than the client's others (an RD's discovery answer, say).
        The response arrives through process() or handle().
        """
        code = _method_code(method)
        family, remote, opts, group = self._destination(uri)
        ep = self._end_point(family)
        if group:
            confirmable = False
        if content_format is not None or accept is not None:
            opts = list(opts)  # the cached list stays as the URI made it
            if content_format is not None:
                insert_option(opts, Option(_CONTENT_FORMAT, _format_number(content_format)))
            if accept is not None:
                insert_option(opts, Option(_ACCEPT, _format_number(accept)))
        msg = Message(_CON if confirmable else _NON, code, payload, ep.new_token())
        # One encoding of the whole list, not one per option as addOption
        # would (a client polling a sensor does this for every request).
        if opts:
            msg.set_options(opts)
        for o in options:
            msg.addOption(o)  # the caller's: may replace one of the above
        xfer = None
        bs = self.block_size if block_size is None else block_size
        if payload and not group and len(msg.payload) > bs:
            xfer = self.hook("block").upload(msg, remote, opts, bs)  # Block1, RFC 7959
        rec = ep.send(msg, remote)  # ValueError: too big; CapacityError: table full
        if timeout_ms == -1:
            timeout_ms = self.timeout_ms
        now = self.now()
        deadline = None if timeout_ms is None else ticks_add(now, _capped(timeout_ms))
        total = self.transfer_timeout_ms if transfer_timeout_ms == -1 else transfer_timeout_ms
        limit = None if total is None else ticks_add(now, _capped(total))
        if limit is not None and (deadline is None or ticks_diff(limit, deadline) < 0):
            deadline = limit
        h = Pending(self, rec, deadline, callback, limit)
        h._timeout_ms = timeout_ms
        h.transfer = xfer
        if transfer_timeout_ms is not None and transfer_timeout_ms != -1:
            h.transfer_timeout_ms = transfer_timeout_ms
        if max_body is not None:
            h.max_body = max_body
        self._pending.append(h)
        return h

    def observe(self, uri, callback=None, confirmable=True, accept=None, options=(),
                margin_ms=5000):
        """Register as an observer of `uri` (RFC 7641): returns an
        client_observe.Observation at once; callback(response) is called for the
        first response and each fresh notification as process() or
        handle() receives them. Reordered notifications are dropped (§3.4),
        CON ones acknowledged, and the registration renewed when Max-Age +
        margin_ms pass without one. observation.cancel() deregisters."""
        observation = self.hook("observe")
        family, remote, opts, group = self._destination(uri)
        ep = self._end_point(family)
        msg = Message(_CON if confirmable and not group else _NON, 1, b"", ep.new_token())
        msg.set_options(insert_option(list(opts), Option(_OBSERVE, 0)))  # register
        if accept is not None:
            msg.addOption(Option(_ACCEPT, _format_number(accept)))
        for o in options:
            msg.addOption(o)
        o = observation(self, ep, remote, msg, callback, margin_ms, uri)
        self._observations.append(o)
        self._obs_index[o.record] = o
        if o.waiting:
            self._obs_waiting.append(o)
        return o

    def ended(self, o):
        """Forget the observation `o`, which has ended (Observation.end()
        calls this): it is no longer looked up, checked or waited for."""
        obs = self._observations
        rec = o.record
        if self._obs_index.get(rec) is o:
            del self._obs_index[rec]
        if o in obs:
            obs.remove(o)
        if o in self._obs_waiting:
            self._obs_waiting.remove(o)

    def _observed(self, o, rec, waited, now):
        # After o.handle() or o.check(): `rec` was its record before, `waited`
        # its `waiting`. Keep the index, the waiting list and the wake time.
        if o.done:
            return  # ended() has forgotten it
        if o.record is not rec:
            index = self._obs_index
            if index.get(rec) is o:
                del index[rec]
            index[o.record] = o
        if o.waiting != waited:
            if o.waiting:
                self._obs_waiting.append(o)
            else:
                self._obs_waiting.remove(o)
        d = o.wait_ms(now)
        if d is not None:
            # The wake time moves only when this observation's time (now +
            # d) comes before it; it is worked out then. (Every
            # notification comes here: on CPython each ticks call is
            # Python code, and most notifications leave the wake time as
            # it was.)
            w = self._obs_wake
            if w is None or d < ticks_diff(w, now):
                self._obs_wake = ticks_add(now, _capped(d))

    @property
    def observations(self):
        """The observations still running (Client.observe)."""
        out = []
        for o in self._observations:
            if not o.done:
                out.append(o)
        return out

    def _answered(self, h, rx):
        # The response to h's current request: finish h, unless it is a
        # block of a transfer that goes on (client_block.py, loaded then).
        if h.transfer is not None or rx.message.get_uint(_BLOCK2) is not None:
            if self.hook("block").follow(h, rx):
                return
        self._finish(h, Response(rx), None)

    def request(self, method, uri, payload=b"", content_format=None, accept=None,
                options=(), confirmable=True, timeout_ms=-1, block_size=None,
                transfer_timeout_ms=-1, max_body=None):
        """Send a request and wait for its Response (any code). The
        arguments are start()'s (transfer_timeout_ms, max_body: this
        request's bounds on a transfer in blocks).

        Raises RequestTimeout, Reset or Unreachable (all CoapError) when it
        ends without one, uri.UriError for a bad URI. Other requests of this
        client progress meanwhile; messages that are not for the client go
        to on_unhandled (if set), else are dropped.
        """
        h = self.start(method, uri, payload, content_format, accept, options,
                       confirmable, timeout_ms, None, block_size, transfer_timeout_ms, max_body)
        while not h.done:
            rx = self.process(None)  # returns by h's deadline or EndPoint event
            if rx is not None and self.on_unhandled is not None:
                self.on_unhandled(rx)
        return h.result()

    # -- driving ------------------------------------------------------------

    def process(self, timeout_ms=None):
        """Run the EndPoints for at most timeout_ms (None: until something
        happens), finishing requests whose response, error or deadline came.

        Returns a ReceptionRecord the client did not take (a request for a
        server sharing the EndPoint, say), else None. Like
        EndPoint.process, returns early when a message arrives.
        """
        eps = self.end_points
        wait = self._wait_ms(timeout_ms)
        if not eps:
            if wait:
                import time

                time.sleep(wait / 1000)  # nothing can arrive: just let time pass
            return None
        if len(eps) == 1:
            rx = eps[0].process(wait)
        else:
            rx = self._process_many(eps, wait)
        if rx is not None and self.handle(rx):
            rx = None
        self.check()
        return rx

    def _wait_ms(self, timeout_ms):
        # The longest process() may block: timeout_ms, but no later than the
        # next deadline or EndPoint event of a pending request, so that
        # timeouts and the EndPoint's giving up are noticed on time.
        self.check()
        now = self.now()
        wait = timeout_ms
        if self._observations:
            w = self._obs_wake
            if w is not None:
                wait = _earlier(wait, ticks_diff(w, now))
            for o in self._obs_waiting:
                rec = o.record
                if rec.created_time is not None and rec.next_event_time is not None:
                    wait = _earlier(wait, ticks_diff(rec.next_event_time, now))
        for h in self._pending:
            rec = h.record
            if h.deadline is not None:
                wait = _earlier(wait, ticks_diff(h.deadline, now))
            if rec.created_time is None:
                # Not sent yet. The first call returns right after sending,
                # so a sendto error shows at once; after that the record is
                # held back (NSTART) and its stale event time is no guide.
                wait = _earlier(wait, _UNSENT_MS if h._tried else 0)
                h._tried = True
            elif rec.next_event_time is not None:
                wait = _earlier(wait, ticks_diff(rec.next_event_time, now))
        return wait

    def next_event_ms(self, now):
        """ms from `now` (ticks) until the client has something to do
        without a datagram arriving: a request's deadline, an observation to
        renew, a timer of its EndPoints (0: now; -1: nothing). Read-only:
        how long an event loop may sleep between datagrams (check() then
        does what is due)."""
        wait = -1
        for h in self._pending:
            if h.deadline is not None:
                d = ticks_diff(h.deadline, now)
                wait = _sooner(wait, d if d > 0 else 0)
        for o in self._observations or ():
            d = o.wait_ms(now)
            if d is not None:
                wait = _sooner(wait, d)
        if self._given is not None:
            wait = _sooner(wait, self._given.next_event_ms(now))
        for pair in self._made:
            wait = _sooner(wait, pair[1].next_event_ms(now))
        return wait

    def _process_many(self, eps, wait):
        start = self.now()
        turn = 0
        while True:
            left = _SLICE_MS
            if wait is not None:
                left = wait - ticks_diff(self.now(), start)
                if left <= 0:
                    left = 0
                elif left > _SLICE_MS:
                    left = _SLICE_MS
            for j in range(len(eps)):
                # One EndPoint waits its slice; the others only get a look.
                ep = eps[(turn + j) % len(eps)]
                rx = ep.process(left if j == 0 else 0)
                if rx is not None:
                    return rx
            turn += 1
            if wait is not None and ticks_diff(self.now(), start) >= wait:
                return None

    def handle(self, rx):
        """Take `rx` (from an EndPoint's process()) if it answers one of this
        client's requests: True if taken. A CON response is acknowledged here.
        For applications that call process() on the EndPoint themselves."""
        rec = rx.pertains_to
        if rec is None:
            return False
        index = self._obs_index
        if index:
            o = index.get(rec)
            if o is not None:
                now = (self._clock or ticks_ms)()  # now(), a call the less per notification
                waited = o.waiting
                try:
                    o.handle(rx, now)
                except MemoryError:
                    # A notification the heap had no room for is dropped;
                    # the next carries the newer state (RFC 7641 §3.3).
                    pass
                self._observed(o, rec, waited, now)
                return True
        for h in self._pending:
            if h.record is rec:
                break
        else:
            return False
        m = rx.message
        if m.transaction_type == _RST:
            self._finish(h, None, Reset("%s answered with RST" % (peer_text(rec.remote),)))
        elif rx is rec.response or rx in rec.responses:
            if m.transaction_type == _CON:
                rx.ack()  # the separate response (RFC 7252 §5.2.2)
            try:
                self._answered(h, rx)
            except MemoryError:
                # A body the heap cannot hold (a long Block2 transfer needs
                # it in one piece) ends this request, not the caller's loop;
                # what the transfer had gathered is let go.
                err = CoapError(_told(h, "no memory left on this node for the response from %s"
                                      % (peer_text(rec.remote),)))
                h.transfer = None
                self._finish(h, None, err)
        else:
            h.acknowledged = True  # an empty ACK: the response comes separately
        return True

    def check(self):
        """Finish the requests whose record or deadline says they are over,
        and let observations renew or end. process() does this; an
        application that runs the EndPoint itself and passes what it
        receives to handle() calls it after each process()."""
        now = self.now()
        if self._observations:
            self._check_observations(now)
        i = 0
        while i < len(self._pending):
            h = self._pending[i]
            rec = h.record
            err = None
            resp = None
            if rec.response is not None:
                # Taken from the EndPoint by someone who did not pass it to
                # handle(): the record still has it.
                rx = rec.response
                if rx.message.transaction_type == _RST:
                    err = Reset("%s answered with RST" % (peer_text(rec.remote),))
                else:
                    self._answered(h, rx)
                    if h.record is not rec or h.done:
                        continue  # the next block is out, or h is over
                    resp = Response(rx)
            elif rec.is_unacknowledged:
                err = Unreachable(_told(h, "no acknowledgement from %s after %d transmissions" % (
                    peer_text(rec.remote), 1 + rec.end_point.max_retransmit)))
            elif rec.error is not None and _is_hard_error(rec.error):
                err = Unreachable("cannot send to %s: errno %d"
                                  % (peer_text(rec.remote), rec.error))
                err.errno = rec.error
            elif rec.done:
                if rec.error is not None:
                    err = CoapError("the request could not be sent: errno %d" % rec.error)
                else:
                    err = RequestTimeout(_told(h, "no response from %s" % (peer_text(rec.remote),)))
            elif h.deadline is not None and ticks_diff(now, h.deadline) >= 0:
                lim = h._limit
                if lim is not None and ticks_diff(now, lim) >= 0:
                    t = h.transfer_timeout_ms
                    if t is None:
                        t = self.transfer_timeout_ms
                    text = ("the request to %s did not finish within transfer_timeout_ms (%d ms)"
                            % (peer_text(rec.remote), _capped(t or 0)))
                else:
                    text = "no response from %s in time" % (peer_text(rec.remote),)
                err = RequestTimeout(_told(h, text))
            if err is None and resp is None:
                i += 1
            else:
                self._finish(h, resp, err)  # removes h: index i is the next one

    def _check_observations(self, now):
        # Those whose registration awaits an answer, every round (few, and
        # for a short time): only one whose record the EndPoint has finished
        # (it gave up, or the wait for a response ran out) has news.
        waiting = self._obs_waiting
        for i in range(len(waiting) - 1, -1, -1):
            if i >= len(waiting):
                continue  # a callback ended others meanwhile
            o = waiting[i]
            rec = o.record
            if rec.done:
                o.check(now)
                self._observed(o, rec, True, now)
        # The others only when the earliest time one of them named has come.
        w = self._obs_wake
        if w is None or ticks_diff(now, w) < 0:
            return
        self._obs_wake = None
        soon = ticks_add(now, _OBS_SLACK_MS)
        obs = self._observations
        for o in list(obs):  # a copy: check() may end some
            if not o.done and not o.waiting:
                rec = o.record
                o.check(soon)
                self._observed(o, rec, False, now)

    def _finish(self, h, response, error, call=True):
        h.done = True
        h.response = response
        h.error = error
        if error is not None:
            error.pending = h
        # Frees the EndPoint's slot and makes it refuse late answers (RST).
        h.record.cancel()
        if h in self._pending:
            self._pending.remove(h)
        if call and h.callback is not None:
            h.callback(h)

    @property
    def pending(self):
        """The requests still in progress."""
        return list(self._pending)

    def close(self):
        """Cancel what is pending (no callbacks) and close the EndPoints this
        client made (not one it was given)."""
        while self._pending:
            self._pending[0].cancel()
        for o in list(self._observations):
            o.end()  # forgotten (ended()): notifications get RST
        self._obs_wake = None
        for pair in self._made:
            pair[1].close()
        self._made = []
