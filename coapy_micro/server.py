"""A CoAP server on an EndPoint: resources by path, per-method handlers (RFC 7252 §5).

    srv = Server(ep)
    srv.add("sensors/temp", Resource(get=read_temp, rt="temperature-c", ct=0))
    srv.serve()                      # or, in the app's own loop: srv.process(ms)

A handler takes a Request and returns a Response, (code, payload) or
(code, payload, content_format). A slow one calls request.defer() (an empty
ACK goes out now) and answers later with deferred.respond(...).

What the server answers by itself (RFC 7252 §5.4, §5.7.2, §5.8, §5.10):
4.02 for an unrecognized critical option (an unknown number, a known option
of bad length, a supernumerary non-repeatable one, OSCORE); 4.00 for a path or
query that is not UTF-8; 4.04 for an unknown path; 4.05 for a method the
resource has no handler for; 4.15 for a payload in a Content-Format the
resource does not accept; 4.06 for an Accept it cannot produce; 5.05 for
Proxy-Uri/Proxy-Scheme (this is no proxy); 5.00 when a handler raises.
Unknown elective options are ignored. Observe (RFC 7641) registrations to a
Resource(obs=True) and srv.notify(path) are handled in observe.py, loaded on
the first GET with Observe to such a resource. Block1 and Block2 (RFC 7959) are handled
in block.py, loaded only when a request carries one or a response body is
larger than one block (see there for Response(total=) callable bodies and
Resource(block1_stream=)). If-Match and If-None-Match
are recognized and left to the handler (request.message has them).

A NON request with an unrecognized critical option is rejected with RST
(§5.4.1, §4.3) rather than answered 4.02. Requests that arrived on a
registered multicast socket get no error responses and no RST, and their
successful responses leave after a random delay within the Leisure period
(§8.2). No-Response (RFC 7967) suppresses the classes it names; a CON still
gets its empty ACK.

Per request, beyond what the EndPoint allocates: a Request, the response
Message and whatever the handler builds. Options are read in one walk over
the received bytes, and the resource is found by comparing path segments as
bytes, so no path string is built unless the handler asks for request.path.
"""
try:
    from micropython import const
except ImportError:  # CPython
    from ._compat import const

from ._compat import IS_MICROPYTHON, ticks_add, ticks_diff
from .message import Message
from .options import option_class

_CON = const(0)
_NON = const(1)
_ACK = const(2)

# Option numbers the walk in _scan() treats by itself.
_OSCORE = const(9)
_URI_PATH = const(11)
_CONTENT_FORMAT = const(12)
_URI_QUERY = const(15)
_ACCEPT = const(17)
_PROXY_URI = const(35)
_PROXY_SCHEME = const(39)
_NO_RESPONSE = const(258)
_BLOCK2 = const(23)
_BLOCK1 = const(27)
_OBSERVE = const(6)
_RST = const(3)

# Response codes (codes.py has them all; these are the ones sent from here).
_CONTENT = const(69)
_CONTINUE_CODE = const(95)
_BAD_REQUEST = const(128)
_BAD_OPTION = const(130)
_NOT_FOUND = const(132)
_METHOD_NOT_ALLOWED = const(133)
_NOT_ACCEPTABLE = const(134)
_UNSUPPORTED_CONTENT_FORMAT = const(143)
_INTERNAL_SERVER_ERROR = const(160)
_PROXYING_NOT_SUPPORTED = const(165)
_LINK_FORMAT = const(40)

# Bounded caches (DESIGN.md: every cache is bounded by a count).
_MAX_CF_CACHE = const(8)


class Response:
    """What a handler returns: `Response(69, b'21.5', content_format=0)`.

    `options`: further Option instances for the response (e.g. ETag, Max-Age).
    `payload` may be a callable body(num, size) -> bytes giving block `num`
    of `size` bytes (RFC 7959, see block.py); `total` is then its length.
    """

    def __init__(self, code, payload=b"", content_format=None, options=(), total=None):
        self.code = code
        self.payload = payload
        self.content_format = content_format
        self.options = options
        self.total = total


