# upy-ok-file: the coapy command runs on the host only (argparse, traceback)
"""The `coapy` command: CoAP requests, discovery and a demo server (host only).

The command itself: argparse, exit statuses, printing. The tracer behind -v
is trace.py, the demo server's resources demo_node.py.

    coapy get coap://127.0.0.1/hello
    coapy put coap://[::1]/upload --payload @photo.jpg --content-format octet-stream
    coapy -v post coap://node.local/log --payload "rebooted" --non
    coapy discover coap://node.local
    coapy serve --bind 127.0.0.1 --port 5683

Installed as a console script (`coapy`, see pyproject.toml) and runnable
from the repository as `python -m coapy_micro`. It uses argparse and the
host's clock, so it is never copied to a board; it still compiles with
mpy-cross (a test compiles every module), so it keeps to syntax MicroPython
accepts: no f-strings, no annotations.

The payload of a response goes to stdout as raw bytes (so it can be piped
into a file); everything meant for people goes to stderr. Exit statuses are
in EXIT_HELP below and in `coapy --help`.
"""
import sys

from . import codes
from .client import Client, RequestTimeout, Reset, Unreachable
from .trace import TracingSocket, address_text, code_text, payload_text, print_lines, shown

EXIT_OK = 0
EXIT_ERROR = 1  # anything else: a file that cannot be read, a bad answer...
EXIT_USAGE = 2  # bad arguments or URI (argparse's own status)
EXIT_TIMEOUT = 3
EXIT_CLIENT_ERROR = 4  # the response was 4.xx
EXIT_SERVER_ERROR = 5  # the response was 5.xx
EXIT_RESET = 6
EXIT_UNREACHABLE = 7
EXIT_BLOCK = 8  # the transfer in blocks failed (client_block.BlockError)

EXIT_HELP = """exit status:
  0  success: a 2.xx response (or `serve` stopped)
  1  other errors (unreadable --payload file, not link-format, a 1.xx/3.xx code...)
  2  usage error: bad arguments, URI or Content-Format
  3  timeout: no response within --timeout, or the whole transfer did not
     finish within --deadline
  4  the response was a 4.xx client error (4.04 Not Found, ...)
  5  the response was a 5.xx server error
  6  the server answered with RST (it could not process the request)
  7  unreachable: the host name did not resolve, sending failed, or no
     acknowledgement came after every retransmission
  8  the transfer in blocks (RFC 7959) failed: the server broke the
     block-wise rules (the message says how), the body kept changing, or
     it was larger than --max-body
"""

METHODS = ("get", "post", "put", "delete", "fetch", "patch", "ipatch")

# A human waits at the prompt: 10 s covers the first three transmissions of
# a CON (at 0, 2-3 and 6-9 s) and a prompt separate response. The library's
# default (client.DEFAULT_TIMEOUT_MS) is 30 s; RFC 7252's full
# MAX_TRANSMIT_WAIT (93 s) is --timeout 93.
DEFAULT_TIMEOUT_S = 10.0

# The command's EndPoints accept datagrams up to the UDP limit: a peer may
# answer in one piece what fits in a datagram (bodies beyond a block go in
# blocks either way), and a gateway's memory is no concern. Boards keep the
# EndPoint's 1152.
CLIENT_MAX_MESSAGE = 65507
SERVE_MAX_MESSAGE = 4096
# The largest body the command reads in blocks (RFC 7959) unless
# --max-body says otherwise: what CoAP moves is small, and a server handing
# out 16-byte blocks makes one request per 16 bytes (65,536 for this).
MAX_BODY = 1024 * 1024
# The longest a request may take as a whole, all its blocks included,
# unless --deadline says otherwise: --timeout bounds each exchange only.
DEFAULT_DEADLINE_S = 120.0
# A transfer still going after this long shows its progress on stderr,
# then once a second.
PROGRESS_AFTER_S = 2.0
# The largest body uploaded to `coapy serve`'s /upload.
SERVE_MAX_BODY = 1024 * 1024


def _err(text):
    # Error texts can carry a peer's words (a diagnostic, a link-format
    # error's excerpt): escaped for the terminal.
    sys.stderr.write("coapy: %s\n" % shown(text))


