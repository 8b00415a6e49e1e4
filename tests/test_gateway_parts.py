"""The gateway's parts (host only): the SQLite store, the frames between the
gateway and its MQTT process, the bounded outbox, topics and /set payloads;
and the gateway in this process with a CPython node (polling, the terminal
display, removal), no broker needed.
"""
import re
import sqlite3
import threading
import time

import pytest

from coapy_micro.connection import EndPoint
from coapy_micro.gateway.gateway import Gateway, _put_body, topic_part
from coapy_micro.gateway.publisher import FrameReader, Publisher, frame, publish_frame
from coapy_micro.gateway.store import Store
from coapy_micro.rd import Registrar
from coapy_micro.server import Resource, Server
from interop import LOOPBACK
from rdpeers import wait_until


def test_store_batches_readings_and_survives_reopening(tmp_path):
    path = tmp_path / "s.db"
    s = Store(str(path), batch=3, flush_s=60)
    s.add(1.5, "n1", "t", '[{"v":1}]')
    s.add(2.5, "n1", "t", '[{"v":2}]')
    assert s.due() > 0 and s.count() == 0  # waiting for its batch
    s.add(3.5, "n2", "h", '[{"v":3}]')
    assert s.due() == 0
    s.maybe_flush()
    assert s.count() == 3 and s.stored == 3 and s.pending == 0
    s.add(4.5, "n2", "h", '[{"v":4}]')
    s.close()  # writes what waits
    s = Store(str(path))
    assert s.readings() == [(1.5, "n1", "t", '[{"v":1}]'), (2.5, "n1", "t", '[{"v":2}]'),
                            (3.5, "n2", "h", '[{"v":3}]'), (4.5, "n2", "h", '[{"v":4}]')]
    assert s.readings(ep="n2", limit=1) == [(3.5, "n2", "h", '[{"v":3}]')]
    s.close()
    # Plain SQL works on it: the table is documented.
    con = sqlite3.connect(str(path))
    assert con.execute("SELECT COUNT(*) FROM readings WHERE ep='n1'").fetchone() == (2,)
    con.close()


def test_store_keeps_the_sector_and_opens_an_older_file(tmp_path):
    # The same ep in two sectors is two endpoints (RFC 9176 §5): rows say
    # which. A file an older gateway made, without the column, gets it.
    path = tmp_path / "old.db"
    con = sqlite3.connect(str(path))
    con.execute("CREATE TABLE readings (id INTEGER PRIMARY KEY, t REAL NOT NULL, "
                "ep TEXT NOT NULL, path TEXT NOT NULL, senml TEXT NOT NULL)")
    con.execute("INSERT INTO readings (t, ep, path, senml) VALUES (1.0, 'n', 't', '[]')")
    con.commit()
    con.close()
    s = Store(str(path), batch=1)
    s.add(2.0, "n", "t", '[{"v":2}]', "floor1")
    s.add(3.0, "n", "t", '[{"v":3}]', "floor2")
    s.flush()
    assert s.readings(ep="n", d="floor2") == [(3.0, "n", "t", '[{"v":3}]')]
    assert len(s.readings(ep="n")) == 3
    s.close()
    con = sqlite3.connect(str(path))
    assert con.execute("SELECT t, d FROM readings ORDER BY id").fetchall() == [
        (1.0, None), (2.0, "floor1"), (3.0, "floor2")]
    con.close()


def test_store_bounds_what_waits_and_counts_drops(tmp_path):
    s = Store(str(tmp_path / "s.db"), batch=100, flush_s=60, max_pending=3)
    for i in range(5):
        s.add(i, "n", "t", str(i))
    assert s.pending == 3 and s.dropped == 2
    s.flush()
    assert [r[3] for r in s.readings()] == ["2", "3", "4"]  # the oldest went
    s.close()


class _Reg:
    # What Store.save_registration reads of an rd_server.Registration.
    id = "0a0b0c0d"
    ep = "n1"
    d = None
    base = "coap://127.0.0.1:5683"
    base_explicit = False
    lt_s = 600
    attrs = [("et", "sensor")]
    source = ("127.0.0.1", 5683)

    def links_text(self):
        return '</t>;obs'


def test_store_keeps_registrations(tmp_path):
    s = Store(str(tmp_path / "s.db"))
    s.save_registration(_Reg(), 1234.5)
    (r,) = s.registrations()
    assert r == {"id": "0a0b0c0d", "ep": "n1", "d": None, "base": "coap://127.0.0.1:5683",
                 "base_explicit": False, "lt": 600, "expires": 1234.5, "links": "</t>;obs",
                 "attrs": [("et", "sensor")], "source": ("127.0.0.1", 5683)}
    s.save_registration(_Reg(), 2000.0)  # replaced, not added
    assert [x["expires"] for x in s.registrations()] == [2000.0]
    s.delete_registration("0a0b0c0d")
    assert s.registrations() == []
    s.close()