def _formats(v):
    # ct / accepts as given (None, an int, or several) -> None or a tuple.
    if v is None:
        return None
    if isinstance(v, (tuple, list)):
        return tuple(v)
    return (v,)


class Resource:
    """Handlers per method, plus what /.well-known/core says about it.

    `subtree`: also serve every path below this one (the handler reads
    request.path). `ct`: the Content-Formats the resource can produce (an
    int or several): a request whose Accept is not among them gets 4.06,
    and a 2.xx payload with no format of its own gets the Accept asked for,
    or ct when it names one format. `accepts`: the Content-Formats accepted
    in a request payload (None: any); others, or none given, get 4.15.
    `block1_stream`: fn(request, num, data, more) receives each Block1
    block of an upload instead of the handler seeing the assembled body
    (block.py says what it returns).
    """

    def __init__(self, get=None, put=None, post=None, delete=None, fetch=None,
                 patch=None, ipatch=None, subtree=False, rt=None, if_=None,
                 ct=None, sz=None, obs=False, title=None, accepts=None,
                 block1_stream=None):
        # Indexed by method code - 1 (GET=1 POST=2 PUT=3 DELETE=4 FETCH=5
        # PATCH=6 iPATCH=7): dispatch is one subscript, no dict.
        self.handlers = (get, post, put, delete, fetch, patch, ipatch)
        self.subtree = subtree
        self.rt = rt
        self.if_ = if_
        self.ct = ct
        self.sz = sz
        self.obs = obs
        self.title = title
        self.accepts = accepts
        self.block1_stream = block1_stream
        self._cts = _formats(ct)
        self._accepts = _formats(accepts)

    def link_attrs(self):
        """The discovery attributes as (name, value) pairs (link.Link's form)."""
        out = []
        if self.rt is not None:
            out.append(("rt", self.rt))
        if self.if_ is not None:
            out.append(("if", self.if_))
        if self.ct is not None:
            out.append(("ct", self.ct))
        if self.sz is not None:
            out.append(("sz", self.sz))
        if self.title is not None:
            out.append(("title", self.title))
        if self.obs:
            out.append(("obs", None))
        return out


class Request:
    """One request as a handler sees it.

    Plain attributes: message, remote, code, content_format, accept (None
    when absent), confirmable, multicast (it came to a group address), rx
    (the EndPoint's ReceptionRecord). Computed when first read: path and
    query (tuples of str), payload, token.
    """

    # Class-level defaults: a plain request sets only what differs, which
    # saves time per request on CPython and heap on a board.
    content_format = None
    accept = None
    deferred = None
    multicast = False
    _no_response = 0  # RFC 7967 bitmap
    _bad = 0  # the unrecognized critical option behind a 4.02
    _path = None
    _query = ()
    _done = False  # a response (or a decision not to send one) went out
    _block1 = None  # the Block1 / Block2 option values (RFC 7959), if any
    _block2 = None
    _body = None  # the assembled Block1 body, when there is one
    _observe = None  # the request's Observe value (RFC 7641), if any
    _notifying = False  # built by observe.py for a notification

    @property
    def observe(self):
        """The request's Observe value: 0 register, 1 deregister, or None."""
        return self._observe

    def __init__(self, server, rx, multicast):
        self.server = server
        self.rx = rx
        m = self.message = rx.message
        self.remote = rx.remote
        self.code = m.code
        self.confirmable = m.transaction_type == _CON
        if multicast:
            self.multicast = True

    @property
    def path(self):
        p = self._path
        if p is None:
            p = _strings(self.message, _URI_PATH)
            self._path = p
        return p

    @property
    def query(self):
        return self._query

    @property
    def payload(self):
        b = self._body
        return self.message.payload if b is None else b

    @property
    def token(self):
        return self.message.token

    def defer(self):
        """Answer later: a CON gets its empty ACK now. Returns the Deferred
        (the same one if called again); its respond() sends the response."""
        d = self.deferred
        if d is None:
            d = Deferred(self)
            self.deferred = d
            if self.confirmable and not self._done:
                self.rx.ack()
        return d

    def __repr__(self):
        try:
            path = "/".join(self.path)
        except ValueError:
            path = "?"
        return "<Request %d.%02d /%s from %r>" % (self.code >> 5, self.code & 31, path, self.remote)