def exit_status(code):
    """The exit status for a response code (see EXIT_HELP)."""
    cls = code >> 5
    if cls == 2:
        return EXIT_OK
    if cls == 4:
        return EXIT_CLIENT_ERROR
    if cls == 5:
        return EXIT_SERVER_ERROR
    return EXIT_ERROR


def make_end_point(family, verbose=False, max_message_size=CLIENT_MAX_MESSAGE):
    """An unbound EndPoint for `family`, tracing its messages when verbose."""
    import socket

    from .connection import EndPoint

    factory = None
    if verbose:
        def factory(f, t, p):
            return TracingSocket(socket.socket(f, t, p), print_lines)
    return EndPoint(family, max_message_size=max_message_size, socket_factory=factory)


def _client(args):
    import socket

    def factory(family):
        ep = make_end_point(family, args.verbose)
        ep.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
        return ep

    # --block: the Block1 size of uploads and the Block2 size asked for.
    deadline = getattr(args, "deadline", DEFAULT_DEADLINE_S)
    return Client(timeout_ms=int(args.timeout * 1000), end_point_factory=factory,
                  block_size=getattr(args, "block", None) or 1024,
                  max_body=getattr(args, "max_body", MAX_BODY),
                  transfer_timeout_ms=int(deadline * 1000))


# -- requests -----------------------------------------------------------------

def read_payload(text):
    """--payload: TEXT as UTF-8, @FILE as the file's bytes, @- from stdin."""
    if text is None:
        return b""
    if text[:1] != "@":
        return text.encode("utf-8")
    name = text[1:]
    if name == "-":
        return sys.stdin.buffer.read()
    with open(name, "rb") as f:
        return f.read()


def _write_payload(payload):
    out = sys.stdout.buffer
    out.write(payload)
    if payload and payload[-1:] != b"\n" and sys.stdout.isatty():
        out.write(b"\n")  # for the prompt's sake; never into a pipe
    out.flush()


class Progress:
    """How far a long transfer in blocks has got, on stderr: nothing for
    the first PROGRESS_AFTER_S, then a line a second (rewritten in place on
    a terminal)."""

    def __init__(self, out=None, after_s=PROGRESS_AFTER_S, clock=None):
        import time

        self.out = out or sys.stderr
        self.clock = clock or time.monotonic
        self.start = self.clock()
        self.next = self.start + after_s
        self.shown = False

    def update(self, h):
        """Show the state of the Pending `h` if it is time to."""
        x = h.transfer
        now = self.clock()
        if x is None or now < self.next:
            return
        self.next = now + 1.0
        way = "received" if x.down is not None or x.up is None else "sent"
        line = "coapy: %d bytes %s in %d requests, %.0f s" % (x.moved, way, x.requests,
                                                              now - self.start)
        tty = self.out.isatty()
        self.out.write(("\r" + line) if tty else line + "\n")
        self.out.flush()
        self.shown = tty

    def close(self):
        if self.shown:
            self.out.write("\n")  # leave the last line on the terminal
            self.out.flush()
            self.shown = False


def _run_request(client, method, uri, **kw):
    """(Response or None, exit status), errors already reported."""
    from .uri import UriError

    try:
        h = client.start(method, uri, **kw)
    except UriError as e:
        _err("bad URI: %s" % e)
        return None, EXIT_USAGE
    except Unreachable as e:
        _err("%s is unreachable: %s" % (uri, e))
        return None, EXIT_UNREACHABLE
    progress = Progress()
    try:
        while not h.done:
            client.process(200)
            progress.update(h)
    finally:
        progress.close()
    e = h.error
    if e is None:
        return h.response, EXIT_OK
    if isinstance(e, RequestTimeout):
        _err("%s: %s (--timeout %g s per exchange, --deadline %g s in all)"
             % (uri, e, client.timeout_ms / 1000, (client.transfer_timeout_ms or 0) / 1000))
        return None, EXIT_TIMEOUT
    if isinstance(e, Reset):
        _err("%s answered with RST (reset)" % uri)
        return None, EXIT_RESET
    if isinstance(e, Unreachable):
        _err("%s is unreachable: %s" % (uri, e))
        return None, EXIT_UNREACHABLE
    from .client_block import BlockError

    if isinstance(e, BlockError):
        _err("%s: the transfer in blocks failed: %s" % (uri, e))
        return None, EXIT_BLOCK
    _err("%s: %s" % (uri, e))
    return None, EXIT_ERROR


