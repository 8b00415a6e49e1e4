# upy-ok-file: the demo server of the coapy command, host only
"""The resources of `coapy serve` (host only): /hello, /time and
/sensors/temp (observable), /large (read in blocks) and /upload (any method,
uploads in blocks). Apart from the command so tests can serve the same."""
from . import codes


class DemoNode:
    """The resources of `coapy serve`: install(srv) adds them to a Server,
    tick(srv) once a second changes /time and /sensors/temp and notifies
    their observers."""

    def __init__(self):
        import random

        self._random = random.Random()
        self.temp_c = 21.0
        self.stored = b""
        self.stored_format = None
        self._large = None

    def hello(self, request):
        return codes.CONTENT, b"Hello from coapy_micro!", codes.TEXT_PLAIN

    def time(self, request):
        import time

        return codes.CONTENT, time.strftime("%Y-%m-%dT%H:%M:%S%z"), codes.TEXT_PLAIN

    def temperature(self, request):
        return codes.CONTENT, "%.2f" % self.temp_c, codes.TEXT_PLAIN

    def step(self):
        # A random walk around 21 degrees, two decimals like a real sensor.
        self.temp_c += self._random.uniform(-0.25, 0.25) + (21.0 - self.temp_c) * 0.05

    def tick(self, srv):
        """Once a second from serve(): /time changes every second, and
        /sensors/temp is notified when its reading (two decimals) changes."""
        before = "%.2f" % self.temp_c
        self.step()
        srv.notify("time")
        if "%.2f" % self.temp_c != before:
            srv.notify("sensors/temp")

    def large_text(self):
        if self._large is None:
            lines = []
            for i in range(1, 41):
                lines.append("%02d: CoAP carries this text in blocks of up to 1024 bytes (RFC 7959).\n" % i)
            self._large = "".join(lines).encode("utf-8")
        return self._large

    def large(self, request):
        return codes.CONTENT, self.large_text(), codes.TEXT_PLAIN

    def upload_get(self, request):
        return codes.CONTENT, self.stored, self.stored_format

    def upload_put(self, request):
        created = not self.stored and self.stored_format is None
        self.stored = request.payload
        self.stored_format = request.content_format
        return (codes.CREATED if created else codes.CHANGED), b""

    def upload_post(self, request):
        self.stored = request.payload
        self.stored_format = request.content_format
        return codes.CHANGED, b""

    def upload_delete(self, request):
        self.stored = b""
        self.stored_format = None
        return codes.DELETED, b""

    def install(self, srv):
        from .server import Resource

        srv.add("hello", Resource(get=self.hello, ct=0, title="Hello"))
        srv.add("time", Resource(get=self.time, ct=0, rt="time", title="Current time",
                                 obs=True))
        srv.add("sensors/temp", Resource(get=self.temperature, ct=0, rt="temperature-c",
                                         if_="sensor", title="Temperature", obs=True))
        srv.add("large", Resource(get=self.large, ct=0, sz=len(self.large_text()),
                                  title="Large text"))
        srv.add("upload", Resource(get=self.upload_get, put=self.upload_put,
                                   post=self.upload_post, delete=self.upload_delete,
                                   title="Upload"))
