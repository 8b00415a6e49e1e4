"""asyncio for coapy_micro: serve and make requests from an event loop, with
the same code on MicroPython and CPython.

    import asyncio
    from coapy_micro import aio

    async def main():
        asyncio.create_task(aio.serve(srv))         # srv: a Server
        async with aio.AsyncClient() as client:
            resp = await client.get("coap://192.168.1.7/sensors/temp")

serve(server) runs an existing Server; AsyncClient runs a Client. Both do
what their synchronous forms do (the same EndPoint, Server and Client
underneath), driven by the event loop instead of a polling loop:

- No busy polling. Between datagrams the loop waits for the sockets to
  become readable (on MicroPython in the asyncio core's I/O queue, as its
  StreamReader does; on CPython with the loop's reader callbacks), and an
  alarm sleeps until the next timer of the EndPoint, the Server or the
  Client (a retransmission, a CON notification awaiting its ACK, a response
  to a group request whose leisure ends, a request's deadline, an
  observation to renew). With nothing to do it sleeps; an idle node uses
  no CPU. (Unfinished Block1 uploads need no timer: the server drops
  expired ones the next time its bounded table is touched.)
- A message queued from any task (server.notify(), a request) wakes the
  alarm at once through EndPoint.on_queued.
- Fairness: one wake-up handles at most a few datagrams, then the other
  tasks get their turn (a flood cannot starve a sensor task).
- What is allocated per served request is what Server.process() allocates
  (recvfrom's result: the record, message and Request are reused), and what
  the asyncio core's wait for the socket costs (its I/O queue).

One driver runs each EndPoint: serve(srv) and AsyncClient(end_point=
srv.end_point) may share one (a node that serves and also asks); requests
the Server does not take go to the Client. The EndPoint must keep its real
clock (ticks_ms), and sockets are registered (EndPoint.register) before it
is driven. Cancel the task running serve() to stop serving; close() an
AsyncClient (or leave its `async with`) to cancel what it still has going.
"""
import asyncio
import gc

from ._compat import IS_MICROPYTHON, const, ticks_add, ticks_diff, ticks_ms
from .client import DEFAULT_TIMEOUT_MS, Client
from .transactions import CapacityError
from .outcome import CoapError

__all__ = ("serve", "AsyncClient", "AsyncObservation")

_POLLIN = const(1)
# One wake-up handles datagrams for at most _BUDGET_MS (and _BURST of
# them), then other tasks get their turn: a flood of requests delays them
# by a few ms, whether a request takes 50 us (CPython) or 5 ms (a board).
# (One process() call may also swallow pings and duplicates for about a ms.)
_BUDGET_MS = const(4)
_BURST = const(32)
# MicroPython's alarm sleeps this long when nothing is timed (three days: a
# wake-up that finds nothing to do, not a polling loop).
_IDLE_MS = const(1 << 28)
_BACKOFF_MS = const(10)  # after a MemoryError: let the heap settle

_drivers = []  # the running drivers (each runs one or more EndPoints)


def _sooner(wait, d):
    # The sooner of two waits in ms (each >= 0, or -1 for none).
    if d < 0:
        return wait
    return d if wait < 0 or d < wait else wait


def _current_task():
    try:
        return asyncio.current_task()
    except RuntimeError:  # no loop running (closed after it ended)
        return None


def _driver_of(ep):
    for d in _drivers:
        if d.port(ep) is not None:
            return d
    return None


class _Port:
    """An EndPoint a driver runs, with a poller of its own that says,
    without blocking, whether a datagram waits (before a read that would
    otherwise fail)."""

    def __init__(self, ep):
        import select

        self.ep = ep
        self.active = True
        self.paused = False  # a MemoryError: reading resumes after _BACKOFF_MS
        self.prev_queued = ep.on_queued
        self.tasks = []  # MicroPython: the reader task of each socket
        self.fds = []  # CPython: the file numbers with a reader callback
        self.poller = select.poll()
        for s in ep.sockets:
            self.poller.register(s, _POLLIN)
        # MicroPython's ipoll allocates nothing; its bound method is taken once.
        self.ipoll = getattr(self.poller, "ipoll", None)

    def readable(self):
        ipoll = self.ipoll
        if ipoll is not None:
            for _ in ipoll(0):
                return True
            return False
        return len(self.poller.poll(0)) > 0


