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
Unknown elective options are ignored. If-Match and If-None-Match are
recognized and left to the handler (request.message has them).

A NON request with an unrecognized critical option is rejected with RST
(§5.4.1, §4.3) rather than answered 4.02. No-Response (RFC 7967) suppresses
the classes it names; a CON still gets its empty ACK.

Extensions. Observe (RFC 7641, server_observe.py), Block-wise transfer (RFC
7959: server_block.py sends blocks, server_upload.py takes them) and answers to requests made to a group (RFC 7252
§8.2, multicast.py) are loaded the first time a request needs them, by
Server.hook(), the one place that names them; each registers the object the
server then calls through set_hook(). They use the server's public calls
only: call() runs a handler (5.00 if it raises), render() turns what it
returned into the response parts (the Content-Format default, the Observe
registration, the block asked for; 5.00 if that fails), answer() sends
them, fail() reports an error, now() reads the clock, message() builds a
response Message. Every response goes through that one pipeline: a
handler's, a deferred one, a notification, a streamed upload's.

What a request costs: nothing of its own but what the handler builds. The
server takes it in a Request it reuses (and the EndPoint in a record and
Message it reuses), unless something holds on to it: a deferred request, an
observer's registration, one an extension or on_error saw (Request.keep()).
Options are read in one walk over the received bytes with the codec's option
cursor; the resource is found by comparing path segments as bytes, so no
path or query string is made unless the handler asks for request.path or
request.query; the response is written straight into the EndPoint's buffer
(ReceptionRecord.respond), with no response Message.

