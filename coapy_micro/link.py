"""CoRE Link Format (RFC 6690): the payload of /.well-known/core.

    </sensors/temp>;rt="temperature-c";if="sensor";ct=0;obs,</time>;ct=0

A `Link` is a target (the URI-reference between < and >) and its attributes
in order, as (name, value) pairs: value a str, or None for a valueless one
such as `obs`. `serialize` and `parse` convert between links and text, and
`filter_links` applies a discovery query (RFC 6690 §4.1) such as `rt=temp*`.

Parsing is for what a client receives, so any malformed input raises
LinkFormatError and nothing else. A server's /.well-known/core comes from
`resource_links` (Server.link_format), with each target percent-encoded as
uri.py writes a path. Not a per-message path: a node serializes its
resource list when asked for /.well-known/core.
"""
from .uri import quote_path

# Attributes whose value is a space-separated list: a filter matches any one
# item (RFC 6690 §2 and §4.1 for rt, if, rel and rev; RFC 7252 §7.2.1 for ct).
_LISTS = ("rt", "if", "rel", "rev", "ct")
# Attributes written quoted whatever their value, as libcoap and aiocoap do.
_QUOTED = ("rt", "if", "title", "anchor", "rel", "rev")
# Token characters besides ALPHA / DIGIT. Written bare: RFC 7230 tchar.
# Read bare: RFC 6690 ptokenchar, which also allows ( ) / : < = > ? @ [ ] { }.
_TCHAR = "!#$%&'*+-.^_`|~"
_PTOKEN = "!#$%&'()*+-./:<=>?@[]^_`{|}~"
# parmname (RFC 5987 attr-char), plus '*' for an extended value (title*).
_NAMECHAR = "!#$&+-.^_`|~*"
_SPACE = " \t\r\n"


class LinkFormatError(ValueError):
    """Text that is not well-formed link-format (RFC 6690 §2)."""


class LinkLimitError(LinkFormatError):
    """Link-format with more links or attributes than the caller of parse()
    allows (well-formed or not: parsing stops there). `what` is 'links' or
    'attributes', the bound it went beyond."""

    def __init__(self, what, limit):
        super().__init__("more than %d %s" % (limit, what))
        self.what = what


class Link:
    """One link: `Link('/sensors/temp', [('rt', 'temperature'), ('obs', None)])`.

    An attribute value may be given as a str, None (valueless), True (also
    valueless), an int, or a list/tuple of those (a space-separated list,
    e.g. ct=(0, 40)); it is stored as a str or None. A pair whose value is
    False is left out, so ('obs', observable) works either way.
    """

    def __init__(self, target, attrs=()):
        self.target = target
        self.attrs = []
        for name, value in attrs:
            if value is not False:
                self.attrs.append((name, _text(value)))

    def get(self, name):
        """The first value of attribute `name`; '' if it has no value, None if absent."""
        for n, v in self.attrs:
            if n == name:
                return "" if v is None else v
        return None

    def get_all(self, name):
        """Every value of attribute `name`, in order ('' for a valueless one)."""
        out = []
        for n, v in self.attrs:
            if n == name:
                out.append("" if v is None else v)
        return out

    def values(self, name):
        """Every item of attribute `name`, its values split on spaces:
        rt="a b";rt=c gives ['a', 'b', 'c']."""
        out = []
        for n, v in self.attrs:
            if n == name and v:
                out.extend(v.split())
        return out

    def __eq__(self, other):
        return (
            isinstance(other, Link)
            and self.target == other.target
            and self.attrs == other.attrs
        )

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        return "Link(%r, %r)" % (self.target, self.attrs)

    def __str__(self):
        return serialize((self,))


def _text(v):
    # An attribute value as stored: a str, or None for a valueless attribute.
    if v is None or v is True:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, (list, tuple)):
        return " ".join([_text(x) or "" for x in v])
    if isinstance(v, (bytes, bytearray)):
        return str(v, "utf-8")
    # bool is not an int on MicroPython; True was handled above, and False
    # never gets here (it means "leave the attribute out").
    return "%d" % v if isinstance(v, int) else str(v)  # upy-ok: no bool left


def _is_token(s, extra):
    if not s:
        return False
    for c in s:
        if not ("a" <= c <= "z" or "A" <= c <= "Z" or "0" <= c <= "9" or c in extra):
            return False
    return True


def serialize(links):
    """Link-format text for `links`: `</a>;rt="x";ct=0;obs,</b>`.

    Values of rt, if, title, anchor, rel and rev are always quoted; others
    are bare when they are a token (so ct=0, sz=1024) and quoted otherwise
    (so several ct values become ct="0 40"). Valueless attributes are bare.
    """
    out = []
    for link in links:
        if out:
            out.append(",")
        out.append("<")
        out.append(link.target)
        out.append(">")
        for name, value in link.attrs:
            if value is False:
                continue
            out.append(";")
            out.append(name)
            value = _text(value)
            if value is None:
                continue
            out.append("=")
            if name not in _QUOTED and _is_token(value, _TCHAR):
                out.append(value)
            else:
                out.append('"')
                if '"' in value or "\\" in value:
                    value = value.replace("\\", "\\\\").replace('"', '\\"')
                out.append(value)
                out.append('"')
    return "".join(out)


