"""How a client's request ends: with a Response (whatever its code: 4.04 is
an answer, not an error), or with a CoapError saying why there was none.

client.py re-exports every name here; the block-wise and Observe parts of
the client (client_block.py, client_observe.py) add subclasses of CoapError
of their own. Kept apart from client.py so those parts need not import it.
"""


def peer_text(remote):
    """A peer's address as errors show it: 'host:port' ('[v6]:port'), or
    the repr of an address in another form (raw sockaddr bytes)."""
    if type(remote) is tuple and len(remote) >= 2:
        host = remote[0]
        return ("[%s]:%s" if ":" in str(host) else "%s:%s") % (host, remote[1])
    return repr(remote)


class CoapError(Exception):
    """A request ended without a response. `pending` is its handle."""

    pending = None


class RequestTimeout(CoapError):
    """No response arrived within the request's timeout."""


class Reset(CoapError):
    """The peer answered the request with RST: it could not process it."""


class Unreachable(CoapError):
    """The request could not reach the peer: the CON was never acknowledged
    (the EndPoint gave up), sending failed with an error such as
    EHOSTUNREACH, or the host name did not resolve. `errno` is the socket
    error, or None."""

    errno = None


class Response:
    """A response as the application sees it: `code` (69 is 2.05; see
    codes.dotted), `payload` (bytes), `content_format` (int or None),
    `options`, `remote` (the address it came from) and `message` (the
    Message itself). `rx` is the EndPoint's ReceptionRecord.

    content_format: the response's Content-Format, if the caller has read
    it already (None: it has none); -1 (the default): read when asked for.
    (An Observation reads it in the walk that finds Observe and Max-Age.)
    """

    # (Three attributes: message and remote are read through rx, so the
    # instance table is no larger than it was with four, before the
    # Content-Format read in advance: a Response is made per notification.)
    def __init__(self, rx, content_format=-1):
        self.rx = rx
        self.code = rx.message.code
        self._cf = content_format

    @property
    def message(self):
        return self.rx.message

    @property
    def remote(self):
        return self.rx.remote

    @property
    def payload(self):
        return self.rx.message.payload

    @property
    def content_format(self):
        cf = self._cf
        return self.rx.message.get_uint(12) if cf == -1 else cf  # Content-Format

    @property
    def options(self):
        return self.rx.message.options

    def __repr__(self):
        c = self.code
        return "<Response %d.%02d, %d bytes>" % (c >> 5, c & 31, len(self.payload))
