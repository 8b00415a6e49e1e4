"""Notifications per second one gateway ingests end to end, against the
obvious alternative, in the same run.

    .venv/bin/python tools/bench_gateway.py [--nodes 100] [--resources 10]
        [--rate-from 1500] [--step 1.4] [--refine 2] [--seconds 4]
        [--broker-inflight 1000] [--only gateway|alternative]

End to end means: a node notifies (RFC 7641, NON, a CON every 20th) ->
the gateway turns it into SenML JSON and a row in SQLite -> the MQTT message
(QoS 1, retained, one topic per resource) reaches a subscriber (mosquitto_sub,
QoS 1, through a mosquitto of our own on an ephemeral port). Counted at the
subscriber.

- nodes: one simulator process (CPython) with NODES CoAP servers of the
  project, each on its own port with RESOURCES observable resources. The
  Servers take the registrations and the observe requests; under load the
  simulator sends, for each observer, the notifications its Server would
  send (same bytes: checked against coapy_micro's encoder), without the
  Server's bookkeeping, so that it takes as little as it can of the two
  cores the gateway needs. It offers RATE notifications/s in total, round
  robin, each a new value.
- "coapy gateway": `python -m coapy_micro gateway` (the nodes register at
  its RD; it observes every resource). Two processes: CoAP + SQLite, and
  MQTT (paho).
- "aiocoap + paho": the obvious alternative: aiocoap's client observing the
  same resources (told their URIs: no RD), the same SenML and SQLite code
  (coapy_micro.senml, gateway.store.Store, batched alike), paho-mqtt
  publishing from its network thread (loop_start), QoS 1, retained, the
  same topics, as many messages in flight as the broker takes.

Both use the broker's Receive Maximum (its max_inflight_messages, 1000
here; mosquitto's default of 20 caps a publisher at 20 messages per round
trip, see --broker-inflight).

A load is carried when what arrives per second keeps up with what is
offered (95%) and, once drained, at least 99% of what was sent arrived.
Each side is offered loads growing by --step from --rate-from until one is
not carried, then --refine loads between the last carried and the first
not carried, each on fresh processes (an overloaded aiocoap does not
recover). Its figure is the best load carried. Also printed: CPU per
notification of each side (process CPU over the notifications counted), the
gateway's CPU per 1,000 observed resources when idle, and its memory (RSS)
per 1,000 observed resources (against the same gateway with nothing
registered).

The machine is shared and has 2 cores for the simulator, the broker, the
subscriber and the gateway: figures are indicative. CPU per notification
is steadier than rates on a busy machine. The simulator builds each
notification from two packed structs and the count is taken by the chunk
of mosquitto_sub's output, so that both take as little as they can of the
cores the gateway needs (each step prints their CPU per notification).
Each step also prints the cores the whole machine was busy meanwhile and
how much of that was other work than the step's processes: a step that
other work took cores from says so, and its rate is not the side's.

Environment: BENCH_PROFILE=FILE runs the gateway's CoAP process under
cProfile; BENCH_GW_ARGS adds options to its command line (--mqtt-v311,
--shard-size N: to compare settings).
"""
import argparse
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
PY = sys.executable
HZ = os.sysconf("SC_CLK_TCK")
# A notification's header (type | token length, 2.05, message ID) and its
# options: Observe (3 bytes), Content-Format 0 (no value), payload marker.
_HEAD = struct.Struct(">BBH")
_OPTS = struct.Struct(">BBHH")


def free_port(kind=socket.SOCK_DGRAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid):
    """User + system CPU seconds of a process."""
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / HZ