def cmd_request(args):
    try:
        payload = read_payload(args.payload)
    except OSError as e:
        _err("cannot read the payload: %s" % e)
        return EXIT_ERROR
    client = _client(args)
    if getattr(args, "observe", None) is not None:
        try:
            return _observe(client, args)
        finally:
            client.close()
    options = ()
    if args.block:
        # Early negotiation (RFC 7959 §2.4): ask for blocks of this size.
        from .block import block_option, szx_of

        options = (block_option(23, 0, False, szx_of(args.block)),)
    try:
        resp, status = _run_request(
            client, args.method, args.uri, payload=payload,
            content_format=args.content_format, accept=args.accept,
            confirmable=not args.non, options=options)
    finally:
        client.close()
    if resp is None:
        return status
    _write_payload(resp.payload)
    status = exit_status(resp.code)
    if status != EXIT_OK:
        _err(code_text(resp.code))
    return status


def _observe_args(argv):
    # `get --observe URI`: argparse would take the URI for SECONDS (an
    # optional value), so a --observe not followed by a number gets 0.
    for i in range(len(argv)):
        if argv[i] == "--observe":
            nxt = argv[i + 1] if i + 1 < len(argv) else "-"
            try:
                float(nxt)
            except ValueError:
                argv.insert(i + 1, "0")
            break
    return argv


def _observe(client, args):
    # get --observe [SECONDS]: each notification's payload on a line of its
    # own as it arrives, until SECONDS pass (0: until interrupted). The
    # duration is measured with time.monotonic(): ticks cannot reach a
    # week (they wrap at 2**30 ms, and ticks_diff sees half of that).
    import time

    from .uri import UriError

    def show(resp):
        _write_payload(resp.payload)
        if not resp.payload.endswith(b"\n"):
            sys.stdout.write("\n")
        sys.stdout.flush()
        if resp.code >> 5 != 2:
            _err(code_text(resp.code))

    try:
        ob = client.observe(args.uri, show, confirmable=not args.non, accept=args.accept)
    except UriError as e:
        _err("bad URI: %s" % e)
        return EXIT_USAGE
    seconds = args.observe
    now = time.monotonic()
    end = now + seconds if seconds else None
    first = now + client.timeout_ms / 1000
    try:
        while not ob.done:
            now = time.monotonic()
            if end is not None and now >= end:
                break
            if ob.last is None and now >= first:
                _err("no response from %s within %g s" % (args.uri, client.timeout_ms / 1000))
                return EXIT_TIMEOUT
            wait = 200 if end is None else min(200, max(0, int((end - now) * 1000)))
            client.process(wait)
    except KeyboardInterrupt:
        pass
    if isinstance(ob.error, Reset):
        _err("%s answered with RST (reset)" % args.uri)
        return EXIT_RESET
    if isinstance(ob.error, Unreachable):
        _err("%s is unreachable" % args.uri)
        return EXIT_UNREACHABLE
    if isinstance(ob.error, RequestTimeout):
        _err("no response from %s" % args.uri)
        return EXIT_TIMEOUT
    if ob.error is not None and ob.last is None:
        _err("%s: %s" % (args.uri, ob.error))
        return EXIT_ERROR
    if not ob.done:
        ob.cancel()
        client.process(100)  # let the deregistration go out
    if ob.last is None:
        return EXIT_TIMEOUT
    return exit_status(ob.last.code)


# -- discover -----------------------------------------------------------------

COLUMNS = ("path", "rt", "if", "ct", "title", "obs")


def discovery_uri(uri):
    """The URI to GET for `coapy discover URI`: /.well-known/core on the
    URI's host when it names no path, its query (a filter) kept."""
    from . import uri as uri_mod
    from .options import Option

    scheme, host, port, path, query = uri_mod.split(uri)
    if path:
        return uri
    opts = [Option(11, ".well-known"), Option(11, "core")]
    for q in query:
        opts.append(Option(15, q))
    return uri_mod.compose(opts, host, port, scheme)


def _ct_text(value):
    out = []
    for item in value.split():
        # (Not str.isdigit(): '²' is a digit to it, and no int.)
        t = codes.media_type(int(item)) if item and item.strip("0123456789") == "" else None
        out.append("%s (%s)" % (item, t.split(";")[0]) if t else item)
    return ", ".join(out)


