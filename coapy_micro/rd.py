"""Registering a node with a Resource Directory (RFC 9176), from the node.

    srv = Server(ep)                   # the node's resources, as usual
    reg = Registrar(srv, "node-7", rd="coap://gateway.local", lt_s=600)
    while True:                        # the node's own loop: no threads
        reg.process(100)               # serves requests, registers, refreshes
        read_sensors()

The registration goes out from the Server's own EndPoint (a Client sharing
it), so the RD sees the port the node serves on and takes it as the node's
base address (§5). The payload is the link-format of the resource tree,
/.well-known/core left out.

Where to register:
- `rd` with a path ("coap://gw/rd"): that is the registration resource.
- `rd` without one ("coap://gw", "coap://10.0.0.1:5683"): the RD is asked
  with GET /.well-known/core?rt=core.rd* (§4.3) and the link with
  rt="core.rd" is used.
- no `rd`: the same question goes to the All-CoAP-Nodes group (`group`, by
  default 224.0.1.187; RFC 7252 §12.8) and the first RD to answer is used.
- `simple=True`: simple registration (§5.1), an empty POST to
  /.well-known/rd on the RD's host; the RD then GETs our /.well-known/core,
  which this node answers from the same loop while it waits.

Keeping it alive: an update (an empty POST to the registration resource,
§5.3.1) once three quarters of `lt` have passed; a fresh registration after
4.04 (the RD forgot us: expired, or restarted without its table), after
4.00, or when updates have failed for a whole lifetime. An RD that does not
answer is retried after a random back-off that doubles up to max_retry_ms;
so is one that answers 5.03, waiting the Max-Age it names when that is
longer (RFC 7252 §5.9.3.4: the earliest time to ask again, never an
invitation to ask at once). An answer that breaks RFC 9176 or RFC 7252 (a
2.01 without Location-Path, with Location-Query or with a '.' or '..'
segment) is a failure too, as a BadAnswer. close() deregisters (DELETE,
§5.3.2).

Driving it: process(timeout_ms) runs one round of the node's loop (the
Server answers requests, the Client takes responses, timers fire). An
application that calls EndPoint.process() itself hands each ReceptionRecord
to handle() (True: taken) and otherwise to its Server, and calls tick()
often enough (tick returns the ms it may wait at most).

Runs on boards: ticks only; every wait that comes from the network (a
Max-Age) or from lt is clamped before it meets ticks_add. Loaded only when
imported: a node without an RD pays nothing.
"""
from ._compat import const, ticks_add, ticks_diff
from .outcome import CoapError

__all__ = ("Registrar", "BadAnswer", "Refused", "base_uri", "endpoint_name", "event_text", "DEFAULT_LT_S")

# RFC 9176 §5: a registration without lt lives 90000 s (25 hours).
DEFAULT_LT_S = 90000

_CREATED = const(65)
_DELETED = const(66)
_CHANGED = const(68)
_CONTENT = const(69)
_BAD_REQUEST = const(128)
_NOT_FOUND = const(132)
_SERVICE_UNAVAILABLE = const(163)
_LOCATION_PATH = const(8)
_MAX_AGE = const(14)
_LOCATION_QUERY = const(20)
_URI_QUERY = const(15)
_URI_HOST = const(3)
_LINK_FORMAT = const(40)
# No wait is longer than this (about 3.1 days): far below the 2**29 ms a
# ticks_add accepts on a 32-bit board. A longer lt is refreshed early.
_MAX_WAIT_MS = const(1 << 28)

# States (see `state`).
_IDLE = const(0)  # nothing sent yet, or waiting to retry
_DISCOVER = const(1)  # asking for the RD's registration resource
_REGISTER = const(2)  # registration in flight
_REGISTERED = const(3)  # registered: waiting to refresh
_UPDATE = const(4)  # update in flight
_CLOSING = const(5)  # removal in flight
_CLOSED = const(6)
_NAMES = ("idle", "discovering", "registering", "registered", "updating", "closing", "closed")


