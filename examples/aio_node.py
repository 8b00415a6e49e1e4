"""A Raspberry Pi Pico W node on one asyncio event loop: it serves CoAP,
samples its sensor in one task and serves a web page in another.

- CoAP on port 5683: /sensors/temp (text, observable: observers get each
  new reading) and /.well-known/core, through coapy_micro.aio.serve();
- a task reads the RP2040's temperature sensor every 2 s and notifies the
  observers;
- a plain asyncio stream server answers HTTP on port 80 with a page that
  shows the latest reading (microdot would do as well: it runs on the same
  loop).

None of them polls: the loop sleeps until a socket has data or a timer is
due. On the board, next to the package (make board) and ports/common/wifi.py,
with your config.py, as main.py. On the MicroPython unix port or CPython it
runs too, with a simulated sensor and no Wi-Fi:

    micropython examples/aio_node.py [COAP_PORT HTTP_PORT]
"""
import asyncio
import sys

try:
    import coapy_micro  # noqa: F401  (on a board: installed beside this script)
except ImportError:
    # Run from a clone (`micropython examples/aio_node.py`, `python3 ...`): the
    # package is in the repository, one folder up (no os.path on MicroPython).
    sys.path.insert(0, "/".join(__file__.split("/")[:-2]) or ".")

from coapy_micro import aio, codes
from coapy_micro.connection import EndPoint
from coapy_micro.server import Resource, Server

SAMPLE_MS = 2000
latest = [21.0]  # the last reading, in °C


def sensor():
    """read_c() for the RP2040's internal sensor (ADC 4), or a simulated
    one where there is no such ADC."""
    try:
        import machine

        adc = machine.ADC(4)
    except (ImportError, AttributeError, ValueError):
        import random

        def simulated():
            return latest[0] + (random.getrandbits(8) - 128) / 640

        return simulated

    def read_c():
        volts = adc.read_u16() * 3.3 / 65535
        return 27 - (volts - 0.706) / 0.001721  # RP2040 datasheet, 4.9.5

    return read_c


async def sample(srv, read_c):
    while True:
        latest[0] = read_c()
        srv.notify("sensors/temp")  # from this task: serve() sends them
        await asyncio.sleep(SAMPLE_MS / 1000)


async def page(reader, writer):
    # One HTTP request: read up to the blank line, answer, close.
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
    body = ("<!DOCTYPE html><html><body><h1>%.2f &deg;C</h1>"
            "<p>CoAP: coap://this-node/sensors/temp</p></body></html>" % latest[0])
    writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n")
    writer.write(body.encode("utf-8"))
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def main(coap_port, http_port):
    ep = EndPoint()
    ep.bind(("0.0.0.0", coap_port))
    srv = Server(ep)
    srv.add("sensors/temp", Resource(get=lambda r: (codes.CONTENT, "%.2f" % latest[0]),
                                     obs=True, ct=codes.TEXT_PLAIN, rt="temperature-c"))
    asyncio.create_task(sample(srv, sensor()))
    await asyncio.start_server(page, "0.0.0.0", http_port)
    print("node: CoAP on port %d, HTTP on port %d" % (coap_port, http_port))
    try:
        await aio.serve(srv)  # until the task is cancelled (or the board resets)
    finally:
        ep.close()


def join_wifi():
    # On a board: join the network in config.py first (ports/common/wifi.py).
    try:
        import config
        import wifi
    except ImportError:
        return  # the unix port or CPython: the host's network
    print("node: Wi-Fi address", wifi.join(config.WIFI_SSID, config.WIFI_PASSWORD))


join_wifi()
args = sys.argv[1:] if len(getattr(sys, "argv", ())) > 1 else ()
asyncio.run(main(int(args[0]) if args else 5683, int(args[1]) if args else 80))
