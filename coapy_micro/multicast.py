"""CoAP over IP multicast (RFC 7252 §8): joining the All-CoAP-Nodes groups,
and the server's answers to requests made to a group.

Joining is for the application, before it registers the group socket with
its EndPoint (EndPoint.register):

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ALL_COAP_NODES_V4, 5683))
    join_group(s, ALL_COAP_NODES_V4)
    ep.register(s)

A Server loads the rest (Leisure) with the first request that arrives on a
registered socket: a node that never joins a group never loads it. Such a
request gets no error response and no RST (the server suppresses those), and
its successful response leaves after a random delay within the Leisure
period, Server(leisure_ms=), so that a group's members do not all answer at
once (§8.2). At most Server(max_delayed=) responses wait, and at most half of
them (one if max_delayed is 1) for any one peer, so that one peer asking
the group again and again cannot take every place from the others; more
are dropped (answering a group is optional) and counted in Server.dropped.
"""
try:
    import socket
except ImportError:  # the WebAssembly port: no sockets, nothing to join
    socket = None

from ._compat import ticks_add, ticks_diff

ALL_COAP_NODES_V4 = "224.0.1.187"
ALL_COAP_NODES_V6 = ("ff02::fd", "ff05::fd")  # link-local, site-local


class Leisure:
    """Responses to group requests, each waiting for its random delay: a
    list of [due ticks, Request, Message], bounded by Server.max_delayed.
    The hook the Server calls "group"."""

    def __init__(self, server):
        self.server = server
        self.queue = []

    @property
    def count(self):
        """How many responses are waiting."""
        return len(self.queue)

    def hold(self, req, msg):
        """Send `msg`, the response to `req`, after a random delay within
        the server's leisure_ms; dropped when max_delayed are waiting, or
        half of them (at least one) for req's peer."""
        srv = self.server
        q = self.queue
        share = srv.max_delayed >> 1 or 1
        mine = 0
        for e in q:
            if e[1].remote == req.remote:
                mine += 1
        if len(q) >= srv.max_delayed or mine >= share:
            srv.dropped += 1
            return
        delay = (srv.leisure_ms * srv.rand(16)) >> 16
        q.append([ticks_add(srv.now(), delay), req, msg])

    def send_due(self, now):
        """Send the responses that are due; return ms until the next one
        (-1: none left)."""
        srv = self.server
        wait = -1
        q = self.queue
        i = 0
        while i < len(q):
            e = q[i]
            left = ticks_diff(e[0], now)
            if left <= 0:
                del q[i]
                req = e[1]
                try:
                    if req.confirmable:
                        req.rx.ack(e[2])  # a CON to a group (not allowed, §8.1): late ACK
                    else:
                        srv.end_point.send(e[2], req.remote)
                except Exception as ex:
                    srv.fail(req, ex)
                continue
            if wait < 0 or left < wait:
                wait = left
            i += 1
        return wait

    def process(self, timeout_ms, reuse):
        """Server.process()'s wait while responses wait out their leisure:
        EndPoint.process(timeout_ms, reuse), cut short to send each when
        it is due. Returns what EndPoint.process() returned."""
        srv = self.server
        clock = srv.now
        start = clock()
        while True:
            now = clock()
            wait = self.send_due(now)
            cut = False
            t = timeout_ms
            if t is not None:
                t = int(t) - ticks_diff(now, start)
                if t < 0:
                    t = 0
            if wait >= 0 and (t is None or wait < t):
                t = wait
                cut = True
            rx = srv.end_point.process(t, reuse)
            if rx is not None or not cut:
                return rx


def install(server):
    """Called by Server.hook("group"): register the Leisure queue."""
    server.set_hook("group", Leisure(server))


def join_group(sock, group, interface="0.0.0.0"):
    """Join the IPv4 multicast `group` on `sock` (e.g. ALL_COAP_NODES_V4)."""
    mreq = ipv4_bytes(group) + ipv4_bytes(interface)
    level = getattr(socket, "IPPROTO_IP", 0)
    option = getattr(socket, "IP_ADD_MEMBERSHIP", 35)  # 35 on Linux and lwIP ports
    sock.setsockopt(level, option, mreq)


def join_group_v6(sock, group, interface_index=0):
    """Join the IPv6 multicast `group` (e.g. 'ff02::fd') on `sock`."""
    mreq = ipv6_bytes(group) + interface_index.to_bytes(4, "little")
    level = getattr(socket, "IPPROTO_IPV6", 41)
    option = getattr(socket, "IPV6_JOIN_GROUP", 20)  # IPV6_ADD_MEMBERSHIP on Linux
    sock.setsockopt(level, option, mreq)


def ipv4_bytes(text):
    """'224.0.1.187' -> its 4 bytes (no inet_pton on every port)."""
    parts = text.split(".")
    if len(parts) != 4:
        raise ValueError("not an IPv4 address: %r" % text)
    return bytes(int(p) for p in parts)


def ipv6_bytes(text):
    """'ff02::fd' -> its 16 bytes."""
    gap = text.find("::")
    head, tail = (text, "") if gap < 0 else (text[:gap], text[gap + 2:])
    h = [int(x, 16) for x in head.split(":") if x]
    t = [int(x, 16) for x in tail.split(":") if x]
    words = h if gap < 0 else h + [0] * (8 - len(h) - len(t)) + t
    if len(words) != 8:
        raise ValueError("not an IPv6 address: %r" % text)
    out = bytearray(16)
    for i in range(8):
        out[2 * i] = words[i] >> 8
        out[2 * i + 1] = words[i] & 0xFF
    return bytes(out)
