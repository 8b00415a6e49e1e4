"""Separate responses (RFC 7252 §5.2.2) for the Server: the hook "separate".

Loaded by Server.hook("separate") the first time a handler calls
request.defer(): a node whose handlers all answer at once does not load it.
The hook is the class Deferred: Request.defer() makes one per request.

A deferred CON request gets its empty ACK at once (Request.defer() sends
it); the response follows as a CON of its own, which the EndPoint
retransmits until it is acknowledged, or as a NON to a NON request.
"""
from ._compat import const

_CON = const(0)
_NON = const(1)


class Deferred:
    """A separate response still to be sent (RFC 7252 §5.2.2)."""

    def __init__(self, request):
        self.request = request
        self.done = False  # sent (or suppressed): a second answer is refused
        self.record = None  # the EndPoint's TransmissionRecord, once sent

    def respond(self, code, payload=b"", content_format=None, options=(), total=None):
        """Send the response: CON for a CON request (the EndPoint
        retransmits it until acknowledged), NON for a NON one. Returns the
        TransmissionRecord, or None when suppressed (No-Response, or an
        error to a multicast request). Raises ValueError if already sent,
        CapacityError if the EndPoint has too many transmissions in flight.
        A body larger than a block goes out as the block asked for (RFC
        7959); `total` as in Response, for a callable body."""
        if self.done:
            raise ValueError("this request has been answered")
        req = self.request
        p = req.server.render(req, None, (code, payload, content_format, options, total))
        return self.send(p[0], p[1], p[2], p[3])

    def send(self, code, payload, content_format, options):
        """Send the response already rendered (what Server.render() gives):
        as respond(). The server calls this for a handler that deferred and
        then returned an answer all the same."""
        if self.done:
            raise ValueError("this request has been answered")
        req = self.request
        srv = req.server
        self.done = True
        if srv.suppressed(req, code):
            return None
        mtype = _CON if req.confirmable else _NON
        msg = srv.message(mtype, code, payload, req.token, content_format, options)
        self.record = srv.end_point.send(msg, req.remote)
        return self.record


def install(server):
    """Called by Server.hook("separate"): register the class Deferred."""
    server.set_hook("separate", Deferred)