def endpoint_name(port):
    """The endpoint name of a node that was given none: 'coapy-' and the
    chip's unique id in hex on a board, else 'coapy-node-PORT' (CPython and
    the unix port have no unique id). (Here, not in the node app: only a
    node that registers needs it.)"""
    try:
        import machine

        uid = machine.unique_id()
        return "coapy-" + "".join(["%02x" % b for b in uid])
    except (ImportError, AttributeError):
        return "coapy-node-%d" % port


def event_text(registrar, event, detail):
    """What a Registrar's on_event(registrar, event, detail) says, in words
    for a console or log; None for an event not worth a line."""
    if event == "registered":
        return "registered as %s: %s" % (registrar.ep, detail)
    if event == "discovered":
        return "the RD takes registrations at %s" % detail
    if event == "updated":
        return "registration refreshed"
    if event == "lost":
        return "the RD lost the registration (%s); registering again" % detail
    if event == "error":
        return "RD: %s" % detail
    if event == "removed":
        return "deregistered"
    return None


def base_uri(remote):
    """'coap://host:port' for a socket address: a (host, port[, ...]) tuple,
    or the raw sockaddr bytes of the MicroPython unix port. An IPv4-mapped
    IPv6 address is written as IPv4 (a server bound to '::' sees IPv4 peers
    so)."""
    if isinstance(remote, (bytes, bytearray)):
        port = (remote[2] << 8) | remote[3]
        if len(remote) == 16:  # sockaddr_in
            host = "%d.%d.%d.%d" % (remote[4], remote[5], remote[6], remote[7])
        elif len(remote) >= 24:  # sockaddr_in6
            a = remote[8:24]
            if a[:10] == bytes(10) and a[10] == 0xFF and a[11] == 0xFF:
                host = "%d.%d.%d.%d" % (a[12], a[13], a[14], a[15])  # IPv4-mapped
            else:  # eight groups in hex: valid, if not the shortest form
                host = ":".join(["%x" % ((a[i] << 8) | a[i + 1]) for i in range(0, 16, 2)])
        else:
            raise ValueError("not an IP socket address: %r" % (remote,))
    else:
        host = remote[0]
        port = remote[1]
        if isinstance(host, bytes):
            host = str(host, "utf-8")
    if host[:7].lower() == "::ffff:" and "." in host:
        host = host[7:]
    if ":" in host:
        host = "[" + host.replace("%", "%25") + "]"
    return "coap://%s:%d" % (host, port)


def _origin(uri):
    # 'coap://host:port' of an absolute URI (its scheme and authority).
    i = uri.find("://")
    end = len(uri)
    for c in "/?#":
        k = uri.find(c, i + 3)
        if 0 <= k < end:
            end = k
    return uri[:end]


def _join(origin, target):
    # A link target from `origin`'s /.well-known/core as an absolute URI.
    # RD discovery answers '/rd' or a full URI; no need for all of RFC
    # 3986 §5.2 (rd_server.resolve) on a node.
    if "://" in target:
        return target
    if target[:2] == "//":
        return origin[:origin.find(":") + 1] + target
    if target[:1] != "/":
        target = "/" + target
    return origin + target


class Refused(CoapError):
    """The RD answered with an error code (`code`: 163 is 5.03); the
    registration is retried with back-off (and not before a 5.03's
    Max-Age)."""

    code = None


class BadAnswer(CoapError):
    """The RD answered in a way the registrar cannot use, most often one
    RFC 9176 or RFC 7252 forbids: a 2.01 that names no registration
    resource, or names it with a Location-Query or a '.' or '..' segment;
    a discovery answer that is not link-format or names no registration
    resource. The registration counts as failed and is retried with
    back-off."""


# -- the registrar -------------------------------------------------------------


