"""A Resource Directory (RFC 9176) on the project's Server.

    srv = Server(ep)
    rd = ResourceDirectory(srv, max_registrations=16)
    while True:
        rd.process(1000)        # or feed rx to rd.handle() and call rd.tick()

Resources it adds (advertised in /.well-known/core, found with
?rt=core.rd*, RFC 9176 §4.3):

    /rd              rt="core.rd"           POST: registration (§5)
    /rd/<id>         a registration         POST: update (§5.3.1), DELETE:
                                            removal (§5.3.2), GET: its links
    /rd-lookup/ep    rt="core.rd-lookup-ep" GET: endpoint lookup (§6.4)
    /rd-lookup/res   rt="core.rd-lookup-res" GET: resource lookup (§6.1)
    /.well-known/rd                         POST: simple registration (§5.1)

Registration: POST /rd?ep=NAME[&d=SECTOR][&lt=SECONDS][&base=URI][&attr=v...]
with the node's links in link-format (ct=40; an empty payload registers no
links). 2.01 names the registration resource in Location-Path. The same ep
and d registered again from the same host (any port) replace the
registration (same resource). Without base, the registrant's source
address is the base (and an update from a new port moves it, §5.3.1). Ids
are random, not counters: a node whose registration was lost cannot update
someone else's by accident.

Who may use a name (RFC 9176 §7 leaves it to the RD; §7.5): first come,
first remembered while alive. The host (address without port) that
registered a live ep+d owns it: a registration of that ep+d, an update or
a removal of its registration resource from another host is refused 4.03
(the locations are no secret: endpoint lookup lists them) until it expires
or its owner removes it. ResourceDirectory(allow_takeover=True) lets any
host replace, update or remove any registration (as an RD behind its own
access control may); what a host takes over counts against its
max_per_source.

Lookup: GET /rd-lookup/res?rt=temperature*&ep=node-1&page=0&count=10. Every
query parameter but page and count is a filter (RFC 6690 §4.1 matching,
'*' at the end for a prefix); all must pass. A filter naming an endpoint
attribute (ep, d, base, lt, or one given at registration) matches the
registration's value, any other matches the links' attributes; in endpoint
lookup an endpoint passes when any of its links does (§6.2). `href` matches
the absolute target URI, or, when the value starts with '/', its path.
count limits the answer, page (which needs count) skips page * count
results (§6). Resource lookup answers absolute URIs resolved against the
registration's base (anchors too, when a link has one); endpoint lookup
answers the registration resources with ep, d, base, lt, rt="core.rd-ep"
and the endpoint attributes.

Errors (RFC 9176 §5, §6): 4.00 for a malformed request (no or bad ep, bad
lt or base, a parameter that cannot be registered, an update with ep or d
or a payload, bad link-format, page without count...) with a diagnostic
payload; 4.03 for another host's live endpoint name or registration
resource (above); 4.04 for an unknown registration; 4.13 (with Size1) for a payload
or a link list larger than the limits, 4.13 for more link attributes;
5.03 with Max-Age when the table is full or the registrant already holds
max_per_source registrations. A simple registration (§5.1) is answered
2.04 once the registrant's links are read; 5.03 with Max-Age when
max_fetches are under way or one for the same host is; 4.13 with Size1
when the links run over max_payload; 5.02 when the registrant's answer is
not link-format or breaks the block-wise rules; 5.04 when the links are not
all read within fetch_timeout_ms.

Bounds, set at construction: max_registrations, max_links per
registration, max_payload bytes, max_link_attrs attributes of a
registration's links together, max_attrs endpoint attributes, and
max_per_source registrations per source host (one registrant cannot take
the table from the others), max_fetches simple registrations at once and
one per source host (5.03 with Max-Age to a second one), each a fetch of at
most max_payload bytes within fetch_timeout_ms all told.
Parsed, links hold several times their bytes (a 1 KB link of 510 valueless
attributes held 20 KB, 32 ordinary links in 1 KB 6.5 KB on 32 bits), so the
RD parses a registration's payload to check it against max_links and
max_link_attrs (parsing stops at the first item beyond them) and keeps the
links as link-format text. With the defaults, 16 registrations of the
largest kind (32 links and 8 long endpoint attributes each) hold 46 KB of a
32-bit board's heap (tests/portable/test_rd_worst_case_heap.py); a board
that is the RD for a few nodes sets max_registrations to a few.
Lookups parse and resolve one registration's links at a time (RFC 9176
§6.1) and keep no parsed or resolved copy; endpoint attributes, and a
look at a registration's text for the link attributes asked for, rule a
registration out before its links are parsed. An answer larger than a
block (RFC 7959) is kept, serialized, for the Block2 requests that read
the rest of it: lookup_cache answers at most (1), each lookup_cache_ms
(10 s) after its last read, all dropped at any change to the table, each
with the ETag of its bytes (a full table of the largest registrations
answers about 28 KB, held as its bytes: 28,560 B on 32 bits, besides the
table's 46 KB; drop_answers() gives it back, lookup_cache=0 keeps none).
One lookup parses at most every link of the table once (max_registrations
x max_links).

The lookup budget: a lookup is charged the work it did (1, plus the links
of each registration whose links it parsed, plus 1 for each one ruled out
before that) against a token bucket of the source host (the address
without the port) and one all hosts share: nothing else stops one host
from asking for whole-table lookups back to back (about 0.35 s of CPython
each at 1000 x 64 links) and taking the CPU from every other peer. A
lookup is served while both buckets hold something, and may leave them in
debt (a lookup larger than a bucket is not refused for ever); otherwise
5.03 with Max-Age, the whole seconds until it would be served
(lookups_refused counts them, rejected too). A host's bucket holds
lookup_capacity (one whole-table lookup) and fills again in
lookup_refill_ms; the shared one is lookup_global times that, so many
source addresses get no more; lookup_hosts hosts' buckets are kept (the
fullest goes for a new host, and a new host's bucket is no fuller than the
shared one). Block2 requests read from a kept answer cost 1 and are served
whatever the budget: a client reading a long answer is not cut off
midway.

Lifetimes: each registration counts down its own remaining milliseconds,
aged on every tick(); lt (up to 4294967295 s, §5) never meets ticks_add:
_age() clamps the wait it hands on to _MAX_WAIT_MS.
tick() (process() calls it) must run at least every few days.

on_change(event, registration) tells the application: 'register' (new or
replaced), 'update', 'remove', 'expire'. registrations(), find(), restore()
and Registration.links_text() let a gateway persist the table.

Runs on boards (a node can be the RD for a few others): only the public
API of Server, Resource, Request, Response and Client, link.py, uri.py.
"""
from ._compat import const, ticks_add, ticks_diff
from .link import Link, LinkFormatError, LinkLimitError, matches, parse, serialize
from .rd import base_uri
from .server import Resource, Response

__all__ = ("ResourceDirectory", "Registration", "resolve", "resolve_link")