def test_a_failed_write_is_kept_and_tried_again_not_waited_for(tmp_path):
    # Another process holds the file's write lock (a backup, an sqlite3
    # shell): the store waits briefly, keeps its rows, counts the failure
    # and writes them once the lock is let go.
    path = str(tmp_path / "s.db")
    s = Store(path, batch=1, retry_s=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    s.add(1.0, "n", "t", "[1]")
    s.add(2.0, "n", "t", "[2]")
    assert s.flush() is False
    assert s.errors == 1 and "locked" in s.last_error and s.pending == 2 and s.dropped == 0
    assert 0 < s.due() <= 0.2  # not again at once, however many rows wait
    # Registrations too: nothing written, False, counted.
    assert s.save_registrations({"0a0b0c0d": (_Reg(), 10.0)}) is False and s.errors == 2
    other.execute("ROLLBACK")
    other.close()
    wait_until(lambda: s.due() == 0, 10, what="the retry time")
    assert s.flush() is True and s.pending == 0 and s.stored == 2
    assert s.save_registrations({"0a0b0c0d": (_Reg(), 10.0)}) is True
    assert [r["id"] for r in s.registrations()] == ["0a0b0c0d"]
    assert [r[3] for r in s.readings()] == ["[1]", "[2]"]
    s.close()


def test_a_store_refuses_a_file_another_store_holds_or_cannot_open(tmp_path):
    # Two gateways on one file would both observe every node and store
    # every reading twice: the second is refused, clearly.
    from coapy_micro.gateway.store import StoreError

    path = str(tmp_path / "s.db")
    first = Store(path)
    with pytest.raises(StoreError, match="in use by another gateway"):
        Store(path)
    first.close()  # the lock goes with it
    Store(path).close()
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"garbage" * 1000)
    for _ in range(2):  # (a refused file keeps no lock: the second try says the same)
        with pytest.raises(StoreError, match="not a database"):
            Store(str(bad))
    with pytest.raises(StoreError, match="No such file or directory"):
        Store(str(tmp_path / "missing" / "s.db"))


def test_frames_split_anywhere():
    data = (publish_frame("coap/n/t", b"[1]", 1, True) + frame(b"S", b"coap/n/t/set")
            + publish_frame("c/ü", b"", 0, False))
    for cut in range(len(data) + 1):
        r = FrameReader()
        got = r.feed(data[:cut]) + r.feed(data[cut:])
        assert [k for k, b in got] == [b"P", b"S", b"P"], cut
    with pytest.raises(ValueError):
        FrameReader(max_body=10).feed(frame(b"P", b"x" * 11))


def test_outbox_is_bounded_and_counts_what_it_drops():
    p = Publisher("127.0.0.1", 1, "coap", "t", qos=1, max_queue=3)
    for i in range(5):
        kind, body = FrameReader().feed(publish_frame("coap/n/t", b"%d" % i, 1, True))[0]
        p.take(kind, body)
    assert [m[1] for m in p.outbox] == [b"2", b"3", b"4"] and p.dropped == 2
    assert p.outbox[0] == ("coap/n/t", b"2", 1, True)
    p.take(b"S", b"coap/n/t/set")
    p.take(b"S", b"coap/n/t/set")
    assert list(p.topics) == ["coap/n/t/set"]
    p.take(b"U", b"coap/n/t/set")
    assert list(p.topics) == []


def test_publish_frames_taken_from_the_pipe_split_anywhere():
    # The publisher reads publish frames straight from its input buffer:
    # however the pipe splits them, the same messages and subscriptions.
    from coapy_micro.gateway.publisher import MqttLink

    link = MqttLink.__new__(MqttLink)  # only its framing: no process
    link.qos = 1
    head = link.head("coap/n/\u00fc", retain=True)
    data = (publish_frame("coap/n/t", b"[1]", 1, True) + frame(b"S", b"coap/n/t/set")
            + publish_frame("coap/n/\u00fc", b"", 0, False)
            + frame(b"P", head + b"[2]") + publish_frame("coap/n/t", b"[3]", 1, True))
    want = [("coap/n/t", b"[1]", 1, True), ("coap/n/\u00fc", b"", 0, False),
            ("coap/n/\u00fc", b"[2]", 1, True), ("coap/n/t", b"[3]", 1, True)]
    for cut in range(len(data) + 1):
        p = Publisher("127.0.0.1", 1, "coap", "t", qos=1)
        r = FrameReader()
        r.scan(memoryview(data)[:cut], p.take_frame)
        r.scan(data[cut:], p.take_frame)
        assert list(p.outbox) == want and list(p.topics) == ["coap/n/t/set"], cut
        assert not r.buf
    assert publish_frame("coap/n/\u00fc", b"[2]", 1, True) == frame(b"P", head + b"[2]")


def test_a_message_the_broker_refuses_is_counted_dropped_not_published():
    # MQTT 5 §3.4.2.1: a PUBACK's reason code of 0x80 or more says the
    # broker did not take the message; 0x10 (no matching subscribers) is a
    # success.
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.reasoncodes import ReasonCode

    p = Publisher("127.0.0.1", 1, "coap", "t", qos=1)
    for mid, code in enumerate((0x00, 0x10, 0x97, 0x87)):
        p.inflight[mid] = ("coap/n/t", b"1", 1, True)  # as pump() hands it to paho
        p._on_publish(None, None, mid, ReasonCode(PacketTypes.PUBACK, identifier=code), None)
    assert not p.inflight
    assert (p.acked, p.published, p.dropped, p.refused) == (4, 2, 2, 2)
    assert "Not authorized" in p.last_error


