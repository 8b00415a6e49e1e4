"""The gateway's MQTT side (coapy_micro/gateway/publisher.py) against what a
broker, a publisher of commands or the publisher process itself may do wrong.

The Publisher's decisions are tested in-process with a stand-in for paho's
client (what it was handed, which mids); the rest against mosquitto on an
ephemeral port (tests/rdpeers.py Broker), or a TCP listener of the test's
own that plays a broker which never answers CONNECT or closes right after
CONNACK. Every wait polls a condition up to a generous deadline.
"""
import json
import os
import select
import socket
import subprocess
import threading
import time
import types

import pytest

from interop import LOOPBACK
from coapy_micro.gateway.publisher import MqttLink, Publisher, _publish_size
from rdpeers import MOSQUITTO_HINT, Broker, Subscriber, publish, tool, wait_until

SET = "coap/n/t/set"


class _Paho:
    """What the Publisher uses of paho's client: publish (recorded, with
    paho's mids) and subscribe."""

    def __init__(self):
        self.sent = []
        self.subs = []
        self.mid = 0

    def publish(self, topic, payload, qos=0, retain=False):
        self.mid += 1
        self.sent.append((topic, payload, qos, retain))
        return types.SimpleNamespace(mid=self.mid, rc=0)

    def subscribe(self, topic, qos=0, options=None):
        self.mid += 1
        self.subs.append((topic, options))
        return 0, self.mid

    def socket(self):
        return None


_OK = types.SimpleNamespace(is_failure=False)


def _publisher(**kw):
    p = Publisher("127.0.0.1", 1, "coap", "t", **kw)
    p.client = _Paho()
    p.said = []
    p.emit = lambda kind, body: p.said.append((kind, bytes(body)))
    return p


def _largest(topic, limit, version):
    # The largest payload whose PUBLISH packet is `limit` bytes at most.
    n = limit
    while _publish_size(topic, b"x" * n, 1, version) > limit:
        n -= 1
    return n


def _msg(topic, payload, retain=False):
    return types.SimpleNamespace(topic=topic, payload=payload, retain=retain)


# -- in-process ----------------------------------------------------------------------


def test_a_command_over_the_limit_is_dropped_counted_and_answered():
    p = _publisher(max_command=100)
    p.topics[SET] = None
    p._on_message(None, None, _msg(SET, b"1" * 101))
    assert not [k for k, b in p.said if k == b"C"]  # never reaches the gateway
    assert (p.commands, p.commands_dropped) == (0, 1)
    ((topic, payload, qos, retain),) = p.outbox
    assert topic == SET + "/result" and not retain
    assert "101 bytes" in json.loads(payload)["error"]
    p._on_message(None, None, _msg(SET, b"1" * 100))
    assert [b for k, b in p.said if k == b"C"][-1].endswith(b"1" * 100) and p.commands == 1


def test_a_retained_command_is_not_run():
    # A retained message is the broker's copy of an old one, sent again on
    # every subscription (so at every reconnect): not a command for now.
    p = _publisher()
    p.topics[SET] = None
    p._on_message(None, None, _msg(SET, b"OPEN", retain=True))
    assert not [k for k, b in p.said if k == b"C"] and p.retained_ignored == 1
    # MQTT 5 subscriptions ask the broker not to send retained ones at all.
    p.connected = True
    p.take(b"S", b"coap/m/t/set")
    ((topic, opts),) = p.client.subs
    assert topic == "coap/m/t/set" and opts.retainHandling == 2 and opts.QoS == 1


def test_subscriptions_are_kept_in_a_table_not_a_list():
    p = _publisher()
    for i in range(20000):  # a list made this quadratic
        p.take(b"S", b"coap/n%d/t/set" % i)
        p.take(b"S", b"coap/n%d/t/set" % i)
    assert len(p.topics) == 20000 and isinstance(p.topics, dict)


