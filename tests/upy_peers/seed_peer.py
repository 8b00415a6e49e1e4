# The seed loop (tests/seed_server.py) on the MicroPython unix port, for the
# loss and abuse tests:
#
#   micropython seed_peer.py PORT CONTROL_PORT DEDUP_SIZE [RCVBUF]
#
# Serves CoAP on 127.0.0.1:PORT with EndPoint(dedup_size=DEDUP_SIZE); every
# request it handles is printed as an event (`@@ ["handled", [payload
# bytes]]`). A datagram b"stats" to 127.0.0.1:CONTROL_PORT is answered with
# a JSON object of its counters: datagrams read and sent by the socket,
# the EndPoint's dropped/duplicates, requests handled, dedup and in-flight
# table sizes and their limits. Runs until interrupted (SIGINT).
import json
import select
import socket
import sys

from coapy_micro.connection import EndPoint, Message
from seed_server import answer

SO_RCVBUF = 8  # Linux's option number; the unix port's socket module lacks the name


class CountingSocket:
    """A UDP socket that counts what it reads and sends (the EndPoint's
    socket factory is injectable; the counts are the test's)."""

    def __init__(self, family, kind, proto=0):
        self.sock = socket.socket(family, kind)
        self.received = 0
        self.sent = 0

    def fileno(self):
        return self.sock.fileno()

    def setblocking(self, flag):
        self.sock.setblocking(flag)

    def setsockopt(self, level, option, value):
        self.sock.setsockopt(level, option, value)

    def bind(self, address):
        self.sock.bind(address)

    def recvfrom(self, n):
        r = self.sock.recvfrom(n)
        self.received += 1
        return r

    def sendto(self, data, address):
        r = self.sock.sendto(data, address)
        self.sent += 1
        return r

    def close(self):
        self.sock.close()


class FdPoller:
    """select.poll() over CountingSockets (this port's poll takes real
    sockets or file descriptors, not Python objects), which also answers
    the control socket while the EndPoint waits, so a stats request is
    answered at once, not after the EndPoint's wait."""

    control = None  # (socket, fn returning the stats as bytes)

    def __init__(self):
        self.poller = select.poll()
        self.by_fd = {}

    def register(self, sock, events):
        self.by_fd[sock.fileno()] = sock
        self.poller.register(sock.fileno(), events)

    def watch(self, sock, stats):
        self.control = (sock, stats)
        self.poller.register(sock.fileno(), select.POLLIN)

    def poll(self, timeout_ms=-1):
        out = []
        for fd, ev in self.poller.poll(timeout_ms):
            if fd in self.by_fd:
                out.append((self.by_fd[fd], ev))
            else:
                self.answer()
        return out  # only a control request: nothing for the EndPoint this time

    def answer(self):
        sock, stats = self.control
        try:
            data, src = sock.recvfrom(64)
        except OSError:
            return
        if data == b"stats":
            sock.sendto(stats(), src)


def main(port, control_port, dedup_size, rcvbuf):
    pollers = []

    def poll_factory():
        pollers.append(FdPoller())
        return pollers[-1]

    ep = EndPoint(dedup_size=dedup_size, socket_factory=CountingSocket, poll_factory=poll_factory)
    ep.bind(("127.0.0.1", port))
    if rcvbuf:
        ep.socket.setsockopt(socket.SOL_SOCKET, SO_RCVBUF, rcvbuf)
    control = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    control.bind(socket.getaddrinfo("127.0.0.1", control_port)[0][-1])
    control.setblocking(False)
    counts = [0]  # requests handled

    def stats():
        s = ep.socket
        return json.dumps({
            "received": s.received, "sent": s.sent, "dropped": ep.dropped,
            "duplicates": ep.duplicates, "handled": counts[0],
            "dedup": ep.dedup_count, "dedup_size": ep.dedup_size,
            "records": ep.in_flight, "max_in_flight": ep.max_in_flight,
        }).encode()

    pollers[0].watch(control, stats)
    print("ready")
    try:
        while True:
            rx = ep.process(1000)
            if rx is not None and 1 <= rx.message.code <= 31:
                counts[0] += 1
                print("@@", json.dumps(["handled", list(rx.message.payload)]))
                response = answer(rx.message)
                if rx.message.transaction_type == Message.CON:
                    rx.ack(response)
                else:
                    ep.send(response, rx.remote)
    except KeyboardInterrupt:
        pass
    finally:
        ep.close()
        control.close()


main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
     int(sys.argv[4]) if len(sys.argv) > 4 else 0)
