"""coap:// and coaps:// URIs to request options and back (RFC 7252 §6).

    split(uri)        -> (scheme, host, port, path, query), all decoded
    to_options(uri)   -> (host, port, [Uri-Host, Uri-Port, Uri-Path..., Uri-Query...])
    compose(options)  -> the URI (§6.5), e.g. for printing a request or a Location

§6.4 compares the URI's host and port with the request's destination; here
the destination is taken to be the URI's own host and port, so Uri-Host is
sent only for a host name (never for an IP literal) and Uri-Port only for a
port other than the scheme's default (as libcoap's coap-client does).

Not a per-message path: this runs once per request a client makes, and a node
may never import it. Option classes are looked up when first needed.
"""
from ._compat import const

from .options import Option, option_class

_URI_HOST = const(3)
_URI_PORT = const(7)
_URI_PATH = const(11)
_URI_QUERY = const(15)

COAP_PORT = const(5683)
COAPS_PORT = const(5684)

# Characters a URI never holds literally (RFC 3986 §2): they must be
# percent-encoded, so seeing one means the string is not a URI.
_NEVER = '"<>\\^`{|}'
_HEX = "0123456789abcdefABCDEF"
# What stays literal when composing (RFC 7252 §6.5 steps 2, 6, 8), besides
# ALPHA / DIGIT: unreserved "-._~", sub-delims, and per component ":" "@"
# (path), "?" (query; "&" separates parameters so it is encoded). "/" in a
# query parameter is encoded too, as Appendix B example 5 shows ("//" ->
# "%2F%2F"); step 8 would also allow it bare, and both decode alike.
_HOST_SAFE = "-._~!$&'()*+,;="
_PATH_SAFE = "-._~!$&'()*+,;=:@"
_PATH_CHARS = "-._~!$&'()*+,;=:@/"  # a whole path: segments and the '/' between
_QUERY_SAFE = "-._~!$'()*+,;=:@?"


class UriError(ValueError):
    """A URI that is not a well-formed coap:// or coaps:// URI."""


def default_port(scheme):
    """5683 for coap, 5684 for coaps (RFC 7252 §6.1, §6.2)."""
    s = scheme.lower()
    if s == "coap":
        return COAP_PORT
    if s == "coaps":
        return COAPS_PORT
    raise UriError("scheme %r is not coap or coaps" % scheme)


def split(uri):
    """Split a coap/coaps URI into (scheme, host, port, path, query).

    scheme is lower case; host is percent-decoded and lower case, an IPv6
    literal without its brackets; port is an int (the scheme's default when
    absent or empty); path is the list of decoded segments ('' and '/' give
    [], empty segments are kept, '.' and '..' are resolved as RFC 3986 §5.2.4
    says); query is the list of decoded parameters split on '&' (a bare '?'
    gives []). Raises UriError saying what is wrong.
    """
    if not isinstance(uri, str):
        raise UriError("a URI must be a str, not %r" % (uri,))
    for c in uri:
        if c <= " " or c == "\x7f" or c in _NEVER:
            raise UriError("character %r is not allowed in a URI: %r" % (c, uri))
    i = uri.find(":")
    if i <= 0:
        raise UriError("no scheme in %r (expected coap:// or coaps://)" % uri)
    scheme = uri[:i].lower()
    port = default_port(scheme)
    if "#" in uri:
        raise UriError("a fragment ('#') is not allowed in a CoAP URI: %r" % uri)
    if uri[i + 1:i + 3] != "//":
        raise UriError("no host in %r (expected '//' after '%s:')" % (uri, scheme))
    rest = uri[i + 3:]

    query = []
    q = rest.find("?")
    if q >= 0:
        if q + 1 < len(rest):
            for p in rest[q + 1:].split("&"):
                query.append(_unquote(p))
        rest = rest[:q]

    s = rest.find("/")
    if s >= 0:
        auth = rest[:s]
        path = _path(rest[s + 1:].split("/"))
    else:
        auth = rest
        path = []

    if "@" in auth:
        raise UriError("user information ('@') is not allowed in a CoAP URI: %r" % uri)
    if auth[:1] == "[":
        e = auth.find("]")
        if e < 0:
            raise UriError("unterminated '[' in the host of %r" % uri)
        host = auth[1:e]
        z = host.find("%")  # RFC 6874 zone ('%25eth0'): keep its case
        host = _unquote(host.lower() if z < 0 else host[:z].lower() + host[z:])
        if not _is_ipv6(host):
            raise UriError("%r is not an IPv6 address (in %r)" % (host, uri))
        p = auth[e + 1:]
        if p and p[0] != ":":
            raise UriError("unexpected %r after ']' in %r" % (p, uri))
    else:
        c = auth.find(":")
        if c >= 0:
            if auth.find(":", c + 1) >= 0:
                raise UriError("more than one ':' after the host in %r "
                               "(an IPv6 address must be in brackets)" % uri)
            host, p = auth[:c], auth[c:]
        else:
            host, p = auth, ""
        if "[" in host or "]" in host:
            raise UriError("unexpected ']' or '[' in the host of %r" % uri)
        host = _unquote(host.lower())  # §6.4 step 5: lower case, then decode
    if not host:
        raise UriError("no host in %r" % uri)
    if len(p) > 1:  # ':' and nothing after it is the default port
        port = 0
        for d in p[1:]:
            if not "0" <= d <= "9" or port > 65535:
                raise UriError("bad port %r in %r" % (p[1:], uri))
            port = port * 10 + ord(d) - 48
        if not 0 < port <= 65535:
            raise UriError("port %r out of range in %r" % (p[1:], uri))
    return scheme, host, port, path, query