_CREATED = const(65)
_DELETED = const(66)
_CHANGED = const(68)
_CONTENT = const(69)
_BAD_REQUEST = const(128)
_FORBIDDEN = const(131)
_NOT_FOUND = const(132)
_METHOD_NOT_ALLOWED = const(133)
_TOO_LARGE = const(141)
_BAD_GATEWAY = const(162)
_SERVICE_UNAVAILABLE = const(163)
_GATEWAY_TIMEOUT = const(164)
_ETAG = const(4)
_LOCATION_PATH = const(8)
_MAX_AGE = const(14)
_SIZE1 = const(60)
_LINK_FORMAT = const(40)
_MAX_WAIT_MS = const(1 << 28)
_MAX_LT = 4294967295  # RFC 9176 §5: lt is 1 .. 2**32 - 1 seconds
_DEFAULT_LT = 90000
# Endpoint parameters a registration sets (§5); anything else in the query
# is an endpoint attribute, except these, which are lookup parameters or
# link attributes and cannot describe an endpoint (§5, §6).
_RESERVED = ("page", "count", "href", "anchor", "rt")


# -- URI references (RFC 3986 §5.2) ------------------------------------------


def _split_ref(s):
    # (scheme or None, authority or None, path, query or None); the
    # fragment is dropped (never part of a CoAP request).
    h = s.find("#")
    if h >= 0:
        s = s[:h]
    scheme = None
    c = s.find(":")
    if c > 0:
        head = s[:c]
        ok = "a" <= head[0].lower() <= "z"
        for ch in head:
            if not ("a" <= ch.lower() <= "z" or "0" <= ch <= "9" or ch in "+-."):
                ok = False
                break
        if ok:
            scheme = head.lower()
            s = s[c + 1:]
    auth = None
    if s[:2] == "//":
        end = len(s)
        for ch in "/?":
            k = s.find(ch, 2)
            if 0 <= k < end:
                end = k
        auth = s[2:end]
        s = s[end:]
    query = None
    q = s.find("?")
    if q >= 0:
        query = s[q + 1:]
        s = s[:q]
    return scheme, auth, s, query


def _remove_dots(path):
    # RFC 3986 §5.2.4, by segments.
    absolute = path[:1] == "/"
    segs = path.split("/")
    if absolute:
        segs = segs[1:]
    out = []
    for s in segs:
        if s == ".":
            continue
        if s == "..":
            if out:
                out.pop()
            continue
        out.append(s)
    if segs and (segs[-1] == "." or segs[-1] == ".."):
        out.append("")  # 'a/..' names the directory: keep the trailing '/'
    text = "/".join(out)
    return "/" + text if absolute else text


def resolve(base, ref):
    """The absolute URI of reference `ref` (a link target or anchor)
    against the absolute URI `base` (RFC 3986 §5.2.2): '/s/t' against
    'coap://10.0.0.1:5683' gives 'coap://10.0.0.1:5683/s/t'."""
    bs, ba, bp, bq = _split_ref(base)
    rs, ra, rp, rq = _split_ref(ref)
    if rs is not None:
        scheme, auth, path, query = rs, ra, _remove_dots(rp), rq
    else:
        scheme = bs
        if ra is not None:
            auth, path, query = ra, _remove_dots(rp), rq
        else:
            auth = ba
            if rp == "":
                path = bp
                query = rq if rq is not None else bq
            else:
                if rp[:1] == "/":
                    path = _remove_dots(rp)
                elif ba is not None and bp == "":
                    path = _remove_dots("/" + rp)
                else:
                    path = _remove_dots(bp[:bp.rfind("/") + 1] + rp)
                query = rq
    out = [scheme or "", ":"]
    if auth is not None:
        out.append("//")
        out.append(auth)
    out.append(path)
    if query is not None:
        out.append("?")
        out.append(query)
    return "".join(out)


class Registration:
    """One endpoint's registration.

    id and href ('/rd/<id>'); ep and d (None if no sector); base (the
    effective base URI) and base_explicit (given by the registrant, not
    taken from its address); lt_s; links (the link.Link list as
    registered, targets relative or not: parsed afresh from `text` at each
    read); text (those links in link-format, what the RD keeps of them);
    attrs (further endpoint
    attributes, (name, value) pairs); source (the address the registration
    or the last update came from); left_ms (the lifetime left, as of the
    RD's last tick)."""

    def __init__(self, rid, href, ep, d):
        self.id = rid
        self.href = href
        self.ep = ep
        self.d = d
        self.base = None  # type: str | None
        self.base_explicit = False
        self.lt_s = _DEFAULT_LT
        # The links are kept as text, not parsed: 32 links in 1 KB held
        # about 6.5 KB of a 32-bit board's heap as Links, 1 KB as text, and
        # a board-sized RD's 16 registrations would have held over 100 KB.
        # Lookups parse one registration at a time (links below).
        self.text = ""
        self.attrs = []
        self.source = None
        self.host = None  # type: object  # the source's host, for max_per_source
        self.left_ms = 0
        self._mark = 0  # ticks when left_ms was last aged

    @property
    def links(self):
        """The registered links (link.Link), a new list at each read."""
        return parse(self.text)

    def links_text(self):
        """The registered links in link-format (as registered)."""
        return self.text

    def resolved(self):
        """The links with absolute targets (and anchors) resolved against
        the registration's base (RFC 9176 §6.1, Appendix C): a new list
        each time (an RD keeps none: a copy per registration would double
        what the table holds)."""
        base = self.base
        out = []
        for link in self.links:
            out.append(resolve_link(base, link))
        return out

    def params(self):
        """The endpoint's attributes as (name, value) pairs: ep, d, base,
        lt and the further ones."""
        p = [("ep", self.ep)]
        if self.d is not None:
            p.append(("d", self.d))
        p.append(("base", self.base))
        p.append(("lt", "%d" % self.lt_s))
        for a in self.attrs:
            p.append(a)
        return p

    def __repr__(self):
        return "<Registration %s ep=%s base=%s %d links>" % (self.href, self.ep, self.base,
                                                             len(self.links))


def resolve_link(base, link):
    """A new Link: `link` with its target (and anchor) resolved against
    `base` (RFC 9176 §6.1, Appendix C)."""
    attrs = []
    for name, value in link.attrs:
        if name == "anchor" and value is not None:
            value = resolve(base, value)
        attrs.append((name, value))
    return Link(resolve(base, link.target), attrs)


def _host_of(remote):
    # What identifies a registrant's host (its address without the port).
    if isinstance(remote, (bytes, bytearray)):
        if len(remote) == 16:
            return bytes(remote[4:8])
        if len(remote) >= 24:
            return bytes(remote[8:24])
        return bytes(remote)
    if isinstance(remote, tuple):
        h = remote[0]
        if isinstance(h, str) and h[:7].lower() == "::ffff:":
            h = h[7:]
        return h
    return remote