def test_a_publish_over_the_brokers_maximum_packet_size_is_not_sent():
    # MQTT 5 §3.2.2.3.6: the client MUST NOT send a packet larger than the
    # Maximum Packet Size the server's CONNACK names.
    p = _publisher()
    props = types.SimpleNamespace(MaximumPacketSize=200)
    p._on_connect(p.client, None, None, _OK, props)
    assert p.max_packet == 200
    fits = _largest("coap/n/a", 200, 5)
    assert _publish_size("coap/n/a", b"x" * fits, 1, 5) == 200
    for payload in (b"1", b"x" * (fits + 1), b"x" * fits, b"2"):
        p._queue_message("coap/n/a", payload, 1, True)
    p.pump()
    sent = [m[1] for m in p.client.sent if m[0] == "coap/n/a"]
    assert sent == [b"1", b"x" * fits, b"2"]
    assert (p.dropped, p.refused) == (1, 1) and "Maximum Packet Size" in p.last_error


def test_a_message_the_connection_drops_on_again_and_again_is_dropped():
    # The broker takes "online" and closes on the first reading (as
    # mosquitto does for a topic deeper than it allows): paho would send
    # that reading first after every reconnect, and nothing behind it would
    # ever pass.
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.reasoncodes import ReasonCode

    def connect():
        p._on_connect(p.client, None, None, _OK, None)
        if p._online_mid in p.inflight:
            p._on_publish(None, None, p._online_mid, ReasonCode(PacketTypes.PUBACK), None)

    p = _publisher(poison_tries=3)
    connect()
    for i in range(5):
        p._queue_message("coap/n/%d" % i, b"%d" % i, 1, True)
    p.pump()
    for attempt in range(3):
        # closed right after CONNACK with all five unacknowledged
        p._on_disconnect(p.client, None, None, "Unspecified error", None)
        if attempt < 2:
            assert p.refused == 0
            connect()
    assert (p.refused, p.dropped) == (1, 1) and "coap/n/0" in p.last_error
    assert p.client is None  # a fresh one holds the others
    assert [m[0] for m in p.outbox] == ["coap/n/1", "coap/n/2", "coap/n/3", "coap/n/4"]
    assert not p.inflight


def test_a_subscription_the_connection_drops_on_again_and_again_is_given_up():
    # mosquitto closes the connection on a SUBSCRIBE to a topic deeper than
    # 200 levels; sent again at every CONNACK, it stopped every publish.
    p = _publisher(poison_tries=3)
    p.take(b"S", SET.encode())
    p.take(b"S", b"coap/" + b"/".join([b"a"] * 250) + b"/set")
    for attempt in range(3):
        p._on_connect(p.client, None, None, _OK, None)
        ok = [m for m, t in p.subscribing.items() if t == SET]
        p._on_subscribe(None, None, ok[0], [_OK], None)  # the first is answered
        assert p.subscriptions_refused == 0
        p._on_disconnect(p.client, None, None, "Malformed packet", None)
    assert list(p.topics) == [SET] and p.subscriptions_refused == 1
    assert "subscription" in p.last_error and p.refused == 0


def test_the_back_off_is_reset_only_after_a_stable_connection_and_online_is_sent_once():
    p = _publisher(stable_s=10.0)
    delays = []
    for _ in range(4):
        p._on_connect(p.client, None, None, _OK, None)
        p._on_disconnect(p.client, None, None, "Normal disconnection", None)
        delays.append(p.delay)
    assert delays == [1.0, 2.0, 4.0, 8.0]  # closing right after CONNACK: no reset
    online = [m for m in p.client.sent if m[0] == p.status_topic and m[1] == b"online"]
    assert len(online) == 1  # the one unacknowledged is paho's to send again
    assert "after CONNACK" in p.last_error
    p._on_connect(p.client, None, None, _OK, None)
    p.up_since -= 11.0  # this one stayed up
    p._on_disconnect(p.client, None, None, "Normal disconnection", None)
    assert p.delay == 1.0  # 0.5 again, doubled for the next try


# -- against mosquitto ---------------------------------------------------------------


@pytest.fixture
def links():
    made = []
    yield made
    for link in made:
        link.close(timeout_s=5.0)