def _path(segs):
    # Remove '.' and '..' segments (RFC 3986 §5.2.4, which §6.4 step 2 applies
    # through reference resolution), then percent-decode. `segs` are the raw
    # segments after the leading '/'; a path of only '/' is no segment at all
    # (§6.4 step 8), but every other empty segment is kept.
    out = []
    last = len(segs) - 1
    for i in range(len(segs)):
        s = segs[i]
        if s == "." or s == "..":
            if s == ".." and out:
                out.pop()
            if i == last:
                out.append("")  # '/a/.' is '/a/': a trailing empty segment
        else:
            out.append(s)
    if len(out) == 1 and out[0] == "":
        return []
    for i in range(len(out)):
        out[i] = _unquote(out[i])
    return out


def _unquote(s):
    # Percent-decode s; the result must be UTF-8 (option values are strings).
    if "%" not in s:
        return s
    out = bytearray()
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "%":
            h = s[i + 1:i + 3]
            if len(h) != 2 or h[0] not in _HEX or h[1] not in _HEX:
                raise UriError("bad percent escape %r in %r: '%%' must be "
                               "followed by two hex digits" % (s[i:i + 3], s))
            out.append(int(h, 16))
            i += 3
        else:
            out.extend(c.encode("utf-8"))
            i += 1
    try:
        return str(out, "utf-8")
    except ValueError:  # UnicodeError on both runtimes
        raise UriError("percent escapes in %r are not UTF-8" % s)


def quote(v, safe):
    """Percent-encode every byte of v (str or bytes) that is not ALPHA,
    DIGIT or in `safe`, with upper-case hex (RFC 3986 §2.1). A str that
    needs nothing is returned as it is, having allocated nothing."""
    if isinstance(v, str):
        for i in range(len(v)):
            if not _plain(ord(v[i]), safe):
                break
        else:
            return v
    b = v.encode("utf-8") if isinstance(v, str) else bytes(v)
    for x in b:
        if not _plain(x, safe):
            break
    else:
        return str(b, "ascii")
    parts = []
    for x in b:
        parts.append(chr(x) if _plain(x, safe) else "%%%02X" % x)
    return "".join(parts)


def quote_path(path):
    """A path given as its segments joined by '/' ('' for none) as a URI
    writes it after the first '/': each segment as quote_segment() writes
    it. Returned as it is when nothing needs encoding."""
    if "." not in path and quote(path, _PATH_CHARS) is path:
        return path
    out = []
    for seg in path.split("/"):
        out.append(quote_segment(seg))
    return "/".join(out)


def quote_segment(seg):
    """A path segment (a Uri-Path value: str, or bytes that are not UTF-8)
    as a URI path writes it: percent-encoded, and '.' and '..' as %2E and
    %2E%2E, which split() does not resolve away (RFC 3986 §5.2.4), so the
    text leads back to the same segment."""
    if seg == "." or seg == "..":
        return "%2E%2E" if len(seg) == 2 else "%2E"
    return quote(seg, _PATH_SAFE)


def _plain(x, safe):
    return (
        0x61 <= x <= 0x7A or 0x41 <= x <= 0x5A or 0x30 <= x <= 0x39
        or (x < 0x7F and chr(x) in safe)
    )


