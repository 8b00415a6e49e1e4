"""A sensor node: serves its temperature over CoAP, on a board or on the host.

The same file runs on an ESP32 or Pico W (ports/esp32/main.py and
ports/rp2/main.py call run() after Wi-Fi is up) and on the host
(ports/unix/node.py), where the sensor is simulated. It is written only with
the seed's polling API: one EndPoint, one loop, process(timeout_ms).
"""
from coapy_micro.connection import EndPoint, Message
from coapy_micro import codes

_CORE = '</sensors/temp>;rt="temperature-c";if="sensor";ct=0,</hello>;ct=0'


class SimulatedSensor:
    """A temperature that drifts a little between readings (host demo)."""

    def __init__(self, start_c=21.0):
        self.value = start_c

    def read_c(self):
        import random

        self.value += (random.getrandbits(8) - 128) / 640
        return self.value


def handle(request, read_c):
    """The response (code, payload, content format) to a request Message."""
    if request.code != codes.GET:
        return codes.METHOD_NOT_ALLOWED, b"", None
    # Compared as a list of segments: a segment that is not UTF-8 comes back
    # as bytes and simply matches nothing.
    path = [o.value for o in request.findOptions(11)]
    if path == ["sensors", "temp"]:
        return codes.CONTENT, "%.2f" % read_c(), codes.TEXT_PLAIN
    if path == ["hello"]:
        return codes.CONTENT, "hello from a coapy_micro node", codes.TEXT_PLAIN
    if path == [".well-known", "core"]:
        return codes.CONTENT, _CORE, codes.LINK_FORMAT
    return codes.NOT_FOUND, b"", None


def run(bind=("0.0.0.0", 5683), read_c=None, log=print, stop_after_ms=None):
    """Serve until stop_after_ms passes (None: forever)."""
    from coapy_micro._compat import ticks_diff, ticks_ms

    read_c = read_c or SimulatedSensor().read_c
    ep = EndPoint()
    ep.bind(bind)
    log("node: serving CoAP on %s:%d" % (bind[0], bind[1]))
    start = ticks_ms()
    while stop_after_ms is None or ticks_diff(ticks_ms(), start) < stop_after_ms:
        rx = ep.process(500)
        if rx is None or not 1 <= rx.message.code <= 31:
            continue
        req = rx.message
        code, payload, fmt = handle(req, read_c)
        if req.transaction_type == Message.CON:
            rx.ack(Message(code=code, payload=payload, content_format=fmt))
        else:
            ep.send(Message(Message.NON, code, payload, req.token, content_format=fmt), rx.remote)
    ep.close()