def _drive(link, cond, seconds=60.0, what="the condition"):
    """Run the link as the gateway's loop would until cond()."""
    def step():
        link.flush()
        r, _, _ = select.select([link.poll_fd()], [], [], 0.05)
        if r:
            link.read()
        return cond()
    return wait_until(step, seconds, interval=0, what=what)


def test_a_big_command_is_dropped_in_the_publisher_and_answered(broker, links, tmp_path):
    got = []
    link = MqttLink(LOOPBACK, broker.port, "coap", "gw-big", on_command=lambda t, p: got.append(
        (t, bytes(p))), max_command=1000)
    links.append(link)
    link.subscribe(SET)
    _drive(link, lambda: link.status.get("connected"), what="the connection")
    sub = Subscriber(broker, SET + "/result", tmp_path / "sub.log", client_id="sub-big")
    try:
        time.sleep(0.2)  # not a wait for speed: lets mosquitto_sub subscribe first
        publish(broker, SET, "x" * 5000)
        publish(broker, SET, "small")
        _drive(link, lambda: got, what="the small command")
        _drive(link, lambda: link.status.get("commands_dropped") == 1, what="the count")
        assert got == [(SET, b"small")]
        msgs = wait_until(sub.messages, 30, what="the result")
        assert "5000 bytes" in json.loads(msgs[0][1])["error"]
    finally:
        sub.stop()


def test_unreadable_output_from_the_publisher_restarts_it(broker, links):
    logs = []
    # Frames over max_frame (here every status line) cannot be read: the
    # link must neither raise nor stall, but count, say so and restart.
    link = MqttLink(LOOPBACK, broker.port, "coap", "gw-frame", log=logs.append, max_frame=16)
    links.append(link)
    _drive(link, lambda: link.frame_errors >= 2 and link.restarts >= 2, what="restarts")
    assert any("unreadable output" in line for line in logs)


def test_a_retained_command_is_not_run_at_connect_or_reconnect(broker, links):
    tool("mosquitto_pub", MOSQUITTO_HINT)
    for version in (5, 4):
        topic = "coap/v%d/t/set" % version
        subprocess.run([tool("mosquitto_pub"), "-h", LOOPBACK, "-p", str(broker.port), "-t",
                        topic, "-m", "OPEN", "-r", "-q", "1"], check=True, timeout=20)
        got = []
        link = MqttLink(LOOPBACK, broker.port, "coap", "gw-ret%d" % version, version=version,
                        on_command=lambda t, p: got.append(bytes(p)))
        links.append(link)
        link.subscribe(topic)
        _drive(link, lambda: link.status.get("connected"), what="the connection")
        publish(broker, topic, "CLOSE")
        _drive(link, lambda: got, what="the live command")
        assert got == [b"CLOSE"], version


def test_a_restarted_publisher_is_polled_on_its_new_pipe(broker):
    from coapy_micro.gateway.gateway import Gateway

    gw = Gateway(bind=LOOPBACK, port=0, db=None, mqtt=(LOOPBACK, broker.port))
    t = threading.Thread(target=gw.run, daemon=True)
    t.start()
    try:
        wait_until(lambda: gw.mqtt.status.get("connected"), 60, what="the connection")
        old = gw.mqtt.proc
        old.kill()
        wait_until(lambda: gw.mqtt.restarts == 1 and gw.mqtt.status.get("connected"), 60,
                   what="the restart")
    finally:
        gw.stop()
        t.join(20)
    try:
        fd = gw.mqtt.poll_fd()
        assert not os.get_blocking(fd)
        # The closed pipe would come back from every poll as POLLNVAL (or as
        # EOF while still open): the loop's every round spent on it.
        bad = [(f, ev) for f, ev in gw._poller.poll(0)
               if ev & (select.POLLNVAL | select.POLLHUP)]
        assert bad == []
    finally:
        gw.close()


