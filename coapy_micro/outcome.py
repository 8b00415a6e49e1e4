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
    Message itself). `rx` is the EndPoint's ReceptionRecord."""

    def __init__(self, rx):
        self.rx = rx
        self.message = rx.message
        self.remote = rx.remote
        self.code = rx.message.code

    @property
    def payload(self):
        return self.message.payload

    @property
    def content_format(self):
        return self.message.get_uint(12)  # Content-Format

    @property
    def options(self):
        return self.message.options

    def __repr__(self):
        c = self.code
        return "<Response %d.%02d, %d bytes>" % (c >> 5, c & 31, len(self.payload))
