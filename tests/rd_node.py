"""A test node that registers with a Resource Directory (coapy_micro.rd).

    python3 tests/rd_node.py rd=coap://127.0.0.1:5683 ep=node-1 [port=0] [lt=60]
        [count=20] [every_ms=200] [seconds=60] [timeout_ms=3000] [simple=1]
    micropython tests/rd_node.py ...          (the same on the unix port)

Serves, on 127.0.0.1:port:
    /sensors/temp  observable (rt="temperature-c", ct=0): once an observer is
                   there, readings 1 .. count, one every every_ms (the
                   answer to the registration GET is the current one, 0 at
                   first)
    /led           GET and PUT, observable: what was PUT last ("0" at first)
    /sys/uptime    seconds since start, not observable (for polling)
and prints one line per event on stdout, flushed:
    listening PORT | event NAME DETAIL | reading N | led VALUE | done
Arguments are name=value words (no argparse on the unix port).
"""
import sys

_root = "/".join(__file__.split("/")[:-2]) or "."
sys.path.insert(0, _root)

from coapy_micro._compat import ticks_add, ticks_diff, ticks_ms  # noqa: E402
from coapy_micro.connection import EndPoint  # noqa: E402
from coapy_micro.rd import Registrar  # noqa: E402
from coapy_micro.server import Resource, Server  # noqa: E402


def say(*words):
    print(" ".join(str(w) for w in words))
    flush = getattr(sys.stdout, "flush", None)
    if flush is not None:
        flush()


def main(argv):
    opt = {"port": "0", "lt": "60", "count": "20", "every_ms": "200", "seconds": "60",
           "timeout_ms": "3000", "simple": "0", "host": "127.0.0.1"}
    for word in argv:
        k, v = word.split("=", 1)
        opt[k] = v
    ep = EndPoint(max_in_flight=16, dedup_size=32)
    ep.bind((opt["host"], int(opt["port"])))
    port = ep.socket.getsockname()[1] if hasattr(ep.socket, "getsockname") else int(opt["port"])
    srv = Server(ep, max_observers=16, max_observers_per_resource=8)
    state = {"seq": 0, "led": "0"}
    started = ticks_ms()

    def temp(req):
        return (69, "%d" % state["seq"])

    def led_get(req):
        return (69, state["led"])

    def led_put(req):
        v = str(req.payload, "utf-8")
        state["led"] = v
        say("led", v)
        srv.notify("led")
        return (68, b"")

    srv.add("sensors/temp", Resource(get=temp, rt="temperature-c", ct=0, obs=True))
    srv.add("led", Resource(get=led_get, put=led_put, ct=0, obs=True, if_="actuator"))
    srv.add("sys/uptime", Resource(get=lambda r: (69, "%d" % (ticks_diff(ticks_ms(), started)
                                                                // 1000)), rt="uptime-s", ct=0))
    reg = Registrar(srv, opt["ep"], rd=opt.get("rd"), lt_s=int(opt["lt"]),
                    timeout_ms=int(opt["timeout_ms"]), retry_ms=500, max_retry_ms=4000,
                    simple=opt["simple"] == "1",
                    on_event=lambda r, e, d: say("event", e, d))
    say("listening", port)
    count = int(opt["count"])
    every = int(opt["every_ms"])
    end = ticks_add(started, int(float(opt["seconds"]) * 1000))
    due = None
    while ticks_diff(end, ticks_ms()) > 0:
        wait = 50
        if due is not None:
            left = ticks_diff(due, ticks_ms())
            wait = 0 if left < 0 else (left if left < 50 else 50)
        reg.process(wait)
        now = ticks_ms()
        if due is None:
            if srv.observers("sensors/temp"):
                due = ticks_add(now, every)
        elif state["seq"] < count and ticks_diff(now, due) >= 0:
            state["seq"] += 1
            srv.notify("sensors/temp")
            say("reading", state["seq"])
            due = ticks_add(due, every)
    reg.close(2000)
    say("done")
    ep.close()


main(sys.argv[1:])