class Registrar:
    """Keeps `server`'s node registered with a Resource Directory.

    ep: the endpoint name (RFC 9176 §5: at most 63 bytes of UTF-8). d: the
    sector, or None. lt_s: the lifetime asked for in seconds (None: none
    sent, so the RD's default of 90000 s applies). base: the base URI to
    register (None: the RD takes the address our requests come from, which
    is what a node behind no proxy wants). attrs: further endpoint
    attributes as (name, value) pairs, e.g. [("et", "sensor")].
    rd, group, simple: where to register (see the module notes).
    client: a Client on the server's EndPoint, if the application has one
    (else one is made). payload: the links to register, as link-format
    text, or None to describe the resource tree each time (resources added
    later are then in the next registration). timeout_ms: per exchange
    (each block's, in a transfer in blocks). transfer_timeout_ms: the
    longest one request may take as a whole, all its blocks included, and
    max_body: the largest answer it reads in Block2 blocks (RFC 7959): an
    RD (or anything on its address, or in the group) answering the
    discovery in endless blocks, a block now and then, or with links
    without end, ends the request (RequestTimeout, client.BodyTooLarge) and
    is retried with back-off, instead of holding the node or its heap.
    Both hold for a client given too (transfer_timeout_ms=None: requests
    bounded by timeout_ms per exchange only). retry_ms .. max_retry_ms: the
    back-off range when the RD does not answer. on_event(registrar, event, detail): 'discovered' (the
    registration URI), 'registered' (the registration resource's URI),
    'updated', 'lost' (4.04: registering again), 'error' (what went wrong,
    as text), 'removed', 'closed'.
    getaddrinfo: the resolver of the client made here (socket.getaddrinfo's
    (host, port) signature; None: socket's). An RD named by a host name is
    resolved (Client.resolve) once, when the registrar first sends to it,
    and again only after a request to it failed (no answer, or the name
    did not resolve), so after the back-off: a board's getaddrinfo can
    block its loop for seconds, and the registrar asks for updates for
    months. The requests then go to the address with the name as
    Uri-Host, as they would from the URI (RFC 7252 §6.4).
    last_error: that text for the last failure; error: the same as an
    exception (None after a success): the Client's (RequestTimeout,
    Unreachable, BodyTooLarge, BlockError...) when the RD did not answer,
    or not within the bounds above, Refused when it answered an error
    code, BadAnswer when its answer broke the rules.
    """

    def __init__(self, server, ep, rd=None, d=None, lt_s=None, base=None, attrs=(),
                 client=None, simple=False, group=None, payload=None, on_event=None,
                 timeout_ms=20000, retry_ms=2000, max_retry_ms=300000,
                 transfer_timeout_ms=60000, max_body=1024, getaddrinfo=None):
        if not isinstance(ep, str) or not ep or len(ep.encode("utf-8")) > 63:
            raise ValueError("ep must be 1 to 63 bytes of UTF-8 (RFC 9176 §5)")
        if lt_s is not None and not 1 <= lt_s <= 4294967295:
            raise ValueError("lt_s is 1 .. 4294967295 (RFC 9176 §5)")
        self.server = server
        self.ep = ep
        self.d = d
        self.lt_s = lt_s
        self.base = base
        self.attrs = attrs
        self.simple = simple
        self.group = group
        self.payload = payload
        self.on_event = on_event
        self.timeout_ms = timeout_ms
        self.transfer_timeout_ms = transfer_timeout_ms
        self.max_body = max_body
        self.retry_ms = retry_ms
        self.max_retry_ms = max_retry_ms
        self._addr = None  # [host, port, 'coap://address:port'] of the name last resolved
        end_point = server.end_point
        self._clock = end_point.clock
        self._rand = end_point.rand
        if client is None:
            from .client import Client

            # (Bounded per request too, in _send(): for a client given.)
            client = Client(end_point, max_body=max_body, getaddrinfo=getaddrinfo)
        self.client = client
        self.rd = rd  # as configured
        self.location = None  # the registration resource's URI, once registered
        self.registration_uri = None  # where registrations go (discovered or given)
        self.last_error = None
        self.error = None  # the last failure as an exception (see the class notes)
        self.registrations = 0  # successful (re-)registrations
        self.updates = 0  # successful updates
        self.failures = 0  # requests that failed (no answer, error codes)
        self._state = _IDLE
        self._due = self._clock()  # ticks of the next action in _IDLE / _REGISTERED
        self._backoff = retry_ms
        self._pending = None  # the Client's Pending of the request in flight
        self._ok = None  # ticks of the last successful (re-)registration or update
        if rd is not None:
            from .uri import split

            scheme, host, port, path, query = split(rd)  # UriError if malformed
            if path and not simple:
                self.registration_uri = rd

    # -- state ------------------------------------------------------------

    @property
    def state(self):
        """'idle', 'discovering', 'registering', 'registered', 'updating',
        'closing' or 'closed'."""
        return _NAMES[self._state]

    @property
    def registered(self):
        """True while the RD holds a registration that we refreshed in time."""
        return self._ok is not None and self._state in (_REGISTERED, _UPDATE)

    def _event(self, name, detail=None):
        if self.on_event is not None:
            self.on_event(self, name, detail)

    # -- driving ----------------------------------------------------------

    def process(self, timeout_ms=None):
        """One round of the node's loop: wait at most timeout_ms (None: until
        the registrar's next action) for a message, serve it or take it,
        then do what is due."""
        wait = self.tick()
        if timeout_ms is not None and (wait < 0 or timeout_ms < wait):
            wait = timeout_ms
        rx = self.server.process(None if wait < 0 else wait)
        if rx is not None:
            self.client.handle(rx)
        self.tick()

    def handle(self, rx):
        """Take rx if it answers one of the client's requests (True)."""
        return self.client.handle(rx)

    def tick(self):
        """Finish requests whose answer or deadline came and start what is
        due. Returns the ms until the next thing to do (-1: nothing)."""
        if self._pending is not None:
            # The Client notices deadlines in its process(); a message it
            # does not take is a request for our Server.
            rx = self.client.process(0)
            if rx is not None:
                self.server.handle(rx)
        now = self._clock()
        st = self._state
        if self._pending is not None:
            h = self._pending
            if h.deadline is None:
                return 1000
            left = ticks_diff(h.deadline, now)
            return 0 if left < 0 else left
        if st == _IDLE or st == _REGISTERED:
            left = ticks_diff(self._due, now)
            if left > 0:
                return left
            if st == _REGISTERED and self.location is not None and not self.simple:
                self._update()
            else:
                self._start()
            return 0
        return -1

    def refresh(self):
        """Update now (or register, if not registered), not when lt says."""
        if self._state in (_IDLE, _REGISTERED):
            self._due = self._clock()

    def reregister(self):
        """Register anew at the next tick (e.g. after resources changed)."""
        if self._state in (_IDLE, _REGISTERED):
            self._state = _IDLE
            self._due = self._clock()

    def close(self, timeout_ms=5000):
        """Deregister (DELETE the registration resource, §5.3.2) and stop.
        Waits at most timeout_ms for the RD's answer, serving meanwhile
        (0: returns at once; process() or tick() then finish the removal).
        A simple registration has no resource to delete: it lapses."""
        if self._state == _CLOSING or self._state == _CLOSED:
            return
        h = self._pending
        self._pending = None
        if h is not None:
            h.cancel()
        loc = self.location
        if loc is None or self.simple:
            self._closed()
            return
        self._state = _CLOSING
        try:
            uri, opts = self._routed(loc, ())
            self._pending = self.client.start("delete", uri, options=opts,
                                              timeout_ms=timeout_ms or -1,
                                              callback=self._removed)
        except Exception as e:  # table full: the registration lapses with lt
            self._error("could not send the removal: %r" % (e,))
            self._closed()
            return
        start = self._clock()
        while timeout_ms and self._pending is not None \
                and ticks_diff(self._clock(), start) < timeout_ms:
            self.process(50)
        if timeout_ms and self._pending is not None:
            self._pending.cancel()
            self._pending = None
            self._error("no answer to the removal")
            self._closed()

    def _removed(self, h):
        self._pending = None
        r = h.response
        if r is not None and r.code == _DELETED:
            self._event("removed", self.location)
        elif r is not None:
            self._error("removal answered %d.%02d" % (r.code >> 5, r.code & 31))
        else:
            self._error("removal: %s" % (h.error,))
        self._closed()

    def _closed(self):
        self.location = None
        self._ok = None
        self._state = _CLOSED
        self._event("closed")

    # -- the steps ----------------------------------------------------------

    def _start(self):
        # Register, finding the registration resource first if needed.
        if self.simple:
            if self.rd is not None:
                self._simple(self.rd)
            elif self.registration_uri is not None:
                self._simple(self.registration_uri)
            else:
                self._discover()
        elif self.registration_uri is not None:
            self._register()
        else:
            self._discover()

    def _send(self, method, uri, state, callback, payload=b"", content_format=None,
              options=(), confirmable=True):
        self._state = state
        try:
            # What an RD sends back is small (a discovery answer filtered by
            # rt=core.rd* is a link or two; the other answers are empty):
            # each request is bounded as a whole, in time and in body, so no
            # RD holds the loop or the heap with blocks that never end.
            to, options = self._routed(uri, options)
            self._pending = self.client.start(method, to, payload, content_format, None,
                                              options, confirmable, self.timeout_ms, callback,
                                              None, self.transfer_timeout_ms, self.max_body)
        except Exception as e:  # bad URI, host name not found, table full
            self._pending = None
            self._failed("cannot send to %s: %r" % (uri, e), error=e)

    def _routed(self, uri, options):
        # (uri, options) to send: for a host name, the URI with the address
        # it was resolved to, and the name as Uri-Host in front of
        # `options` (the request the URI would have made, RFC 7252 §6.4),
        # resolved only when not already (see the class notes); as given
        # for an IP literal (the Client keeps those resolved itself).
        from .uri import is_ip_literal, split

        scheme, host, port, path, query = split(uri)
        if is_ip_literal(host):
            return uri, options
        a = self._addr
        if a is None or a[0] != host or a[1] != port:
            a = self._addr = [host, port, base_uri(self.client.resolve(host, port)[1])]
        from .options import Option

        return a[2] + uri[len(_origin(uri)):], [Option(_URI_HOST, host)] + list(options)

    def _discover(self):
        if self.rd is not None:
            uri = _origin(self.rd) + "/.well-known/core?rt=core.rd*"
            confirmable = True
        else:
            group = self.group
            if group is None:
                fam = getattr(self.server.end_point.socket, "family", 2)
                group = ("coap://[ff02::fd]"
                         if fam == 10 else "coap://224.0.1.187")
            uri = group + "/.well-known/core?rt=core.rd*"
            confirmable = False  # to a group: NON (RFC 7252 §8.1)
        self._send("get", uri, _DISCOVER, self._discovered, confirmable=confirmable)

    def _discovered(self, h):
        self._pending = None
        r = h.response
        if r is None:
            # (A transfer: an answer came, in blocks, and broke a bound.)
            self._failed("%s: %s" % ("no RD answered the discovery" if h.transfer is None
                                     else "RD discovery", h.error), error=h.error)
            return
        if r.code != _CONTENT:
            self._answered_error("RD discovery", r)
            return
        from .link import LinkFormatError, parse

        try:
            links = parse(r.payload)
        except LinkFormatError as e:
            self._failed("RD discovery: not link-format (%s)" % (e,), bad=True)
            return
        if self.rd is not None:
            origin = _origin(self.rd)
        else:
            origin = base_uri(r.remote)  # the RD that answered the group
        found = None
        for link in links:
            if "core.rd" in link.values("rt"):
                found = link.target
                break
        if self.simple:
            # Simple registration goes to the RD host's /.well-known/rd.
            self.registration_uri = origin
            self._event("discovered", origin)
            self._simple(origin)
            return
        if found is None:
            self._failed("no link with rt=core.rd in the RD's /.well-known/core", bad=True)
            return
        self.registration_uri = _join(origin, found)
        self._event("discovered", self.registration_uri)
        self._register()

    def _query(self, full):
        # The registration's Uri-Query options (RFC 9176 §5): ep, d, lt,
        # base and endpoint attributes on a registration; lt and base on an
        # update only if set (an update without them keeps them).
        from .options import Option

        q = []
        if full:
            q.append(Option(_URI_QUERY, "ep=" + self.ep))
            if self.d is not None:
                q.append(Option(_URI_QUERY, "d=" + self.d))
        if self.lt_s is not None:
            q.append(Option(_URI_QUERY, "lt=%d" % self.lt_s))
        if self.base is not None:
            q.append(Option(_URI_QUERY, "base=" + self.base))
        if full:
            for name, value in self.attrs:
                q.append(Option(_URI_QUERY, name if value is None else name + "=" + str(value)))
        return q

    def _register(self):
        body = self.payload
        if body is None:
            # The resource tree as /.well-known/core describes it (RFC 9176 §5).
            body = self.server.link_format()
        self._send("post", self.registration_uri, _REGISTER, self._registered, body,
                   _LINK_FORMAT, self._query(True))

    def _simple(self, where):
        uri = _origin(where) + "/.well-known/rd"
        opts = []
        for o in self._query(True):
            if not o.value.startswith("base="):  # not in a simple registration (§5.1)
                opts.append(o)
        self._send("post", uri, _REGISTER, self._simple_done, options=opts)

    def _simple_done(self, h):
        self._pending = None
        r = h.response
        if r is None:
            self._failed("simple registration: %s" % (h.error,), error=h.error)
        elif r.code == _CHANGED:  # RFC 9176 §5.1: 2.04 once the RD has read our links
            self._success()
            self.registrations += 1
            self._event("registered", self.registration_uri or self.rd)
        else:
            self._answered_error("simple registration", r)

    def _registered(self, h):
        self._pending = None
        r = h.response
        if r is None:
            self._failed("registration: %s" % (h.error,), error=h.error)
            return
        if r.code != _CREATED:
            self._answered_error("registration", r)
            return
        m = r.message
        segs = []
        for o in m.findOptions(_LOCATION_PATH):
            v = o.value
            if not isinstance(v, str):
                self._failed("registration: a Location-Path that is not UTF-8", bad=True)
                return
            if v == "." or v == "..":
                # RFC 7252 §5.10.7: a Location-Path is never '.' or '..'.
                # Taken as it is, the updates would carry it back as a
                # Uri-Path; resolved, it would name a resource the RD did
                # not (its parent, or '/etc' above '/rd'). Neither is the
                # registration resource: the registration failed.
                self._failed("registration: the RD's 2.01 has the Location-Path %r "
                             "(RFC 7252 §5.10.7 forbids '.' and '..')" % (v,), bad=True)
                return
            segs.append(v)
        if not segs or m.findOption(_LOCATION_QUERY) is not None:
            # RFC 9176 §5: the registration resource is named by
            # Location-Path; it has no query (so updates can add theirs).
            self._failed("registration: the RD's 2.01 has %s (RFC 9176 §5)"
                         % ("a Location-Query" if segs else "no Location-Path"), bad=True)
            return
        self.location = self._location(segs)
        self.registrations += 1
        self._success()
        self._event("registered", self.location)

    def _location(self, segs):
        # The registration resource's URI: the registration URI's host and
        # port with the Location-Path segments.
        from .options import Option
        from .uri import compose, split

        scheme, host, port, path, query = split(self.registration_uri)
        return compose([Option(11, s) for s in segs], host, port, scheme)

    def _update(self):
        self._send("post", self.location, _UPDATE, self._updated, options=self._query(False))

    def _updated(self, h):
        self._pending = None
        r = h.response
        if r is None:
            self._failed("update: %s" % (h.error,), error=h.error)
            return
        if r.code == _CHANGED:
            self.updates += 1
            self._success()
            self._event("updated", self.location)
        elif r.code == _NOT_FOUND or r.code == _BAD_REQUEST:
            # §5.3.1: the registration is gone (expired, removed, an RD
            # restarted without it): register afresh, at once.
            self._event("lost", "update answered %d.%02d" % (r.code >> 5, r.code & 31))
            self._forget()
            self._state = _IDLE
            self._due = self._clock()
        else:
            self._answered_error("update", r)

    # -- outcomes ---------------------------------------------------------

    def _lt_ms(self):
        lt = DEFAULT_LT_S if self.lt_s is None else self.lt_s
        ms = lt * 1000
        return _MAX_WAIT_MS if ms > _MAX_WAIT_MS else ms

    def _success(self):
        now = self._clock()
        self._ok = now
        self._backoff = self.retry_ms
        self.last_error = None
        self.error = None
        self._state = _REGISTERED
        # Refresh once three quarters of the lifetime have passed.
        self._due = ticks_add(now, (self._lt_ms() * 3) >> 2)

    def _forget(self):
        self.location = None
        self._ok = None
        if self.rd is None or (not self.simple and self.registration_uri != self.rd):
            self.registration_uri = None  # discovered: ask again next time

    def _answered_error(self, what, r):
        code = r.code
        text = "%s answered %d.%02d" % (what, code >> 5, code & 31)
        if r.payload:
            try:
                text += ": " + str(r.payload, "utf-8")
            except ValueError:
                pass
        wait = None
        if code == _SERVICE_UNAVAILABLE:
            # 5.03 with Max-Age (RFC 7252 §5.9.3.4; 60 s when it has none):
            # the earliest time to try again. Clamped below: it is from the
            # network.
            age = r.message.get_uint(_MAX_AGE, 60)
            wait = age * 1000
        e = Refused(text)
        e.code = code
        self._failed(text, wait, e)

    def _failed(self, text, wait_ms=None, error=None, bad=False):
        # A failed request: retry after the back-off, or after wait_ms (a
        # 5.03's Max-Age) if that is longer. error: the failure as an
        # exception (bad: a BadAnswer; neither: a CoapError of the text).
        self.failures += 1
        if error is None:
            error = BadAnswer(text) if bad else CoapError(text)
        if not isinstance(error, (Refused, BadAnswer)):
            # No answer (or the name did not resolve): the RD may have
            # moved, so its name is resolved again, after the back-off.
            self._addr = None
        self.error = error
        self._error(text)
        now = self._clock()
        b = self._backoff
        # Half the back-off plus a random share of the other half, so
        # nodes that lost the RD together do not come back together.
        back = (b >> 1) + (((b >> 1) * self._rand(16)) >> 16)
        self._backoff = b * 2 if b * 2 < self.max_retry_ms else self.max_retry_ms
        # A 5.03 waits at least the back-off too, and doubles it like any
        # failure: Max-Age says when to ask again at the earliest, and an
        # RD (or anything on its address) that answers every request 5.03
        # Max-Age 0 drew 9,500 registrations in 3 s from one node when
        # Max-Age alone set the wait.
        if wait_ms is None or wait_ms < back:
            wait_ms = back
        if wait_ms > self.max_retry_ms:
            wait_ms = self.max_retry_ms
        if wait_ms > _MAX_WAIT_MS:
            wait_ms = _MAX_WAIT_MS
        ok = self._ok
        if ok is not None and self.location is not None and ticks_diff(now, ok) < self._lt_ms():
            # Still registered as far as we know: keep trying updates.
            self._state = _REGISTERED
        else:
            self._forget()
            self._state = _IDLE
        self._due = ticks_add(now, wait_ms)

    def _error(self, text):
        self.last_error = text
        self._event("error", text)

    def __repr__(self):
        return "<Registrar %s %s %s>" % (self.ep, self.state, self.location or self.rd or "")