def link_rows(links):
    """One row of COLUMNS per link, '-' where an attribute is absent."""
    rows = []
    for ln in links:
        row = [ln.target]
        for name in COLUMNS[1:]:
            vals = ln.get_all(name)
            if name == "obs":
                row.append("yes" if vals else "-")
            elif not vals:
                row.append("-")
            elif name == "ct":
                row.append(_ct_text(" ".join(vals)))
            else:
                row.append(" ".join(vals))
        rows.append([shown(cell) for cell in row])  # the server's text, for a terminal
    return rows


def table(rows, header=COLUMNS):
    """Rows as aligned text columns under an upper-case header."""
    allrows = [[h.upper() for h in header]] + rows
    widths = [0] * len(header)
    for r in allrows:
        for i in range(len(r)):
            if len(r[i]) > widths[i]:
                widths[i] = len(r[i])
    lines = []
    for r in allrows:
        cells = [r[i] + " " * (widths[i] - len(r[i])) for i in range(len(r) - 1)]
        cells.append(r[-1])
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def cmd_discover(args):
    from .link import LinkFormatError, parse
    from .uri import UriError

    try:
        target = discovery_uri(args.uri)
    except UriError as e:
        _err("bad URI: %s" % e)
        return EXIT_USAGE
    client = _client(args)
    try:
        resp, status = _run_request(client, "get", target, confirmable=not args.non)
    finally:
        client.close()
    if resp is None:
        return status
    if resp.code >> 5 != 2:
        _err("%s: %s" % (target, code_text(resp.code)))
        if resp.payload:
            _err(payload_text(resp.payload))
        return exit_status(resp.code)
    try:
        links = parse(resp.payload.decode("utf-8"))
    except (LinkFormatError, ValueError) as e:
        _err("the answer from %s is not link-format: %s" % (target, e))
        return EXIT_ERROR
    if not links:
        sys.stderr.write("no resources listed at %s\n" % target)
        return EXIT_OK
    sys.stdout.write(table(link_rows(links)))
    sys.stdout.flush()
    return EXIT_OK


# -- serve: the demo server ---------------------------------------------------

def _bind_end_point(bind, port, verbose):
    import socket

    family, addr = socket.getaddrinfo(bind, port)[0][0], None
    ep = make_end_point(family, verbose, SERVE_MAX_MESSAGE)
    try:
        if family == socket.AF_INET6 and hasattr(socket, "IPV6_V6ONLY"):
            # "::" also takes IPv4 (as ::ffff:a.b.c.d), like libcoap's server.
            ep.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        ep.bind((bind, port))
        addr = ep.socket.getsockname()
    except OSError:
        ep.close()
        raise
    return ep, addr


def cmd_serve(args):
    import traceback

    from .demo_node import DemoNode
    from .server import Server

    binds = [args.bind] if args.bind else ["::", "0.0.0.0"]
    ep = None
    for bind in binds:
        try:
            ep, addr = _bind_end_point(bind, args.port, args.verbose)
            break
        except OSError as e:
            error = e
    if ep is None:
        _err("cannot listen on %s port %d: %s" % (binds[-1], args.port, error))
        return EXIT_ERROR

    def on_error(request, exc):
        _err("error while answering %r:" % (request,))
        traceback.print_exception(type(exc), exc, exc.__traceback__)

    srv = Server(ep, on_error=on_error, max_body=SERVE_MAX_BODY, max_observers=32,
                 max_observers_per_resource=16)
    node = DemoNode()
    node.install(srv)
    sys.stderr.write("coapy serve: listening on %s\n" % address_text(addr))
    sys.stderr.write("  resources: %s\n" % " ".join("/" + p for p, r in srv.resources()))
    sys.stderr.flush()
    try:
        srv.serve(args.seconds, tick=lambda: node.tick(srv))
    except KeyboardInterrupt:
        pass
    finally:
        ep.close()
    return EXIT_OK


# -- arguments ------------------------------------------------------------------

def _format_arg(text):
    import argparse

    try:
        return codes.content_format(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            "unknown Content-Format %r (a number, or a name such as json, cbor, "
            "text/plain, link-format, octet-stream)" % text)


def _seconds_arg(text):
    import argparse

    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not v > 0:
        raise argparse.ArgumentTypeError("a number of seconds above 0, not %r" % text)
    return v


