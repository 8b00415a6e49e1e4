# upy-ok-file: the -v tracer of the coapy command, host only
"""Every CoAP datagram as people read it: the `coapy -v` tracer (host only).

    ep = EndPoint(socket_factory=lambda f, t, p: TracingSocket(socket.socket(f, t, p), print_lines))

describe() turns one datagram into lines ("-> CON 0.01 GET  mid=... token=...",
then one line per option and the payload); TracingSocket wraps a UDP socket
and reports everything it sends and receives. The text helpers (code_text,
option_text, payload_text, address_text, shown) serve the command's own
messages and the gateway's terminal too. Whatever a peer sent (option
strings, payloads, link-format) is shown with its control characters
escaped: a terminal takes ESC, BEL and the C1 controls as commands.
"""
import sys

from . import codes


def _is_control(c):
    return c < " " or "\x7f" <= c <= "\x9f"


def shown(text):
    """`text` safe to write to a terminal: control characters (C0, DEL and
    C1: a peer's name or path, a reading's text) written as \\xNN, so
    none reaches the terminal as a command."""
    for c in text:
        if _is_control(c):
            break
    else:
        return text
    return "".join("\\x%02x" % ord(c) if _is_control(c) else c for c in text)


def code_text(code):
    """69 -> '2.05 Content', 1 -> '0.01 GET'."""
    n = codes.name(code)
    if n == codes.dotted(code):
        return n
    if codes.is_request(code):
        return "%s %s" % (codes.dotted(code), n)
    return "%s %s" % (codes.dotted(code), n.replace("_", " ").title())


_OPTION_NAMES = {4: "ETag", 9: "OSCORE"}  # where Title-Case of the keyword is wrong


def option_name(opt):
    if opt.number in _OPTION_NAMES:
        return _OPTION_NAMES[opt.number]
    if opt.name is None:
        return "Option %d" % opt.number
    return "-".join(w[:1].upper() + w[1:] for w in opt.name.split("_"))


def format_label(number):
    """40 -> '40 (application/link-format)'."""
    t = codes.media_type(number)
    return "%d (%s)" % (number, t) if t else "%d" % number


def option_text(opt):
    from .options import OPAQUE, STRING, UINT

    n = opt.number
    v = opt.value
    if opt.malformed:
        return "0x%s (malformed)" % opt.raw.hex()
    if n in (12, 17):  # Content-Format, Accept
        return format_label(v)
    if n in (23, 27):  # Block2, Block1: num/more/size as libcoap prints them
        return "%d/%d/%d" % (v[0], 1 if v[1] else 0, 1 << (v[2] + 4))
    if opt.format == UINT:
        return "%d" % v
    if opt.format == STRING:
        return shown(v)
    if opt.format == OPAQUE or opt.raw:
        return "0x" + opt.raw.hex()
    return "(empty)"


def payload_text(payload, limit=400):
    """A payload for people: text if it is UTF-8 text, else hex."""
    try:
        text = payload.decode("utf-8")
        printable = True
        for c in text:
            if _is_control(c) and c not in "\n\r\t":
                printable = False  # shown in hex: see the module notes
                break
    except ValueError:
        printable = False
    if printable:
        text = text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")
        if len(text) > limit:
            return text[:limit] + "..."
        return text
    if len(payload) > limit // 2:
        return "0x" + payload[:limit // 2].hex() + "..."
    return "0x" + payload.hex()


def address_text(addr):
    if isinstance(addr, tuple):
        host = addr[0]
        if ":" in host:
            host = "[%s]" % host
        return "%s:%d" % (host, addr[1])
    return repr(addr)


def describe(data, outgoing, addr):
    """The lines -v prints for one datagram."""
    from .message import DecodeError, Message

    arrow = "->" if outgoing else "<-"
    where = ("to " if outgoing else "from ") + address_text(addr)
    try:
        tid, m = Message.decode(bytes(data))
    except DecodeError as e:
        return ["%s %d bytes, not CoAP (%s), %s" % (arrow, len(data), e, where)]
    kind = ("CON", "NON", "ACK", "RST")[m.transaction_type]
    token = m.token.hex() if m.token else "-"
    lines = ["%s %s %s  mid=%d token=%s  %s" % (arrow, kind, code_text(m.code), tid, token, where)]
    for o in m.options:
        lines.append("%s   %s: %s" % (arrow, option_name(o), option_text(o)))
    if m.payload:
        lines.append("%s   payload (%d bytes): %s" % (arrow, len(m.payload), payload_text(m.payload)))
    return lines


class TracingSocket:
    """A UDP socket that reports every datagram it sends or receives to
    `out(lines)`; everything else goes to the socket it wraps (select.poll
    takes it through fileno())."""

    def __init__(self, sock, out):
        self._sock = sock
        self._out = out

    def sendto(self, data, addr):
        self._out(describe(data, True, addr))
        return self._sock.sendto(data, addr)

    def recvfrom(self, n):
        data, addr = self._sock.recvfrom(n)
        self._out(describe(data, False, addr))
        return data, addr

    def __getattr__(self, name):
        return getattr(self._sock, name)


def print_lines(lines):
    """Write `lines` to stderr (the tracer's default output)."""
    for line in lines:
        sys.stderr.write(line + "\n")
    sys.stderr.flush()