class Deferred:
    """A separate response still to be sent (RFC 7252 §5.2.2)."""

    def __init__(self, request):
        self.request = request
        self.done = False
        self.record = None  # the EndPoint's TransmissionRecord, once sent

    def respond(self, code, payload=b"", content_format=None, options=(), total=None):
        """Send the response: CON for a CON request (the EndPoint
        retransmits it until acknowledged), NON for a NON one. Returns the
        TransmissionRecord, or None when suppressed (No-Response, or an
        error to a multicast request). Raises ValueError if already sent,
        CapacityError if the EndPoint has too many transmissions in flight.
        A body larger than a block goes out as the block asked for (RFC
        7959); `total` as in Response, for a callable body."""
        req = self.request
        srv = req.server
        if not self.done and (req._block2 is not None or req._block1 is not None
                              or callable(payload) or len(payload) > srv.block_size):
            # One block of a large body, as _result does (RFC 7959).
            from .block import block2_response

            code, payload, options = block2_response(srv, req, code, payload, options, total)
        return self._send(code, payload, content_format, options)

    def _send(self, code, payload, content_format, options):
        # respond() once the body is cut to its block (_answer comes here
        # with what _result has already cut).
        if self.done:
            raise ValueError("this request has been answered")
        req = self.request
        srv = req.server
        self.done = True
        if srv._suppressed(req, code):
            return None
        mtype = _CON if req.confirmable else _NON
        msg = srv._message(mtype, code, payload, req.token, content_format, options)
        self.record = srv.end_point.send(msg, req.remote)
        return self.record


def _strings(msg, number):
    # The values of option `number` as a tuple of str; ValueError if one is
    # not UTF-8 (Option.value leaves such a value as bytes).
    out = []
    for o in msg.findOptions(number):
        v = o.value
        if not isinstance(v, str):
            raise ValueError("option %d is not UTF-8" % number)
        out.append(v)
    return tuple(out)


def _same(buf, pos, seg):
    # buf[pos:pos + len(seg)] == seg. A slice is fastest on CPython; on a
    # board the byte loop allocates nothing (a slice would).
    if IS_MICROPYTHON:
        for i in range(len(seg)):
            if buf[pos + i] != seg[i]:
                return False
        return True
    return buf[pos:pos + len(seg)] == seg


def _segments(path):
    # 'a/b', '/a/b' -> ['a', 'b']; '' and '/' -> [] (the root). Empty
    # segments inside are kept ('a//b' is three segments, RFC 7252 §6.4).
    if path[:1] == "/":
        path = path[1:]
    return path.split("/") if path else []


_PCT_SAFE = "-._~!$&'()*+,;=:@"


def _target(path):
    # The link target for a registered path: '/' + segments, percent-
    # encoding what a path segment may not hold literally (RFC 3986 §3.3).
    out = ["/"]
    for c in path:
        if ("a" <= c <= "z" or "A" <= c <= "Z" or "0" <= c <= "9" or c == "/"
                or c in _PCT_SAFE):
            out.append(c)
        else:
            for b in c.encode("utf-8"):
                out.append("%%%02X" % b)
    return "".join(out)


