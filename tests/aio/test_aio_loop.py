# coapy_micro.aio on the event loop, over real loopback sockets: serve() and
# AsyncClient in one loop. Runs on CPython (pytest collects this file) and
# on the MicroPython unix port's asyncio (tests/test_aio.py runs every
# function here there too). Rules: module-level `def test_*()` only, plain
# asserts, the Python subset both runtimes share.
import asyncio

from aio_support import (BIG, Node, Ticker, bound_end_point, cancel, cpu_ms, run, RUNTIME,
                         sleep_ms, ticks_diff, ticks_ms)
from raw_peer import RawPeer

from coapy_micro import aio, codes
from coapy_micro.client import CoapError, RequestTimeout, Reset, Unreachable


def _context_switches():
    # Voluntary context switches of this process: every time the event
    # loop blocks and wakes again. A poll-and-sleep loop makes one per turn.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches in /proc/self/status")


def gap_case(tasks=50, rounds=4):
    """A server task, `tasks` client tasks with `rounds` requests each (the
    first round all at once), and a ticker sleeping 10 ms: every answer
    right; returns the Ticker (its largest gaps) and the elapsed ms."""
    node = Node()

    async def main():
        serving = asyncio.create_task(aio.serve(node.server))
        client = aio.AsyncClient()
        ticker = Ticker()
        ticking = asyncio.create_task(ticker.run())
        await sleep_ms(30)
        wrong = []

        async def one(i):
            for k in range(rounds):
                body = b"task %d request %d" % (i, k)
                if k % 2:
                    r = await client.get(node.uri("echo"))
                    if (r.code, r.payload) != (codes.CONTENT, b"hello"):
                        wrong.append((i, k, r))
                else:
                    r = await client.post(node.uri("echo"), body)
                    if (r.code, r.payload) != (codes.CHANGED, body):
                        wrong.append((i, k, r))

        t0 = ticks_ms()
        await asyncio.gather(*[one(i) for i in range(tasks)])
        elapsed = ticks_diff(ticks_ms(), t0)
        await sleep_ms(30)
        ticker.running = False
        await ticking
        assert wrong == [], wrong
        assert node.handled == tasks * rounds, node.handled
        assert client.client.pending == []
        assert client.client.end_points[0].in_flight == 0
        client.close()
        await cancel(serving)
        return ticker, elapsed

    try:
        return run(main())
    finally:
        node.close()


def test_fifty_concurrent_requests_and_a_ticker():
    # The largest gap between the ticker's 10 ms sleeps, less what the OS
    # took (time spent ready but waiting for a CPU of this busy machine),
    # stays under 50 ms: one wake-up handles a few datagrams and yields.
    ticker, elapsed = gap_case()
    print("%s: 200 requests from 50 tasks in %d ms; largest gap %d ms (%d ms less "
          "run-queue waits), %d gaps" % (RUNTIME, elapsed, ticker.max_gap_ms,
                                          ticker.max_own_gap_ms, ticker.gaps))
    assert ticker.gaps >= 2, ticker.gaps
    assert ticker.max_own_gap_ms <= 50, (ticker.max_gap_ms, ticker.max_own_gap_ms)


def test_a_flood_of_requests_leaves_other_tasks_their_turn():
    # 300 CON GETs /work (1 ms of CPU each, as on a board) arrive at once
    # while the ticker sleeps 10 ms at a time: the server works through the
    # backlog in slices of a few ms, so the ticker's largest gap (less
    # run-queue waits) stays under 50 ms. By design, not by luck: worked off
    # in one go, the backlog would hold the loop for 300 ms.
    import socket

    from raw_peer import header

    node = Node()

    async def main():
        serving = asyncio.create_task(aio.serve(node.server))
        ticker = Ticker()
        ticking = asyncio.create_task(ticker.run())
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        dest = socket.getaddrinfo("127.0.0.1", node.port)[0][-1]
        await sleep_ms(30)
        t0 = ticks_ms()
        for mid in range(300):
            sock.sendto(header(0, 1, mid, b"f") + b"\xb4work", dest)
        last = -1
        while node.handled != last and ticks_diff(ticks_ms(), t0) < 10000:
            last = node.handled
            await sleep_ms(100)  # until the backlog is worked off
        elapsed = ticks_diff(ticks_ms(), t0)
        ticker.running = False
        await ticking
        sock.close()
        await cancel(serving)
        return ticker, elapsed

    try:
        ticker, elapsed = run(main())
    finally:
        node.close()
    print("%s: 300 requests of 1 ms each at once, %d handled (%d ms); largest gap %d ms "
          "(%d ms less run-queue waits)" % (RUNTIME, node.handled, elapsed, ticker.max_gap_ms,
                                            ticker.max_own_gap_ms))
    assert node.handled >= 100, node.handled  # what the socket buffer held at least
    assert ticker.max_own_gap_ms <= 50, (ticker.max_gap_ms, ticker.max_own_gap_ms)