def machine_cpu_s():
    """CPU seconds the whole machine has been busy (every core, every
    process: /proc/stat less idle and iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / HZ


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


# -- the node simulator (a process of its own) ---------------------------------------


class NodeSim:
    """What one simulated node sends while the load runs: the notifications
    its coapy Server would send (RFC 7641: 2.05, the observer's token,
    Observe increasing, Content-Format text/plain, a new value; NON with a
    CON every 20th), built from the observer's token without the Server's
    bookkeeping, so that the simulator spends little of the two cores the
    gateway needs."""

    def __init__(self, ep, srv):
        self.ep = ep
        self.srv = srv
        self.sock = ep.socket
        self.observers = {}  # resource index -> (remote, token), from its GET with Observe: 0
        self.mid = 0x8000  # apart from the EndPoint's own message ids
        self.seq = 0x100000  # above every Observe value the Server used (it counts from 0)
        self.n = 0

    def datagram(self, k, value):
        remote, token = self.observers[k]
        self.mid = (self.mid + 1) & 0xFFFF
        self.seq += 1
        self.n += 1
        seq = self.seq
        return remote, b"".join((
            _HEAD.pack((0x40 if self.n % 20 == 0 else 0x50) | len(token), 0x45, self.mid),
            token, _OPTS.pack(0x63, seq >> 16, seq & 0xFFFF, 0x60FF), value))

    def check(self):
        """The hand-built datagram is what coapy_micro's encoder makes."""
        from coapy_micro.message import Message

        for k, (remote, token) in self.observers.items():
            mid, seq, n = self.mid, self.seq, self.n
            _, data = self.datagram(k, b"42")
            self.mid, self.seq, self.n = mid, seq, n
            m = Message(Message.NON, 69, b"42", token=token, observe=seq + 1, content_format=0)
            if data != m.encode((mid + 1) & 0xFFFF):
                raise SystemExit("simulator: a notification that our encoder would not make")