def _name_ok(v):
    # ep and d (RFC 9176 §5): 1 to 63 bytes of UTF-8, none of the
    # characters 0-31 and 127-159.
    if v is None or v == "" or len(v.encode("utf-8")) > 63:
        return False
    for c in v:
        o = ord(c)
        if o < 32 or 127 <= o <= 159:
            return False
    return True


def _base_ok(v):
    # A base URI: scheme://authority[/path], no query or fragment (§5).
    if not v or "?" in v or "#" in v:
        return False
    i = v.find("://")
    if i <= 0 or i + 3 >= len(v):
        return False
    for c in v:
        if c <= " " or c in '"<>\\^`{|}':
            return False
    s = v[:i]
    if not "a" <= s[0].lower() <= "z":
        return False
    for c in s:
        if not ("a" <= c.lower() <= "z" or "0" <= c <= "9" or c in "+-."):
            return False
    return True


def _lt(v):
    # lt's value as an int, or None if it is not 1 .. 2**32 - 1 (§5).
    n = _uint(v, 10)
    return n if n is not None and 1 <= n <= _MAX_LT else None


def _token_ok(name):
    if not name or len(name) > 63:
        return False
    for c in name:
        if not ("a" <= c <= "z" or "A" <= c <= "Z" or "0" <= c <= "9" or c in "!#$&+-.^_`|~"):
            return False
    return True


def _split_query(query):
    # Uri-Query values -> [(name, value or None)], in order.
    out = []
    for q in query:
        e = q.find("=")
        if e < 0:
            out.append((q, None))
        else:
            out.append((q[:e], q[e + 1:]))
    return out


class _Bad(Exception):
    # A request to answer with `code` and a diagnostic payload.
    def __init__(self, code, text, options=()):
        super().__init__(text)
        self.code = code
        self.text = text
        self.options = options


def _answer(e):
    return Response(e.code, e.text, options=e.options)


