# A CoAP peer written with a plain socket and hand-parsed headers (not with
# the code under test), for the asyncio tests: it can hold CONs without
# acknowledging them, answer in any order, answer with RST, or stay silent.
# Runs on CPython and on the MicroPython unix port. It polls its socket with
# short sleeps: a test peer, not the thing under test.
import socket

from aio_support import sleep_ms, ticks_diff, ticks_ms


def _bind():
    import random

    while True:
        port = 20000 + random.getrandbits(15) % 40000
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
        except OSError:
            s.close()
            continue
        s.setblocking(False)
        return s, port


def _ext(data, i, nibble):
    # An option header's delta or length nibble with its extension bytes:
    # (value, index after them) (RFC 7252 §3.1).
    if nibble == 13:
        return data[i] + 13, i + 1
    if nibble == 14:
        return (data[i] << 8) + data[i + 1] + 269, i + 2
    return nibble, i


def options(data):
    """([(number, value bytes)...], payload) of a datagram (RFC 7252 §3)."""
    i = 4 + (data[0] & 15)
    number = 0
    out = []
    while i < len(data):
        b = data[i]
        if b == 0xFF:
            return out, bytes(data[i + 1:])
        delta, i = _ext(data, i + 1, b >> 4)
        length, i = _ext(data, i, b & 15)
        number += delta
        out.append((number, bytes(data[i:i + length])))
        i += length
    return out, b""


def parse(data):
    """(type, code, mid, token, payload) of a datagram."""
    tkl = data[0] & 15
    payload = options(data)[1]
    return (data[0] >> 4) & 3, data[1], (data[2] << 8) | data[3], bytes(data[4:4 + tkl]), payload


def block2_num(data):
    """The block number a request's Block2 option asks for (0 without one)."""
    for number, value in options(data)[0]:
        if number == 23:
            v = 0
            for c in value:
                v = (v << 8) | c
            return v >> 4
    return 0


def header(mtype, code, mid, token):
    return bytes([0x40 | (mtype << 4) | len(token), code, mid >> 8, mid & 255]) + token


class RawPeer:
    """mode 'hold': keep CON requests unacknowledged for hold_ms after the
    newest arrived, then answer every held one (newest first) with a
    piggybacked 2.05 echoing its payload. 'rst': answer each with RST.
    'silent': answer nothing. 'drip': answer each with 16 bytes of the
    block asked for (Block2, RFC 7959) saying more follow, after hold_ms:
    a body that never ends. Records `max_held` (most CONs held at once),
    `seen` (datagrams received) and `mids` (distinct MIDs)."""

    def __init__(self, mode="hold", hold_ms=30):
        self.sock, self.port = _bind()
        self.mode = mode
        self.hold_ms = hold_ms
        self.held = []  # [mid, token, payload, address]
        self.max_held = 0
        self.seen = 0
        self.mids = []
        self.held_since = 0
        self.running = True

    def uri(self, path="x"):
        return "coap://127.0.0.1:%d/%s" % (self.port, path)

    async def run(self):
        while self.running:
            while True:
                try:
                    data, addr = self.sock.recvfrom(1500)
                except OSError:
                    break
                self._take(data, addr)
            if (self.held and self.mode == "drip"
                    and ticks_diff(ticks_ms(), self.held_since) >= self.hold_ms):
                while self.held:
                    self.sock.sendto(self.held[0][2], self.held[0][3])
                    self.held.pop(0)
            if (self.held and self.mode == "hold"
                    and ticks_diff(ticks_ms(), self.held_since) >= self.hold_ms):
                while self.held:
                    mid, token, payload, addr = self.held.pop()
                    self.sock.sendto(header(2, 69, mid, token) + b"\xff" + payload, addr)
            await sleep_ms(2)

    def _take(self, data, addr):
        self.seen += 1
        if len(data) < 4:
            return
        mtype, code, mid, token, payload = parse(data)
        if mtype != 0 or not 1 <= code <= 31:
            return
        if mid in self.mids:
            return  # a retransmission
        self.mids.append(mid)
        if self.mode == "rst":
            self.sock.sendto(header(3, 0, mid, b""), addr)
        elif self.mode == "drip":
            v = (block2_num(data) << 4) | 8  # more follow; SZX 0: 16 bytes
            value = bytes([v]) if v < 256 else bytes([v >> 8, v & 255])
            reply = (header(2, 69, mid, token) + bytes([0xD0 | len(value), 10]) + value
                     + b"\xff" + b"d" * 16)
            self.held.append([mid, token, reply, addr])
            self.held_since = ticks_ms()
        elif self.mode == "hold":
            self.held.append([mid, token, payload, addr])
            self.held_since = ticks_ms()
            if len(self.held) > self.max_held:
                self.max_held = len(self.held)

    def close(self):
        self.running = False
        self.sock.close()