def simulate(args):
    from coapy_micro.connection import EndPoint
    from coapy_micro.rd import Registrar
    from coapy_micro.server import Resource, Server

    n, r = args.nodes, args.resources

    def observed(sim, k):
        def reading(req):
            if req.observe == 0:
                sim.observers[k] = (req.remote, req.token)
            return (69, b"0")
        return reading

    nodes = []
    sims = []
    poller = select.poll()
    by_fd = {}
    for i in range(n):
        ep = EndPoint(max_in_flight=64, dedup_size=64)
        ep.bind(("127.0.0.1", 0))
        ep.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        srv = Server(ep, max_observers=2 * r + 4, max_observers_per_resource=2,
                     notify_con_every=20)
        sim = NodeSim(ep, srv)
        for k in range(r):
            srv.add("r%d" % k, Resource(get=observed(sim, k), obs=True, ct=0))
        reg = None
        if args.rd:
            reg = Registrar(srv, "n%03d" % i, rd=args.rd + "/rd", lt_s=3600, timeout_ms=20000)
        nodes.append((ep, srv, reg))
        sims.append(sim)
        by_fd[ep.socket.fileno()] = (ep, srv, reg)
        poller.register(ep.socket, select.POLLIN)
        print("node %d" % ep.socket.getsockname()[1], flush=True)
    print("listening", flush=True)

    def serve(wait_ms):
        # Requests (registrations, observe requests, re-registrations) go to
        # the node's Server; ACKs of our CON notifications are taken and dropped.
        for fd, ev in poller.poll(wait_ms):
            ep, srv, reg = by_fd[fd]
            for _ in range(64):
                rx = ep.process(0)
                if rx is None:
                    break
                if reg is None or not reg.handle(rx):
                    srv.handle(rx)

    def ticks():
        for ep, srv, reg in nodes:
            if reg is not None:
                reg.tick()

    # Ready once every resource has its observer.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        serve(20)
        ticks()
        if all(len(sim.observers) >= r for sim in sims):
            break
    else:
        missing = sum(r - len(sim.observers) for sim in sims)
        print("not ready: %d resources unobserved" % missing, flush=True)
        return 1
    for sim in sims:
        sim.check()
    print("ready", flush=True)
    counter = 0
    i = 0
    while True:
        # "go RATE SECONDS": offer that load; "stop": end.
        cmd = None
        while cmd is None:
            if select.select([sys.stdin], [], [], 0.05)[0]:
                cmd = sys.stdin.readline().split()
            else:
                serve(0)
                ticks()
        if not cmd or cmd[0] != "go":
            return 0
        rate, seconds = float(cmd[1]), float(cmd[2])
        start = time.monotonic()
        end = start + seconds
        sent = 0
        while True:
            now = time.monotonic()
            if now >= end:
                break
            due = int((now - start) * rate)
            burst = 0
            while sent < due and burst < 256:
                sim = sims[i % n]
                counter += 1
                remote, data = sim.datagram((i // n) % r, b"%d" % counter)
                try:
                    sim.sock.sendto(data, remote)
                    sent += 1
                except OSError:
                    pass  # the socket buffer is full: not sent, not counted
                burst += 1
                i += 1
            serve(0)
            if sent >= due:
                time.sleep(0.0005)
        print("sent %d %.3f" % (sent, time.monotonic() - start), flush=True)


# -- the alternative: aiocoap + the same storage + paho -------------------------------


def alternative(args):
    import asyncio

    import aiocoap
    import paho.mqtt.client as mqtt

    from coapy_micro import senml
    from coapy_micro.gateway.store import Store

    uris = [u for u in args.uris.split(",") if u]
    store = Store(args.db)
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="alt-%d" % os.getpid(),
                    protocol=mqtt.MQTTv5)
    # As many QoS 1 messages in flight as the broker takes (its Receive
    # Maximum), as the gateway does: paho's default of 20 would hold it back.
    c.max_inflight_messages_set(args.inflight)
    if args.paho == "thread":
        # paho's own network thread (loop_start): what most programs do.
        c.connect("127.0.0.1", args.mqtt_port)
        c.loop_start()
    count = [0]

    def on_event_loop(loop):
        # paho driven by the asyncio loop itself (its socket callbacks, as
        # paho's asyncio example does): no second thread, writes batched.
        c.on_socket_open = lambda client, ud, sock: loop.add_reader(sock, client.loop_read)
        c.on_socket_close = lambda client, ud, sock: loop.remove_reader(sock)
        c.on_socket_register_write = lambda client, ud, sock: loop.add_writer(
            sock, client.loop_write)
        c.on_socket_unregister_write = lambda client, ud, sock: loop.remove_writer(sock)
        c.connect("127.0.0.1", args.mqtt_port)

        async def misc():
            while True:
                c.loop_misc()
                await asyncio.sleep(1.0)

        return asyncio.ensure_future(misc())

    async def observe(ctx, ep, path, uri):
        req = aiocoap.Message(code=aiocoap.GET, uri=uri, observe=0)
        pr = ctx.request(req)
        topic = "coap/%s/%s" % (ep, path)
        bn = ep + "/"

        def on(resp):
            now = time.time()
            pack = senml.records(resp.payload, resp.opt.content_format, bn, path, now)
            text = senml.dumps(pack)
            store.add(now, ep, path, text)
            store.maybe_flush()
            c.publish(topic, text, qos=1, retain=True)
            count[0] += 1

        first = await pr.response
        on(first)
        async for resp in pr.observation:
            on(resp)

    async def main():
        if args.paho == "asyncio":
            on_event_loop(asyncio.get_running_loop())
        ctx = await aiocoap.Context.create_client_context()
        for u in uris:
            ep, path, uri = u.split("|")
            asyncio.ensure_future(observe(ctx, ep, path, uri))
        print("observing", flush=True)
        while True:
            await asyncio.sleep(0.25)
            store.maybe_flush()

    asyncio.run(main())


# -- the run --------------------------------------------------------------------------


class Counter:
    """mosquitto_sub on coap/#, counting reading messages as they arrive."""

    def __init__(self, port, broker_pid):
        self.n = 0
        self.broker_pid = broker_pid
        self.proc = subprocess.Popen(
            [shutil.which("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(port), "-t", "coap/#",
             "-q", "1", "-F", "%t"], stdout=subprocess.PIPE, bufsize=1 << 16)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        # Counted by the chunk, not by the line: this process shares the
        # two cores with the side measured, so it should take little of
        # them. A line is a topic; the only ones with a '$' (one each) are
        # the status topics (<prefix>/<ep>/$status, <prefix>/$gateway/<id>).
        fd = self.proc.stdout.fileno()
        rest = b""
        while True:
            data = os.read(fd, 1 << 16)
            if not data:
                break
            n, rest = count_readings(rest + data)
            self.n += n

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def count_readings(data):
    """(reading lines among the whole lines of `data`, the unfinished line
    left over): mosquitto_sub's topic lines, the status topics (one '$'
    each) left out."""
    k = data.rfind(b"\n") + 1
    return data.count(b"\n", 0, k) - data.count(b"$", 0, k), data[k:]


def start_broker(folder, inflight):
    """mosquitto of our own on a free port; `inflight`: its
    max_inflight_messages, which it announces as its Receive Maximum."""
    port = free_port(socket.SOCK_STREAM)
    conf = os.path.join(folder, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
                "max_queued_messages 0\nmax_inflight_messages %d\n" % (port, inflight))
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    proc = subprocess.Popen([exe, "-c", conf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise SystemExit("mosquitto did not start")


def start_sim(args, rd=None):
    cmd = [PY, os.path.abspath(__file__), "--sim", "--nodes", str(args.nodes), "--resources",
           str(args.resources), "--rate", str(args.rate), "--seconds", str(args.seconds)]
    if rd:
        cmd += ["--rd", rd]
    sim = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                           bufsize=1)
    ports = []
    for line in sim.stdout:
        if line.startswith("node "):
            ports.append(int(line.split()[1]))
        elif line.startswith("listening"):
            return sim, ports
        else:
            raise SystemExit("simulator: " + line)
    raise SystemExit("the simulator exited")


def wait_ready(sim):
    # The simulator says "ready" once every resource has its observer.
    line = sim.stdout.readline()
    if not line.startswith("ready"):
        raise SystemExit("simulator: " + line)


def step(side, sub, rate, seconds):
    """Offer `rate` notifications/s for `seconds`: what reached the
    subscriber per second (counted from 1 s in to the end), the CPU of the
    side's processes per notification meanwhile, and, once the queues have
    drained, how many of those sent arrived at all."""
    sim, pids = side.sim, side.pids
    # Everything else the load costs: the simulator, the broker, the
    # subscriber and this process (which counts what the subscriber prints).
    others = [sim.pid, sub.broker_pid, sub.proc.pid, os.getpid()]
    n0 = sub.n
    sim.stdin.write("go %g %g\n" % (rate, seconds))
    sim.stdin.flush()
    time.sleep(1.0)
    n1, t1, c1 = sub.n, time.monotonic(), [cpu_s(p) for p in pids + others]
    m1 = machine_cpu_s()
    line = sim.stdout.readline().split()
    n2, t2, c2 = sub.n, time.monotonic(), [cpu_s(p) for p in pids + others]
    m2 = machine_cpu_s()
    offered = int(line[1]) / float(line[2])
    last, quiet = sub.n, time.monotonic()
    while time.monotonic() - quiet < 1.5 and time.monotonic() - t2 < 30:
        time.sleep(0.1)
        if sub.n != last:
            last, quiet = sub.n, time.monotonic()
    got = (n2 - n1) / (t2 - t1)
    each = [(b - a) / max(1, n2 - n1) * 1e6 for a, b in zip(c1, c2)]
    k = len(pids)
    # The cores busy meanwhile, and how much of that was other work than
    # this load's processes: a step that other work on the machine took
    # cores from shows it (its rate is then the machine's, not the side's).
    busy = (m2 - m1) / (t2 - t1)
    ours = sum(b - a for a, b in zip(c1, c2)) / (t2 - t1)
    return {"target": rate, "offered": offered, "rate": got, "cpu_us": sum(each[:k]),
            "cpu_each": each[:k], "others": each[k:], "sent": int(line[1]),
            "arrived": sub.n - n0, "busy": busy, "other_work": max(0.0, busy - ours)}


def sustained(s):
    """A load is carried when what arrives per second keeps up with what is
    offered (95%: the counting window is a few seconds) and, once drained,
    no more than 1% of the notifications sent is missing (none queued
    without end, none dropped in a full socket buffer)."""
    return s["rate"] >= 0.95 * s["offered"] and s["arrived"] >= 0.99 * s["sent"]


def sweep(side, args, sub):
    """The best load `side` carries (see sustained()): loads growing by
    args.step from args.rate_from up to args.rate until one is not carried;
    then args.refine loads between the last carried and the first not
    carried (their geometric middle), each on fresh processes (an
    overloaded aiocoap does not recover, so no load is tried after one that
    was not carried on the same processes)."""
    name = side.name
    steps = []

    def run(rate):
        s = step(side, sub, rate, args.seconds)
        s["ok"] = sustained(s)
        steps.append(s)
        print("  %-24s offered %7.0f/s -> %7.0f/s at the subscriber, %d of %d arrived, CPU %s us "
              "each (simulator, broker, subscriber, counting: %s); cores busy %.2f, other "
              "work %.2f: %s"
              % (name, s["offered"], s["rate"], s["arrived"], s["sent"],
                 " + ".join("%.0f" % c for c in s["cpu_each"]),
                 " + ".join("%.0f" % c for c in s["others"]), s["busy"], s["other_work"],
                 "carried" if s["ok"] else "NOT carried"), flush=True)
        return s

    good = bad = None
    side.start()
    try:
        rate = args.rate_from
        while True:
            s = run(rate)
            if not s["ok"]:
                bad = s
                break
            good = s
            if rate >= args.rate:
                break
            rate = min(rate * args.step, args.rate)
    finally:
        side.stop()
    for _ in range(args.refine):
        if good is None or bad is None or bad["target"] < good["target"] * 1.05:
            break
        side.start()
        try:
            s = run((good["target"] * bad["target"]) ** 0.5)
        finally:
            side.stop()
        if s["ok"]:
            good = s
        else:
            bad = s
    best = dict(good or {"offered": 0.0, "rate": 0.0, "cpu_us": 0.0, "cpu_each": [0.0]})
    # What a carried load is worth: what was offered (the counting window
    # can catch up a backlog from the step's first second and count more).
    best["rate"] = min(best["rate"], best["offered"])
    best["name"] = name
    best["steps"] = steps
    best.update(side.extra)
    return best


def stop_sim(sim):
    try:
        sim.stdin.write("stop\n")
        sim.stdin.flush()
    except OSError:
        pass
    try:
        sim.wait(10)
    except subprocess.TimeoutExpired:
        sim.kill()
        sim.wait()


def count_rows(db):
    import sqlite3

    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
    finally:
        con.close()


class GatewaySide:
    """`coapy gateway` (its process and its MQTT process) and a simulator
    whose nodes register at its RD. The first start also measures memory
    and idle CPU."""

    name = "coapy gateway"

    def __init__(self, args, folder, broker_port):
        self.args = args
        self.folder = folder
        self.broker_port = broker_port
        self.db = os.path.join(folder, "gw.db")
        self.extra = {"rows": 0}
        self.runs = 0

    def start(self):
        args = self.args
        self.runs += 1
        first = self.runs == 1
        port = free_port()
        for suffix in ("", "-wal", "-shm"):  # each start with an empty store
            if os.path.exists(self.db + suffix):
                os.remove(self.db + suffix)
        log = open(os.path.join(self.folder, "gw%d.log" % self.runs), "wb")
        prof = os.environ.get("BENCH_PROFILE")  # a file: run the gateway under cProfile
        pre = [PY, "-m", "cProfile", "-o", prof] if prof else [PY]
        self.gw = subprocess.Popen(
            pre + ["-m", "coapy_micro", "gateway", "--bind", "127.0.0.1", "--port", str(port),
                   "--db", self.db, "--mqtt", "mqtt://127.0.0.1:%d" % self.broker_port,
                   "--status-interval", "0", "--max-registrations", str(args.nodes + 10),
                   # Every simulated node is on this host: it may take the
                   # whole table here.
                   "--max-per-host", str(args.nodes + 10),
                   "--max-observed", str(args.nodes * args.resources + 10),
                   "--max-observed-per-host", str(args.nodes * args.resources + 10)]
            + os.environ.get("BENCH_GW_ARGS", "").split(),
            cwd=ROOT, stdout=log, stderr=log)
        time.sleep(1.0)
        if first:
            self.extra["rss_idle"] = sum(rss_kb(p) for p in [self.gw.pid] + children(self.gw.pid))
        self.sim, ports = start_sim(args, "coap://127.0.0.1:%d" % port)
        wait_ready(self.sim)
        time.sleep(1.0)
        self.pids = [self.gw.pid] + children(self.gw.pid)
        if first:
            # Idle, everything observed: memory, and the CPU of keeping it so.
            c0 = sum(cpu_s(p) for p in self.pids)
            time.sleep(3.0)
            self.extra["idle_cpu"] = (sum(cpu_s(p) for p in self.pids) - c0) / 3.0
            self.extra["rss"] = sum(rss_kb(p) for p in self.pids)

    def stop(self):
        stop_sim(self.sim)
        self.gw.terminate()
        try:
            self.gw.wait(30)
        except subprocess.TimeoutExpired:
            self.gw.kill()
            self.gw.wait()
        self.extra["rows"] += count_rows(self.db)


class AlternativeSide:
    """aiocoap observing the simulator's resources (told their URIs), the
    same SenML and SQLite code, paho publishing: one process. paho: "thread"
    (its network thread, loop_start) or "asyncio" (driven by the event loop
    through its socket callbacks)."""

    def __init__(self, args, folder, broker_port, paho="thread"):
        self.name = "aiocoap + paho" + (" (asyncio)" if paho == "asyncio" else "")
        self.paho = paho
        self.args = args
        self.folder = folder
        self.broker_port = broker_port
        self.db = os.path.join(folder, "alt.db")
        self.extra = {"rows": 0}
        self.runs = 0

    def start(self):
        args = self.args
        self.runs += 1
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.db + suffix):
                os.remove(self.db + suffix)
        self.sim, ports = start_sim(args)
        uris = ",".join("n%03d|r%d|coap://127.0.0.1:%d/r%d" % (i, k, p, k)
                        for i, p in enumerate(ports) for k in range(args.resources))
        log = open(os.path.join(self.folder, "alt%d.log" % self.runs), "wb")
        self.alt = subprocess.Popen(  # (its log: asyncio complains when killed)
            [PY, os.path.abspath(__file__), "--alt", "--uris", uris, "--db", self.db,
             "--mqtt-port", str(self.broker_port), "--inflight", str(args.broker_inflight),
             "--paho", self.paho],
            stdout=subprocess.PIPE, stderr=log, text=True)
        self.alt.stdout.readline()
        wait_ready(self.sim)
        time.sleep(1.0)
        self.pids = [self.alt.pid]

    def stop(self):
        stop_sim(self.sim)
        self.alt.kill()
        self.alt.wait()
        self.extra["rows"] += count_rows(self.db)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=int(os.environ.get("BENCH_NODES", "100")))
    p.add_argument("--resources", type=int, default=int(os.environ.get("BENCH_RESOURCES", "10")))
    p.add_argument("--rate", type=float, default=float(os.environ.get("BENCH_RATE", "40000")),
                   help="the highest load offered (notifications/s)")
    p.add_argument("--rate-from", type=float, default=1500.0,
                   help="the first load offered")
    p.add_argument("--step", type=float, default=1.4,
                   help="each next load is this many times the last")
    p.add_argument("--refine", type=int, default=2,
                   help="loads tried between the last carried and the first not carried")
    p.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", "4")),
                   help="how long each load is offered")
    p.add_argument("--broker-inflight", type=int, default=1000, metavar="N",
                   help="the broker's max_inflight_messages, its Receive Maximum: QoS 1 "
                        "messages a client may have unacknowledged (mosquitto's default is 20)")
    p.add_argument("--only", choices=("gateway", "alternative"),
                   help="measure one side only (no ratio)")
    p.add_argument("--alternatives", default="thread,asyncio", metavar="LIST",
                   help="how the alternative runs paho: thread (loop_start), asyncio (on the "
                        "event loop), or both (default); the gateway is compared with the best")
    p.add_argument("--sim", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--alt", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--rd", help=argparse.SUPPRESS)
    p.add_argument("--uris", help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    p.add_argument("--mqtt-port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--inflight", type=int, default=20, help=argparse.SUPPRESS)
    p.add_argument("--paho", choices=("thread", "asyncio"), default="thread",
                   help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.sim:
        return simulate(args)
    if args.alt:
        return alternative(args)
    for tool in ("mosquitto_sub",):
        if shutil.which(tool) is None:
            raise SystemExit("bench_gateway: %s not found (apt-get install mosquitto-clients)"
                             % tool)
    observed = args.nodes * args.resources
    print("Gateway ingest end to end (node -> SQLite -> MQTT, QoS 1 retained -> subscriber): "
          "%d nodes x %d observable resources, loads from %.0f notifications/s (x%.1f, then %d "
          "between), %.0f s each; broker max_inflight_messages %d; CPython %s"
          % (args.nodes, args.resources, args.rate_from, args.step, args.refine, args.seconds,
             args.broker_inflight, sys.version.split()[0]))
    folder = tempfile.mkdtemp(prefix="bench-gw-")
    broker, port = start_broker(folder, args.broker_inflight)
    results = []
    try:
        sub = Counter(port, broker.pid)
        time.sleep(0.3)
        if args.only != "alternative":
            results.append(sweep(GatewaySide(args, folder, port), args, sub))
        if args.only != "gateway":
            for paho in args.alternatives.split(","):
                results.append(sweep(AlternativeSide(args, folder, port, paho), args, sub))
        sub.stop()
    finally:
        broker.kill()
        broker.wait()
        shutil.rmtree(folder, ignore_errors=True)
    print("  %-24s %12s %12s %14s %12s" % ("best carried", "notif/s", "offered", "CPU us/notif",
                                             "other work"))
    for r in results:
        print("  %-24s %12.0f %12.0f %14.1f %12.2f" % (r["name"], r["rate"], r["offered"],
                                                      r["cpu_us"], r.get("other_work", 0.0)))
    if args.only:
        return 0
    ours = results[0]
    alt = max(results[1:], key=lambda r: r["rate"])  # the alternative at its best
    ratio = ours["rate"] / alt["rate"] if alt["rate"] else float("inf")
    per_k = observed / 1000.0
    print("  SQLite rows: gateway %d, alternative %d" % (ours["rows"], alt["rows"]))
    if ours["cpu_us"] and alt["cpu_us"]:
        print("  CPU per notification at the best load carried: aiocoap + paho %.0f us, coapy "
              "gateway %.0f us (both its processes): %.1fx less"
              % (alt["cpu_us"], ours["cpu_us"], alt["cpu_us"] / ours["cpu_us"]))
    print("  coapy gateway / aiocoap + paho: %.1fx (target >= 5x): %s"
          % (ratio, "met" if ratio >= 5 else "NOT MET"))
    print("  coapy gateway: %.0f notifications/s (target >= 5,000): %s"
          % (ours["rate"], "met" if ours["rate"] >= 5000 else "NOT MET"))
    print("  gateway memory: %.1f MB RSS with nothing registered, %.1f MB with %d observed "
          "resources: %.2f MB per 1,000 observed resources (gateway and MQTT processes)"
          % (ours["rss_idle"] / 1024.0, ours["rss"] / 1024.0, observed,
             (ours["rss"] - ours["rss_idle"]) / 1024.0 / per_k))
    print("  gateway CPU: %.1f%% of a core per 1,000 observed resources when idle; "
          "%.0f us per notification at its best load (CoAP/SQLite process %.0f, MQTT process %.0f)"
          % (ours["idle_cpu"] * 100 / per_k, ours["cpu_us"], ours["cpu_each"][0],
             sum(ours["cpu_each"][1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