def parse(text, max_links=None, max_attrs=None):
    """The links in link-format `text` (str or UTF-8 bytes), in order.

    Tolerates whitespace around separators and a trailing ','. Attribute
    names are lower-cased (they are case-insensitive); values are kept as
    written, quoted ones unescaped. Raises LinkFormatError on malformed input.

    max_links, max_attrs (None: no limit): at most this many links, and
    attributes of all the links together; one more raises LinkLimitError as
    soon as it is read. What parsed text holds grows with its items, not its
    bytes: a link of 510 valueless attributes (`</a>;a;a;...`, 1 KB) holds
    20 times the heap of its text, so a server that keeps what a peer sends
    bounds both.
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = str(bytes(text), "utf-8")
        except ValueError:  # UnicodeError
            raise LinkFormatError("link-format is not UTF-8")
    if not isinstance(text, str):
        raise LinkFormatError("link-format must be str or bytes, not %r" % (text,))
    try:
        return _parse(text, max_links, max_attrs)
    except LinkFormatError:
        raise
    except (IndexError, ValueError, TypeError) as e:  # a bug; still the promised error
        raise LinkFormatError("malformed link-format: %r" % (e,))


def _skip(text, i, n):
    while i < n and text[i] in _SPACE:
        i += 1
    return i


def _fail(what, text, i):
    raise LinkFormatError("%s at offset %d: %r" % (what, i, text[i:i + 20]))


def _parse(text, max_links, max_attrs):
    links = []
    n = len(text)
    left = -1 if max_attrs is None else max_attrs  # attributes still allowed (-1: any)
    i = _skip(text, 0, n)
    while i < n:
        if max_links is not None and len(links) >= max_links:
            raise LinkLimitError("links", max_links)
        if text[i] != "<":
            _fail("expected '<'", text, i)
        j = text.find(">", i + 1)
        if j < 0:
            _fail("unterminated '<'", text, i)
        target = text[i + 1:j]
        for c in target:
            if c in _SPACE or c == "<" or c == '"':
                _fail("bad character %r in the link target" % c, text, i)
        link = Link(target)
        links.append(link)
        i = _skip(text, j + 1, n)
        while i < n and text[i] == ";":
            if left == 0:
                raise LinkLimitError("attributes", max_attrs)
            left -= 1
            i = _skip(text, i + 1, n)
            s = i
            while i < n and _is_token(text[i], _NAMECHAR):
                i += 1
            if i == s:
                _fail("expected an attribute name", text, i)
            name = text[s:i].lower()
            i = _skip(text, i, n)
            value = None
            if i < n and text[i] == "=":
                i = _skip(text, i + 1, n)
                if i < n and text[i] == '"':
                    value, i = _quoted(text, i + 1, n)
                else:
                    s = i
                    while i < n and _is_token(text[i], _PTOKEN):
                        i += 1
                    if i == s:
                        _fail("expected a value after '='", text, i)
                    value = text[s:i]
                i = _skip(text, i, n)
            link.attrs.append((name, value))
        if i < n:
            if text[i] != ",":
                _fail("expected ';' or ','", text, i)
            i = _skip(text, i + 1, n)
    return links


def _quoted(text, i, n):
    # A quoted-string whose opening '"' is at i - 1: (its unescaped value,
    # the index after the closing '"').
    parts = None
    s = i
    while i < n:
        c = text[i]
        if c == '"':
            if parts is None:
                return text[s:i], i + 1
            parts.append(text[s:i])
            return "".join(parts), i + 1
        if c == "\\":
            if i + 1 >= n:
                break
            if parts is None:
                parts = []
            parts.append(text[s:i])
            s = i + 1  # the escaped character starts the next run
            i += 2
        else:
            i += 1
    raise LinkFormatError("unterminated quoted value at offset %d" % (s - 1))


def matches(link, name, value):
    """Whether `link` passes the filter `name=value` (RFC 6690 §4.1).

    'href' compares the target; any other name compares the link's values
    of that attribute, each item of a space-separated one (rt, if, rel, rev,
    ct) on its own. A value ending in '*' matches as a prefix. A value of
    None (a query without '=') matches when the attribute is present. A link
    without the attribute never matches.
    """
    star = value is not None and value[-1:] == "*"
    if name == "href":
        t = link.target
        if value is None:
            return True
        return t.startswith(value[:-1]) if star else t == value
    split = name in _LISTS
    for n, v in link.attrs:
        if n != name:
            continue
        if value is None or value == "*":
            return True
        if v is None:
            v = ""
        if split:
            for item in v.split():
                if _match(item, value, star):
                    return True
        elif _match(v, value, star):
            return True
    return False


def _match(v, value, star):
    return v.startswith(value[:-1]) if star else v == value


def filter_links(links, query):
    """The links that pass a discovery query, in order.

    `query` is one 'name=value' string (a Uri-Query option's value, e.g.
    'rt=temp*' or 'href=/sensors/*'), or a list of them that must all pass;
    None or '' passes every link.
    """
    if not query:
        return list(links)
    if isinstance(query, str):
        query = (query,)
    conds = []
    for q in query:
        if not q:
            continue
        e = q.find("=")
        if e < 0:
            conds.append((q.lower(), None))
        else:
            conds.append((q[:e].lower(), q[e + 1:]))
    out = []
    for link in links:
        for name, value in conds:
            if not matches(link, name, value):
                break
        else:
            out.append(link)
    return out


def path_target(path):
    """The link target of the resource at `path` (its segments joined by
    '/', as Server.resources() lists them; '' is the root): '/' and the
    path percent-encoded as a CoAP URI writes it (uri.quote_path), so a
    client that resolves the target (uri.split) reaches the same segments:
    '.' and '..' are written %2E and %2E%2E."""
    return "/" + quote_path(path)


def resource_links(resources, query=None):
    """Link-format text for a server's resources: `resources` are
    (path, attributes) pairs in the order to list them, the path as
    path_target takes it and the attributes as Link does; `query` as
    filter_links takes it."""
    links = []
    for path, attrs in resources:
        links.append(Link(path_target(path), attrs))
    if query:
        links = filter_links(links, query)
    return serialize(links)