class _Driver:
    """Runs EndPoints on the event loop for a Server (serve()) and/or an
    AsyncClient: reader wake-ups per socket, one alarm for every timer."""

    def __init__(self, server=None, client=None):
        self.ports = []
        self.server = server  # the Server serve() runs
        self.client = client  # the AsyncClient
        self.running = False
        self.error = None  # type: Exception | None  # what stopped the driver, if it failed
        self.memory_errors = 0
        self._stopped = None  # asyncio.Event: set when it fails
        self._next = 0  # ms until the alarm is due (-1: nothing timed)
        self._until = 0  # ticks when the alarm fires
        self._asleep = False  # MicroPython: the alarm task is sleeping
        self._alarm = None  # the alarm: MicroPython's task, CPython's TimerHandle
        self._loop = None  # CPython's running loop
        # Bound methods taken once: a callback stored per message would
        # allocate per message.
        self._kick = self._queued
        self._on_alarm = self._alarm_fired
        self._on_readable = self._readable

    # -- life cycle ----------------------------------------------------------

    def start(self):
        if self.running:
            return
        self.running = True
        self._stopped = asyncio.Event()
        _drivers.append(self)
        if IS_MICROPYTHON:
            self._alarm = asyncio.create_task(self._alarm_loop())
        else:
            self._loop = asyncio.get_running_loop()  # pyright: ignore[reportAttributeAccessIssue]: CPython's asyncio (MicroPython's has no such call)
            self._arm(0)

    def port(self, ep):
        for p in self.ports:
            if p.ep is ep:
                return p
        return None

    def add(self, ep):
        """Run `ep` (again no-op): wait on its sockets, wake on its queue."""
        if self.port(ep) is not None:
            return
        p = _Port(ep)
        self.ports.append(p)
        ep.on_queued = self._kick
        loop = self._loop
        for s in ep.sockets:
            if IS_MICROPYTHON:
                p.tasks.append(asyncio.create_task(self._reader(p, s)))
            elif loop is not None:
                fd = s.fileno()
                loop.add_reader(fd, self._on_readable, p)
                p.fds.append(fd)
        self._arm(0)  # whatever it has queued goes out now

    def remove(self, p):
        p.active = False
        if p.ep.on_queued is self._kick:
            p.ep.on_queued = p.prev_queued
        if IS_MICROPYTHON:
            me = _current_task()
            for t in p.tasks:
                if t is not me:
                    t.cancel()  # else it sees `active` turn False and returns
        elif self._loop is not None:
            for fd in p.fds:
                self._loop.remove_reader(fd)
        p.tasks = []
        p.fds = []
        if p in self.ports:
            self.ports.remove(p)

    def stop(self):
        for p in list(self.ports):
            self.remove(p)
        self.running = False
        a = self._alarm
        self._alarm = None
        if a is not None:
            if not IS_MICROPYTHON:
                a.cancel()
            elif a is not _current_task():
                a.cancel()  # else it sees `running` turn False and returns
        if self in _drivers:
            _drivers.remove(self)

    def release(self):
        """Stop running EndPoints nobody uses any more; stop when unused."""
        keep = []
        if self.server is not None:
            keep.append(self.server.end_point)
        if self.client is not None:
            for ep in self.client.client.end_points:
                keep.append(ep)
        for p in list(self.ports):
            if p.ep not in keep:
                self.remove(p)
        if self.server is None and self.client is None:
            self.stop()

    def _fail(self, e):
        self.error = e
        self.stop()
        if self._stopped is not None:
            self._stopped.set()  # serve() raises it
        ac = self.client
        if ac is not None:
            ac._abort(e)

    # -- waking up -------------------------------------------------------------

    def _queued(self, record):
        # EndPoint.on_queued: something to transmit now.
        self._arm(0)

    def _readable(self, p):
        # CPython: the loop's reader callback for one of p's sockets.
        loop = self._loop
        if p.active and loop is not None:
            self._run(p)
            if p.paused and p.active:
                for fd in p.fds:
                    loop.remove_reader(fd)
                loop.call_later(_BACKOFF_MS / 1000, self._resume, p)

    def _resume(self, p):
        # CPython: reading again after a MemoryError.
        p.paused = False
        loop = self._loop
        if p.active and loop is not None:
            for fd in p.fds:
                loop.add_reader(fd, self._on_readable, p)

    def _reader(self, p, sock):
        # MicroPython: a task made from this generator waits in the asyncio
        # core's I/O queue until `sock` is readable (what its StreamReader
        # does; MicroPython's asyncio has no datagram API), then runs.
        core = asyncio.core  # pyright: ignore[reportAttributeAccessIssue]: MicroPython's asyncio (this runs there only)
        while p.active:
            yield core._io_queue.queue_read(sock)
            if not p.active:
                return
            self._run(p)
            if p.paused:
                yield from asyncio.sleep_ms(_BACKOFF_MS)
                p.paused = False

    async def _alarm_loop(self):
        # MicroPython: one task sleeps until the next timer; _arm() brings
        # its wake-up forward when a sooner one appears.
        while self.running:
            d = self._next
            self._next = -1  # while asleep, _arm() moves the wake-up instead
            if d < 0 or d > _IDLE_MS:
                d = _IDLE_MS
            self._until = ticks_add(ticks_ms(), d)
            self._asleep = True
            await asyncio.sleep_ms(d)
            self._asleep = False
            if not self.running:
                return
            self._run(None)

    def _alarm_fired(self):
        # CPython: the alarm's TimerHandle.
        self._alarm = None
        if self.running:
            self._run(None)

    def _arm(self, d):
        """Have the alarm fire within `d` ms (-1: no timer needed)."""
        if d < 0 or not self.running:
            return
        if IS_MICROPYTHON and not self._asleep:
            # The alarm task is running (or about to): it sleeps for _next
            # when it is done, the soonest of what was asked meanwhile.
            self._next = _sooner(self._next, d)
            return
        when = ticks_add(ticks_ms(), d)
        if IS_MICROPYTHON:
            # A sleeping alarm task is in the core's task queue under its
            # wake-up time: moved forward in place (no allocation).
            if ticks_diff(when, self._until) < 0:
                t = self._alarm
                q = asyncio.core._task_queue  # pyright: ignore[reportAttributeAccessIssue]: MicroPython's asyncio (this runs there only)
                q.remove(t)
                q.push(t, when)
                self._until = when
            return
        h = self._alarm
        if h is not None:
            if ticks_diff(when, self._until) >= 0:
                return
            h.cancel()
        loop = self._loop
        if loop is not None:
            self._until = when
            self._alarm = loop.call_later(d / 1000, self._on_alarm)

    # -- the work ----------------------------------------------------------------

    def _run(self, p):
        """Do what is ready without blocking: the datagrams waiting on p's
        sockets (or, from the alarm, every EndPoint's timers), then set the
        alarm for the next timer."""
        try:
            if p is not None:
                self._pump(p)
            else:
                for q in self.ports:
                    self._pump(q)
            ac = self.client
            if ac is not None:
                ac.client.check()  # deadlines, observations to renew
                ac._after_run()
            self._arm(self._next_ms())
        except MemoryError:
            # What was being handled is lost (a CON is retransmitted); the
            # datagram that could not be read is still queued: retry soon.
            self.memory_errors += 1
            gc.collect()
            if p is not None:
                p.paused = True
            self._arm(_BACKOFF_MS)
        except Exception as e:  # a bug, a closed socket: stop, and say so
            self._fail(e)

    def _pump(self, p):
        ep = p.ep
        clock = ep.clock
        start = clock()
        n = 0
        while True:
            # Timers, then at most one message: for a Server, in the record
            # the EndPoint reuses (as Server.process() takes it).
            rx = ep.process(0, self.server is not None)
            n += 1
            if rx is not None:
                self._dispatch(rx)
            if n >= _BURST or not p.active or ticks_diff(clock(), start) >= _BUDGET_MS:
                return
            # Go on while a datagram waits, or a response just queued (to a
            # NON request, say) can go out now.
            if not p.readable() and ep.next_event_ms(clock()) != 0:
                return

    def _dispatch(self, rx):
        srv = self.server
        if srv is not None and srv.handle(rx):
            return
        rx.keep()  # no request: the client's, or the application's, to keep
        ac = self.client
        if ac is not None:
            c = ac.client
            if not c.handle(rx) and c.on_unhandled is not None:
                c.on_unhandled(rx)

    def _next_ms(self):
        wait = -1
        srv = self.server
        if srv is not None and srv.delayed:
            # Responses to group requests whose leisure has passed go now.
            wait = srv.hook("group").send_due(srv.now())
        now = ticks_ms()
        ac = self.client
        covered = ()
        if ac is not None:
            # Its deadlines, observations and EndPoints' timers.
            wait = _sooner(wait, ac.client.next_event_ms(now))
            covered = ac.client.end_points
        for p in self.ports:
            if p.ep not in covered:
                wait = _sooner(wait, p.ep.next_event_ms(now))
        return wait


