"""Resource discovery (RFC 6690) for the Server: the hook "discovery".

Loaded by Server.hook("discovery") the first time a node is asked for
/.well-known/core, or its link_format() is read (a Resource Directory
registration does): a node nobody asks does not load it, nor link.py.

The listing is every resource the server serves but /.well-known/core
itself, each with its discovery attributes (Resource rt, if_, ct, sz,
title, obs), its target percent-encoded (link.py). A query such as
'rt=temp*' filters it (RFC 6690 §4.1). The full listing is kept, and
served again while the resources and their attributes stay as they were:
a node is asked for it often, and making it costs far more than checking
it (a served discovery then allocates only what the answer needs).
"""
from ._compat import const

_CONTENT = const(69)
_NOT_FOUND = const(132)
_LINK_FORMAT = const(40)


def link_attrs(res):
    """A Resource's discovery attributes as (name, value) pairs (the form
    link.Link takes)."""
    out = []
    if res.rt is not None:
        out.append(("rt", res.rt))
    if res.if_ is not None:
        out.append(("if", res.if_))
    if res.ct is not None:
        out.append(("ct", res.ct))
    if res.sz is not None:
        out.append(("sz", res.sz))
    if res.title is not None:
        out.append(("title", res.title))
    if res.obs:
        out.append(("obs", None))
    return out


class Discovery:
    """The server's /.well-known/core: its text, and the full listing kept
    as [text, then per resource: it and its attributes]."""

    def __init__(self, server):
        self.server = server
        self.kept = None

    def link_format(self, query=None):
        """Server.link_format(): the listing, filtered by `query`."""
        srv = self.server
        listing = srv.listing
        kept = self.kept
        if not query and kept is not None and len(kept) == 1 + 7 * len(listing):
            i = 1
            for e in listing:
                r = e[1]
                if (kept[i] is not r or kept[i + 1] != r.rt or kept[i + 2] != r.if_
                        or kept[i + 3] != r.ct or kept[i + 4] != r.sz
                        or kept[i + 5] != r.title or kept[i + 6] != r.obs):
                    break
                i += 7
            else:
                return kept[0]
        from .link import resource_links

        entries = []
        for path, res in listing:
            if path != ".well-known/core":  # the listing describes the others
                entries.append((path, link_attrs(res)))
        text = resource_links(entries, query)
        if not query:
            kept = [text]
            for e in listing:
                r = e[1]
                kept += (r, r.rt, r.if_, r.ct, r.sz, r.title, r.obs)
            self.kept = kept
        return text

    def answer(self, request):
        """The GET handler of /.well-known/core."""
        text = self.link_format(request.query)
        if not text and request.multicast:
            # Nothing to say to a group: 4.04 is never sent to one (errors
            # are suppressed), so the request goes unanswered. To a unicast
            # request an empty result is 2.05 with an empty payload.
            return (_NOT_FOUND, b"")
        return (_CONTENT, text, _LINK_FORMAT)


def install(server):
    """Called by Server.hook("discovery"): register the listing."""
    server.set_hook("discovery", Discovery(server))