def is_ip_literal(host):
    """True for an IPv4 dotted quad or an IPv6 address (without brackets,
    optionally with a '%zone'); False for anything else, e.g. a host name."""
    return _is_ipv4(host) or _is_ipv6(host)


def _is_ipv4(s):
    # RFC 3986 IPv4address: four dec-octets 0-255, no leading zeros.
    parts = s.split(".")
    if len(parts) != 4:
        return False
    for p in parts:
        if not 0 < len(p) <= 3 or (len(p) > 1 and p[0] == "0"):
            return False
        for d in p:
            if not "0" <= d <= "9":
                return False
        if int(p) > 255:
            return False
    return True


def _is_ipv6(s):
    # RFC 4291 §2.2 text forms, with an optional RFC 6874 zone after '%'.
    z = s.find("%")
    if z >= 0:
        if z == len(s) - 1:
            return False
        s = s[:z]
    d = s.find("::")
    if d < 0:
        return _groups(s) == 8
    if s.find("::", d + 1) >= 0 or "." in s[:d]:
        return False  # two '::', or an IPv4 part that is not at the end
    head = _groups(s[:d])
    tail = _groups(s[d + 2:])
    return head >= 0 and tail >= 0 and head + tail <= 7  # '::' is >= 1 group


def _groups(s):
    # The number of 16-bit groups in a ':'-separated run of hex groups, an
    # IPv4 address at the end counting as two; -1 if malformed.
    if not s:
        return 0
    parts = s.split(":")
    last = len(parts) - 1
    for i in range(last + 1):
        g = parts[i]
        if i == last and "." in g:
            return last + 2 if _is_ipv4(g) else -1
        if not 0 < len(g) <= 4:
            return -1
        for c in g:
            if c not in _HEX:
                return -1
    return last + 1


def to_options(uri):
    """(host, port, options) for a request to `uri`.

    host and port are where to send it (host still to be resolved);
    options are, in option-number order, Uri-Host (only for a host name),
    Uri-Port (only for a port other than the scheme's default), one Uri-Path
    per path segment and one Uri-Query per query parameter.
    """
    scheme, host, port, path, query = split(uri)
    opts = []
    if not is_ip_literal(host):
        opts.append(_option(_URI_HOST, host))
    if port != default_port(scheme):
        opts.append(_option(_URI_PORT, port))
    for seg in path:
        opts.append(_option(_URI_PATH, seg))
    for par in query:
        opts.append(_option(_URI_QUERY, par))
    return host, port, opts


def _option(number, value):
    cls = option_class(number)  # always registered here: Uri-Host, -Port, -Path, -Query
    opt = cls(value) if cls is not None else Option(number, value)
    if opt.malformed:  # only a length can be wrong here: 255 bytes at most
        raise UriError("%s too long for its option: %r" % (opt.name, value))
    return opt


def compose(message_or_options, host=None, port=None, scheme="coap"):
    """The URI of a request (RFC 7252 §6.5), from a Message or a sequence of
    options. Uri-Host and Uri-Port options override `host` and `port` (the
    destination); an IPv6 literal is bracketed, the default port left out,
    path and query percent-encoded. Raises UriError when there is no host.
    """
    dflt = default_port(scheme)
    opts = getattr(message_or_options, "options", message_or_options)
    path = []
    query = []
    for o in opts:
        n = o.number
        if n == _URI_HOST:
            host = o.value
        elif n == _URI_PORT:
            port = o.value
        elif n == _URI_PATH:
            path.append(quote_segment(o.value))
        elif n == _URI_QUERY:
            query.append(quote(o.value, _QUERY_SAFE))
    if not host:
        raise UriError("no host: give host= or a Uri-Host option")
    if isinstance(host, (bytes, bytearray)):  # a Uri-Host that is not UTF-8
        host = quote(host, _HOST_SAFE)
    elif host[:1] == "[" and host[-1:] == "]":
        pass  # already bracketed
    elif _is_ipv6(host):
        host = "[" + host.replace("%", "%25") + "]"
    else:
        host = quote(host, _HOST_SAFE)
    parts = [scheme.lower(), "://", host]
    if port is not None and port != dflt:
        parts.append(":%d" % port)
    if path:
        for seg in path:
            parts.append("/")
            parts.append(seg)
    else:
        parts.append("/")
    sep = "?"
    for par in query:
        parts.append(sep)
        parts.append(par)
        sep = "&"
    return "".join(parts)
