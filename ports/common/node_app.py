"""A sensor node: serves its readings over CoAP, on a board or on the host.

The same file runs on an ESP32 or Pico W (their main.py calls run() once
Wi-Fi is up), on the MicroPython unix port and on CPython
(ports/unix/node.py), where the sensor is simulated. Resources:

    /sensors/temp   the temperature in °C, text (rt="temperature-c"),
                    observable (RFC 7641): observers get a reading a second
    /sys/uptime     seconds since the node started, text
    /hello          a greeting
    /.well-known/core   what is above, for discovery (RFC 6690)

Given a Resource Directory (rd: its URI, as config.py's RD_URI), the node
registers there (RFC 9176) from its own EndPoint under the endpoint name
ep_name, with the lifetime lt_s, and keeps the registration alive from the
same loop that serves (coapy_micro.rd.Registrar: no thread): a gateway
running the RD then finds the node and observes its sensors. A URI with a
path is the registration resource itself; one without ("coap://gw") is
asked for it with GET /.well-known/core?rt=core.rd*. What happens is
logged ("node: registered ..."); stopping deregisters.

A node runs for months: run() closes its socket however the loop ends
(Ctrl-C at a board's REPL included, so the next run can bind the port
again), and a MemoryError while serving drops that datagram, counts it in
Node.memory_errors and goes on.
"""
import gc
import time

from coapy_micro.connection import EndPoint
from coapy_micro.server import Resource, Server, set_gc_threshold

# The EndPoint's clock is a ticks_ms()-like millisecond counter that wraps:
# MicroPython's own ticks arithmetic where it exists; on CPython the same
# arithmetic for the 2**30 ms period coapy_micro's host clock uses (defined
# only there: a board does not hold two functions it never calls).
try:
    from time import ticks_add, ticks_diff  # pyright: ignore[reportAssignmentType]: MicroPython's own, typed by its stubs; the fallback below is untyped
except ImportError:
    _PERIOD = 1 << 30

    def ticks_add(t, delta):
        return (t + delta) % _PERIOD

    def ticks_diff(a, b):
        return ((a - b + (_PERIOD >> 1)) % _PERIOD) - (_PERIOD >> 1)


# The two codes the resources answer with, as numbers: importing
# coapy_micro.codes for them would hold its 48 names, 1.3 KB of a board's
# heap (its names CONTENT and TEXT_PLAIN say the same).
CONTENT = 69  # 2.05 Content
TEXT_PLAIN = 0  # Content-Format text/plain;charset=utf-8

NOTIFY_MS = 1000  # observers of /sensors/temp get a reading this often
RD_LT_S = 300  # the registration's lifetime when none is configured (s)
RD_CLOSE_MS = 2000  # how long stopping waits for the RD to confirm the removal


class SimulatedSensor:
    """A temperature that drifts a little between readings (host demo)."""

    def __init__(self, start_c=21.0):
        self.value = start_c

    def read_c(self):
        import random

        self.value += (random.getrandbits(8) - 128) / 640
        return self.value


