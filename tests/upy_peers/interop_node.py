# The resources tests/test_server_interop.py serves to libcoap's and
# aiocoap's clients, written once for both runtimes: CPython runs them in a
# thread, the MicroPython unix port in a process of its own
# (tests/upy_peers/run_interop_node.py). Portable: no CPython-only calls.
from coapy_micro.server import Resource, Response, Server

CONTENT, CREATED, DELETED, CHANGED = 69, 65, 66, 68
SLOW_MS = 300  # /slow answers separately after this long


def _ticks():
    try:
        from time import ticks_add, ticks_diff
    except ImportError:  # CPython: the EndPoint's clock wraps at 2**30 ms
        def ticks_add(t, d):
            return (t + d) & ((1 << 30) - 1)

        def ticks_diff(a, b):
            return ((a - b + (1 << 29)) & ((1 << 30) - 1)) - (1 << 29)
    return ticks_add, ticks_diff


ticks_add, ticks_diff = _ticks()


class InteropNode:
    """A Server with a few resources on EndPoint `ep`. Every request a
    handler sees, every handler error and every change to /upload's body
    goes to on_event(kind, value): ("seen", (type, code, path tuple)),
    ("error", message), ("stored", bytes)."""

    def __init__(self, ep, on_event):
        self.ep = ep
        self.on_event = on_event
        self.srv = Server(ep, on_error=lambda r, e: on_event("error", str(e)))
        self.stored = b"initial"
        self.slow = []  # [when to answer (ep.clock ticks), Deferred]
        add = self.srv.add
        add("hello", Resource(get=self.hello, ct=0, title="Greeting"))
        add("sensors/temp", Resource(get=self.temp, rt="temperature-c", if_="sensor", ct=0, obs=True))
        add("sensors/light", Resource(get=self.temp, rt="light-lux", if_="sensor", ct=(0, 50)))
        add("upload", Resource(get=self.get_upload, put=self.put_upload, post=self.post_upload,
                               delete=self.delete_upload, accepts=(0, 42)))
        add("ro", Resource(get=self.hello))
        add("slow", Resource(get=self.defer))
        add("broken", Resource(get=self.broken))

    # -- handlers --
    def _saw(self, request):
        self.on_event("seen", (request.message.transaction_type, request.code, request.path))

    def _store(self, body):
        self.stored = body
        self.on_event("stored", body)

    def hello(self, request):
        self._saw(request)
        return (CONTENT, "hello")

    def temp(self, request):
        self._saw(request)
        if request.accept == 50:
            return (CONTENT, b'{"v": 21.5}')
        return (CONTENT, b"21.5")

    def get_upload(self, request):
        self._saw(request)
        return Response(CONTENT, self.stored, 42)

    def put_upload(self, request):
        self._saw(request)
        self._store(request.payload)
        return (CHANGED, b"")

    def post_upload(self, request):
        self._saw(request)
        self._store(self.stored + request.payload)
        return (CREATED, b"")

    def delete_upload(self, request):
        self._saw(request)
        self._store(b"")
        return (DELETED, b"")

    def defer(self, request):
        self._saw(request)
        self.slow.append([ticks_add(self.ep.clock(), SLOW_MS), request.defer()])

    def broken(self, request):
        raise RuntimeError("handler bug")

    # -- the loop --
    def step(self, timeout_ms=50):
        """One Server.process() and the separate answers that are due."""
        self.srv.process(timeout_ms)
        now = self.ep.clock()
        for entry in list(self.slow):
            if ticks_diff(now, entry[0]) >= 0:
                self.slow.remove(entry)
                entry[1].respond(CONTENT, b"slow done", 0)