def test_idle_serve_and_client_use_no_cpu():
    # serve() and an AsyncClient with an observation running, then 5 s with
    # nothing to do: no CPU to speak of, and no wake-ups (a poll-and-sleep
    # loop would wake hundreds of times, each a context switch).
    node = Node()

    async def main():
        serving = asyncio.create_task(aio.serve(node.server))
        client = aio.AsyncClient()
        r = await client.get(node.uri("echo"))
        assert r.payload == b"hello"
        seen = []
        obs = client.observe(node.uri("counter"), seen.append)
        t0 = ticks_ms()
        while not seen and ticks_diff(ticks_ms(), t0) < 5000:
            await sleep_ms(10)
        assert seen, "no first notification"
        await sleep_ms(200)
        c0 = cpu_ms()
        s0 = _context_switches()
        await sleep_ms(5000)
        cpu = cpu_ms() - c0
        switches = _context_switches() - s0
        assert not obs.done
        client.close()
        await cancel(serving)
        return cpu, switches

    try:
        cpu, switches = run(main())
    finally:
        node.close()
    print("%s: 5 s idle: %d ms CPU, %d voluntary context switches" % (RUNTIME, cpu, switches))
    assert cpu <= 50, cpu
    assert switches <= 10, switches


def test_cancelling_a_task_frees_its_record():
    # Two requests are cancelled while their tasks await them: one to a
    # silent peer (its CON is being retransmitted), one to /slow (the empty
    # ACK came, the response has not). Both records are freed, and the
    # silent peer hears no more retransmissions.
    node = Node()
    silent = RawPeer("silent")

    async def main():
        serving = asyncio.create_task(aio.serve(node.server))
        peering = asyncio.create_task(silent.run())
        ep, _ = bound_end_point(ack_timeout_ms=100)
        client = aio.AsyncClient(ep)
        t1 = asyncio.create_task(client.get(silent.uri()))
        t2 = asyncio.create_task(client.get(node.uri("slow")))
        t0 = ticks_ms()
        while (silent.seen < 2 or not node.slow) and ticks_diff(ticks_ms(), t0) < 5000:
            await sleep_ms(5)
        assert silent.seen >= 2, silent.seen  # retransmitted at least once
        assert len(node.slow) == 1
        assert ep.in_flight == 2 and len(client.client.pending) == 2
        await cancel(t1)
        await cancel(t2)
        assert ep.in_flight == 0, ep.in_flight
        assert client.client.pending == []
        seen = silent.seen
        await sleep_ms(600)  # past the next retransmissions' times
        assert silent.seen == seen, (seen, silent.seen)
        # The late separate response is refused (RST), not taken.
        node.slow[0].respond(codes.CONTENT, b"late")
        await sleep_ms(50)
        assert client.client.pending == []
        # The client still works.
        r = await client.get(node.uri("echo"))
        assert r.payload == b"hello"
        client.close()
        ep.close()
        silent.running = False
        await peering
        await cancel(serving)

    try:
        run(main())
    finally:
        node.close()
        silent.close()


def test_closing_the_client_ends_its_observations_and_requests():
    node = Node()

    async def main():
        serving = asyncio.create_task(aio.serve(node.server))
        client = aio.AsyncClient()
        obs = client.observe(node.uri("counter"))
        got = []

        async def iterate():
            async for r in obs:
                got.append(int(r.payload))
            return "ended"

        async def error_of(coro):
            try:
                await coro
            except CoapError as e:
                return e
            return None

        it = asyncio.create_task(iterate())
        waiting = asyncio.create_task(error_of(client.get(node.uri("slow"))))
        t0 = ticks_ms()
        while (not got or not node.slow) and ticks_diff(ticks_ms(), t0) < 5000:
            await sleep_ms(5)
        assert got and node.slow, (got, node.slow)
        for _ in range(3):
            node.tick()
            await sleep_ms(20)
        t0 = ticks_ms()
        while got[-1] != 3 and ticks_diff(ticks_ms(), t0) < 2000:
            await sleep_ms(5)
        assert got[-1] == 3, got
        assert node.server.observers("counter") == 1
        client.close()
        t0 = ticks_ms()
        while not it.done() and ticks_diff(ticks_ms(), t0) < 1000:
            await sleep_ms(5)
        assert it.done(), "the iterator did not end"
        assert await it == "ended"
        assert obs.done and obs.error is None
        assert client.observations == []
        e = await waiting
        assert isinstance(e, CoapError) and "cancelled" in str(e), e
        await cancel(serving)

    try:
        run(main())
    finally:
        node.close()