async def serve(server):
    """Run `server` (a Server on a bound EndPoint) on the running event loop
    until the task running this is cancelled. Requests are answered as they
    arrive; server.notify() may be called from any task. Raises what
    stopped it otherwise (an error the server could not handle itself).
    Register multicast sockets with the EndPoint before calling this."""
    ep = server.end_point
    d = _driver_of(ep)
    if d is None:
        d = _Driver()
    if d.server is not None:
        raise ValueError("this EndPoint is already served")
    # The collection policy Server.serve() sets (imported here: a client
    # alone does not load the server).
    from .server import set_gc_threshold

    set_gc_threshold()
    d.server = server
    try:
        d.start()
        d.add(ep)
        stopped = d._stopped
        if stopped is not None:
            await stopped.wait()
        e = d.error
        if e is not None:
            raise e
    finally:
        if d.server is server:
            d.server = None
            d.release()


class _Done(asyncio.Event):
    # A request's completion: the Pending's callback sets it.
    def __call__(self, pending):
        self.set()


class AsyncObservation:
    """An observation made by AsyncClient.observe (RFC 7641).

    `callback(response)`, if given, is called for the first response and
    each fresh notification; the object is also an async iterator of them:

        async for resp in client.observe("coap://node/sensors/temp"):
            print(resp.payload)

    Responses not yet taken by the iterator are kept, at most `keep` (the
    oldest are dropped then, and counted in `missed`: a notification is the
    latest state, older ones rarely matter). Iteration ends when the
    observation does: cancel(), AsyncClient.close(), or the server answering
    without registering; it raises the CoapError that ended it otherwise
    (Reset, Unreachable, RequestTimeout, client_observe.ObservationEnded).
    `observation` is the Client's Observation underneath (last,
    notifications, ...). A callback that raises ends the observation with
    that error."""

    def __init__(self, callback=None, keep=4):
        self.callback = callback
        self.keep = keep
        self.missed = 0
        self.observation = None  # set by AsyncClient.observe
        self._queue = []
        self._event = asyncio.Event()
        self._error = None  # what the callback raised
        self._raised = False

    @property
    def done(self):
        o = self.observation
        return o is None or o.done

    @property
    def error(self):
        """The CoapError (or the callback's exception) that ended it, or None."""
        if self._error is not None:
            return self._error
        o = self.observation
        return None if o is None else o.error

    @property
    def last(self):
        o = self.observation
        return None if o is None else o.last

    def cancel(self):
        """Deregister (a GET with Observe 1); iteration ends at once
        (responses not yet taken are dropped)."""
        o = self.observation
        if o is not None:
            o.cancel()
        self._queue = []
        self._event.set()

    def _deliver(self, response):
        q = self._queue
        if len(q) >= self.keep:
            del q[0]
            self.missed += 1
        q.append(response)
        self._event.set()
        cb = self.callback
        if cb is not None:
            try:
                cb(response)
            except Exception as e:  # the application's: it ends this observation only
                self._error = e
                self.cancel()

    def __aiter__(self):
        return self

    async def __anext__(self):
        while not self._queue:
            if self.done:
                e = self.error
                if e is not None and not self._raised:
                    self._raised = True
                    raise e
                raise StopAsyncIteration
            self._event.clear()
            await self._event.wait()
        return self._queue.pop(0)