def test_the_brokers_maximum_packet_size_and_a_topic_it_refuses(tmp_path, links):
    b = Broker(tmp_path / "broker", extra="max_packet_size 2000\n")
    sub = None
    try:
        sub = Subscriber(b, "coap/#", tmp_path / "sub.log", client_id="sub-limits")
        for version in (5, 4):
            link = MqttLink(LOOPBACK, b.port, "coap", "gw-lim%d" % version, version=version)
            links.append(link)
            _drive(link, lambda: link.status.get("connected"), what="the connection")
            if version == 5:
                assert link.status.get("max_packet") == 2000
            # one byte too big for the broker, and its largest packet
            # (which must pass: the size is counted as the broker counts it);
            # then a topic deeper than mosquitto takes (200 levels); then
            # what must still arrive
            # (MQTT 3.1.1 has no such property: there the broker closes the
            # connection on the big one, which is then dropped as a poison.)
            edge = "coap/v%d/edge" % version
            n = _largest(edge, 2000, version)
            if version == 5:
                link.publish(edge, b"b" * (n + 1), retain=True)
                link.publish(edge, b"a" * n, retain=True)
            link.publish("coap/v%d/big" % version, b"x" * 3000)
            link.publish("coap/v%d/" % version + "/".join(["a"] * 250), b"1")
            for i in range(5):
                link.publish("coap/v%d/good" % version, b"%d" % i, retain=True)
            want = ["coap/v%d/good\t%d" % (version, i) for i in range(5)]
            if version == 5:
                want.append(edge + "\t" + "a" * n)
            _drive(link, lambda: all(
                w in ["%s\t%s" % m for m in sub.messages()] for w in want), 90,
                what="the good messages (v%d)" % version)
            refused = 3 if version == 5 else 2
            _drive(link, lambda: link.status.get("refused", 0) >= refused, 60,
                   what="the count (v%d)" % version)
            assert not [m for m in sub.messages() if m[0].startswith("coap/v%d/big" % version)]
            if version == 5:
                assert {m[1][0] for m in sub.messages() if m[0] == edge} == {"a"}
    finally:
        if sub is not None:
            sub.stop()
        b.stop()


class _FakeBroker:
    """A TCP listener that plays a broker: 'silent' takes CONNECT and never
    answers; 'flap' sends a (v5, success) CONNACK and closes at once."""

    def __init__(self, mode):
        self.mode = mode
        self.s = socket.socket()
        self.s.bind((LOOPBACK, 0))
        self.s.listen(50)
        self.port = self.s.getsockname()[1]
        self.connections = 0
        self.held = []
        self.t = threading.Thread(target=self._serve, daemon=True)
        self.t.start()

    def _serve(self):
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            self.connections += 1
            try:
                c.recv(4096)
                if self.mode == "flap":
                    c.sendall(b"\x20\x03\x00\x00\x00")
                    time.sleep(0.05)
                    c.close()
                else:
                    self.held.append(c)
            except OSError:
                c.close()

    def close(self):
        self.s.close()
        for c in self.held:
            c.close()


def test_a_broker_that_never_sends_connack_is_given_up_on_and_said(links):
    fb = _FakeBroker("silent")
    try:
        link = MqttLink(LOOPBACK, fb.port, "coap", "gw-silent", connack_timeout_s=1.0)
        links.append(link)
        _drive(link, lambda: "no CONNACK" in str(link.status.get("error")), 60,
               what="the error")
        _drive(link, lambda: fb.connections >= 2, 60, what="a second attempt")
    finally:
        fb.close()


def test_a_broker_closing_after_each_connack_is_not_hammered(links):
    fb = _FakeBroker("flap")
    try:
        link = MqttLink(LOOPBACK, fb.port, "coap", "gw-flap")
        links.append(link)
        start = time.monotonic()
        _drive(link, lambda: time.monotonic() - start > 6.0, 30, what="6 s")
        # 0.5, 1, 2, 4 s apart: at most 5 connections in 6 s (the back-off
        # reset at every CONNACK made it one every ~0.5 s, a dozen or more).
        assert 2 <= fb.connections <= 5, fb.connections
        st = link.status
        assert st.get("inflight", 0) <= 1, st  # one "online" waiting, not one per connect
        assert "after CONNACK" in str(st.get("error")), st
    finally:
        fb.close()