def test_the_publisher_ends_quietly_when_the_gateway_is_gone():
    # The gateway killed: both pipes closed on its side. The publisher's
    # next status line meets a broken pipe; it stops without a traceback.
    import subprocess
    import sys

    from coapy_micro.gateway import publisher

    p = subprocess.Popen([sys.executable, publisher.__file__, "127.0.0.1", "1", "coap", "t",
                          "1", "10", "5"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdout.close()
    p.stdin.close()
    try:
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read()
    p.stderr.close()
    assert p.returncode == 0 and b"Traceback" not in err, err


def test_a_readings_senml_text_is_what_senml_writes():
    # The gateway writes the common case (a number in text) from a
    # per-resource head; every payload must come out as senml.dumps(records()).
    import json
    import types

    from coapy_micro import senml
    from coapy_micro.gateway.gateway import Node, Target

    reg = types.SimpleNamespace(ep="node-1", d=None, base="coap://127.0.0.1:5683",
                                links_text=lambda: "")
    node = Node(reg, "coap")
    t = Target(node, None, "coap://127.0.0.1:5683/sensors/temp", "sensors/temp")
    now = 1716200000.25
    cases = [(b"21.5", 0), (b"21.50", None), (b" -3 ", 0), (b"7", 0), (b"1e3", 0),
             (b"12345678901234567890", 0), (b".5", 0), (b"+2", 0), (b"1_000", 0),
             (b"nan", 0), (b"inf", 0), (b"-inf", 0), (b"1e999", 0), (b"true", 0),
             (b"on", 0), (b"", 0), (b"\xff\xfe", 0), (b"21.5", 50), (b"21.5", 42),
             (b'[{"n":"a","v":1}]', 110), ("\u00e9t\u00e9".encode(), 0), (b"0x10", 0)]
    for payload, cf in cases:
        want = senml.dumps(senml.records(payload, cf, node.bn, t.name, now))
        got = t.senml_text(payload, cf, now)
        assert got == want, (payload, cf, got, want)
        json.loads(got)  # and it is JSON
    for now in (0.1, 1e-7, 1716200000.0, 17162000001234.5):
        assert t.senml_text(b"1", 0, now) == senml.dumps(senml.records(b"1", 0, node.bn,
                                                                        t.name, now))


def test_topics_and_set_payloads():
    # One to one: no two names share a topic level (MQTT 5 §4.7.1: '/'
    # separates levels, '+' and '#' are wildcards; '@' joins ep and sector).
    assert topic_part("a/b+c#d") == "a%2Fb%2Bc%23d"
    assert topic_part("node_1") == "node_1" and topic_part("node/1") == "node%2F1"
    assert topic_part("a@b") == "a%40b" and topic_part("50%") == "50%25"
    assert topic_part("x\x1b[2J\x00\x85") == "x%1B[2J%00%85"
    assert topic_part("büro") == "büro"
    assert topic_part("$status") == "%24status"  # the gateway's own levels start with $
    names = ["a/b", "a_b", "a%2Fb", "a@b", "a%40b", "a+b", "a#b", "a", "b", "$a", "%24a"]
    assert len({topic_part(n) for n in names}) == len(names)
    # A JSON /set payload nested past the decoder's depth (anyone who may
    # publish there can send one) is sent as it came, not an exception out
    # of the gateway's loop.
    deep = b"[" * 100000
    assert _put_body(deep) == (deep, 0)
    assert _put_body(b"1") == (b"1", 0)
    assert _put_body(b'[{"bn":"n/","n":"led","v":1}]') == (b"1", 0)
    assert _put_body(b'[{"vb":true}]') == (b"true", 0)
    assert _put_body(b'[{"vs":"on"}]') == (b"on", 0)
    assert _put_body(b"\xff\x00") == (b"\xff\x00", 42)


class _GatewayThread:
    def __init__(self, **kw):
        kw.setdefault("db", None)
        self.logged = []
        own = kw.get("log")

        def log(text):
            self.logged.append(text)
            if own is not None:
                own(text)

        kw["log"] = log
        self.gw = Gateway(bind=LOOPBACK, port=0, **kw)
        self.port = self.gw.address[1]
        self.rounds = []
        self.t = threading.Thread(target=self.gw.run,
                                  kwargs={"on_round": lambda g: self.rounds.append(1)},
                                  daemon=True)
        self.t.start()

    def registered(self, ep):
        """The gateway's Node for `ep` once the gateway has taken in its
        whole registration. (The gateway's thread puts a Node in `nodes`
        first and then adds its resources one by one, opening
        observations: a test that read `targets` as soon as `nodes` was
        not empty saw a part of them, now and then.)"""
        line = "gateway: %s registered from " % ep
        wait_until(lambda: any(x.startswith(line) for x in list(self.logged)), 30,
                   what="the registration of %s" % ep)
        (n,) = [n for n in list(self.gw.nodes.values()) if n.ep == ep]
        return n

    def stop(self):
        self.gw.stop()
        self.t.join(10)
        self.gw.close()


class _NodeThread:
    def __init__(self, rd_port, ep="pnode", lt_s=60, payload=None, base=None, host=LOOPBACK,
                 more=()):
        self.ep = EndPoint()
        self.ep.bind((host, 0))
        self.srv = Server(self.ep)
        self.value = 0
        self.failing = False
        self.notify = False
        self.srv.add("sensors/temp", Resource(get=self.temp, rt="temperature-c", obs=True, ct=0))
        self.srv.add("sys/uptime", Resource(get=lambda r: (69, b"42"), rt="uptime-s", ct=0))
        self.srv.add("info", Resource(get=lambda r: (69, b"x"), ct=0))
        for path, res in more:
            self.srv.add(path, res)
        self.reg = Registrar(self.srv, ep, rd="coap://%s:%d/rd" % (LOOPBACK, rd_port), lt_s=lt_s,
                             timeout_ms=3000, payload=payload, base=base)
        self.stopped = False
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def temp(self, request):
        if self.failing:
            return (163, b"sensor not ready")  # 5.03
        return (69, b"%d" % self.value)

    def loop(self):
        while not self.stopped:
            self.reg.process(20)
            if self.notify:
                path = "sensors/temp" if self.notify is True else self.notify
                self.notify = False
                self.srv.notify(path)
        self.reg.close(3000)

    def stop(self):
        self.stopped = True
        self.t.join(10)
        self.ep.close()

    def vanish(self):
        """Stop without deregistering (a node that lost power)."""
        self.reg.close = lambda timeout_ms=0: None
        self.stop()


def test_gateway_observes_polls_and_shows_what_it_does():
    g = _GatewayThread(poll=["rt=uptime-s"], poll_interval_s=0.5)
    node = None
    try:
        node = _NodeThread(g.port)
        gw = g.gw
        wait_until(lambda: gw.notifications >= 1 and any(
            t.count >= 2 for n in list(gw.nodes.values()) for t in n.targets if t.mode == "poll"),
            30, what="an observed and two polled readings")
        (n,) = gw.nodes.values()
        modes = {t.path: t.mode for t in n.targets}
        assert modes == {"sensors/temp": "observe", "sys/uptime": "poll", "info": None}, modes
        text = "\n".join(gw.render())
        assert re.search(r": 1 endpoint\b", text) and "pnode" in text and "online" in text, text
        assert "/sensors/temp" in text and "observe" in text and "/sys/uptime" in text, text
        assert "notifications" in text and "dropped 0" in text, text
        up = [t for t in n.targets if t.path == "sys/uptime"][0]
        assert up.last == [{"bn": "pnode/", "n": "sys/uptime", "bt": up.last_t, "v": 42}], up.last
        node.stop()  # deregisters: the gateway forgets the endpoint
        node = None
        wait_until(lambda: not gw.nodes, 20, what="the removal")
        assert "0 endpoints" in "\n".join(gw.render())
    finally:
        if node is not None:
            node.stop()
        g.stop()


def test_gateway_notices_a_failed_observation_and_observes_again():
    g = _GatewayThread()
    node = _NodeThread(g.port, "flaky")
    try:
        gw = g.gw
        wait_until(lambda: gw.notifications >= 1, 30, what="the first reading")
        (n,) = gw.nodes.values()
        (t,) = [t for t in n.targets if t.mode == "observe"]
        # An error notification ends the observation (RFC 7641 §4.2): the
        # sensor fails for a moment.
        node.failing = True
        node.notify = True  # the node's own thread sends it
        wait_until(lambda: t.failed is not None, 20, what="the failure being noticed")
        assert n.status == "offline" and n.reason.startswith("/sensors/temp"), (n.status, n.reason)
        assert gw.errors == 1, gw.errors
        node.failing = False
        node.value = 7
        wait_until(lambda: t.failed is None and n.status == "online", 30,
                   what="the observation coming back")
        assert t.last[0]["v"] == 7, t.last
    finally:
        node.stop()
        g.stop()


def test_links_to_other_hosts_are_not_observed():
    logged = []
    g = _GatewayThread(log=logged.append)
    node = _NodeThread(g.port, "sneaky", payload='</sensors/temp>;obs,<coap://10.9.9.9/x>;obs,'
                                                  '<//10.9.9.8:5683/y>;obs')
    try:
        gw = g.gw
        wait_until(lambda: gw.notifications >= 1, 30, what="the node's own reading")
        (n,) = gw.nodes.values()
        assert [t.path for t in n.targets] == ["sensors/temp"], [t.uri for t in n.targets]
        assert sum("on another host; left alone" in line for line in logged) == 2, logged
    finally:
        node.stop()
        g.stop()


def test_an_expired_registration_takes_the_endpoint_offline():
    logged = []
    g = _GatewayThread(log=logged.append)
    node = _NodeThread(g.port, "mortal", lt_s=2)
    try:
        gw = g.gw
        wait_until(lambda: gw.notifications >= 1, 30, what="the first reading")
        (n,) = gw.nodes.values()
        assert n.status == "online"
        node.vanish()
        wait_until(lambda: not gw.nodes, 20, what="the registration expiring")
        assert n.status == "offline" and n.reason == "registration expired", (n.status, n.reason)
        assert "gateway: mortal registration expired" in logged, logged
        assert all(t.obs is None for t in n.targets)  # observations cancelled
    finally:
        g.stop()


def test_host_names_are_not_looked_up():
    logged = []
    g = _GatewayThread(log=logged.append)
    node = _NodeThread(g.port, "named", base="coap://localhost:9")
    try:
        n = g.registered("named")
        assert n.targets == [] and g.gw.watched == 0, n.targets
        assert any("coap://localhost:9/sensors/temp is a host name, not an address" in x
                   for x in logged), logged
    finally:
        node.stop()
        g.stop()


def test_observed_resources_are_bounded():
    logged = []
    g = _GatewayThread(log=logged.append, max_observed=1)
    node = _NodeThread(g.port, "greedy", payload='</sensors/temp>;obs,</sys/uptime>;obs')
    try:
        gw = g.gw
        wait_until(lambda: gw.notifications >= 1, 30, what="the first resource's reading")
        (n,) = gw.nodes.values()
        assert [t.mode for t in n.targets] == ["observe", None], [t.mode for t in n.targets]
        assert any("/sys/uptime not observed: 1 resources watched already" in x
                   for x in logged), logged
    finally:
        node.stop()
        g.stop()


def test_one_host_cannot_take_the_watched_table():
    # The RD lets a host hold max_per_source registrations of max_links
    # links each: by default that product is the whole watched table, so
    # the gateway also bounds what one host's endpoints have watched
    # (max_watched_per_host, a quarter of max_observed by default).
    assert Gateway(bind=LOOPBACK, port=0, db=None, max_observed=4096).max_watched_per_host == 1024
    logged = []
    g = _GatewayThread(log=logged.append, max_observed=8, max_watched_per_host=1)
    nodes = []
    try:
        gw = g.gw
        nodes.append(_NodeThread(g.port, "first"))
        wait_until(lambda: gw.notifications >= 1, 30, what="the first node's reading")
        nodes.append(_NodeThread(g.port, "second"))  # the same host
        wait_until(lambda: len(gw.nodes) == 2, 30, what="the second registration")
        second = [n for n in gw.nodes.values() if n.ep == "second"][0]
        assert [t.mode for t in second.targets if t.path == "sensors/temp"] == [None]
        assert any("second: /sensors/temp not observed: its host 127.0.0.1 has 1 resources "
                   "watched already" in x for x in logged), logged
        assert gw.watched_by_host == {"127.0.0.1": 1} and gw.watched == 1, gw.watched_by_host
        # Another host still gets its share.
        other = _NodeThread(g.port, "elsewhere", host="127.0.0.2")
        nodes.append(other)
        wait_until(lambda: any(n.ep == "elsewhere" and any(t.count for t in n.targets)
                               for n in list(gw.nodes.values())), 30, what="the other host's reading")
        assert gw.watched_by_host == {"127.0.0.1": 1, "127.0.0.2": 1}, gw.watched_by_host
        nodes[0].stop()  # deregisters: its host's share is free again
        nodes.pop(0)
        wait_until(lambda: "127.0.0.1" not in gw.watched_by_host, 20, what="the share freed")
        assert gw.watched == 1, gw.watched
    finally:
        for n in nodes:
            n.stop()
        g.stop()


def test_a_reading_no_decoder_can_read_does_not_stop_the_gateway():
    # SenML JSON nested a few thousand deep takes a recursive decoder past
    # its depth (RecursionError): once, one such notification ended the
    # loop every node's readings go through. Kept as data instead.
    deep = Resource(get=lambda r: (69, b"[" * 3000), obs=True, ct=110)
    g = _GatewayThread()
    node = _NodeThread(g.port, "deep", payload="</deep>;obs,</sensors/temp>;obs",
                       more=[("deep", deep)])
    try:
        gw = g.gw
        wait_until(lambda: all(t.count for n in list(gw.nodes.values()) for t in n.targets)
                   and gw.nodes, 30, what="both readings")
        (n,) = gw.nodes.values()
        (t,) = [t for t in n.targets if t.path == "deep"]
        assert "vd" in t.last[0] and g.t.is_alive(), t.last
        node.value = 5
        node.notify = True
        wait_until(lambda: [t.last[0].get("v") for t in n.targets if t.path == "sensors/temp"]
                   == [5], 20, what="the next reading")
        assert g.t.is_alive()
    finally:
        node.stop()
        g.stop()


def test_no_data_topic_is_a_command_or_status_topic():
    # A resource /x/set would have the command topic of /x as its data
    # topic, and the gateway, subscribed there, would take its own
    # readings for commands; /$status would be the endpoint's status.
    # Segments "set" are written %73et and '$' %24; a link that differs
    # from another only in what a topic does not name (a port) is left
    # alone, and the log says so.
    logged = []
    g = _GatewayThread(log=logged.append)
    node = _NodeThread(g.port, "topics",
                       payload="</x>;obs,</x/set>;obs,</$status>;obs,</set/result>;obs,"
                               "<coap://127.0.0.1:9/x>;obs")
    try:
        n = g.registered("topics")
        topics = {t.path: t.topic for t in n.targets}
        assert topics == {"x": "coap/topics/x", "x/set": "coap/topics/x/%73et",
                          "$status": "coap/topics/%24status",
                          "set/result": "coap/topics/%73et/result"}, topics
        controls = set(n.by_set) | {k + "/result" for k in n.by_set} | {"coap/topics/$status"}
        assert not controls & set(topics.values()), controls & set(topics.values())
        assert any("coap://127.0.0.1:9/x has the topic of" in x for x in logged), logged
    finally:
        node.stop()
        g.stop()


def test_control_characters_from_a_registrant_reach_no_terminal_or_topic():
    # A link's path is percent-decoded: %1B is ESC, which the gateway's
    # terminal would act on. Shown as \x1b, and %1B in its MQTT topic.
    g = _GatewayThread()
    node = _NodeThread(g.port, "esc", payload="</x%1B[2J%07>;obs")
    try:
        gw = g.gw
        wait_until(lambda: gw.nodes and all(t.failed for n in list(gw.nodes.values())
                                            for t in n.targets), 30,
                   what="the observation failing (the node has no such resource)")
        (n,) = gw.nodes.values()
        (t,) = n.targets
        assert t.path == "x\x1b[2J\x07", t.path  # what the link names, decoded
        assert t.topic == "coap/esc/x%1B[2J%07", t.topic
        text = "\n".join(gw.render())
        assert "\x1b" not in text and "\x07" not in text, text
        assert "/x\\x1b[2J\\x07" in text, text
    finally:
        node.stop()
        g.stop()


def test_status_display_in_the_terminal(tmp_path):
    from coapy_micro.gateway.command import Terminal

    class Out:
        def __init__(self):
            self.text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass

        def isatty(self):
            return False

    out = Out()
    term = Terminal(0.0001, out)
    g = _GatewayThread()
    try:
        term.round(g.gw)
        term.event("gateway: something happened")
    finally:
        g.stop()
    assert "coapy gateway on 127.0.0.1:" in out.text and "notifications 0" in out.text, out.text
    assert out.text.endswith("gateway: something happened\n"), out.text


def test_a_locked_store_neither_stops_nor_stalls_the_gateway(tmp_path):
    # The file's write lock held by another process while a node registers:
    # the registration cannot be saved, the loop goes on (the RD answers,
    # readings come), the failure is told once and shown, and the
    # registration is saved once the lock is let go.
    path = str(tmp_path / "gw.db")
    logged = []
    g = _GatewayThread(db=path, log=logged.append)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    node = None
    try:
        gw = g.gw
        node = _NodeThread(g.port, "locked")
        wait_until(lambda: gw.notifications >= 1 and gw.store.errors >= 2, 30,
                   what="a reading while the store fails")
        assert g.t.is_alive()
        told = [x for x in logged if "the store" in x and "failed" in x]
        assert len(told) == 1 and "database is locked" in told[0], logged
        text = "\n".join(gw.render())
        assert "store: " in text and "failed writes" in text and "database is locked" in text, text
        assert gw.counters()["store_errors"] >= 2
        other.execute("ROLLBACK")
        other.close()
        other = None
        reader = sqlite3.connect(path)
        try:
            wait_until(lambda: reader.execute(
                "SELECT ep FROM registrations").fetchall() == [("locked",)], 30,
                what="the registration saved after the lock went")
            wait_until(lambda: reader.execute("SELECT COUNT(*) FROM readings").fetchone()[0] >= 1,
                       30, what="the reading written after the lock went")
        finally:
            reader.close()
    finally:
        if other is not None:
            other.close()
        if node is not None:
            node.stop()
        g.stop()


def test_the_command_refuses_a_store_it_cannot_use_in_one_line(tmp_path):
    import subprocess
    import sys

    from coapy_micro.gateway.store import Store as _S

    def run(db):
        p = subprocess.run([sys.executable, "-m", "coapy_micro", "gateway", "--bind", LOOPBACK,
                            "--port", "0", "--db", db, "--seconds", "0",
                            "--status-interval", "0"],
                           capture_output=True, text=True, timeout=120)
        return p.returncode, p.stderr.strip().splitlines()

    bad = tmp_path / "bad.db"
    bad.write_bytes(b"garbage" * 1000)
    rc, err = run(str(bad))
    assert rc == 1 and err == ["coapy gateway: cannot use the store %s: file is not a database"
                               % bad], err
    rc, err = run(str(tmp_path / "missing" / "x.db"))
    assert rc == 1 and len(err) == 1 and "No such file or directory" in err[0], err
    held = _S(str(tmp_path / "held.db"))  # as another gateway would
    try:
        rc, err = run(str(tmp_path / "held.db"))
    finally:
        held.close()
    assert rc == 1 and len(err) == 1 and "in use by another gateway" in err[0], err


def test_a_resource_notifying_past_its_rate_has_the_excess_dropped_and_counted(tmp_path):
    # Each resource has a token bucket (burst readings, refilled at
    # rate_per_s) before the store and the broker: a node that notifies too
    # fast cannot fill the disk and the MQTT queue for everyone. Here the
    # bucket holds 2 and hardly refills: the third reading on is dropped.
    logged = []
    g = _GatewayThread(db=str(tmp_path / "gw.db"), log=logged.append, rate_per_s=0.001,
                       burst=2)
    node = _NodeThread(g.port, "chatty")
    try:
        gw = g.gw
        wait_until(lambda: gw.notifications >= 1, 30, what="the first reading")
        (n,) = gw.nodes.values()
        (t,) = [t for t in n.targets if t.mode == "observe"]
        for i in range(1, 5):
            node.value = i
            node.notify = True  # one at a time: each seen before the next
            wait_until(lambda: gw.notifications + gw.limited >= 1 + i, 30,
                       what="notification %d" % i)
        assert gw.notifications == 2 and gw.limited == 3, (gw.notifications, gw.limited)
        assert t.limited == 3 and n.limited == 3 and t.last[0]["v"] == 1, t.last
        assert gw.counters()["rate_limited"] == 3
        told = [x for x in logged if "faster than" in x]
        assert told == ["gateway: chatty /sensors/temp notifies faster than 0.001 readings/s "
                        "(burst 2): the excess is dropped and counted"], logged
        text = "\n".join(gw.render())
        assert "rate-limited 3" in text and "3 over its rate limit" in text, text
        gw.store.flush()
        import json

        assert [json.loads(r[3])[0]["v"] for r in gw.store.readings()] == [0, 1]
    finally:
        node.stop()
        g.stop()



def test_notifications_an_observation_cannot_read_whole_are_counted_and_shown():
    # A body larger than a block that changes at every GET (its time inside)
    # is never read whole (RFC 7959 §2.4: the client gives up on a body
    # that changed between blocks): the observation counts it missed, and
    # the gateway tells it instead of staying silent.
    import json
    import time

    from coapy_micro.server import Resource

    def pack(request):
        return (69, json.dumps([{"bn": "dev/", "bt": time.time(), "n": "t%d" % i, "v": i}
                                for i in range(60)]).encode())

    logged = []
    g = _GatewayThread(log=logged.append)
    node = _NodeThread(g.port, "bulky", payload="</pack>;obs;ct=110",
                       more=[("pack", Resource(get=pack, obs=True, ct=110))])
    try:
        gw = g.gw
        wait_until(lambda: gw.nodes and any(t.obs is not None for n in list(gw.nodes.values())
                                            for t in n.targets), 30, what="the observation")
        (n,) = gw.nodes.values()
        (t,) = n.targets

        def missed():
            if gw.missed == 0:
                node.notify = "pack"  # again, until one is missed
            return gw.missed

        wait_until(missed, 60, interval=0.5, what="a missed notification counted")
        assert t.missed == gw.missed == n.missed and gw.counters()["missed"] == gw.missed
        assert t.count == 0 and gw.notifications == 0  # never a first block as the body
        told = [x for x in logged if "could not be read whole" in x]
        assert told and told[0].startswith("gateway: bulky /pack: "), logged
        text = "\n".join(gw.render())
        assert "missed %d" % gw.missed in text and "notifications missed" in text, text
    finally:
        node.stop()
        g.stop()


def test_resources_whose_topics_a_broker_would_refuse_are_left_alone_and_told():
    # mosquitto disconnects a client publishing on a topic of more than 200
    # levels, and MQTT 5 §4.7.3 caps a topic at 65,535 bytes: such a message,
    # resent at every reconnect, would stop everyone's readings. The gateway
    # leaves the resource alone at registration (max_topic_levels 64,
    # max_topic_bytes 1024 by default) and says so. A link whose path does
    # not decode (a percent-escape that is no UTF-8) is told too.
    logged = []
    g = _GatewayThread(log=logged.append)
    deep = "/".join(["a"] * 250)
    node = _NodeThread(g.port, "deep", payload="</sensors/temp>;obs,</%s>;obs,</%s>;obs,</x%%FF>;obs"
                       % (deep, "b" * 1100))
    try:
        gw = g.gw
        wait_until(lambda: gw.notifications >= 1, 30, what="the ordinary resource's reading")
        (n,) = gw.nodes.values()
        assert [t.path for t in n.targets] == ["sensors/temp"], [t.path[:20] for t in n.targets]
        assert gw.watched == 1
        assert any(x.startswith("gateway: deep: /a/a/a") and "254 levels" in x and "left alone"
                   in x for x in logged), logged
        assert any(x.startswith("gateway: deep: /bbbb") and "5 levels and 1121 bytes (at most 64 and 1024)"
                   in x for x in logged), logged
        assert any("/x%FF cannot be used (" in x and "left alone" in x for x in logged), logged
    finally:
        node.stop()
        g.stop()


def test_the_rd_takes_max_links_ordinary_links():
    # max_link_attrs follows max_links: 64 links of 4 attributes each
    # (rt, if, ct, obs) are one registration, not a 4.13.
    g = _GatewayThread()
    links = ",".join('</s%d>;rt="temperature-c";if=sensor;ct=0;obs' % i for i in range(64))
    node = _NodeThread(g.port, "many", payload=links)
    try:
        gw = g.gw
        n = g.registered("many")
        assert len(n.targets) == 64 and gw.watched == 64, len(n.targets)
    finally:
        node.stop()
        g.stop()



class _PipeCounter:
    """Stands for the MqttLink in the loop: what waits for the pipe, and the
    writes that took it."""

    def __init__(self):
        self.pending_bytes = 0
        self.writes = []

    def flush(self):
        self.writes.append(self.pending_bytes)
        self.pending_bytes = 0


def test_frames_for_the_mqtt_process_are_written_together_and_never_left_waiting():
    # Readings are handed to the MQTT process a write at a time per
    # mqtt_hold_ms (each write wakes it, and each of its rounds costs a TCP
    # segment to the broker): frames queued over several loop rounds go in
    # one write, and the last ones go when nothing else wakes the loop.
    import os

    gw = Gateway(bind=LOOPBACK, port=0, db=None, mqtt_hold_ms=300)
    r, w = os.pipe()
    try:
        link = _PipeCounter()
        gw.mqtt = link
        rounds = []

        def wake():
            # A stand-in for a shard's datagram: a reading queued, and
            # another wake-up for the next round, three in all.
            os.read(r, 1)
            rounds.append(1)
            link.pending_bytes += 100
            if len(rounds) < 3:
                os.write(w, b"x")

        gw._watch(r, wake)
        os.write(w, b"x")
        gw.run(seconds=1.5)
        assert len(rounds) == 3
        assert link.pending_bytes == 0, "frames left waiting in the gateway"
        assert link.writes == [300], link.writes
    finally:
        gw.mqtt = None
        gw.close()
        os.close(r)
        os.close(w)


class _FullPipe:
    """Stands for the MqttLink in the loop with a real pipe that nobody
    reads for a while: full, as when the MQTT process is stuck."""

    def __init__(self):
        import os

        self.r, self.w = os.pipe()
        os.set_blocking(self.w, False)
        try:
            while True:
                os.write(self.w, b"x" * 65536)
        except BlockingIOError:
            pass
        self.pending_bytes = 100
        self.flushes = 0

    def write_fd(self):
        return self.w

    def flush(self):
        import os

        self.flushes += 1
        try:
            os.write(self.w, b"y" * self.pending_bytes)
        except BlockingIOError:
            return
        self.pending_bytes = 0


def test_a_full_mqtt_pipe_is_waited_on_not_written_on_every_round():
    # A stuck MQTT process (a blocking connect to a broker, say) leaves the
    # pipe full: the loop waits for room (POLLOUT) instead of trying the
    # write on every round, which spun it at a core's full use, and writes
    # what waits as soon as the process reads again.
    import os
    import threading

    gw = Gateway(bind=LOOPBACK, port=0, db=None, mqtt_hold_ms=2)
    link = _FullPipe()
    drained = []

    def reader():
        # The process wakes up after a while and reads everything.
        time.sleep(0.6)
        os.set_blocking(link.r, False)
        try:
            while True:
                drained.append(len(os.read(link.r, 1 << 20)))
        except BlockingIOError:
            pass

    t = threading.Thread(target=reader)
    try:
        gw.mqtt = link
        t.start()
        gw.run(seconds=1.5)
        t.join()
        assert sum(drained) > 0, drained
        assert link.pending_bytes == 0, "what waited was not written once the pipe had room"
        # One try that found the pipe full, then one once it had room (a
        # loop that spun tried hundreds of thousands of times).
        assert link.flushes <= 5, link.flushes
    finally:
        gw.mqtt = None
        gw.close()
        os.close(link.r)
        os.close(link.w)


def test_a_restarted_mqtt_process_is_written_to_though_its_old_pipe_was_full():
    # The MQTT process restarted while its full pipe was waited on: the new
    # pipes may take the old one's number (fds are reused), and the wait on
    # the old pipe must not be taken for the new process's read end, or
    # nothing would be written to the new process again.
    import os

    gw = Gateway(bind=LOOPBACK, port=0, db=None, mqtt_hold_ms=2)
    link = _FullPipe()
    link.reads = 0

    def read():
        link.reads += 1

    link.read = read
    try:
        gw.mqtt = link
        gw._pipe_full()  # the old process's pipe, full, waited on
        gw._mqtt_restarted(link.r, link.w)  # the new read end took its number
        os.set_blocking(link.r, False)  # the new process reads: room again
        try:
            while os.read(link.r, 1 << 20):
                pass
        except BlockingIOError:
            pass
        gw.run(seconds=0.3)
        assert link.pending_bytes == 0, "nothing written to the restarted process"
    finally:
        gw.mqtt = None
        gw.close()
        os.close(link.r)
        os.close(link.w)


def test_refused_rd_lookups_are_counted_and_shown():
    # The RD's lookup budget (rd_server): a host's bucket holds one lookup
    # of the whole table (here 1 x 64 links), refilled in 1000 s so that
    # nothing comes back within the test. The second whole-table lookup
    # from the same host is refused 5.03 with Max-Age, and the gateway
    # counts and shows it.
    from coapy_micro.client import Client

    g = _GatewayThread(max_registrations=1, lookup_refill_ms=1000000)
    links = ",".join('</s%d>;rt="temperature-c";if=sensor;ct=0;obs' % i for i in range(64))
    node = _NodeThread(g.port, "many", payload=links)
    ep = EndPoint()
    ep.bind((LOOPBACK, 0))
    c = Client(ep)
    try:
        gw = g.gw
        wait_until(lambda: gw.nodes, 30, what="the registration")
        assert gw.rd.lookup_capacity == 65 and gw.counters()["lookups_refused"] == 0
        assert "lookups refused" not in "\n".join(gw.render())
        uri = "coap://%s:%d/rd-lookup/res?count=1&page=63" % (LOOPBACK, g.port)
        r = c.request("get", uri, timeout_ms=10000)
        assert r.code == 69 and b"/s63>" in r.payload, r
        r = c.request("get", uri.replace("page=63", "page=62"), timeout_ms=10000)
        # The bucket is empty: one link comes back in 1000 s / 65.
        assert r.code == 163 and 15 <= r.message.get_uint(14) <= 16, (r, r.payload)
        assert gw.counters()["lookups_refused"] == 1, gw.counters()
        assert "lookups refused 1" in "\n".join(gw.render())
    finally:
        ep.close()
        node.stop()
        g.stop()