class ResourceDirectory:
    """An RFC 9176 Resource Directory on `server` (see the module notes).

    client: a Client on the server's EndPoint, for simple registration's
    GET of the registrant's /.well-known/core (made when first needed);
    each fetch reads at most max_payload bytes and lasts at most
    fetch_timeout_ms, whatever the client's own bounds.
    path: where registrations go ('rd'); lookup_path: the parent of the
    'ep' and 'res' lookup resources ('rd-lookup'). simple: serve
    /.well-known/rd. fetch_timeout_ms: how long simple registration waits
    for the registrant's links, all blocks of them together (the RD ends a
    fetch that takes longer, whatever the client's own timeouts).
    busy_s: the Max-Age of a 5.03 for a full table.
    lookup_cache: how many lookup answers larger than a block are kept for
    the Block2 requests that follow (0: none); lookup_cache_ms: how long
    one is kept after its last read.
    The lookup budget (module notes), counted in links examined:
    lookup_capacity: one host's bucket (None: max_registrations x
    max_links + 1, one lookup of the whole table); lookup_refill_ms: the
    time an empty bucket takes to fill again (the refill rate is
    lookup_capacity per lookup_refill_ms; None: no budget, lookups are
    never refused); lookup_hosts: how many hosts' buckets are kept (at
    least 1); lookup_global: the bucket all hosts share, this many times one
    host's capacity and rate (None: none).
    """

    def __init__(self, server, client=None, max_registrations=16, max_links=32,
                 max_payload=1024, max_attrs=8, max_per_source=4, max_fetches=2,
                 path="rd", lookup_path="rd-lookup", simple=True, fetch_timeout_ms=10000,
                 busy_s=30, on_change=None, max_link_attrs=128, lookup_cache=1,
                 lookup_cache_ms=10000, allow_takeover=False, lookup_capacity=None,
                 lookup_refill_ms=4000, lookup_hosts=16, lookup_global=4):
        self.server = server
        self.max_registrations = max_registrations
        self.max_links = max_links
        # Attributes of all a registration's links: 4 per link at
        # max_links (rt, if, ct, obs), as many as 1 KB of ordinary links
        # carries; a link of hundreds of 1-letter attributes would hold far
        # more heap than its bytes.
        self.max_link_attrs = max_link_attrs
        self.max_payload = max_payload
        self.max_attrs = max_attrs
        self.max_per_source = max_per_source
        self.max_fetches = max_fetches
        self.allow_takeover = allow_takeover
        self.fetch_timeout_ms = fetch_timeout_ms
        self.busy_s = busy_s
        self.on_change = on_change
        self.client = client
        self._clock = server.end_point.clock
        self._rand = server.end_point.rand
        self._regs = []  # Registrations, oldest first (lookup order, paging)
        # Lookup answers larger than a block, kept for the Block2 requests
        # that read the rest of them (RFC 7959 §2.4: the client asks for
        # each block again, and the handler would redo the whole lookup for
        # each: reading a 900 KB answer redid it 900 times). At most
        # lookup_cache answers, each kept lookup_cache_ms after its last
        # read, all dropped at any change to the table; each goes out with
        # the ETag of its bytes, so a client that reads blocks across a
        # change sees the body change (§2.4). [resources?, query, body,
        # ETag option, ticks after which it is dropped] each.
        self.lookup_cache = lookup_cache
        self.lookup_cache_ms = lookup_cache_ms
        self._answers = []
        # The lookup budget (module notes): token buckets of links examined,
        # one per source host (at most lookup_hosts) and one all hosts
        # share. Each is [host, level, remainder, ticks of the last refill]:
        # the level gains capacity per refill_ms, the remainder keeps the
        # fraction of a link a refill left (a lookup every ms would
        # otherwise never refill a board's small bucket).
        if lookup_capacity is None:
            lookup_capacity = max_registrations * max_links + 1
        self.lookup_capacity = lookup_capacity if lookup_capacity > 1 else 1
        if lookup_refill_ms is not None:
            lookup_refill_ms = 1 if lookup_refill_ms < 1 else (
                _MAX_WAIT_MS if lookup_refill_ms > _MAX_WAIT_MS else lookup_refill_ms)
        self.lookup_refill_ms = lookup_refill_ms
        self.lookup_hosts = lookup_hosts if lookup_hosts > 1 else 1
        self.lookup_global = lookup_global
        self._buckets = []  # the hosts' buckets
        self._all = None  # the global bucket
        if lookup_refill_ms is not None and lookup_global:
            self._all = [None, lookup_global * self.lookup_capacity, 0, self._clock()]
        # Simple registrations waiting for the registrant: [host, Pending,
        # ticks by which the fetch must be over] each; at most max_fetches,
        # and one per host.
        self._fetches = []
        self._prefix = "/" + path.strip("/")
        self._depth = len(self._prefix.split("/")) - 1
        # Counters, for monitoring.
        self.registered = 0
        self.updated = 0
        self.removed = 0
        self.expired = 0
        self.rejected = 0  # requests answered 4.xx / 5.03
        self.forbidden = 0  # of those, 4.03: another host's endpoint name or registration
        self.lookups_refused = 0  # of those, 5.03: lookups beyond the lookup budget
        server.add(path, Resource(post=self._post, get=self._get, delete=self._delete,
                                  subtree=True, rt="core.rd", ct=_LINK_FORMAT,
                                  accepts=_LINK_FORMAT))
        lp = lookup_path.strip("/")
        server.add(lp + "/ep", Resource(get=self._lookup_ep, rt="core.rd-lookup-ep",
                                        ct=_LINK_FORMAT))
        server.add(lp + "/res", Resource(get=self._lookup_res, rt="core.rd-lookup-res",
                                         ct=_LINK_FORMAT))
        if simple:
            server.add(".well-known/rd", Resource(post=self._simple))

    # -- the table ----------------------------------------------------------

    def registrations(self):
        """The live registrations, oldest first."""
        self._age()
        return list(self._regs)

    def find(self, ep, d=None):
        """The registration of endpoint ep (in sector d), or None."""
        for r in self._regs:
            if r.ep == ep and r.d == d:
                return r
        return None

    def by_id(self, rid):
        for r in self._regs:
            if r.id == rid:
                return r
        return None

    def restore(self, rid, ep, d, base, base_explicit, lt_s, left_ms, links, attrs=(),
                source=None):
        """Put back a registration saved earlier (a gateway's store): the
        same checks as for one from the network. links: link-format text.
        Raises ValueError if it is not valid or the table is full."""
        self._age()
        if not _name_ok(ep) or (d is not None and not _name_ok(d)) or not _base_ok(base):
            raise ValueError("not a valid registration: %r %r %r" % (ep, d, base))
        if not _token_ok(rid) or self.by_id(rid) is not None or self.find(ep, d) is not None:
            raise ValueError("registration id %r or endpoint %r taken" % (rid, ep))
        if len(self._regs) >= self.max_registrations:
            raise ValueError("the registration table is full")
        if not 1 <= lt_s <= _MAX_LT or left_ms <= 0:
            raise ValueError("lifetime out of range")
        try:
            parsed = parse(links, self.max_links, self.max_link_attrs)
        except LinkFormatError as e:
            raise ValueError("links: %s" % e)
        if len(attrs) > self.max_attrs:
            raise ValueError("more links or attributes than allowed")
        r = Registration(rid, self._href(rid), ep, d)
        r.base = base
        r.base_explicit = bool(base_explicit)
        r.lt_s = lt_s
        r.text = serialize(parsed)
        r.attrs = list(attrs)
        r.source = source
        r.host = None if source is None else _host_of(source)
        r.left_ms = left_ms if left_ms < lt_s * 1000 else lt_s * 1000
        r._mark = self._clock()
        self._regs.append(r)
        self._answers = []
        return r

    def remove(self, reg):
        """Drop a registration (the application's decision)."""
        if reg in self._regs:
            self._regs.remove(reg)
            self.removed += 1
            self._changed("remove", reg)

    def _href(self, rid):
        return self._prefix + "/" + rid

    def _new_id(self):
        # 8 hex digits from the EndPoint's random source, unused so far.
        while True:
            rid = "%04x%04x" % (self._rand(16), self._rand(16))
            if self.by_id(rid) is None:
                return rid

    def _changed(self, event, reg):
        self._answers = []  # a lookup answer kept may say otherwise now
        hook = self.on_change
        if hook is not None:
            hook(event, reg)

    # -- driving ------------------------------------------------------------

    def tick(self):
        """Age the registrations and drop the expired ones, send responses
        to group requests that are due, finish simple registrations whose
        fetch ended (this may read one waiting datagram, and serves it).
        Returns the ms until the next thing to do (at most about 3 days;
        -1 when there is nothing)."""
        # Server.process sends responses to group requests once their
        # leisure delay is over (RFC 7252 §8.2); what it returns is not a
        # request: a response for our fetches, maybe.
        rx = self.server.process(0)
        c = self.client
        if c is not None:
            if rx is not None:
                c.handle(rx)
            if c.pending:
                rx = c.process(0)
                if rx is not None:
                    self.server.handle(rx)
        if self._fetches:
            self._end_late_fetches()
        if self._buckets or self._all is not None:
            self._refresh_budget()
        wait = self._age()
        if self._answers:
            # A kept lookup answer goes lookup_cache_ms after its last read,
            # read again or not (on a board it is most of a heap).
            left = self._answers_left_ms()
            if wait < 0 or 0 <= left < wait:
                wait = left
        if c is not None and c.pending and (wait < 0 or wait > 100):
            wait = 100  # a fetch in progress: look at its deadline soon
        return wait

    def _end_late_fetches(self):
        # fetch_timeout_ms bounds a simple registration's fetch as a whole.
        # The client's timeout_ms bounds each exchange only, so a
        # registrant that sent a 16-byte block every 9.9 s (in time for
        # each) held a fetch slot for hours; a client the application gave
        # may have no transfer_timeout_ms. The callback answers 5.04.
        now = self._clock()
        for f in list(self._fetches):
            h = f[1]
            if not h.done and ticks_diff(now, f[2]) >= 0:
                from .outcome import RequestTimeout

                h.finish(error=RequestTimeout("the registrant's /.well-known/core did not "
                                              "arrive within fetch_timeout_ms (%d ms)"
                                              % self.fetch_timeout_ms))

    def _fetch_wait_s(self, host):
        # The Max-Age of a 5.03 for lack of a fetch slot: the seconds until
        # the fetch of `host` ends (the one that would free a slot for it),
        # or, host None, until the first fetch ends; at least 1.
        now = self._clock()
        left = -1
        for f in self._fetches:
            if host is None or f[0] == host:
                d = ticks_diff(f[2], now)
                if left < 0 or d < left:
                    left = d
        return 1 if left < 1000 else (left + 999) // 1000

    def _age(self):
        # Count down every registration's lifetime; drop the expired ones.
        # Returns the ms until the next expiry (-1: none), clamped.
        now = self._clock()
        wait = -1
        i = 0
        regs = self._regs
        while i < len(regs):
            r = regs[i]
            d = ticks_diff(now, r._mark)
            if d > 0:
                r.left_ms -= d
                r._mark = now
            if r.left_ms <= 0:
                del regs[i]
                self.expired += 1
                self._changed("expire", r)
                continue
            if wait < 0 or r.left_ms < wait:
                wait = r.left_ms
            i += 1
        # lt reaches 4294967295 s (§5): left_ms is then beyond a small int
        # and beyond what ticks_add takes (half the ticks period, 2**29 ms
        # on MicroPython). It is only ever subtracted from; what leaves here
        # for the EndPoint's poll and ticks_add is clamped to _MAX_WAIT_MS
        # (2**28 ms, about 3 days).
        return _MAX_WAIT_MS if wait > _MAX_WAIT_MS else wait

    def handle(self, rx):
        """Serve rx if it is a request, or take it if it answers one of our
        fetches: True if it was either."""
        if self.server.handle(rx):
            return True
        c = self.client
        return c is not None and c.handle(rx)

    def process(self, timeout_ms=None):
        """One round of the RD's loop: serve what arrives within timeout_ms
        (None: until the next expiry), then tick()."""
        wait = self.tick()
        if timeout_ms is not None and (wait < 0 or timeout_ms < wait):
            wait = timeout_ms
        rx = self.server.process(None if wait < 0 else wait)
        if rx is not None and self.client is not None:
            self.client.handle(rx)
        self.tick()

    # -- registration (§5) -----------------------------------------------------

    def _parse_params(self, req, update):
        # (ep, d, lt, base, attrs) from the query; _Bad if malformed.
        ep = d = lt = base = None
        seen = []
        attrs = []
        for name, value in _split_query(req.query):
            if name in ("ep", "d", "lt", "base"):
                if name in seen:
                    raise _Bad(_BAD_REQUEST, "%s given twice" % name)
                seen.append(name)
                if update and (name == "ep" or name == "d"):
                    raise _Bad(_BAD_REQUEST, "%s cannot change in an update (RFC 9176 §5.3.1)"
                               % name)
                if name == "ep" or name == "d":
                    if not _name_ok(value):
                        raise _Bad(_BAD_REQUEST, "%s must be 1 to 63 bytes, no control "
                                   "characters (RFC 9176 §5)" % name)
                    if name == "ep":
                        ep = value
                    else:
                        d = value
                elif name == "lt":
                    lt = _lt(value)
                    if lt is None:
                        raise _Bad(_BAD_REQUEST, "lt must be 1 .. 4294967295 seconds")
                else:
                    if not _base_ok(value):
                        raise _Bad(_BAD_REQUEST, "base must be an absolute URI without "
                                   "query or fragment")
                    base = value
            elif name in _RESERVED or not _token_ok(name):
                raise _Bad(_BAD_REQUEST, "%r cannot be registered as an endpoint attribute"
                           % name)
            else:
                if value is not None and len(value) > 255:
                    raise _Bad(_BAD_REQUEST, "attribute %s too long" % name)
                attrs.append((name, value))
        if len(attrs) > self.max_attrs:
            raise _Bad(_BAD_REQUEST, "more than %d endpoint attributes" % self.max_attrs)
        if not update and ep is None:
            raise _Bad(_BAD_REQUEST, "ep is missing (RFC 9176 §5)")
        return ep, d, lt, base, attrs

    def _links(self, payload, what):
        # The links in a registration payload; _Bad when too large or bad.
        if len(payload) > self.max_payload:
            raise _Bad(_TOO_LARGE, "%s larger than %d bytes" % (what, self.max_payload),
                       [_size1(self.max_payload)])
        # Parsing stops at one link or attribute beyond the bounds, before
        # it holds more (a registration's cost in heap: the module notes).
        try:
            return parse(payload, self.max_links, self.max_link_attrs) if payload else []
        except LinkLimitError as e:
            # 4.13 (RFC 7252 §5.9.2.9): more than the RD is willing to keep;
            # RFC 9176 §5 names no code of its own for it. Size1 (the
            # payload size the RD takes) only helps where the links ran
            # over: an attribute count is no payload size.
            size = [_size1(self.max_payload)] if e.what == "links" else []
            raise _Bad(_TOO_LARGE, "%s: %s" % (what, e), size)
        except LinkFormatError as e:
            raise _Bad(_BAD_REQUEST, "%s: %s" % (what, e))

    def _room(self, remote, ep, d):
        # _Bad(5.03) if a new registration of (ep, d) from `remote` would
        # not fit; _Bad(4.03) if (ep, d) is alive and another host's.
        self._age()
        host = _host_of(remote)
        old = self.find(ep, d)
        if old is not None:
            self._owner(old, host, "endpoint %s is registered from another host" % ep)
            if old.host is None or old.host == host:
                return  # its owner (any port) replaces it: nothing more held
            # Allowed to take it over: the registration becomes the new
            # host's, and counts against its max_per_source like any other
            # (one host could otherwise hold names beyond its share).
        elif len(self._regs) >= self.max_registrations:
            raise _Bad(_SERVICE_UNAVAILABLE, "registration table full", [_max_age(self.busy_s)])
        self._quota(host)

    def _quota(self, host):
        # _Bad(5.03) when `host` holds max_per_source registrations already.
        n = 0
        for r in self._regs:
            if r.host == host:
                n += 1
        if n >= self.max_per_source:
            raise _Bad(_SERVICE_UNAVAILABLE, "%d registrations from this host already" % n,
                       [_max_age(self.busy_s)])

    def _owner(self, r, host, text):
        # Who may register an endpoint name, or update or remove its
        # registration resource (RFC 9176 §7: the RD decides; §7.5): first
        # come, first remembered while alive. The host (source address
        # without the port: a node that restarts comes back on another
        # port, and §5.3.1 lets its address change) that registered a live
        # (ep, d) owns it; a registration of that name, or a request to its
        # registration resource, from another host is refused 4.03 until
        # the registration expires or its owner removes it. The location
        # is no secret (endpoint lookup lists every one), so without this
        # anyone could DELETE a node's registration or update its base to
        # their own address. A registration whose host is not known (one
        # restored without its source) goes to the first that asks.
        # allow_takeover=True (an RD behind its own access control) lets
        # any host do all of it.
        if r.host is None or r.host == host or self.allow_takeover:
            return
        self.forbidden += 1
        raise _Bad(_FORBIDDEN, text + " (RFC 9176 §7: first come, first remembered)")

    def _commit(self, remote, ep, d, lt, base, attrs, links):
        # Create or replace the registration of (ep, d).
        r = self.find(ep, d)
        if r is None:
            rid = self._new_id()
            r = Registration(rid, self._href(rid), ep, d)
            self._regs.append(r)
        r.source = remote
        r.host = _host_of(remote)
        r.lt_s = _DEFAULT_LT if lt is None else lt
        r.left_ms = r.lt_s * 1000
        r._mark = self._clock()
        r.base_explicit = base is not None
        r.base = base if base is not None else base_uri(remote)
        r.attrs = attrs
        r.text = serialize(links)
        self.registered += 1
        self._changed("register", r)
        return r

    def _post(self, req):
        try:
            n = len(req.path) - self._depth
            if n == 0:
                return self._register(req)
            if n == 1:
                return self._update(req, self._reg_of(req))
            return Response(_NOT_FOUND)
        except _Bad as e:
            self.rejected += 1
            return _answer(e)

    def _register(self, req):
        ep, d, lt, base, attrs = self._parse_params(req, False)
        links = self._links(req.payload, "the payload")
        self._room(req.remote, ep, d)
        r = self._commit(req.remote, ep, d, lt, base, attrs, links)
        opts = []
        from .options import Option

        for seg in r.href[1:].split("/"):
            opts.append(Option(_LOCATION_PATH, seg))
        return Response(_CREATED, options=opts)

    def _reg_of(self, req):
        r = self.by_id(req.path[-1])
        if r is None:
            raise _Bad(_NOT_FOUND, "no such registration")
        self._age()
        if r not in self._regs:
            raise _Bad(_NOT_FOUND, "registration expired")
        return r

    def _update(self, req, r):
        # §5.3.1: refresh the lifetime; lt, base and attributes may change.
        host = _host_of(req.remote)
        self._owner(r, host, "registration %s is another host's" % r.href)
        if req.payload:
            raise _Bad(_BAD_REQUEST, "a registration update has no payload (RFC 9176 §5.3.1)")
        ep, d, lt, base, attrs = self._parse_params(req, True)
        merged = list(r.attrs)
        for name, value in attrs:
            for i in range(len(merged)):
                if merged[i][0] == name:
                    merged[i] = (name, value)
                    break
            else:
                merged.append((name, value))
        if len(merged) > self.max_attrs:
            raise _Bad(_BAD_REQUEST, "more than %d endpoint attributes" % self.max_attrs)
        if r.host is not None and r.host != host:
            self._quota(host)  # taken over (allow_takeover): the new host's to count
        r.attrs = merged
        if lt is not None:
            r.lt_s = lt
        r.left_ms = r.lt_s * 1000
        r._mark = self._clock()
        r.source = req.remote
        r.host = host
        if base is not None:
            r.base = base
            r.base_explicit = True
        elif not r.base_explicit:
            r.base = base_uri(req.remote)  # the registrant may have moved
        self.updated += 1
        self._changed("update", r)
        return Response(_CHANGED)

    def _get(self, req):
        try:
            if len(req.path) - self._depth != 1:
                return Response(_METHOD_NOT_ALLOWED)
            r = self._reg_of(req)
        except _Bad as e:
            return _answer(e)
        return Response(_CONTENT, r.links_text(), _LINK_FORMAT)

    def _delete(self, req):
        try:
            if len(req.path) - self._depth != 1:
                return Response(_METHOD_NOT_ALLOWED)
            r = self._reg_of(req)
            self._owner(r, _host_of(req.remote), "registration %s is another host's" % r.href)
        except _Bad as e:
            if e.code == _FORBIDDEN:
                self.rejected += 1
            return _answer(e)
        self._regs.remove(r)
        self.removed += 1
        self._changed("remove", r)
        return Response(_DELETED)

    # -- simple registration (§5.1) -------------------------------------------

    def _simple(self, req):
        try:
            ep, d, lt, base, attrs = self._parse_params(req, False)
            if base is not None:
                # §5.1: the base of a simple registration is the address the
                # request came from; it names no other.
                raise _Bad(_BAD_REQUEST, "no base in a simple registration (RFC 9176 §5.1)")
            if req.payload:
                raise _Bad(_BAD_REQUEST, "a simple registration has no payload (RFC 9176 §5.1)")
            self._room(req.remote, ep, d)
            remote = req.remote
            host = _host_of(remote)
            # One fetch per host at a time: two sockets of one host that
            # answered the GET a block at a time took both slots and kept
            # every other node's simple registration out (5.03). Max-Age:
            # when a slot may be free (RFC 7252 §5.9.3.4).
            for f in self._fetches:
                if f[0] == host:
                    raise _Bad(_SERVICE_UNAVAILABLE, "a simple registration from this host "
                               "is under way", [_max_age(self._fetch_wait_s(host))])
            if len(self._fetches) >= self.max_fetches:
                raise _Bad(_SERVICE_UNAVAILABLE, "busy", [_max_age(self._fetch_wait_s(None))])
            c = self.client
            if c is None:
                from .client import Client

                # max_body: the links a registration may carry, fetched or
                # POSTed (RFC 9176 §5.1 holds the fetched links to the same
                # limits as a registration's payload): a body beyond it ends
                # the fetch at once (4.13) instead of filling the heap. The
                # default, 64 KB, let a registrant make an RD of a 1 KB
                # max_payload hold 64 KB per fetch.
                c = self.client = Client(self.server.end_point, max_body=self.max_payload,
                                         transfer_timeout_ms=self.fetch_timeout_ms)
            deferred = req.defer()
            uri = base_uri(remote) + "/.well-known/core"
            entry = [host, None, 0]

            def fetched(h):
                if entry in self._fetches:
                    self._fetches.remove(entry)
                self._fetched(h, deferred, remote, ep, d, lt, attrs)

            try:
                # Bounded per request, so a client the application gave
                # holds a fetch to the same limits as the one made above.
                h = c.start("get", uri, accept=_LINK_FORMAT, timeout_ms=self.fetch_timeout_ms,
                            callback=fetched, transfer_timeout_ms=self.fetch_timeout_ms,
                            max_body=self.max_payload)
            except Exception as e:  # the EndPoint's table is full
                deferred.respond(_SERVICE_UNAVAILABLE, "cannot ask for the links: %r" % (e,),
                                 options=[_max_age(5)])
                return None
            entry[1] = h
            t = self.fetch_timeout_ms
            entry[2] = ticks_add(self._clock(), _MAX_WAIT_MS if t > _MAX_WAIT_MS else t)
            self._fetches.append(entry)
            return None
        except _Bad as e:
            self.rejected += 1
            return _answer(e)

    def _fetched(self, h, deferred, remote, ep, d, lt, attrs):
        r = h.response
        code = _CHANGED
        text = b""
        options = ()
        if r is None:
            code, text = self._fetch_failed(h)
            if code == _TOO_LARGE:
                options = [_size1(self.max_payload)]
        elif r.code != _CONTENT:
            code, text = _BAD_GATEWAY, "GET /.well-known/core answered %d.%02d" % (
                r.code >> 5, r.code & 31)
        else:
            try:
                links = self._links(r.payload, "the registrant's /.well-known/core")
                self._room(remote, ep, d)
                self._commit(remote, ep, d, lt, None, attrs, links)
            except _Bad as e:
                code, text = (_BAD_GATEWAY if e.code == _BAD_REQUEST else e.code), e.text
                options = e.options
        if code != _CHANGED:
            self.rejected += 1
        try:
            deferred.respond(code, text, options=options)
        except Exception:  # answered already, or the EndPoint is full
            pass

    def _fetch_failed(self, h):
        # (code, text) for a fetch that ended without a response.
        err = h.error
        x = h.transfer  # the block-wise state: the answer came in blocks
        if x is not None:
            from .client_block import BlockError, BodyTooLarge  # loaded already: blocks came

            if isinstance(err, BodyTooLarge):
                # The links ran over max_payload, block by block (the
                # request's max_body ended the transfer). RFC 9176 §5.1
                # holds the links of a simple registration to the limits of
                # a registration's payload, so the answer is what a POSTed
                # payload that large gets: 4.13 with Size1 (RFC 7252
                # §5.9.2.9, §5.10.9).
                return _TOO_LARGE, ("the registrant's /.well-known/core is larger than %d "
                                    "bytes" % self.max_payload)
            if isinstance(err, BlockError):
                # The registrant broke the block-wise rules (RFC 7959): an
                # invalid answer from the server we asked (5.02, RFC 7252
                # §5.9.3.3).
                return _BAD_GATEWAY, "GET /.well-known/core: %s" % (err,)
        # No answer, or none complete within fetch_timeout_ms (5.04, RFC
        # 7252 §5.9.3.5).
        return _GATEWAY_TIMEOUT, ("no complete answer to GET /.well-known/core within %d ms"
                                  % self.fetch_timeout_ms)

    # -- lookup (§6) -------------------------------------------------------------

    def _lookup_query(self, req):
        # (filters, page, count) from the query; _Bad on a malformed one.
        filters = []
        page = None  # type: int | None
        count = None  # type: int | None
        for name, value in _split_query(req.query):
            if name == "page" or name == "count":
                n = _uint(value)
                if n is None:
                    raise _Bad(_BAD_REQUEST, "%s must be a number" % name)
                if (page if name == "page" else count) is not None:
                    raise _Bad(_BAD_REQUEST, "%s given twice" % name)
                if name == "page":
                    page = n
                else:
                    count = n
            elif name:
                filters.append((name.lower(), value))
        if page is not None and count is None:
            raise _Bad(_BAD_REQUEST, "page needs count (RFC 9176 §6)")
        return filters, page, count

    def _lookup(self, req, resources):
        try:
            filters, page, count = self._lookup_query(req)
        except _Bad as e:
            self.rejected += 1
            return _answer(e)
        query = req.query
        host = _host_of(req.remote)
        wait_ms = 0
        if self.lookup_refill_ms is not None:
            # Checked before the table is aged (a walk of it): a host
            # flooding refused lookups costs little more than their parsing.
            # A kept answer is served whatever the budget (its Block2
            # continuation is a copy of a block: a client reading a long
            # answer block by block is not refused midway, its first block
            # having driven its bucket into debt).
            wait_ms = self._lookup_wait_ms(host)
            if wait_ms > 0 and self._kept_entry(resources, query) is None:
                return self._refuse_lookup(wait_ms)
        self._age()
        hit = self._kept(resources, query)
        if hit is not None:
            self._charge(host, 1, False)
            return hit
        if wait_ms > 0:  # the kept answer went with an expiry just now
            return self._refuse_lookup(wait_ms)
        # The work one lookup does is bounded by the table: at worst every
        # registration's links are parsed once (max_registrations x
        # max_links links, each registration's text at most what its
        # payload was), and the answer holds at most all of them, resolved.
        # Endpoint attributes (ep, d, base, lt and the further ones) decide
        # a registration before its links are parsed, and a link-attribute
        # filter whose name or value appears nowhere in a registration's
        # text rules it out without parsing it either: a lookup that
        # matches nothing costs a substring search per registration. A
        # link is resolved against the base only when it is answered (or
        # when an href or anchor filter compares the resolved form).
        # The work is counted for the lookup budget: 1, plus 1 for each
        # registration ruled out before its links are parsed, plus its
        # number of links (at least 1) for each one parsed.
        parts = []
        skip = 0 if page is None or count is None else page * count
        work = 1
        for r in self._regs:
            if count is not None and len(parts) >= count:
                break
            rest = _link_filters(filters, r, resources)
            if rest is None:
                work += 1
                continue
            early = False  # resolve before matching: href and anchor compare resolved URIs
            for f in rest:
                if f[0] == "href" or f[0] == "anchor":
                    early = True
            base = r.base
            if resources:
                links = r.links
                work += len(links) or 1
                for link in links:
                    if early:
                        link = resolve_link(base, link)
                    if not _link_passes(rest, link):
                        continue
                    if skip:
                        skip -= 1
                    elif count is None or len(parts) < count:
                        parts.append(serialize((link if early else resolve_link(base, link),)))
                    else:
                        break
            else:
                if rest:
                    links = r.links
                    work += len(links) or 1
                    if early:
                        links = [resolve_link(base, link) for link in links]
                    if not _each_filter_has_a_link(rest, links):
                        continue
                else:
                    work += 1
                if skip:
                    skip -= 1
                else:
                    parts.append(serialize((Link(r.href, _ep_attrs(r)),)))
        self._charge(host, work, True)
        return self._keep(resources, query, ",".join(parts))

    # -- the lookup budget -----------------------------------------------------

    def _refuse_lookup(self, wait_ms):
        # 5.03 with Max-Age: the whole seconds until the budget allows the
        # lookup (RFC 7252 §5.9.3.4), at least 1, clamped.
        self.rejected += 1
        self.lookups_refused += 1
        s = (wait_ms + 999) // 1000
        if s > _MAX_WAIT_MS // 1000:
            s = _MAX_WAIT_MS // 1000
        return _answer(_Bad(_SERVICE_UNAVAILABLE, "lookup budget spent, for this host or "
                            "for all", [_max_age(s if s > 0 else 1)]))

    def _refill(self, b, cap, now):
        # Bring bucket b (of capacity cap) up to `now`: it gains cap links
        # per lookup_refill_ms. In units of 1/refill_ms of a link (level x
        # refill_ms + remainder), so no fraction is lost; the products stay
        # within (cap - level) x refill_ms (small ints on a board with the
        # defaults: 16 x 32 links, 4 s), however long the bucket was idle.
        d = ticks_diff(now, b[3])
        b[3] = now
        level = b[1]
        if d <= 0 or level >= cap:
            return
        ms = self.lookup_refill_ms
        need = (cap - level) * ms - b[2]
        if d >= (need + cap - 1) // cap:
            b[1] = cap
            b[2] = 0
        else:
            total = d * cap + b[2]
            b[1] = level + total // ms
            b[2] = total % ms

    def _until_positive_ms(self, b, cap):
        # The ms until bucket b (refilled just now) holds a link; 0: it does.
        if b[1] > 0:
            return 0
        return ((1 - b[1]) * self.lookup_refill_ms - b[2] + cap - 1) // cap

    def _bucket(self, host):
        for b in self._buckets:
            if b[0] == host:
                return b
        return None

    def _lookup_wait_ms(self, host):
        # The ms until `host` may look up (0: now). A host without a bucket
        # would get one as full as the global bucket allows: it waits for
        # the global bucket only.
        now = self._clock()
        cap = self.lookup_capacity
        wait = 0
        a = self._all
        if a is not None:
            g = cap * self.lookup_global
            self._refill(a, g, now)
            wait = self._until_positive_ms(a, g)
        b = self._bucket(host)
        if b is not None:
            self._refill(b, cap, now)
            w = self._until_positive_ms(b, cap)
            if w > wait:
                wait = w
        return wait

    def _charge(self, host, work, make):
        # Charge `work` links to host's bucket (made if `make` and it has
        # none) and to the global one; a lookup may leave them in debt.
        if self.lookup_refill_ms is None:
            return
        a = self._all
        b = self._bucket(host)
        if b is None and make:
            b = self._new_bucket(host)
        if b is not None:
            b[1] -= work
        if a is not None:
            a[1] -= work

    def _new_bucket(self, host):
        # A bucket for a host that has none: full, but no fuller than the
        # global bucket (a host cycling source addresses gets no more than
        # the global bucket holds). The table is bounded: when full, the
        # fullest bucket goes (one that has filled up again says nothing the
        # new one would not: a host whose bucket went is given what the
        # global bucket allows). One host cannot take the table from the
        # others for long: the global bucket bounds what its new addresses
        # get.
        now = self._clock()
        cap = self.lookup_capacity
        buckets = self._buckets
        if len(buckets) >= self.lookup_hosts:
            best = None
            for b in buckets:
                self._refill(b, cap, now)
                if best is None or b[1] > best[1]:
                    best = b
            buckets.remove(best)
        level = cap
        a = self._all
        if a is not None and a[1] < level:
            level = a[1]
        b = [host, level, 0, now]
        buckets.append(b)
        return b

    def _refresh_budget(self):
        # tick(): refill the buckets and drop the hosts' full ones (they
        # hold nothing a new one would not), so that every mark stays
        # within what ticks_diff measures (tick() runs every few days).
        now = self._clock()
        cap = self.lookup_capacity
        a = self._all
        if a is not None:
            self._refill(a, cap * self.lookup_global, now)
        buckets = self._buckets
        i = 0
        while i < len(buckets):
            b = buckets[i]
            self._refill(b, cap, now)
            if b[1] >= cap:
                del buckets[i]
            else:
                i += 1

    def drop_answers(self):
        """Drop the lookup answers kept for Block2 reads (the RD drops them
        at any change to the table; an application short of heap may)."""
        self._answers = []

    def _answers_left_ms(self):
        # Drop the kept answers whose time is up; the ms until the next one
        # is (-1: none left).
        now = self._clock()
        left = -1
        for a in list(self._answers):
            d = ticks_diff(a[4], now)
            if d < 0:
                self._answers.remove(a)
            elif left < 0 or d < left:
                left = d
        return left

    def _kept_entry(self, resources, query):
        # The answer kept for this lookup (its entry in _answers), or None;
        # one whose time is up is dropped here.
        if not self._answers:
            return None
        query = tuple(query)  # (the Request's query is a tuple or a list)
        for a in self._answers:
            if a[0] == resources and a[1] == query:
                if ticks_diff(a[4], self._clock()) < 0:
                    self._answers.remove(a)
                    return None
                return a
        return None

    def _kept(self, resources, query):
        # The answer kept for this lookup (a Response), or None.
        a = self._kept_entry(resources, query)
        if a is None:
            return None
        a[4] = ticks_add(self._clock(), self._cache_ms())
        return Response(_CONTENT, a[2], _LINK_FORMAT, options=(a[3],))

    def _keep(self, resources, query, text):
        # The Response for a lookup's answer; one larger than a block is
        # kept (and then goes with its ETag).
        body = text.encode("utf-8")
        if len(body) <= self.server.block_size or self.lookup_cache <= 0:
            return Response(_CONTENT, body, _LINK_FORMAT)
        from .options import Option
        from .server_block import etag_of

        etag = Option(_ETAG, etag_of(body))
        answers = self._answers
        while len(answers) >= self.lookup_cache:
            answers.pop(0)  # the oldest goes
        answers.append([resources, tuple(query), body, etag,
                        ticks_add(self._clock(), self._cache_ms())])
        return Response(_CONTENT, body, _LINK_FORMAT, options=(etag,))

    def _cache_ms(self):
        # lookup_cache_ms, within what ticks_add takes.
        ms = self.lookup_cache_ms
        return _MAX_WAIT_MS if ms > _MAX_WAIT_MS else (0 if ms < 0 else ms)

    def _lookup_ep(self, req):
        return self._lookup(req, False)

    def _lookup_res(self, req):
        return self._lookup(req, True)