class Server:
    """Serves resources on `end_point` (an EndPoint, possibly shared with a
    Client: process() hands back whatever is not a request).

    on_error(request, exc): called when a handler raises (the request gets
    5.00) or a response cannot be sent; for the application's log.
    leisure_ms: the Leisure period for responses to multicast requests
    (RFC 7252 §8.2); max_delayed: how many such responses may wait at once
    (more are dropped: answering a group is optional). rand(nbits): random
    bits for the leisure delay (default: the EndPoint's source).
    block_size, max_body, max_assemblies, assembly_ms: Block-wise transfer
    (RFC 7959, block.py): block size, upload limit (4.13 beyond), uploads
    assembled at once, and how long an unfinished one is kept.
    max_observers, max_observers_per_resource: bounds of the Observe table
    (RFC 7641, observe.py); a registration beyond them gets a plain answer.
    notify_con_every: at most this many notifications to an observer go
    out before one is CON (and one at least every 24 hours).
    """

    def __init__(self, end_point, on_error=None, leisure_ms=5000, max_delayed=4, rand=None,
                 block_size=1024, max_body=8192, max_assemblies=2, assembly_ms=60000,
                 max_observers=8, max_observers_per_resource=4, notify_con_every=20):
        self.end_point = end_point
        # Observe (RFC 7641, observe.py): the observer table's bounds, and
        # how many notifications may go NON before one goes CON (§4.5).
        self.max_observers = max_observers
        self.max_observers_per_resource = max_observers_per_resource
        self.notify_con_every = notify_con_every
        self._observers = None  # observe.Observers, made on the first registration
        # Block-wise (block.py): the largest block sent or asked for (16 ..
        # 1024, rounded down to a power of two), the largest Block1 body
        # accepted, how many uploads may be assembled at once (a bounded
        # table: a board holds max_assemblies * max_body at worst) and how
        # long one waits for its next block.
        self.block_size = block_size
        self.max_body = max_body
        self.max_assemblies = max_assemblies
        self.assembly_ms = assembly_ms
        self._assemblies = None  # block.Assemblies, made on the first Block1
        self.on_error = on_error
        self.leisure_ms = leisure_ms
        self.max_delayed = max_delayed
        self._rand = rand or end_point.rand
        self._clock = end_point.clock  # the EndPoint's clock: one time base in tests
        # The resource tree: a node is [segment as UTF-8 bytes, Resource or
        # None, [child nodes]]. A list per node, searched in order: a node
        # has few children, and comparing bytes needs no string.
        self._root = [b"", None, []]
        self._listing = []  # [path, Resource] in registration order (discovery)
        self._specs = {}  # option number -> (min_len, max_len, repeatable), registered only
        self._cf_options = {}  # Content-Format -> its encoded option (bounded)
        self._delayed = []  # [due ticks, Request, Message] for multicast requests
        self._running = False
        self.errors = 0  # handler exceptions and responses that could not be sent
        self.dropped = 0  # delayed multicast responses dropped (queue full)
        self.well_known = Resource(get=self._discover, ct=_LINK_FORMAT)
        self.add(".well-known/core", self.well_known)

    # -- the resource tree --------------------------------------------------

    def add(self, path, resource):
        """Serve `resource` at `path` ('sensors/temp' or '/sensors/temp';
        '' is the root). Replaces what was there. Returns the resource."""
        node = self._root
        for seg in _segments(path):
            key = seg.encode("utf-8")
            for child in node[2]:
                if child[0] == key:
                    node = child
                    break
            else:
                child = [key, None, []]
                node[2].append(child)
                node = child
        node[1] = resource
        norm = "/".join(_segments(path))
        for entry in self._listing:
            if entry[0] == norm:
                entry[1] = resource
                break
        else:
            self._listing.append([norm, resource])
        return resource

    def notify(self, path_or_resource):
        """Send every observer of the resource (a path or the Resource) a
        notification built by calling its GET handler again. Returns how
        many were sent."""
        obs = self._observers
        if obs is None:
            return 0
        res = path_or_resource
        if not isinstance(res, Resource):
            res = self.find(res)
            if res is None:
                return 0
        return obs.notify(res)

    def observers(self, path_or_resource=None):
        """How many observers (of one resource, or in total)."""
        obs = self._observers
        if obs is None:
            return 0
        if path_or_resource is None:
            return len(obs.entries)
        res = path_or_resource
        if not isinstance(res, Resource):
            res = self.find(res)
        return obs.count(res)

    def find(self, path):
        """The Resource registered at `path`, or None."""
        norm = "/".join(_segments(path))
        for entry in self._listing:
            if entry[0] == norm:
                return entry[1]
        return None

    def resources(self):
        """[(path, Resource)] in registration order."""
        return [(e[0], e[1]) for e in self._listing]

    # -- receiving ------------------------------------------------------------

    def process(self, timeout_ms=None):
        """One EndPoint.process(): wait at most timeout_ms (None: no limit)
        for a message. A request is handled (None is returned); anything else
        (a response for a Client on the same EndPoint, an ACK) is returned.
        Delayed multicast responses are sent when due meanwhile."""
        if not self._delayed:
            rx = self.end_point.process(timeout_ms)
            if rx is None or self.handle(rx):
                return None
            return rx
        clock = self._clock
        start = clock()
        while True:
            now = clock()
            wait = self._send_due(now)
            cut = False
            t = timeout_ms
            if t is not None:
                t = int(t) - ticks_diff(now, start)
                if t < 0:
                    t = 0
            if wait >= 0 and (t is None or wait < t):
                t = wait
                cut = True
            rx = self.end_point.process(t)
            if rx is not None:
                if self.handle(rx):
                    return None
                return rx
            if not cut:
                return None

    def serve(self, seconds=None, tick=None, tick_ms=1000):
        """Loop process() for `seconds` (None: until stop()). tick(), if
        given, is called every tick_ms meanwhile: where an application
        reads its sensors and calls notify() (Observe)."""
        self._running = True
        clock = self._clock
        start = clock()
        due = ticks_add(start, tick_ms)
        while self._running:
            t = 1000
            if tick is not None:
                left = ticks_diff(due, clock())
                if left <= 0:
                    due = ticks_add(due, tick_ms)
                    if ticks_diff(due, clock()) < 0:
                        due = ticks_add(clock(), tick_ms)  # late: no burst of ticks
                    tick()
                    left = ticks_diff(due, clock())
                if left < 0:
                    left = 0
                if left < t:
                    t = left
            if seconds is not None:
                t = int(seconds * 1000) - ticks_diff(clock(), start)
                if t <= 0:
                    break
                if t > 1000:
                    t = 1000
            self.process(t)
        self._running = False

    def stop(self):
        """Make serve() return (within a second)."""
        self._running = False

    def handle(self, rx):
        """Answer `rx` (a ReceptionRecord from EndPoint.process) if it is a
        request: True if it was one, False (untouched) otherwise."""
        m = rx.message
        code = m.code
        if not 1 <= code <= 31:
            if m.transaction_type == _RST and self._observers is not None:
                self._observers.on_reset(rx)  # an observer rejected a notification
            return False
        sock = rx.sock
        req = Request(self, rx, sock is not None and sock is not self.end_point.socket)
        res = self._scan(req, m)
        if not isinstance(res, Resource):
            if res == _BAD_OPTION and not req.confirmable:
                # An unrecognized critical option in a NON message: reject
                # it (RFC 7252 §5.4.1, §4.3), silently for a group (§8.2).
                if not req.multicast:
                    rx.reset()
                return True
            # 4.02 says which option (RFC 7252 §5.4.1: a diagnostic payload).
            self._answer(req, res, "option %d" % req._bad if res == _BAD_OPTION else b"", None, ())
            return True
        handler = res.handlers[code - 1] if code <= 7 else None
        if handler is None:
            self._answer(req, _METHOD_NOT_ALLOWED, b"", None, ())
            return True
        ok = res._accepts
        if ok is not None and m.payload and req.content_format not in ok:
            self._answer(req, _UNSUPPORTED_CONTENT_FORMAT, b"", None, ())
            return True
        cts = res._cts
        if cts is not None and req.accept is not None and req.accept not in cts:
            self._answer(req, _NOT_ACCEPTABLE, b"", None, ())
            return True
        b2 = req._block2
        if b2 is not None and b2 & 7 == 7:
            self._answer(req, _BAD_REQUEST, b"Block2 SZX 7", None, ())  # reserved (RFC 7959 §2.2)
            return True
        if (b2 is not None and b2 >> 4 and req._block1 is None and code != 1
                and self._assemblies is not None):
            # The rest of the response to an upload (RFC 7959 §2.7).
            kept = self._assemblies.kept(req, res)
            if kept is not None:
                self._blocks(req, kept[0], kept[1], kept[2], kept[3], kept[4])
                return True
        if req._block1 is not None:
            a = self._assemblies
            if a is None:
                from .block import Assemblies

                a = self._assemblies = Assemblies(self)
            if not a.take(req, res):
                return True  # answered there: 2.31, 4.08, 4.13, or streamed
            if res.block1_stream is not None:
                handler = _Last(res.block1_stream)
        try:
            result = handler(req)
        except Exception as e:  # the node keeps serving; the app hears of it
            self._failed(req, e)
            self._answer(req, _INTERNAL_SERVER_ERROR, b"", None, ())
            return True
        self._result(req, res, result)
        return True

    def _result(self, req, res, result):
        # Turn what a handler returned into the response.
        if result is None:
            if req.deferred is not None:
                return  # the application answers later
            self._failed(req, TypeError("handler returned None without defer()"))
            self._answer(req, _INTERNAL_SERVER_ERROR, b"", None, ())
            return
        try:
            code, payload, cf, options, total = self._unpack(req, res, result)
        except (TypeError, IndexError) as e:
            self._failed(req, e)
            self._answer(req, _INTERNAL_SERVER_ERROR, b"", None, ())
            return
        if req._observe is not None and req.code == 1 and res.obs and not req.multicast:
            options = self._observing(req, res, code, options)
        if (req._block2 is not None or req._block1 is not None or callable(payload)
                or len(payload) > self.block_size):
            if (req._block1 is not None and code != _CONTINUE_CODE
                    and (callable(payload) or len(payload) > self.block_size)):
                self._assemblies.keep(req, res, (code, payload, cf, options, total))
            self._blocks(req, code, payload, cf, options, total)
            return
        self._answer(req, code, payload, cf, options)

    def _unpack(self, req, res, result):
        # What a handler returned -> (code, payload, cf, options, total);
        # TypeError or IndexError if it is not a Response or a tuple.
        options = ()
        total = None
        if isinstance(result, Response):
            code = result.code
            payload = result.payload
            cf = result.content_format
            options = result.options
            total = result.total
        else:
            code = result[0]
            payload = result[1]
            cf = result[2] if len(result) > 2 else None
        if cf is None and payload and code >> 5 == 2:
            cts = res._cts
            if cts is not None:
                if req.accept is not None:
                    cf = req.accept  # one of cts: checked before the handler ran
                elif len(cts) == 1:
                    cf = cts[0]
        return code, payload, cf, options, total

    def _observing(self, req, res, code, options):
        # A GET with Observe to an observable resource (RFC 7641 §4.1):
        # 0 registers (when 2.xx and the table has room: the response then
        # carries Observe), 1 deregisters. Returns the response's options.
        from .observe import Observers, with_observe

        obs = self._observers
        if req._observe == 1 or code >> 5 != 2:
            if obs is not None:
                obs.deregister(req.remote, req.token)
            return options
        if req._observe != 0:
            return options
        if obs is None:
            obs = self._observers = Observers(self, self.max_observers,
                                              self.max_observers_per_resource,
                                              self.notify_con_every)
        seq = obs.register(req, res)
        if seq is None:
            return options  # full: answered as a plain GET
        return with_observe(options, seq)

    def _blocks(self, req, code, payload, cf, options, total):
        # Answer with one block of a large body (RFC 7959, block.py).
        from .block import block2_response

        try:
            code, payload, options = block2_response(self, req, code, payload, options, total)
        except Exception as e:
            self._failed(req, e)
            code, payload, options = _INTERNAL_SERVER_ERROR, b"", ()
        self._answer(req, code, payload, cf, options)

    def _failed(self, req, exc):
        self.errors += 1
        hook = self.on_error
        if hook is not None:
            try:
                hook(req, exc)
            except Exception:  # a broken log hook must not stop the server
                pass

    # -- reading the request -------------------------------------------------

    def _scan(self, req, m):
        """Check every option and find the resource, in one walk over the
        received option bytes. Returns the Resource, or the error code to
        answer with. Sets req.content_format, .accept, ._no_response, ._query.
        """
        ob = m._ob  # the options in wire form, already checked by decode()
        pos = m._o0
        end = m._o1
        node = self._root
        sub = node if node[1] is not None and node[1].subtree else None
        depth = 0  # Uri-Path options seen
        queries = 0
        bad = 0  # the first unrecognized critical option, + 1
        proxy = False
        number = 0
        prev = -1
        specs = self._specs
        while pos < end:
            b = ob[pos]
            pos += 1
            n = b & 15
            d = b >> 4
            if d > 12:
                if d == 13:
                    d = ob[pos] + 13
                    pos += 1
                else:
                    d = ((ob[pos] << 8) | ob[pos + 1]) + 269
                    pos += 2
            if n > 12:
                if n == 13:
                    n = ob[pos] + 13
                    pos += 1
                else:
                    n = ((ob[pos] << 8) | ob[pos + 1]) + 269
                    pos += 2
            number += d
            if number == _URI_PATH:
                depth += 1
                if n > 255:
                    bad = bad or number + 1
                elif node is not None:
                    found = None
                    for child in node[2]:
                        seg = child[0]
                        if len(seg) == n and _same(ob, pos, seg):
                            found = child
                            break
                    node = found
                    if found is not None and found[1] is not None and found[1].subtree:
                        sub = found
            elif number == _URI_QUERY:
                queries += 1
                if n > 255:
                    bad = bad or number + 1
            elif number == _CONTENT_FORMAT:
                if n <= 2 and number != prev:  # elective: a bad or extra one is ignored
                    req.content_format = _uint(ob, pos, n)
            elif number == _ACCEPT:
                if n > 2 or number == prev:
                    bad = bad or number + 1
                else:
                    req.accept = _uint(ob, pos, n)
            elif number == _NO_RESPONSE:
                if n <= 1 and number != prev:
                    req._no_response = _uint(ob, pos, n)
            else:
                spec = specs.get(number)
                if spec is None:
                    cls = option_class(number)
                    if cls is not None and number != _OSCORE:  # no OSCORE here
                        spec = (cls.min_len, cls.max_len, cls.repeatable)
                        specs[number] = spec  # at most the registered numbers
                if spec is None or n < spec[0] or n > spec[1] or (number == prev and not spec[2]):
                    # Unrecognized (§5.4.1), or to be treated so (§5.4.3
                    # bad length, §5.4.5 supernumerary): critical ones fail
                    # the request, elective ones are ignored.
                    if number & 1:
                        bad = bad or number + 1
                elif number == _PROXY_URI or number == _PROXY_SCHEME:
                    proxy = True
                elif number == _BLOCK2:
                    req._block2 = _uint(ob, pos, n)
                elif number == _BLOCK1:
                    req._block1 = _uint(ob, pos, n)
                elif number == _OBSERVE:
                    req._observe = _uint(ob, pos, n)
            prev = number
            pos += n
        if bad:
            req._bad = bad - 1
            return _BAD_OPTION
        if proxy:
            return _PROXYING_NOT_SUPPORTED
        if queries:
            try:
                req._query = _strings(m, _URI_QUERY)
            except ValueError:
                return _BAD_REQUEST
        if node is not None and node[1] is not None:
            return node[1]  # registered segments are UTF-8 by construction
        if sub is not None or depth:
            # A subtree's handler reads request.path; a path no resource
            # has is 4.04, or 4.00 if it is not even UTF-8.
            try:
                req._path = _strings(m, _URI_PATH)
            except ValueError:
                return _BAD_REQUEST
        if sub is not None:
            return sub[1]
        return _NOT_FOUND

    # -- answering ------------------------------------------------------------

    def _suppressed(self, req, code):
        # No error responses to a group (RFC 7252 §8.2); No-Response (RFC
        # 7967): bit 2 suppresses 2.xx, 8 suppresses 4.xx, 16 suppresses 5.xx.
        cls = code >> 5
        if req.multicast and cls >= 4:
            return True
        nr = req._no_response
        return nr != 0 and cls >= 2 and (nr >> (cls - 1)) & 1 == 1

    def _answer(self, req, code, payload, cf, options):
        """Send the response to `req` now: piggybacked on the ACK for a CON,
        a NON for a NON; after the leisure delay for a group; or, when
        suppressed, only the empty ACK a CON needs."""
        d = req.deferred
        if d is not None:
            # The handler deferred but also returned (or raised): send it
            # separately, unless it has already been sent.
            if not d.done:
                try:
                    d._send(code, payload, cf, options)
                except Exception as e:
                    self._failed(req, e)
            return
        if req._done:
            return
        req._done = True
        rx = req.rx
        if self._suppressed(req, code):
            if req.confirmable:
                rx.ack()
            return
        try:
            msg = self._message(_ACK if req.confirmable else _NON, code, payload,
                                req.token, cf, options)
            if req.multicast:
                self._delay(req, msg)
            elif req.confirmable:
                rx.ack(msg)
            else:
                self.end_point.send(msg, req.remote)
        except Exception as e:  # too large for max_message_size, table full...
            self._failed(req, e)
            if code != _INTERNAL_SERVER_ERROR:
                req._done = False
                self._answer(req, _INTERNAL_SERVER_ERROR, b"", None, ())

    def _message(self, mtype, code, payload, token, cf, options):
        # The response Message. The common case (no option but maybe a
        # Content-Format) takes its option bytes from a small cache instead
        # of building an option list and encoding it.
        m = Message(mtype, code, payload, token)
        if options:
            for o in options:
                m.addOption(o)
            if cf is not None:
                m.replaceOption(option_class(_CONTENT_FORMAT)(cf))
        elif cf is not None:
            ob = self._cf_options.get(cf)
            if ob is None:
                ob = _cf_option(cf)
                if len(self._cf_options) < _MAX_CF_CACHE:
                    self._cf_options[cf] = ob
            m._ob = ob  # Message keeps its options in wire form (message.py)
            m._o0 = 0
            m._o1 = len(ob)
        return m

    # -- multicast: responses within the Leisure period --------------------

    def _delay(self, req, msg):
        if len(self._delayed) >= self.max_delayed:
            self.dropped += 1
            return
        delay = (self.leisure_ms * self._rand(16)) >> 16
        self._delayed.append([ticks_add(self._clock(), delay), req, msg])

    def _send_due(self, now):
        """Send the delayed responses that are due; return ms until the next
        one (-1: none left)."""
        wait = -1
        q = self._delayed
        i = 0
        while i < len(q):
            e = q[i]
            left = ticks_diff(e[0], now)
            if left <= 0:
                del q[i]
                req = e[1]
                try:
                    if req.confirmable:
                        req.rx.ack(e[2])  # a CON to a group (not allowed, §8.1): late ACK
                    else:
                        self.end_point.send(e[2], req.remote)
                except Exception as ex:
                    self._failed(req, ex)
                continue
            if wait < 0 or left < wait:
                wait = left
            i += 1
        return wait

    # -- /.well-known/core (RFC 6690) ----------------------------------------

    def _discover(self, request):
        # Imported here: a node that is never asked does not load link.py.
        from .link import Link, filter_links, serialize

        links = []
        for path, res in self._listing:
            if res is not self.well_known:
                links.append(Link(_target(path), res.link_attrs()))
        if request.query:
            links = filter_links(links, request.query)
        if not links and request.multicast:
            # Nothing to say to a group: 4.04 is never sent to one (errors
            # are suppressed), so the request goes unanswered. To a unicast
            # request an empty result is 2.05 with an empty payload.
            return (_NOT_FOUND, b"")
        return (_CONTENT, serialize(links), _LINK_FORMAT)


class _Last:
    # The stream function called as a handler for an upload's last block.
    def __init__(self, fn):
        self.fn = fn

    def __call__(self, req):
        return self.fn(req, req._block1 >> 4, req.message.payload, False)


def _uint(buf, pos, n):
    v = 0
    end = pos + n
    while pos < end:
        v = (v << 8) | buf[pos]
        pos += 1
    return v


def _cf_option(cf):
    # Content-Format (12) as the only option: delta 12, then its uint value.
    if cf == 0:
        return b"\xc0"
    if cf < 256:
        return bytes((0xC1, cf))
    return bytes((0xC2, cf >> 8, cf & 0xFF))
