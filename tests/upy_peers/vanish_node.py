# An observable resource that changes every 20 ms, for
# tests/test_observe_vanish.py, on either runtime with real sockets:
#
#   micropython vanish_node.py PORT      python -u vanish_node.py PORT
#
# Serves /temp (observable, every notification a CON: Server(
# notify_con_every=1)) and /hello on 127.0.0.1:PORT with ack_timeout_ms=100
# and no random factor, so MAX_TRANSMIT_SPAN is 1.5 s and MAX_TRANSMIT_WAIT
# 3.1 s. Prints "ready", then `@@ JSON` events: ["registered", observers]
# when the first observer comes; ["gone", {"ms": ms since it came,
# "states": states notified meanwhile, "in_flight": EndPoint.in_flight}]
# when the observers are down to none; ["error", text] for on_error. Runs
# until interrupted (SIGINT).
import json
import sys

from coapy_micro.connection import EndPoint
from coapy_micro.server import Resource, Server
from interop_node import ticks_add, ticks_diff

STATE_MS = 20


def event(kind, value):
    print("@@", json.dumps([kind, value]))


def main(port):
    ep = EndPoint(ack_timeout_ms=100, ack_random_factor=1.0)
    ep.bind(("127.0.0.1", port))
    srv = Server(ep, notify_con_every=1, on_error=lambda r, e: event("error", str(e)))
    state = [0]
    temp = srv.add("temp", Resource(get=lambda r: (69, b"%d" % state[0]), obs=True))
    srv.add("hello", Resource(get=lambda r: (69, b"hello")))
    print("ready")
    came = None
    states = 0
    due = ep.clock()
    try:
        while True:
            srv.process(5)
            now = ep.clock()
            n = srv.observers()
            if came is None and n:
                came = now
                states = 0
                event("registered", n)
            elif came is not None and not n:
                event("gone", {"ms": ticks_diff(now, came), "states": states,
                               "in_flight": ep.in_flight})
                came = None
            if ticks_diff(now, due) >= 0:
                due = ticks_add(now, STATE_MS)
                state[0] += 1
                if srv.notify(temp):
                    states += 1
    except KeyboardInterrupt:
        pass
    finally:
        ep.close()


main(int(sys.argv[1]))