def _ep_attrs(r):
    # What endpoint lookup says about a registration (§6.4).
    out = [("ep", r.ep)]
    if r.d is not None:
        out.append(("d", r.d))
    out.append(("base", r.base))
    out.append(("lt", "%d" % r.lt_s))
    out.append(("rt", "core.rd-ep"))
    for a in r.attrs:
        out.append(a)
    return out


def _path_of(uri):
    # '/a/b' of 'coap://host:port/a/b' (the path and query).
    i = uri.find("://")
    if i < 0:
        return uri
    j = uri.find("/", i + 3)
    return "/" if j < 0 else uri[j:]


def _href_matches(target, value):
    if value is None:
        return True
    if value[:1] == "/":
        target = _path_of(target)
    if value[-1:] == "*":
        return target.startswith(value[:-1])
    return target == value


def _link_filters(filters, r, resource):
    # The filters registration r leaves to its links, once its endpoint
    # attributes have decided theirs (RFC 9176 §6: a filter naming an
    # endpoint attribute matches the registration's value); None when r is
    # ruled out already: by an endpoint attribute, or by a link-attribute
    # filter that no link of r can pass, seen in r's text without parsing
    # it (_in_text). In endpoint lookup an href filter passes on the
    # registration resource's path too.
    params = None
    rest = []
    text = r.text
    for f in filters:
        name, value = f
        if name == "href":
            if not resource and _href_matches(r.href, value):
                continue
            rest.append(f)
            continue
        if params is None:
            params = Link(r.href, r.params())
        if params.get(name) is not None:
            if not matches(params, name, value):
                return None
        elif not _in_text(text, name, value):
            return None
        else:
            rest.append(f)
    return rest