class AsyncClient:
    """A Client (client.py) for the event loop: `await request(...)`.

    The arguments are Client's, by the same names (`client` is the Client
    underneath). transfer_timeout_ms bounds a whole Block-wise transfer (a
    server that drips small blocks would otherwise hold an await for
    max_body / 16 exchanges). Any number of tasks may have requests going at once over one EndPoint; the
    EndPoint keeps NSTART per peer and matches responses by token. When its
    table of transmissions in flight is full (EndPoint max_in_flight), a
    request waits for a free slot instead of failing. Block-wise transfer
    and Observe work as with Client. Cancelling a task that awaits a
    request cancels the request (its EndPoint record is freed). close()
    cancels what is pending (those awaiting it get a CoapError) and ends
    the observations."""

    def __init__(self, end_point=None, timeout_ms=DEFAULT_TIMEOUT_MS, end_point_factory=None,
                 getaddrinfo=None, block_size=1024, max_body=65536, max_destinations=32,
                 transfer_timeout_ms=None):
        self.client = Client(end_point, timeout_ms, end_point_factory, getaddrinfo, None,
                             block_size, max_body, transfer_timeout_ms, max_destinations)
        self._driver = None  # type: _Driver | None
        self._observations = []  # AsyncObservations not yet seen to end
        self._room = []  # _Done events of requests waiting for a free slot
        self._closed = False

    # -- requests --------------------------------------------------------------

    async def request(self, method, uri, payload=b"", content_format=None, accept=None,
                      options=(), confirmable=True, timeout_ms=-1, block_size=None,
                      transfer_timeout_ms=-1, max_body=None):
        """Send a request and return its Response (any code), as
        Client.request does: RequestTimeout, Reset or Unreachable (all
        CoapError) when it ends without one, uri.UriError for a bad URI.
        transfer_timeout_ms, max_body: this request's own bounds on a
        transfer in blocks, as Client.start() takes them."""
        d = self._drive()
        done = _Done()
        c = self.client
        while True:
            try:
                h = c.start(method, uri, payload, content_format, accept, options,
                            confirmable, timeout_ms, done, block_size, transfer_timeout_ms,
                            max_body)
                break
            except CapacityError:
                await self._wait_for_room()
        d.add(h.record.end_point)
        try:
            await done.wait()
        finally:
            if not h.done:
                h.cancel()  # the task was cancelled: free the record
                self._after_run()
        return h.result()

    async def get(self, uri, **kw):
        return await self.request(1, uri, b"", **kw)

    async def post(self, uri, payload=b"", **kw):
        return await self.request(2, uri, payload, **kw)

    async def put(self, uri, payload=b"", **kw):
        return await self.request(3, uri, payload, **kw)

    async def delete(self, uri, **kw):
        return await self.request(4, uri, b"", **kw)

    def observe(self, uri, callback=None, confirmable=True, accept=None, options=(),
                margin_ms=5000, keep=4):
        """Register as an observer of `uri` (Client.observe's arguments):
        returns an AsyncObservation at once (see there)."""
        d = self._drive()
        ao = AsyncObservation(callback, keep)
        o = self.client.observe(uri, ao._deliver, confirmable, accept, options, margin_ms)
        ao.observation = o
        self._observations.append(ao)
        d.add(o.end_point)
        return ao

    # -- life cycle ----------------------------------------------------------------

    def close(self):
        """Cancel the pending requests (their tasks get CoapError('request
        cancelled')), end the observations, close the EndPoints the client
        made (not one it was given)."""
        if self._closed:
            return
        self._closed = True
        c = self.client
        pending = c.pending
        d = self._driver
        self._driver = None
        if d is not None and d.client is self:
            d.client = None
            d.release()  # before the sockets close
        c.close()
        for h in pending:
            if h.callback is not None:
                h.callback(h)  # cancelled quietly by Client.close: wake its task
        self._wake_all()

    async def __aenter__(self):
        return self

    async def __aexit__(self, exc_type, exc, tb):
        self.close()

    @property
    def observations(self):
        """The AsyncObservations still running."""
        out = []
        for ao in self._observations:
            if not ao.done:
                out.append(ao)
        return out

    # -- the driver's side ---------------------------------------------------------

    def _drive(self):
        if self._closed:
            raise CoapError("the client is closed")
        d = self._driver
        if d is not None and d.running:
            return d
        d = None
        eps = self.client.end_points
        for ep in eps:
            d = _driver_of(ep)
            if d is not None:
                break
        if d is None:
            d = _Driver()
        if d.client is not None and d.client is not self:
            raise ValueError("this EndPoint is already driven by another AsyncClient")
        d.client = self
        d.start()
        for ep in eps:
            d.add(ep)
        self._driver = d
        return d

    async def _wait_for_room(self):
        if self._closed:
            raise CoapError("the client is closed")
        ev = _Done()
        self._room.append(ev)
        try:
            await ev.wait()
        finally:
            if ev in self._room:
                self._room.remove(ev)
        if self._closed:
            raise CoapError("the client is closed")

    def _after_run(self):
        # After the driver's work: wake requests waiting for a slot (one per
        # free slot, oldest first), and observers' iterators that ended.
        room = self._room
        if room:
            free = 0
            for ep in self.client.end_points:
                free += ep.max_in_flight - ep.in_flight
            while free > 0 and room:
                room.pop(0).set()
                free -= 1
        obs = self._observations
        i = 0
        while i < len(obs):
            ao = obs[i]
            if ao.done:
                ao._event.set()
                del obs[i]
            else:
                i += 1

    def _abort(self, e):
        # The driver stopped on error `e`: end what waits on it.
        self._driver = None
        for h in self.client.pending:
            err = CoapError("the event loop driver stopped: %r" % (e,))
            h.finish(None, err)
        self._wake_all()

    def _wake_all(self):
        for ao in self._observations:
            ao._event.set()
        self._observations = []
        for ev in self._room:
            ev.set()
        self._room = []