def _bytes_arg(text):
    import argparse

    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError("a number of bytes above 0, not %r" % text)
    return v


def _block_arg(text):
    import argparse

    try:
        v = int(text)
    except ValueError:
        v = 0
    if v not in (16, 32, 64, 128, 256, 512, 1024):
        raise argparse.ArgumentTypeError("a block size of 16, 32, 64 ... 1024, not %r" % text)
    return v


def build_parser():
    import argparse

    main = argparse.ArgumentParser(
        prog="coapy",
        description="CoAP (RFC 7252) requests, discovery and a demo server.",
        epilog=EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    main.add_argument("-v", "--verbose", action="store_true",
                      help="print every CoAP message sent and received (on stderr)")
    sub = main.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def common(p, timeout=True):
        # -v after the command too; SUPPRESS keeps a -v given before it.
        p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                       help="print every CoAP message sent and received (on stderr)")
        if timeout:
            p.add_argument("-N", "--non", action="store_true",
                           help="send the request non-confirmable (NON)")
            p.add_argument("-B", "--timeout", type=_seconds_arg, default=DEFAULT_TIMEOUT_S,
                           metavar="SECONDS",
                           help="give up after this long (default %g; RFC 7252's "
                                "MAX_TRANSMIT_WAIT is 93)" % DEFAULT_TIMEOUT_S)

    for m in METHODS:
        p = sub.add_parser(m, help="send %s request; the response payload goes to stdout"
                           % ("an iPATCH" if m == "ipatch" else "a " + m.upper()), epilog=EXIT_HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("uri", metavar="URI", help="coap://host[:port]/path?query")
        p.add_argument("--payload", metavar="TEXT|@FILE",
                       help="request payload: the text itself, @FILE for a file's bytes, "
                            "@- for stdin")
        p.add_argument("-t", "--content-format", type=_format_arg, metavar="FORMAT",
                       help="Content-Format of the payload: a number or a name (json, cbor...)")
        p.add_argument("-A", "--accept", type=_format_arg, metavar="FORMAT",
                       help="Accept: the Content-Format wanted, a number or a name")
        p.add_argument("--block", type=_block_arg, metavar="SIZE", default=None,
                       help="block size (16, 32 ... 1024) for a payload sent in blocks "
                            "and for the blocks of the response (RFC 7959; default 1024)")
        p.add_argument("--max-body", type=_bytes_arg, metavar="BYTES", default=MAX_BODY,
                       help="the largest response body read in blocks (default %d)" % MAX_BODY)
        p.add_argument("--deadline", type=_seconds_arg, metavar="SECONDS",
                       default=DEFAULT_DEADLINE_S,
                       help="give up when the whole request, all its blocks included, takes "
                            "longer (default %g)" % DEFAULT_DEADLINE_S)
        if m == "get":
            p.add_argument("--observe", type=float, nargs="?", const=0, default=None,
                           metavar="SECONDS",
                           help="observe the resource (RFC 7641): print each notification's "
                                "payload as it arrives, for SECONDS (default: until interrupted)")
        common(p)
        p.set_defaults(func=cmd_request, method=m)

    p = sub.add_parser("discover", help="list a node's resources (GET /.well-known/core)",
                       epilog=EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("uri", metavar="URI",
                   help="coap://host[:port] (a query filters: ?rt=temperature*)")
    common(p)
    p.set_defaults(func=cmd_discover)

    p = sub.add_parser("serve", help="run a demo CoAP server until interrupted")
    p.add_argument("--bind", metavar="ADDR", default=None,
                   help="address to listen on (default :: for IPv6 and IPv4, else 0.0.0.0)")
    p.add_argument("--port", type=int, default=5683, metavar="N",
                   help="UDP port (default 5683; 0 picks a free one)")
    p.add_argument("--seconds", type=_seconds_arg, default=None, help=argparse.SUPPRESS)
    common(p, timeout=False)
    p.set_defaults(func=cmd_serve)

    from .gateway.command import add_parser as add_gateway  # host only: the gateway
    add_gateway(sub)
    return main


def main(argv=None):
    """Run the command; returns the exit status (see EXIT_HELP)."""
    if argv is None:
        argv = sys.argv[1:]
    args = build_parser().parse_args(_observe_args(list(argv)))
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        _err(str(e))
        return EXIT_ERROR