def _in_text(text, name, value):
    # Can a link in `text` (link-format as serialize() writes it) pass the
    # filter name=value? False only when it surely cannot: no ';name' in
    # the text, or not the value (its prefix, for 'v*'), which serialize()
    # writes as it is unless it holds '"' or '\\' (escaped in a quoted
    # string). An anchor filter compares the resolved anchor: only its
    # name is looked for.
    if (";" + name) not in text:
        return False
    if value is None or name == "anchor":
        return True
    if value[-1:] == "*":
        value = value[:-1]
    if '"' in value or "\\" in value:
        return True
    return value in text


def _link_passes(filters, link):
    # Does one link pass every filter (resource lookup, §6.1)?
    for name, value in filters:
        if name == "href":
            if not _href_matches(link.target, value):
                return False
        elif not matches(link, name, value):
            return False
    return True


def _each_filter_has_a_link(filters, links):
    # Endpoint lookup: an endpoint passes a filter when any of its links
    # does (§6.2), each filter on its own.
    for name, value in filters:
        ok = False
        for link in links:
            if _href_matches(link.target, value) if name == "href" else matches(link, name, value):
                ok = True
                break
        if not ok:
            return False
    return True


def _uint(v, digits=9):
    # A query value of at most `digits` decimal digits as an int, else None
    # (9: a small int on a 32-bit board).
    if v is None or not 0 < len(v) <= digits:
        return None
    for c in v:
        if not "0" <= c <= "9":
            return None
    return int(v)


def _size1(n):
    from .options import Option

    return Option(_SIZE1, n)


def _max_age(s):
    from .options import Option

    return Option(_MAX_AGE, s)