def test_notifications_from_a_sensor_task():
    # server.notify() from another task: the driver wakes up to send the
    # notifications. One observation is read with `async for`, one through
    # its callback; cancel() deregisters.
    node = Node()

    async def main():
        serving = asyncio.create_task(aio.serve(node.server))
        running = [True]

        async def sensor():
            while running[0]:
                await sleep_ms(20)
                node.tick()

        sensing = asyncio.create_task(sensor())
        client = aio.AsyncClient()
        called = []
        by_callback = client.observe(node.uri("counter"), called.append)
        values = []
        async for r in client.observe(node.uri("counter")):
            assert r.code == codes.CONTENT
            values.append(int(r.payload))
            if len(values) == 6:
                break
        assert values == sorted(values) and len(set(values)) == 6, values
        assert len(called) >= 3, called
        by_callback.cancel()
        assert by_callback.done
        t0 = ticks_ms()
        while node.server.observers("counter") > 1 and ticks_diff(ticks_ms(), t0) < 2000:
            await sleep_ms(10)
        assert node.server.observers("counter") == 1  # the deregistration arrived
        running[0] = False
        await sensing
        client.close()
        await cancel(serving)

    try:
        run(main())
    finally:
        node.close()


def test_block_wise_through_serve():
    # 3000 bytes down in Block2 blocks (five transfers at once) and up in
    # Block1 blocks and back.
    node = Node()

    async def main():
        serving = asyncio.create_task(aio.serve(node.server))
        client = aio.AsyncClient(block_size=256)
        rs = await asyncio.gather(*[client.get(node.uri("big")) for _ in range(5)])
        for r in rs:
            assert (r.code, r.payload) == (codes.CONTENT, BIG), (r.code, len(r.payload))
            assert r.message.findOption(23) is not None  # it did come in blocks
        r = await client.post(node.uri("echo"), BIG)
        assert (r.code, r.payload) == (codes.CHANGED, BIG), (r.code, len(r.payload))
        client.close()
        await cancel(serving)

    try:
        run(main())
    finally:
        node.close()


def test_nstart_is_kept_per_peer_and_answers_are_matched():
    # Two peers hold CONs unacknowledged for 40 ms, then answer every held
    # one, newest first. With NSTART 1 each peer never holds two at once,
    # yet both hold one at the same time (NSTART is per peer); every answer
    # reaches the task that asked. With NSTART 3, three at once.
    for nstart in (1, 3):
        peers = [RawPeer("hold", 40), RawPeer("hold", 40)]

        async def main():
            peering = [asyncio.create_task(p.run()) for p in peers]
            ep, _ = bound_end_point(nstart=nstart, max_in_flight=32)
            client = aio.AsyncClient(ep)
            both = [0]

            async def watch():
                while peers[0].running:
                    if peers[0].held and peers[1].held:
                        both[0] += 1
                    await sleep_ms(2)

            watching = asyncio.create_task(watch())

            async def ask(p, i):
                body = b"to %d: %d" % (p.port, i)
                r = await client.put(p.uri(), body)
                assert (r.code, r.payload) == (codes.CONTENT, body), (r.payload, body)

            await asyncio.gather(*[ask(p, i) for p in peers for i in range(6)])
            for p in peers:
                p.running = False
            await watching
            for t in peering:
                await t
            client.close()
            ep.close()
            return both[0]

        try:
            both = run(main())
        finally:
            for p in peers:
                p.close()
        assert [p.max_held for p in peers] == [nstart, nstart], [p.max_held for p in peers]
        assert [len(p.mids) for p in peers] == [6, 6]
        assert both > 0


