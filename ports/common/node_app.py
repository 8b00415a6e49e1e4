"""A sensor node: serves its readings over CoAP, on a board or on the host.

The same file runs on an ESP32 or Pico W (ports/esp32/main.py and
ports/rp2/main.py call run() once Wi-Fi is up) and on the host
(ports/unix/node.py), where the sensor is simulated. Resources:

    /sensors/temp   the temperature in °C, text (rt="temperature-c"),
                    observable (RFC 7641): observers get a reading a second
    /sys/uptime     seconds since the node started, text
    /hello          a greeting
    /.well-known/core   what is above, for discovery (RFC 6690)
"""
from coapy_micro import codes
from coapy_micro._compat import ticks_diff, ticks_ms
from coapy_micro.connection import EndPoint
from coapy_micro.server import Resource, Server


class SimulatedSensor:
    """A temperature that drifts a little between readings (host demo)."""

    def __init__(self, start_c=21.0):
        self.value = start_c

    def read_c(self):
        import random

        self.value += (random.getrandbits(8) - 128) / 640
        return self.value


def make_server(ep, read_c):
    """The node's resources on EndPoint `ep`."""
    started = ticks_ms()
    srv = Server(ep)
    srv.add("sensors/temp", Resource(
        get=lambda request: (codes.CONTENT, "%.2f" % read_c()),
        rt="temperature-c", if_="sensor", ct=codes.TEXT_PLAIN, title="Temperature",
        obs=True))
    srv.add("sys/uptime", Resource(
        get=lambda request: (codes.CONTENT, str(ticks_diff(ticks_ms(), started) // 1000)),
        rt="uptime-s", ct=codes.TEXT_PLAIN))
    srv.add("hello", Resource(
        get=lambda request: (codes.CONTENT, "hello from a coapy_micro node"),
        ct=codes.TEXT_PLAIN))
    return srv


def run(bind=("0.0.0.0", 5683), read_c=None, log=print, seconds=None):
    """Serve for `seconds` (None: forever)."""
    ep = EndPoint()
    ep.bind(bind)
    srv = make_server(ep, read_c or SimulatedSensor().read_c)
    log("node: serving CoAP on %s:%d" % (bind[0], bind[1]))
    # Once a second the observers of /sensors/temp get a fresh reading (the
    # handler is called per observer; with none, notify() costs nothing).
    srv.serve(seconds, tick=lambda: srv.notify("sensors/temp"))
    ep.close()