A MemoryError while a request is taken in or handled drops it (counted in
the EndPoint's memory_errors): it never leaves process() or serve().
"""
from ._compat import IS_MICROPYTHON, const, ticks_add, ticks_diff
from .message import Message, encode_options, insert_option, option_next
from .options import make, option_class, uint_at, uint_bytes

_CON = const(0)
_NON = const(1)
_ACK = const(2)
_RST = const(3)
_GET = const(1)
_FETCH = const(5)

# Option numbers the walk in route() treats by itself.
_OBSERVE = const(6)
_OSCORE = const(9)
_URI_PATH = const(11)
_CONTENT_FORMAT = const(12)
_URI_QUERY = const(15)
_ACCEPT = const(17)
_BLOCK2 = const(23)
_BLOCK1 = const(27)
_PROXY_URI = const(35)
_PROXY_SCHEME = const(39)
_NO_RESPONSE = const(258)
_RECOGNIZED = const(-2)  # message.RECOGNIZED: the cursor passes unrecognized elective options

# Response codes (codes.py has them all; these are the ones sent from here).
_BAD_REQUEST = const(128)
_BAD_OPTION = const(130)
_NOT_FOUND = const(132)
_METHOD_NOT_ALLOWED = const(133)
_NOT_ACCEPTABLE = const(134)
_UNSUPPORTED_CONTENT_FORMAT = const(143)
_INTERNAL_SERVER_ERROR = const(160)
_PROXYING_NOT_SUPPORTED = const(165)
_LINK_FORMAT = const(40)

# Content-Format -> its option in wire form, as option_bytes() makes it: a
# bounded cache, like every table here, shared by every Server (the bytes
# depend on the format alone).
_MAX_CF_CACHE = const(8)
_cf_cache = {}

# The builtins a served request uses here, as names of this module. A
# builtin is looked for in the module's globals first, and MicroPython
# grows that table only once it is full, so the miss walks on to a free
# slot: with this module's 27 names in 29 slots that cost each builtin
# some 100 ns more on the unix port (a dozen per request); a name of the
# module is found in a step or two.
_len = len
_type = type
_isinstance = isinstance
_tuple = tuple
_int = int
_bytes = bytes

def set_gc_threshold(threshold_bytes=None):
    """On MicroPython, make the garbage collector run after every
    `threshold_bytes` allocated (gc.threshold; None: half the heap, 96 KB
    of a board's 192 KB), unless the application has set a threshold of its
    own. Returns the threshold in force (None on CPython, which needs none).
    Server.serve() calls it; a node running a loop of its own calls it once
    before.

    Why: MicroPython collects only when an allocation fails, by default,
    and then with the heap full to its end, which a board wants to keep
    for a large allocation. A threshold bounds the heap in use by what is
    alive plus the threshold. Why half: every collection leaves the freed
    blocks as holes among the live ones, and allocations made after it
    search past those holes, so each collection costs a served request
    more than its own sweep, and a smaller threshold means more of them.
    Measured under valgrind (unix-port Server.serve() answering the C load
    generator), instructions per request: on a 192 KB heap (-X heapsize,
    the package from .mpy) 323k with an eighth of it, 291k with a quarter,
    283k with half, 290k at 150 KB; on the 2 MB heap 284k, 276k, 265k with
    an eighth, a quarter and half, 264k with none.
    """
    if not IS_MICROPYTHON:
        return None
    import gc

    t = gc.threshold()
    if t < 0:
        t = threshold_bytes
        if t is None:
            t = (gc.mem_free() + gc.mem_alloc()) >> 1
        gc.threshold(t)
        t = gc.threshold()  # as the collector keeps it (whole blocks)
    return t


class Response:
    """What a handler returns: `Response(69, b'21.5', content_format=0)`.

    `options`: further Option instances for the response (e.g. ETag, Max-Age).
    `payload` may be a callable body(num, size) -> bytes giving block `num`
    of `size` bytes (RFC 7959, see server_block.py); `total` is then its
    length.
    """

    def __init__(self, code, payload=b"", content_format=None, options=(), total=None):
        # type: (int, bytes | str, int | None, object, int | None) -> None
        self.code = code
        self.payload = payload
        self.content_format = content_format
        self.options = options
        self.total = total


def _check_content_format(cf):
    # ValueError unless `cf` is a Content-Format: a uint of 0 to 2 bytes
    # (RFC 7252 §5.10.3). A Resource's ct, a handler's result and what
    # answer() is given all pass here.
    if type(cf) is not int or not 0 <= cf <= 65535:
        raise ValueError("not a Content-Format: %r" % (cf,))


def _among(formats, cf):
    # Is `cf` one of `formats` (a Resource's ct or accepts: an int, or
    # several)? (type() is: isinstance with a tuple of types would build
    # that tuple on every request on a board.)
    if type(formats) is int:
        return formats == cf
    return cf in formats


class Resource:
    """Handlers per method, plus what /.well-known/core says about it.

    `subtree`: also serve every path below this one (the handler reads
    request.path). `ct`: the Content-Formats the resource can produce (an
    int or several): a request whose Accept is not among them gets 4.06,
    and a 2.xx payload with no format of its own gets the Accept asked for,
    or ct when it names one format. `accepts`: the Content-Formats accepted
    in a request payload (None: any); others, or none given, get 4.15.
    A ct that is no Content-Format (0 to 65535) is a ValueError here.
    `block1_stream`: fn(request, num, data, more) receives each Block1
    block of an upload instead of the handler seeing the assembled body
    (server_upload.py says what it returns).
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
        # Each format a uint of 0 to 2 bytes (RFC 7252 §5.10.3), checked
        # here, once: a served request takes its format from ct unchecked,
        # so a bad one would make every answer raise out of process() (a
        # notification's, loop for ever on -1).
        for f in (ct,) if type(ct) is int else ct or ():
            _check_content_format(f)
        self.ct = ct
        self.sz = sz
        self.obs = obs
        self.title = title
        self.accepts = accepts
        self.block1_stream = block1_stream


class Request:
    """One request as a handler sees it.

    Plain attributes: message, remote, code, content_format, accept (None
    when absent), confirmable, multicast (it came to a group address), rx
    (the EndPoint's ReceptionRecord), and observe, block1 and block2: the
    values of those options (None when absent), for extensions to read.
    Computed when first read: path and query (tuples of str), payload,
    token.

    The server reuses a Request (and its message) for the next request once
    its handler has returned, unless it deferred it: a handler that keeps a
    request to read later calls keep().
    """

    # What most requests never set is a class-level default; whoever sets
    # one on a request also sets _rare, so _load knows to clear it again.
    # (A request made fresh, for a notification say, stays a small object.)
    content_format = None
    accept = None
    deferred = None
    observe = None  # the request's Observe value (RFC 7641)
    block1 = None  # the Block1 / Block2 option values (RFC 7959)
    block2 = None
    _no_response = 0  # RFC 7967 bitmap
    _bad = 0  # the unrecognized critical option behind a 4.02
    _path = None  # path and query as tuples of str, once read
    _query = None
    _body = None  # the assembled Block1 body, when there is one
    _kept = False  # held beyond its handling: never reused
    multicast = False  # it came to a group address
    _done = False  # a response (or a decision not to send one) went out
    _rare = False  # one of the attributes above was set (see _load)

    def __init__(self, server, rx, multicast):
        self.server = server
        self._load(rx, multicast)

    def _load(self, rx, multicast):
        # Point this request at `rx`: a Request the server reuses carries
        # nothing over from the last one, and its attribute table does not
        # grow (an allocation on a board).
        self.rx = rx
        m = self.message = rx.message
        self.remote = rx.remote
        self.code = m.code
        self.confirmable = m.transaction_type == _CON
        # Written only when they differ from the class defaults: a fresh
        # request (a notification's) then holds six attributes, not nine.
        if multicast or self.multicast:
            self.multicast = multicast
        if self._done:
            self._done = False
        if self._rare:
            self._rare = False
            self.content_format = None
            self.accept = None
            self.deferred = None
            self.observe = None
            self.block1 = None
            self.block2 = None
            self._no_response = 0
            self._bad = 0
            self._path = None
            self._query = None
            self._body = None
            self._kept = False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        # A Request is also a context manager: an Exception raised in
        # `with request:` is reported as its handler's would be
        # (Server.fail(): counted, passed to on_error) and goes no further.
        if isinstance(exc, Exception):  # (not for None: nothing was raised)
            self.server.fail(self, exc)
            return True
        return False

    def keep(self):
        """Keep this Request (and its message) for use after its handler
        returns: the server then makes a new one for the next request. The
        server does so itself for a deferred request, an Observe
        registration, and any request an extension or on_error sees."""
        self._kept = True
        self._rare = True

    @property
    def path(self):
        p = self._path
        return _strings(self, _URI_PATH) if p is None else p

    @property
    def query(self):
        q = self._query
        return _strings(self, _URI_QUERY) if q is None else q

    @property
    def payload(self):
        """The request's payload; for a Block1 upload, the whole body once
        assembled (server_upload.py sets it)."""
        b = self._body
        return self.message.payload if b is None else b

    @payload.setter
    def payload(self, body):
        self._body = body
        self._rare = True

    @property
    def token(self):
        return self.message.token

    def defer(self):
        """Answer later: a CON gets its empty ACK now. Returns the Deferred
        (the same one if called again); its respond() sends the response."""
        d = self.deferred
        if d is None:
            # (server_separate.py, loaded with the first deferred request.)
            d = self.deferred = self.server.hook("separate")(self)
            self.keep()
            if self.confirmable and not self._done:
                self.rx.ack()
        return d

    def __repr__(self):
        try:
            path = "/".join(self.path)
        except ValueError:
            path = "?"
        return "<Request %d.%02d /%s from %r>" % (self.code >> 5, self.code & 31, path, self.remote)


def _strings(req, number):
    # Request.path (Uri-Path, `number`) or .query (Uri-Query) as a tuple of
    # str, kept on the request; ValueError if one is not UTF-8. (A function
    # of the module, not a method: the Request class's table is one entry
    # from full.)
    cur = req.server._cur
    ob = req.message.cursor(cur)
    out = ()  # none: nothing made
    if option_next(ob, cur, number) >= 0:
        out = []
        while True:
            out.append(ob[cur[0]:cur[0] + cur[1]].decode("utf-8"))
            if option_next(ob, cur, number) < 0:
                break
        out = tuple(out)
    if number == _URI_PATH:
        req._path = out
    else:
        req._query = out
    req._rare = True
    return out


def _utf8(buf, pos, n):
    # Is buf[pos:pos + n] well-formed UTF-8 (RFC 3629: no overlong form, no
    # surrogate, nothing past U+10FFFF)? Read in place, allocating nothing:
    # no string is made for a path segment nobody will read.
    end = pos + n
    while pos < end:
        b = buf[pos]
        pos += 1
        if b < 0x80:
            continue
        if b < 0xC2 or b > 0xF4:
            return False
        k = 1 if b < 0xE0 else 2 if b < 0xF0 else 3
        if pos + k > end:
            return False
        c = buf[pos]
        if (c < (0xA0 if b == 0xE0 else 0x90 if b == 0xF0 else 0x80)
                or c > (0x9F if b == 0xED else 0x8F if b == 0xF4 else 0xBF)):
            return False
        for i in range(pos + 1, pos + k):
            if buf[i] & 0xC0 != 0x80:
                return False
        pos += k
    return True


def _child(node, buf, pos, n):
    # The child of route-tree `node` named by buf[pos:pos + n], or None.
    # Compared by find() within those bounds: in C, and no slice made (a
    # slice would allocate on a board). (An index, not `for`: a for loop's
    # iterator takes 4 words of the frame on MicroPython, which would then
    # no longer fit the C stack.)
    i = _len(node[2])
    n += pos  # (now where the segment ends)
    while i:
        i -= 1
        seg = node[2][i][0]
        if _len(seg) == n - pos and buf.find(seg, pos, n) == pos:
            return node[2][i]
    return None


def _with_options(cf, options):
    # Server.option_bytes() with options: Option instances kept in order (a
    # non-repeatable one given twice: the last wins), and Content-Format cf.
    opts = []
    for o in options:
        insert_option(opts, o, not o.repeatable)
    if cf is not None:
        # Refused here for every way an answer is made (answer(), a
        # deferred one, a notification), so it becomes 5.00.
        _check_content_format(cf)
        insert_option(opts, make(_CONTENT_FORMAT, uint_bytes(cf)), True)
    return encode_options(opts)


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
    (RFC 7959, server_block.py, server_upload.py): block size, upload
    limit (4.13 beyond), uploads assembled at once, and how long an
    unfinished one is kept.
    max_observers, max_observers_per_resource: bounds of the Observe table
    (RFC 7641, server_observe.py); max_observers_per_peer: how many
    observations one peer (one remote address) may hold in the whole table
    (None: half of max_observers, rounded up), and
    max_peer_observers_per_resource of one resource, so that one peer
    cannot take the table from the others. A registration beyond any of
    them gets a plain answer (no Observe, §4.1). notify_con_every: at most
    this many notifications to an observer go out before one is CON (and
    one at least every 24 hours).
    """

    # Class defaults for what an instance sets only when it comes to it:
    # MicroPython grows an attribute table only when it is full, and every
    # method call first misses in the instance's table, walking to a free
    # slot. Set in __init__ these left a Server's table (29 slots) one free
    # slot and this class's (47) one: 2% of a served request's instructions
    # on the unix port (tests/portable/test_tables.py).
    _running = False  # serve() is looping
    _spare_notification = None  # the Request notification_request() fills
    dropped = 0  # delayed multicast responses dropped (queue full)
    on_error = None  # the application's error hook, when it gives one
    # The observer table's per-peer bounds (server_observe.py), here unless
    # given: a Server's own table is 4 places from full. One peer holds at
    # most half the table (None: max_observers + 1 >> 1, 4 of the default
    # 8), which lets a gateway observe every observable resource of a node
    # with a handful (the demo node has 2), grows with a table raised for
    # more, and leaves the other half to other peers. Of one resource a
    # peer holds 2: one is all a client or gateway keeps, the second lets a
    # client that lost its state register again with a new token at once,
    # while its old entry waits for the RST its next notification draws
    # (RFC 7641 §3.6); and 2 of the 4 places per resource
    # (max_observers_per_resource) leave the other 2 to others.
    max_observers_per_peer = None
    max_peer_observers_per_resource = 2

    def __init__(self, end_point, on_error=None, leisure_ms=5000, max_delayed=4, rand=None,
                 block_size=1024, max_body=8192, max_assemblies=2, assembly_ms=60000,
                 max_observers=8, max_observers_per_resource=4, notify_con_every=20,
                 max_observers_per_peer=None, max_peer_observers_per_resource=2):
        self.end_point = end_point
        # Observe (server_observe.py): the observer table's bounds, and how
        # many notifications may go NON before one goes CON (RFC 7641 §4.5).
        self.max_observers = max_observers
        self.max_observers_per_resource = max_observers_per_resource
        if max_observers_per_peer is not None:
            self.max_observers_per_peer = max_observers_per_peer
        if max_peer_observers_per_resource != Server.max_peer_observers_per_resource:
            self.max_peer_observers_per_resource = max_peer_observers_per_resource
        self.notify_con_every = notify_con_every
        # Block-wise (server_block.py): the largest block sent or asked for
        # (16 .. 1024, rounded down to a power of two), the largest Block1
        # body accepted, how many uploads may be assembled at once (a
        # bounded table: a board holds max_assemblies * max_body at worst)
        # and how long one waits for its next block.
        self.block_size = block_size
        self.max_body = max_body
        self.max_assemblies = max_assemblies
        self.assembly_ms = assembly_ms
        if on_error is not None:
            self.on_error = on_error
        # Group requests (multicast.py).
        self.leisure_ms = leisure_ms
        self.max_delayed = max_delayed
        self.rand = rand or end_point.rand
        self._hooks = {}  # extension name -> the object it registered (set_hook)
        # The resource tree: a node is [segment as UTF-8 bytes, Resource or
        # None, [child nodes]]. A list per node, searched in order: a node
        # has few children, and comparing bytes needs no string.
        self._root = [b"", None, []]
        # (path, Resource) per resource, in registration order, as add()
        # keeps it: read it (discovery does), never change it; resources()
        # gives a copy.
        self.listing = []
        self._cur = [0, 0, 0, 0, 0]  # the option cursor route() walks with
        self._walk = [None, 0, True, False, None, -1]  # and what it finds (route())
        # The Request handle() fills for each request: reused while nobody
        # keeps it, so a request handled at once costs no object.
        self._spare = None
        self._depth = 0  # handle() calls in progress (a handler may serve)
        self._out = [0, b"", None, ()]  # what render() made: code, payload, cf, options
        self.errors = 0  # handler exceptions and responses that could not be sent
        # /.well-known/core: its handler is the discovery extension's,
        # loaded the first time a node is asked.
        self.add(".well-known/core", Resource(
            get=lambda request: self.hook("discovery").answer(request), ct=_LINK_FORMAT))

    # -- the resource tree --------------------------------------------------

    def add(self, path, resource):
        """Serve `resource` at `path` ('sensors/temp' or '/sensors/temp';
        '' is the root). Replaces what was there. Returns the resource."""
        if path[:1] == "/":
            path = path[1:]  # '/a/b' is 'a/b'; '' and '/' are the root
        node = self._root
        # (Empty segments inside are kept: 'a//b' is three, RFC 7252 §6.4.)
        for seg in path.split("/") if path else ():
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
        listing = self.listing
        for i in range(len(listing)):
            if listing[i][0] == path:
                listing[i] = (path, resource)
                break
        else:
            listing.append((path, resource))
        return resource

    def find(self, path):
        """The Resource registered at `path`, or None. (Allocates nothing
        for a path without a leading '/': notify('sensors/temp') asks this
        every time.)"""
        if path.startswith("/"):
            path = path[1:]  # as add() does
        for entry in self.listing:
            if entry[0] == path:
                return entry[1]
        return None

    def resources(self):
        """[(path, Resource)] in registration order."""
        return list(self.listing)

    def link_format(self, query=None):
        """The link-format text (RFC 6690) of the resource tree, as
        /.well-known/core serves it: every resource but that one, with its
        discovery attributes, targets percent-encoded. `query`: a discovery
        filter (§4.1) such as 'rt=temp*', or a list of them that must all
        pass; None lists everything. (server_discovery.py, loaded the first
        time a node is asked.)"""
        return self.hook("discovery").link_format(query)

    # -- Observe ----------------------------------------------------------------

    def notify(self, path_or_resource):
        """Send every observer of the resource (a path or the Resource) a
        notification built by calling its GET handler again. Returns how
        many were sent."""
        obs = self._hooks.get("observe")
        if obs is None:
            return 0
        res = (path_or_resource if isinstance(path_or_resource, Resource)
               else self.find(path_or_resource))
        return 0 if res is None else obs.notify(res)

    def observers(self, path_or_resource=None):
        """How many observers (of one resource, or in total)."""
        obs = self._hooks.get("observe")
        if obs is None:
            return 0
        if path_or_resource is None:
            return obs.count()
        res = (path_or_resource if isinstance(path_or_resource, Resource)
               else self.find(path_or_resource))
        return 0 if res is None else obs.count(res)

    # -- table sizes (read-only) ------------------------------------------------

    @property
    def assemblies(self):
        """How many Block1 uploads (and kept answers to them) are held."""
        uploads = self._hooks.get("upload")
        return 0 if uploads is None else uploads.count

    @property
    def delayed(self):
        """How many responses to group requests wait for their leisure delay."""
        group = self._hooks.get("group")
        return 0 if group is None else group.count

    # -- the extension boundary ---------------------------------------------

    def hook(self, name):
        """The extension registered as `name`, loading it the first time:
        "observe" (server_observe.py), "block" (server_block.py), "upload"
        (server_upload.py), "separate" (server_separate.py), "discovery"
        (server_discovery.py), "group" (multicast.py). The one place that
        names the server's extension modules: each one's install(server)
        registers with set_hook()."""
        h = self._hooks.get(name)
        if h is None:
            if name == "observe":
                from . import server_observe as module
            elif name == "block":
                from . import server_block as module
            elif name == "upload":
                from . import server_upload as module
            elif name == "separate":
                from . import server_separate as module
            elif name == "discovery":
                from . import server_discovery as module
            elif name == "group":
                from . import multicast as module
            else:
                raise KeyError(name)
            module.install(self)
            h = self._hooks[name]
        return h

    def set_hook(self, name, hook):
        """Register `hook` as the extension `name`: the object this server
        calls from now on (an extension's install() does this; an
        application may register its own in place of one)."""
        self._hooks[name] = hook

    def now(self):
        """The server's clock (the EndPoint's): ticks_ms()."""
        return self.end_point.clock()

    def fail(self, req, exc):
        """Report an error while answering `req`: counted in `errors` and
        passed to on_error (whose own errors are swallowed)."""
        self.errors += 1
        hook = self.on_error
        if hook is not None:
            req.keep()  # the hook may hold on to it (a log of failures)
            try:
                hook(req, exc)
            except Exception:  # a broken log hook must not stop the server
                pass

    def call(self, req, handler):
        """handler(req): what it returned, or a 5.00 answer, after fail(),
        when it raised. (The node keeps serving; the application hears.)"""
        # `with req` where `try: ... except Exception as e` would do: the
        # `as` costs two try levels, a frame too large for the C stack on
        # MicroPython, allocated on the heap at every request.
        with req:
            return handler(req)
        return (_INTERNAL_SERVER_ERROR, b"")  # reached when it raised (Request.__exit__): a constant

    def render(self, req, res, result):
        """The response to `req` from `result`, what a handler returned (a
        Response, or a (code, payload[, content_format[, options[, total]]])
        tuple): [code, payload, content_format, options]. `res`, the
        Resource (None for a deferred answer), gives the Content-Format when
        the result names none (Resource.ct), and takes an Observe
        registration; a body larger than a block, or a request with Block1 or
        Block2, is cut to the block asked for. None, or anything that fails
        on the way, is 5.00, after fail().

        The four parts come in a list the Server keeps and fills again on
        the next render(): read them at once (a tuple made per request or
        notification is garbage a board then collects)."""
        # (Nothing in between runs application code, so one list serves
        # however deep the calls.) Here what most handlers return for a
        # plain request, a (code, bytes) pair that needs no block: nothing
        # on this path can raise, so it needs no try, and its frame fits the
        # C stack on MicroPython. Anything else goes the whole way
        # (_render_all).
        out = self._out
        if (req._rare or res is None or _type(result) is not _tuple or _len(result) != 2
                or _type(result[0]) is not _int or not 64 <= result[0] <= 191
                or _type(result[1]) is not _bytes or _len(result[1]) > self.block_size):
            self._render_all(req, res, result)
            return out
        out[0] = result[0]
        out[1] = result[1]
        out[3] = ()
        cts = res.ct  # the Content-Format a 2.xx with a body gets (Resource.ct)
        if cts is None or not result[1] or result[0] >> 5 != 2:
            out[2] = None
        elif _type(cts) is _int:
            out[2] = cts
        else:
            out[2] = cts[0] if _len(cts) == 1 else None
        return out

    def _render_all(self, req, res, result):
        # render() for whatever a handler may return, any request.
        try:
            if result is None:
                raise TypeError("handler returned None without defer()")
            if isinstance(result, Response):
                code = result.code
                payload = result.payload
                cf = result.content_format
                options = result.options
                total = result.total
            else:
                code = result[0]
                payload = result[1]
                n = len(result)
                cf = result[2] if n > 2 else None
                options = result[3] if n > 3 else ()
                total = result[4] if n > 4 else None
            if not 64 <= code <= 191:  # a 2.xx to 5.xx response code (RFC 7252 §12.1.2)
                raise ValueError("not a response code: %r" % (code,))
            t = type(payload)
            if t is not bytes and t is not str and not callable(payload):
                payload = bytes(payload)  # pyright: ignore[reportArgumentType]: TypeError for what is no bytes, checked at run time
            if res is not None:
                cts = res.ct
                if cf is None and payload and cts is not None and code >> 5 == 2:
                    if req.accept is not None:
                        cf = req.accept  # one of cts: checked before the handler ran
                    elif type(cts) is int:
                        cf = cts
                    elif len(cts) == 1:
                        cf = cts[0]
            # A Content-Format is a uint of 0 to 2 bytes (RFC 7252 §5.10.3):
            # a handler's -1, 65536 or "0" is its bug, answered 5.00 (§5.9.3)
            # like any other, before anything encodes it (_answer_out() and
            # a notification do, unguarded).
            if cf is not None:
                _check_content_format(cf)
            if (res is not None and req.observe is not None and req.code == _GET and res.obs
                    and not req.multicast):
                req.keep()  # the observer table may hold it
                options = self.hook("observe").respond(req, res, code, options)
            # Does the answer need Block-wise transfer (RFC 7959)? Asked
            # here only: every response passes this way.
            if ((req._rare and (req.block2 is not None or req.block1 is not None))
                    or callable(payload) or len(payload) > self.block_size):
                req.keep()  # the block table may hold it
                code, payload, options = self.hook("block").shape(
                    req, res, code, payload, cf, options, total)
        except Exception as e:
            self.fail(req, e)
            code = _INTERNAL_SERVER_ERROR
            payload = b""
            cf = None
            options = ()
        out = self._out
        out[0] = code
        out[1] = payload
        out[2] = cf
        out[3] = options

    def answer(self, req, code, payload=b"", content_format=None, options=()):
        """Send the response to `req` now: piggybacked on the ACK for a CON,
        a NON for a NON; after the leisure delay for a group; separately
        when the handler deferred; or, when suppressed, only the empty ACK a
        CON needs. Once per request: later calls do nothing. A response
        that cannot be sent (too large, unusable options) becomes 5.00."""
        d = req.deferred
        if d is not None:
            # The handler deferred but also returned (or raised): send it
            # separately, unless it has already been sent.
            if not d.done:
                try:
                    d.send(code, payload, content_format, options)
                except Exception as e:
                    self.fail(req, e)
            return
        if req._done:
            return
        req._done = True
        if (req._rare or req.multicast) and self.suppressed(req, code):
            if req.confirmable:
                req.rx.ack()
            return
        try:
            if req.multicast:
                # Held for its leisure delay (RFC 7252 §8.2), as a Message.
                req.keep()
                out = self.message(_ACK if req.confirmable else _NON, code, payload, req.token,
                                   content_format, options)
            else:
                # Straight into the EndPoint's buffer: no response Message.
                out = self.option_bytes(content_format, options)
        except Exception as e:  # options that are not Options, say
            self._unsent(req, code, e)
            return
        if req.multicast:
            self.hook("group").hold(req, out)
        elif not req.rx.respond(code, payload, out):
            self._unsent(req, code)

    def _unsent(self, req, code, exc=None):
        # The response could not be made or sent: fail() with `exc` (None:
        # it did not fit max_message_size), then 5.00 in its place (none to
        # a group, RFC 7252 §8.2).
        self.fail(req, exc or ValueError("the response does not fit max_message_size"))
        if code != _INTERNAL_SERVER_ERROR and not req.multicast:
            req._done = False
            self.answer(req, _INTERNAL_SERVER_ERROR)

    def option_bytes(self, content_format=None, options=()):
        """The options of a response in wire form (for
        ReceptionRecord.respond): `options` (Option instances, kept in
        order; a non-repeatable one given twice: the last wins) and
        Content-Format. A lone Content-Format's bytes come from a small
        cache, not encoded anew."""
        # (The rest in a helper: this frame then fits the C stack on
        # MicroPython.)
        if options:
            return _with_options(content_format, options)
        if content_format is None:
            return b""
        cache = _cf_cache
        ob = cache.get(content_format)
        if ob is None:
            # Encoded, and kept while the cache has room.
            ob = _with_options(content_format, ())
            if len(cache) < _MAX_CF_CACHE:
                cache[content_format] = ob
        return ob

    def message(self, mtype, code, payload, token, content_format=None, options=()):
        """A response Message (for an answer sent later: a separate one, a
        group's, a notification), its options as option_bytes() makes them."""
        m = Message(mtype, code, payload, token)
        if options or content_format is not None:
            m.set_options(self.option_bytes(content_format, options))
        return m

    def notification_request(self, registration):
        """A Request on the message of `registration` (the Request an
        observer registered with), as a notification is made from: the same
        path, query and Accept; not confirmable; no Observe, and no Block2
        (a notification starts at block 0, RFC 7959 §3.4). One Request
        serves call after call, as handle()'s does: it is good until the
        next call, unless kept (Request.keep())."""
        req = self._spare_notification
        if req is None or req._kept:
            req = self._spare_notification = Request(self, registration.rx, False)
        else:
            req._load(registration.rx, False)
        req.confirmable = False
        self.route(req)
        req.observe = None
        if req.block2 is not None:  # (none set: the request stays a size smaller)
            req.block2 = None
        return req

    # -- receiving ------------------------------------------------------------

    def process(self, timeout_ms=None):
        """One EndPoint.process(): wait at most timeout_ms (None: no limit)
        for a message. A request is handled (None is returned); anything else
        (a response for a Client on the same EndPoint, an ACK) is returned.
        Delayed multicast responses are sent when due meanwhile.

        A MemoryError while a request is handled drops it (counted in the
        EndPoint's memory_errors; a CON's retransmission is then taken as
        new): it never leaves process()."""
        # (This and most functions a request passes through keep their
        # frames within the 11 words MicroPython holds on the C stack: a
        # larger frame is a heap allocation per call. tools/frames.py.)
        group = self._hooks.get("group")
        if group is None or not group.count:
            # The EndPoint's reusable record, unless this is a handler
            # serving while another request is handled (that one holds it).
            rx = self.end_point.process(timeout_ms, self._depth == 0)
        else:
            rx = group.process(timeout_ms, self._depth == 0)
        if rx is None or self._handled(rx):
            return None
        rx.keep()  # not a request: the caller's to keep
        return rx

    def _handled(self, rx):
        # handle(rx), where a MemoryError drops the request: handle() had
        # counted itself in _depth first thing, and the request is
        # forgotten by the duplicate cache, so the peer's retransmission
        # gets a fresh try.
        try:
            return self.handle(rx)
        except MemoryError:
            # (No local: the frame, with its try, fits the C stack so.)
            self._depth -= 1
            self.end_point.memory_errors += 1
            self.end_point.dropped += 1
            rx.forget()
            return True

    def serve(self, seconds=None, tick=None, tick_ms=1000):
        """Loop process() for `seconds` (None: until stop()). tick(), if
        given, is called every tick_ms meanwhile: where an application
        reads its sensors and calls notify() (Observe). A MemoryError in
        tick() is counted in the EndPoint's memory_errors and the loop goes
        on; other exceptions from it end serve()."""
        self._running = True
        set_gc_threshold()
        clock = self.end_point.clock
        start = clock()
        due = ticks_add(start, tick_ms)
        while self._running:
            t = 1000  # (a stop() is seen within a second)
            if tick is not None:
                if ticks_diff(due, clock()) <= 0:
                    due = ticks_add(due, tick_ms)
                    if ticks_diff(due, clock()) < 0:
                        due = ticks_add(clock(), tick_ms)  # late: no burst of ticks
                    try:
                        tick()
                    except MemoryError:
                        self.end_point.memory_errors += 1
                t = min(t, max(0, ticks_diff(due, clock())))
            if seconds is not None:
                left = int(seconds * 1000) - ticks_diff(clock(), start)
                if left <= 0:
                    break
                t = min(t, left)  # (and no longer than the next tick's wait)
            self.process(t)
        self._running = False

    def stop(self):
        """Make serve() return (within a second)."""
        self._running = False

    def handle(self, rx):
        """Answer `rx` (a ReceptionRecord from EndPoint.process) if it is a
        request: True if it was one, False (untouched) otherwise."""
        # Counted first thing, so a MemoryError from anywhere below leaves
        # it one up (process() takes it back).
        self._depth += 1
        if not 1 <= rx.message.code <= 31:
            # (No local here: with the ones below, the frame would no longer
            # fit the C stack.)
            if rx.message.transaction_type == _RST and "observe" in self._hooks:
                self._hooks["observe"].reset(rx)  # an observer rejected a notification
            self._depth -= 1
            return False
        # (The EndPoint names the socket only when it is not its primary
        # one: a group's.)
        multicast = rx.sock is not None
        # The spare Request, unless a handler is using it (one serving
        # from inside a handler gets a fresh one).
        req = self._spare
        if req is None:
            req = Request(self, rx, multicast)
        else:
            self._spare = None
            req._load(rx, multicast)
        res = self.route(req)
        if _isinstance(res, Resource):
            self._respond(req, res)
        elif res != _BAD_OPTION:
            self.answer(req, res)  # the error route() found
        elif req.confirmable:
            # 4.02 says which option (RFC 7252 §5.4.1: a diagnostic payload).
            self.answer(req, res, b"option %d" % req._bad)
        elif not multicast:
            # An unrecognized critical option in a NON message: reject it
            # (RFC 7252 §5.4.1, §4.3), silently for a group (§8.2).
            rx.reset()
        self._depth -= 1
        if req._kept:
            rx.keep()  # it stays with its request (deferred, observing...)
        else:
            self._spare = req
        return True

    def _respond(self, req, res):
        # A routed request through the checks, its handler and the answer.
        handler = res.handlers[req.code - 1] if req.code <= 7 else None
        if handler is None:
            self.answer(req, _METHOD_NOT_ALLOWED)
            return
        if req._rare or res.accepts is not None:
            handler = self._checked(req, res, handler)
            if handler is None:
                return  # answered there
        result = self.call(req, handler)
        if result is None and req.deferred is not None:
            return  # the application answers later
        self.render(req, res, result)
        self._answer_out(req)

    def _answer_out(self, req):
        # answer() with the parts render() left in self._out, its common
        # case written out again here: answer() itself, with its five
        # arguments, needs a frame too large for the C stack on MicroPython.
        out = self._out
        if req._rare or req.multicast or req._done or out[3]:
            self.answer(req, out[0], out[1], out[2], out[3])
        else:
            req._done = True
            if not req.rx.respond(out[0], out[1],
                                  b"" if out[2] is None else self.option_bytes(out[2])):
                self._unsent(req, out[0])

    def _checked(self, req, res, handler):
        # The checks for a request with options beyond its path, or for a
        # resource that names the formats it accepts: the handler to run,
        # or None when the request was answered here.
        ok = res.accepts
        if ok is not None and req.message.payload and not _among(ok, req.content_format):
            self.answer(req, _UNSUPPORTED_CONTENT_FORMAT)
            return None
        cts = res.ct
        if cts is not None and req.accept is not None and not _among(cts, req.accept):
            self.answer(req, _NOT_ACCEPTABLE)
            return None
        b2 = req.block2
        if b2 is not None and b2 & 7 == 7:
            self.answer(req, _BAD_REQUEST, b"Block2 SZX 7")  # reserved (RFC 7959 §2.2)
            return None
        if b2 is not None and b2 >> 4 and req.code != _GET and req.code != _FETCH:
            # A later block of the answer to a request that changes state
            # (RFC 7959 §2.7): from the answer kept for it, or refused,
            # never by running the handler (the change) again.
            req.keep()
            self.hook("upload").later(req, res)
            return None
        if req.block1 is not None:
            req.keep()
            # None when answered there: 2.31, 4.08, 4.13, or streamed
            return self.hook("upload").upload(req, res, handler)
        return handler

    # -- reading the request -------------------------------------------------

    def route(self, req):
        """The Resource for `req`, or the error code to answer it with
        (4.02, 4.00, 4.04, 5.05): every option checked and the path looked
        up in one walk over the received option bytes, allocating nothing
        on a board. Sets the request's content_format, accept, and its
        No-Response, Block1, Block2 and Observe values (path and query are
        made as strings only when read). handle() does this first."""
        # The walk keeps its frame within the C stack's 11 words on
        # MicroPython (tools/frames.py): the path is matched here, every
        # other option read in _option(), and what the walk finds besides
        # lives in self._walk (route() runs no application code, so one
        # list serves however deep handlers serve).
        # self._walk: [the option bytes, the first unrecognized critical
        # option + 1, every path segment and query is UTF-8, a proxy option
        # came, the deepest subtree resource's node on the path, the number
        # of the option before].
        cur = self._cur
        w = self._walk
        ob = w[0] = req.message.cursor(cur)
        node = self._root
        w[1] = 0
        w[2] = True
        w[3] = False
        w[4] = node if node[1] is not None and node[1].subtree else None
        w[5] = -1
        # Unrecognized elective options are ignored (RFC 7252 §5.4.1): the
        # cursor passes over them without coming back here for each.
        number = option_next(ob, cur, _RECOGNIZED)
        while number >= 0:
            if number == _URI_PATH:
                node = self._segment(node)
            else:
                self._option(req, number)
            # (No call past the last option when no payload follows.)
            number = option_next(ob, cur, _RECOGNIZED) if cur[2] < cur[3] else -1
        w[0] = None  # the walk holds no datagram
        if node is not None and node[1] is not None and w[2] and not (w[1] or w[3]):
            return node[1]  # the common case first
        if w[1]:
            req._bad = w[1] - 1
            req._rare = True
            return _BAD_OPTION
        if w[3]:
            return _PROXYING_NOT_SUPPORTED
        if not w[2]:
            return _BAD_REQUEST  # a path or query that is not UTF-8 (RFC 7252 §5.10.1)
        if w[4] is not None:
            return w[4][1]  # its handler reads request.path
        return _NOT_FOUND

    def _segment(self, node):
        # One Uri-Path option on the cursor: the child of `node` it names,
        # or None (no such resource, or already off the tree).
        w = self._walk
        n = self._cur[1]
        if n > 255:
            w[1] = w[1] or _URI_PATH + 1
            return None
        found = None if node is None else _child(node, w[0], self._cur[0], n)
        if found is None:
            # Registered segments are UTF-8 by construction; any other is
            # checked in place (no string made).
            w[2] = w[2] and _utf8(w[0], self._cur[0], n)
        elif found[1] is not None and found[1].subtree:
            w[4] = found
        return found

    def _option(self, req, number):
        # Any option on the cursor but Uri-Path, numbered `number`: checked
        # against its registration (options.option_class(): length range,
        # repeatable or not), and what the request is to know of it set.
        w = self._walk
        cls = option_class(number)
        n = self._cur[1]
        if (cls is None or number == _OSCORE or n < cls.min_len or n > cls.max_len
                or (number == w[5] and not cls.repeatable)):
            # Unrecognized (§5.4.1; no OSCORE here), or to be treated so
            # (§5.4.3 bad length, §5.4.5 supernumerary): critical ones fail
            # the request, elective ones are ignored.
            if number & 1:
                w[1] = w[1] or number + 1
        elif number == _URI_QUERY:
            w[2] = w[2] and _utf8(w[0], self._cur[0], n)
        elif number == _CONTENT_FORMAT:
            req.content_format = uint_at(w[0], self._cur[0], n)
            req._rare = True
        elif number == _ACCEPT:
            req.accept = uint_at(w[0], self._cur[0], n)
            req._rare = True
        elif number == _OBSERVE:
            req.observe = uint_at(w[0], self._cur[0], n)
            req._rare = True
        elif number == _BLOCK2:
            req.block2 = uint_at(w[0], self._cur[0], n)
            req._rare = True
        elif number == _BLOCK1:
            req.block1 = uint_at(w[0], self._cur[0], n)
            req._rare = True
        elif number == _NO_RESPONSE:
            req._no_response = uint_at(w[0], self._cur[0], n)
            req._rare = True
        elif number == _PROXY_URI or number == _PROXY_SCHEME:
            w[3] = True
        w[5] = number

    # -- answering ------------------------------------------------------------

    def suppressed(self, req, code):
        """Is the answer `code` to `req` not to be sent? No error responses
        to a group (RFC 7252 §8.2); No-Response (RFC 7967): bit 2
        suppresses 2.xx, 8 suppresses 4.xx, 16 suppresses 5.xx."""
        cls = code >> 5
        if req.multicast and cls >= 4:
            return True
        nr = req._no_response
        return nr != 0 and cls >= 2 and (nr >> (cls - 1)) & 1 == 1