def test_a_full_table_makes_requests_wait_for_a_slot():
    node = Node()

    async def main():
        serving = asyncio.create_task(aio.serve(node.server))
        ep, _ = bound_end_point(max_in_flight=4, nstart=4)
        client = aio.AsyncClient(ep)
        rs = await asyncio.gather(*[client.post(node.uri("echo"), b"%d" % i) for i in range(30)])
        assert [r.payload for r in rs] == [b"%d" % i for i in range(30)]
        assert ep.in_flight == 0
        client.close()
        ep.close()
        await cancel(serving)

    try:
        run(main())
    finally:
        node.close()


def test_typed_errors_as_the_client_raises_them():
    node = Node()
    silent = RawPeer("silent")
    resetting = RawPeer("rst")

    async def main():
        serving = asyncio.create_task(aio.serve(node.server))
        peering = [asyncio.create_task(p.run()) for p in (silent, resetting)]
        ep, _ = bound_end_point(ack_timeout_ms=50, max_retransmit=1)
        client = aio.AsyncClient(ep)

        async def error_of(coro):
            try:
                await coro
            except CoapError as e:
                return e
            raise AssertionError("no error")

        async with aio.AsyncClient() as patient:  # ACK_TIMEOUT 2 s: the deadline comes first
            e = await error_of(patient.get(silent.uri(), timeout_ms=100))
        assert isinstance(e, RequestTimeout), e
        e = await error_of(client.get(silent.uri(), timeout_ms=None))
        assert isinstance(e, Unreachable), e  # two transmissions, no ACK
        e = await error_of(client.get(resetting.uri()))
        assert isinstance(e, Reset), e
        r = await client.get(node.uri("no/such/thing"))
        assert r.code == codes.NOT_FOUND  # an answer, not an error
        try:
            await client.get("coap://[::1")
            raise AssertionError("a bad URI was taken")
        except ValueError:
            pass  # uri.UriError is a ValueError
        assert ep.in_flight == 0
        client.close()
        ep.close()
        for p in (silent, resetting):
            p.running = False
        for t in peering:
            await t
        await cancel(serving)

    try:
        run(main())
    finally:
        node.close()
        silent.close()
        resetting.close()


def test_transfer_timeout_bounds_a_block_wise_transfer_that_never_ends():
    # A server that answers every block with 16 bytes and "more follow":
    # without transfer_timeout_ms the await lasts max_body / 16 exchanges.
    drip = RawPeer("drip", hold_ms=5)

    async def main():
        peering = asyncio.create_task(drip.run())
        client = aio.AsyncClient(transfer_timeout_ms=300)
        assert client.client.transfer_timeout_ms == 300
        start = ticks_ms()
        try:
            await client.get(drip.uri())
            raise AssertionError("an endless body was taken")
        except CoapError as e:
            assert "transfer_timeout_ms" in str(e), e
        took_ms = ticks_diff(ticks_ms(), start)
        # Ended by the bound, not by max_body (4,096 exchanges).
        assert drip.seen < 1000 and took_ms < 20000, (drip.seen, took_ms)
        client.close()
        drip.running = False
        await peering

    try:
        run(main())
    finally:
        drip.close()


def test_a_node_that_serves_and_asks_on_one_end_point():
    # serve(a) and AsyncClient(end_point=a's EndPoint) share one driver;
    # two such nodes ask each other at the same time.
    a = Node()
    b = Node()

    async def main():
        serving = [asyncio.create_task(aio.serve(n.server)) for n in (a, b)]
        ca = aio.AsyncClient(a.ep)
        cb = aio.AsyncClient(b.ep)
        ra, rb = await asyncio.gather(ca.post(b.uri("echo"), b"from a"),
                                      cb.post(a.uri("echo"), b"from b"))
        assert (ra.payload, rb.payload) == (b"from a", b"from b")
        ca.close()
        cb.close()
        async with aio.AsyncClient() as c:
            r = await c.get(a.uri("echo"))  # a still serves
        assert r.payload == b"hello"
        for t in serving:
            await cancel(t)
        assert a.ep.on_queued is None and b.ep.on_queued is None

    try:
        run(main())
    finally:
        a.close()
        b.close()