def make_server(ep, read_c):
    """The node's resources on EndPoint `ep` (time from its clock)."""
    clock = ep.clock
    started = clock()
    srv = Server(ep)
    srv.add("sensors/temp", Resource(
        get=lambda request: (CONTENT, "%.2f" % read_c()),
        rt="temperature-c", if_="sensor", ct=TEXT_PLAIN, title="Temperature",
        obs=True))
    srv.add("sys/uptime", Resource(
        get=lambda request: (CONTENT, str(ticks_diff(clock(), started) // 1000)),
        rt="uptime-s", ct=TEXT_PLAIN))
    srv.add("hello", Resource(
        get=lambda request: (CONTENT, "hello from a coapy_micro node"),
        ct=TEXT_PLAIN))
    return srv


class Node:
    """The node's EndPoint and Server, bound to `bind` (host, port), or on
    `end_point` (an EndPoint already bound: tests pass one on a fake
    network). With `rd` (a Resource Directory's coap:// URI) it registers
    there as `ep_name` (None: coapy_micro.rd.endpoint_name()) for lt_s seconds at a time
    (None: RD_LT_S); `registrar` is then its coapy_micro.rd.Registrar."""

    def __init__(self, bind=("0.0.0.0", 5683), read_c=None, log=print, end_point=None,
                 rd=None, ep_name=None, lt_s=None):
        self.log = log
        self.memory_errors = 0  # datagrams dropped for want of memory
        self.registrar = None
        self.ep = end_point or EndPoint()
        try:
            if end_point is None:
                self.ep.bind(bind)
            self.server = make_server(self.ep, read_c or SimulatedSensor().read_c)
            refused = None
            if rd:
                # Imported only here: a node without an RD does not pay the
                # registrar's and the client's heap.
                from coapy_micro import rd as rd_mod

                name = ep_name or rd_mod.endpoint_name(bind[1])
                try:
                    self.registrar = rd_mod.Registrar(
                        self.server, name, rd=rd, lt_s=lt_s or RD_LT_S,
                        on_event=lambda reg, event, detail: self._said(
                            rd_mod.event_text(reg, event, detail)))
                except ValueError as e:
                    # A setting that cannot work (a malformed URI, a name
                    # too long): said, and the node serves unregistered
                    # rather than fail (a board would reset over and over).
                    refused = e
        except BaseException:
            self.ep.close()
            raise
        log("node: serving CoAP on %s:%d" % (bind[0], bind[1]))
        if self.registrar is not None:
            log("node: registering with the RD at %s as %s (lifetime %d s)"
                % (rd, self.registrar.ep, self.registrar.lt_s))
        elif refused is not None:
            log("node: not registering with the RD at %r as %r: %s" % (rd, ep_name, refused))

    def _said(self, text):
        # What the registrar did (coapy_micro.rd.event_text), for the serial
        # console / terminal.
        if text is not None:
            self.log("node: " + text)

    def serve(self, seconds=None, feed=None):
        """Serve for `seconds` (None: forever). feed(), if given, is called
        at least once a second (a watchdog's feed)."""
        srv = self.server
        # The collection policy a serving loop wants on a board (half the
        # heap; one the application set stays): Server.serve() sets it,
        # and this loop is the node's own.
        set_gc_threshold()
        # With an RD, the registrar runs the loop's rounds: it serves
        # requests, takes the RD's answers and registers when due.
        reg = self.registrar
        step = srv.process if reg is None else reg.process
        clock = self.ep.clock
        start = clock()
        due = ticks_add(start, NOTIFY_MS)
        while True:
            now = clock()
            wait = ticks_diff(due, now)
            if seconds is not None:
                left = int(seconds * 1000) - ticks_diff(now, start)
                if left <= 0:
                    return
                if left < wait:
                    wait = left
            try:
                if wait <= 0:
                    due = ticks_add(now, NOTIFY_MS)  # late: one tick, no burst
                    # The handler is called per observer; with none,
                    # notify() costs nothing.
                    srv.notify("sensors/temp")
                else:
                    step(wait)
            except MemoryError:
                # What was being handled is lost (a client retransmits a
                # CON); the node keeps serving. A failed read leaves its
                # datagram queued, so give the heap a moment to settle.
                self.memory_errors += 1
                gc.collect()
                try:
                    self.log("node: out of memory (%d so far); datagram dropped"
                             % self.memory_errors)
                except MemoryError:
                    pass  # still none to spare: saying so must not stop the node
                time.sleep(0.01)
            if feed is not None:
                feed()

    def close(self):
        """Deregister (waiting at most RD_CLOSE_MS, serving meanwhile) and
        close the socket."""
        try:
            if self.registrar is not None:
                self.registrar.close(RD_CLOSE_MS)
        finally:
            self.ep.close()


def run(bind=("0.0.0.0", 5683), read_c=None, log=print, seconds=None, feed=None,
        end_point=None, rd=None, ep_name=None, lt_s=None):
    """Serve for `seconds` (None: forever), registered with the RD `rd` if
    given (see Node); the socket is closed however this ends
    (KeyboardInterrupt included). Returns the Node."""
    node = Node(bind, read_c, log, end_point, rd, ep_name, lt_s)
    try:
        node.serve(seconds, feed)
    finally:
        node.close()
        log("node: stopped")
    return node