def test_the_synchronous_api_works_after_serve():
    node = Node()

    async def main():
        serving = asyncio.create_task(aio.serve(node.server))
        async with aio.AsyncClient() as c:
            r = await c.get(node.uri("echo"))
        assert r.payload == b"hello"
        await cancel(serving)
        assert node.ep.on_queued is None

    try:
        run(main())
        from coapy_micro.client import Client

        ep, _ = bound_end_point()
        c = Client(ep)
        h = c.start("post", node.uri("echo"), b"sync again")
        t0 = ticks_ms()
        while not h.done and ticks_diff(ticks_ms(), t0) < 5000:
            node.server.process(5)
            c.process(5)
        assert h.result().payload == b"sync again"
        c.close()
        ep.close()
    finally:
        node.close()


def test_serve_sets_the_collection_policy():
    # What Server.serve() sets (server.set_gc_threshold: half the heap on
    # MicroPython, nothing on CPython), aio.serve() sets too.
    import gc

    from coapy_micro.server import set_gc_threshold

    if RUNTIME == "CPython":
        assert set_gc_threshold() is None
        return
    before = gc.threshold()
    node = Node()
    try:
        heap = gc.mem_free() + gc.mem_alloc()
        gc.threshold(heap >> 1)
        want = gc.threshold()
        gc.threshold(-1)

        async def main():
            serving = asyncio.create_task(aio.serve(node.server))
            await sleep_ms(20)
            await cancel(serving)

        run(main())
        assert gc.threshold() == want and want > 0, (gc.threshold(), want)
    finally:
        gc.threshold(before)
        node.close()


def test_con_notifications_are_retransmitted_by_the_alarm():
    # Every notification CON (notify_con_every=1); the observer (a raw
    # peer) never acknowledges them: serve()'s alarm retransmits each and,
    # after MAX_TRANSMIT_SPAN, the server forgets the observer. No datagram
    # arrives meanwhile, so only the timers can do this.
    import socket

    from raw_peer import header, parse

    node = Node(ack_timeout_ms=60, max_retransmit=2)
    node.server.notify_con_every = 1
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    dest = socket.getaddrinfo("127.0.0.1", node.port)[0][-1]

    async def main():
        serving = asyncio.create_task(aio.serve(node.server))
        # GET /counter with Observe 0: options 6 (Observe, empty = 0), 11 "counter".
        sock.sendto(header(0, 1, 0x7001, b"ob") + b"\x60\x57counter", dest)
        got = []
        t0 = ticks_ms()
        while ticks_diff(ticks_ms(), t0) < 3000:
            try:
                data, _ = sock.recvfrom(1500)
                got.append((ticks_diff(ticks_ms(), t0), parse(data)))
                if len(got) == 1:
                    node.tick()  # the first CON notification
            except OSError:
                pass
            if len(got) > 1 and node.server.observers("counter") == 0:
                break
            await sleep_ms(2)
        await cancel(serving)
        return got

    try:
        got = run(main())
    finally:
        node.close()
        sock.close()
    assert got and got[0][1][0] == 2, got  # the ACK to the registration
    cons = [g for g in got[1:] if g[1][0] == 0]
    assert len(cons) == 3, got  # the notification and its 2 retransmissions
    assert len(set(g[1][2] for g in cons)) == 1, cons  # one MID
    assert node.server.observers("counter") == 0


def test_group_responses_leave_after_their_leisure():
    # A request that came on a second socket registered with the EndPoint
    # (as a multicast group's would) is answered after a random delay within
    # Server(leisure_ms=): only the alarm sends it.
    import socket

    from raw_peer import header, parse

    node = Node()
    node.server.leisure_ms = 300
    group, group_port = bound_end_point()  # its socket only: the group's stand-in
    gsock = group.socket
    node.ep.register(gsock)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)

    async def main():
        serving = asyncio.create_task(aio.serve(node.server))
        await sleep_ms(20)
        t0 = ticks_ms()
        sock.sendto(header(1, 1, 0x7101, b"g") + b"\xb4echo",
                    socket.getaddrinfo("127.0.0.1", group_port)[0][-1])
        got = None
        while got is None and ticks_diff(ticks_ms(), t0) < 3000:
            try:
                got = (ticks_diff(ticks_ms(), t0), parse(sock.recvfrom(1500)[0]))
            except OSError:
                await sleep_ms(2)
        await cancel(serving)
        return got

    try:
        got = run(main())
    finally:
        node.close()
        sock.close()
    assert got is not None, "no response"
    ms, (mtype, code, mid, token, payload) = got
    assert (mtype, code, token, payload) == (1, codes.CONTENT, b"g", b"hello"), got
    assert ms <= 1500, ms
