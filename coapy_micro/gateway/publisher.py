# upy-ok-file: the gateway runs on the host only (CPython: sqlite3, paho-mqtt, processes)
"""The gateway's MQTT side: a process of its own running the paho-mqtt client.

The gateway starts it (MqttLink below) and talks to it over two pipes, so
that paho's per-message work runs on another core than the CoAP loop. That
work is most of this process's CPU (45-55 µs a reading under load, 2 cores,
CPython 3.11): paho's publish() about 10 µs, and taking the PUBACK in
30-40 µs, of which about 16 go to the ReasonCode and Properties objects paho
builds for every PUBACK (with MQTT 3.1.1 too) and about 2 to the three
recv calls paho makes per packet. paho is used as it is, through its
public API: a subclass overriding paho's private PUBACK handler and socket
read was measured (the process at 25-35 µs a reading) and not kept, since
it would put MQTT protocol handling of the project's own inside paho and
tie the gateway to paho's internals. What this module adds is a few µs:
each round it takes what the pipe holds into a buffer made once, queues
publish frames straight from it (a topic's text decoded once), hands paho
as many messages as the window allows and sends them corked (see
write()). Frames, both ways, are a kind byte, a 4-byte big-endian length
and the body:

    gateway -> publisher (its stdin)
      P  publish: flags (retain | qos << 1), topic length (2 bytes), topic, payload
      S  subscribe to the topic in the body; U  unsubscribe
      X  stop: publish what is queued (a few seconds at most), then exit
    publisher -> gateway (its stdout)
      C  a message on a subscribed topic: topic length (2 bytes), topic, payload
      T  status, JSON: connected, published, dropped, queued, inflight, ...
      L  a line for the gateway's log

Reliability: messages wait in a bounded outbox while the broker is away;
when it is full the oldest are dropped and counted (`dropped` in the
status), never lost silently; so is a message the broker refuses (an MQTT
5 PUBACK with a failure reason code: `refused` too). At most `window` QoS 1
messages are handed to paho unacknowledged (the broker's Receive Maximum
for MQTT 5, 100 if it names none; 1000 for MQTT 3.1.1, which has no flow
control: a broker takes what comes, so the window only bounds what waits
for its PUBACK); paho sends those again after a reconnect, so a broker
that goes away loses nothing that was not acknowledged. Reconnects back
off from 0.5 s doubling to 30 s; the delay starts again at 0.5 s only
after a connection stayed up stable_s (a broker closing right after each
CONNACK is not hammered), and an attempt without a CONNACK within
connack_timeout_s is given up; the status's `error` says why the last
connection failed or ended.

What a broker cannot take is dropped and counted as `refused`, never sent
again and again: a publish over the Maximum Packet Size of an MQTT 5
CONNACK (§3.2.2.3.6: the client MUST NOT send it), and a message that is
the oldest unacknowledged one each time the connection drops soon after
CONNACK, poison_tries times in a row (mosquitto closes the connection on a
topic deeper than it takes, or, on MQTT 3.1.1, a packet over its size
limit; paho would send that message first after every reconnect and
nothing behind it would pass).

Commands: a message on a subscribed (/set) topic over max_command bytes
is dropped here, counted (`commands_dropped`) and answered on the topic's
/result; a retained one is the broker's copy of an old command, not run
(`retained_ignored`; MQTT 5 subscriptions ask for none: Retain Handling 2).
The gateway's own state is retained at <prefix>/$gateway/<client id>:
"online", and "offline" as the connection's Will.
"""
import collections
import json
import os
import select
import socket
import struct
import subprocess
import sys
import time

_HEAD = struct.Struct(">cI")
_CORK = getattr(socket, "TCP_CORK", None)  # Linux; elsewhere packets go as paho sends them


def _nothing(*args):
    pass


_TOPIC = struct.Struct(">H")
_MAX_TOPICS = 65536  # topic texts kept decoded (see Publisher._queue)
_FLAGS_TOPIC = struct.Struct(">BH")


def _publish_size(topic, payload, qos, version):
    # The bytes of a PUBLISH packet as paho writes it (MQTT 5 §3.3: fixed
    # header, topic, packet identifier for QoS > 0, properties length
    # (MQTT 5, none sent), payload).
    n = 2 + len(topic.encode("utf-8")) + (2 if qos else 0) + (1 if version == 5 else 0)
    n += len(payload)
    size = 1 + n
    while True:  # the Remaining Length's variable byte integer
        size += 1
        n >>= 7
        if not n:
            return size


def frame(kind, body):
    return _HEAD.pack(kind, len(body)) + body


def publish_head(topic, qos=1, retain=False):
    """The start of a publish frame's body: flags and topic (what stays the
    same for a topic's every message)."""
    t = topic.encode("utf-8")
    return _FLAGS_TOPIC.pack((1 if retain else 0) | (qos << 1), len(t)) + t


def publish_frame(topic, payload, qos=1, retain=False):
    return frame(b"P", publish_head(topic, qos, retain) + payload)


class FrameReader:
    """Splits a byte stream into (kind, body) frames."""

    def __init__(self, max_body=16 * 1024 * 1024):
        self.buf = bytearray()
        self.max_body = max_body

    def scan(self, data, take):
        """Adds `data`; calls take(kind, buf, start, end) for each whole
        frame, its body buf[start:end] (read it during the call: the buffer
        is the reader's own and moves on after)."""
        buf = self.buf
        buf += data
        pos = 0
        n = len(buf)
        while n - pos >= 5:
            kind, size = _HEAD.unpack_from(buf, pos)
            if size > self.max_body:
                raise ValueError("frame of %d bytes" % size)
            if n - pos - 5 < size:
                break
            take(kind, buf, pos + 5, pos + 5 + size)
            pos += 5 + size
        if pos:
            del buf[:pos]

    def feed(self, data):
        """Adds `data`; returns the whole frames as (kind, body) pairs."""
        out = []
        self.scan(data, lambda kind, buf, start, end: out.append((kind, bytes(buf[start:end]))))
        return out


# -- the publisher process ---------------------------------------------------------


class Publisher:
    def __init__(self, host, port, prefix, client_id, qos=1, max_queue=100000, version=5,
                 max_command=64 * 1024, connack_timeout_s=10.0, stable_s=10.0, poison_tries=3):
        import paho.mqtt.client as mqtt
        from paho.mqtt.subscribeoptions import SubscribeOptions

        self.mqtt = mqtt
        self._options = SubscribeOptions
        self.host = host
        self.port = port
        self.prefix = prefix
        self.client_id = client_id
        self.qos = qos
        self.max_queue = max_queue
        self.version = version
        self.outbox = collections.deque()
        self._topic_text = {}  # a topic's UTF-8 bytes -> its text
        self.topics = {}  # subscriptions (topic -> None), kept across reconnects
        self.window = 100
        self.handed = 0  # QoS 1 messages given to paho
        self.acked = 0
        self.inflight = {}  # mid -> message handed to paho and not acknowledged, oldest first
        self.published = 0  # acknowledged (QoS 1) or written (QoS 0)
        self.dropped = 0  # outbox overflow, and refused (below)
        self.refused = 0  # messages the broker refused, or that it could not take
        self.commands = 0
        self.max_command = max_command
        self.commands_dropped = 0  # above max_command
        self.retained_ignored = 0  # retained messages on command topics
        self.connects = 0
        self.connected = False
        self.last_error = None
        self.delay = 0.5
        self.retry_at = 0.0
        self.connack_timeout_s = connack_timeout_s
        self.stable_s = stable_s
        self.connecting_since = None  # TCP up, CONNACK awaited
        self.up_since = 0.0
        self.max_packet = None  # the broker's Maximum Packet Size (MQTT 5 CONNACK), if any
        self.poison_tries = poison_tries
        self._suspect = None  # the oldest unacknowledged message at the last short connections
        self._suspect_count = 0
        self._online_mid = None  # "online" handed to paho and not acknowledged yet
        self.subscribing = {}  # mid -> topic of a SUBSCRIBE not answered yet, oldest first
        self.subscriptions_refused = 0
        self._strikes = {}  # topic -> short connections it was the oldest unanswered SUBSCRIBE
        self._next_command_log = 0.0
        self.stopping = False
        self.status_topic = "%s/$gateway/%s" % (prefix, client_id)
        self.client = None

    def _make(self):
        mqtt = self.mqtt
        proto = mqtt.MQTTv5 if self.version == 5 else mqtt.MQTTv311
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                        protocol=proto)
        c.max_inflight_messages_set(0)  # the window below does the limiting
        c.max_queued_messages_set(0)
        c.will_set(self.status_topic, b"offline", qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        # With these set (paho's hooks for an application's own event loop),
        # publish() only queues its packet instead of sending it at once:
        # write() then sends all that pump() queued in one go.
        c.on_socket_register_write = _nothing
        c.on_socket_unregister_write = _nothing
        return c

    def write(self, packets=2):
        """Send what paho has queued, corked: one send per packet (paho's
        way) would be one TCP segment each, with the broker woken for each;
        corked, the kernel sends them in as few segments as fit. A loopback
        profile measured about 20 µs per uncorked send under load.
        `packets`: how many pump() handed over (the two system calls of
        corking are left out for fewer than two)."""
        c = self.client
        if c is None or not c.want_write():
            return
        sock = c.socket()
        cork = _CORK if sock is not None and _CORK is not None and packets > 1 else None
        if cork is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, cork, 1)
            except OSError:
                cork = None
        try:
            c.loop_write()
        finally:
            if cork is not None:
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, cork, 0)  # sends what waits
                except OSError:
                    pass  # the connection is gone: paho's next read or write says so

    # paho callbacks (called from loop_read / loop_write in this thread)

    def _on_connect(self, client, userdata, flags, reason, properties):
        self.connecting_since = None
        if reason.is_failure:
            self.last_error = "the broker refused the connection: %s" % reason
            self.log("mqtt: %s" % self.last_error)
            return
        self.connected = True
        self.connects += 1
        # The back-off is reset only once this connection has stayed up
        # stable_s (see _on_disconnect): a broker that closes right after
        # each CONNACK must not be reconnected to twice a second.
        self.up_since = time.monotonic()
        rm = getattr(properties, "ReceiveMaximum", None) if properties is not None else None
        self.window = rm if rm else (100 if self.version == 5 else 1000)
        # MQTT 5 §3.2.2.3.6: a client MUST NOT send the server packets larger
        # than the Maximum Packet Size its CONNACK names (pump() drops them).
        mp = getattr(properties, "MaximumPacketSize", None) if properties is not None else None
        self.max_packet = mp or None
        self.log("mqtt: connected to %s:%d" % (self.host, self.port))
        if rm and rm < 100 and self.connects == 1:
            # mosquitto's default is 20: one round trip to the broker per 20
            # readings. On a busy machine the round trips set the pace
            # (measured on loopback, 2 cores: about 10,000 readings/s carried
            # with 20, 12,000 with 1000; 7,600 against 13,000 while other
            # work shared the cores).
            self.log("mqtt: the broker takes %d QoS 1 messages in flight (its Receive Maximum); "
                     "for more readings per second raise max_inflight_messages in its "
                     "configuration" % rm)
        # "online" once per connection: one still unacknowledged from an
        # earlier connection is sent again by paho, not queued once more.
        # Never beyond the window: paho sends every unacknowledged message
        # again after this callback, and one more than the broker's Receive
        # Maximum is a protocol error it closes the connection on (MQTT 5
        # §3.3.4); then "online" waits at the head of the outbox.
        if self._online_mid not in self.inflight:
            if len(self.inflight) < self.window:
                self._online_mid = self._hand(self.status_topic, b"online", 1, True)
            elif not (self.outbox and self.outbox[0][0] == self.status_topic):
                self.outbox.appendleft((self.status_topic, b"online", 1, True))
        for t in self.topics:
            self._subscribe(t)

    def _subscribe(self, topic):
        if self.version == 5:
            # Retain Handling 2 (MQTT 5 §3.8.3.1): no retained message when
            # subscribing: a retained command is an old one, not to be run.
            opts = self._options(qos=1, retainHandling=2)
            rc, mid = self.client.subscribe(topic, options=opts)
        else:
            rc, mid = self.client.subscribe(topic, qos=1)
        if mid is not None:
            self.subscribing[mid] = topic

    def _on_subscribe(self, client, userdata, mid, reasons, properties):
        topic = self.subscribing.pop(mid, None)
        if topic is not None:
            self._strikes.pop(topic, None)
        if topic is not None and reasons and reasons[0].is_failure:
            self.subscriptions_refused += 1
            self.last_error = "the broker refused the subscription to %s: %s" % (
                topic[:100], reasons[0])
            self.log("mqtt: %s" % self.last_error)

    def _drop_subscription(self, topic):
        # A SUBSCRIBE the broker closed the connection on poison_tries times
        # (mosquitto: a topic deeper than it takes): it would be sent again
        # at every reconnect and no message would ever pass.
        self.topics.pop(topic, None)
        self._strikes.pop(topic, None)
        self.subscriptions_refused += 1
        self.last_error = ("the broker closed the connection %d times on the subscription to "
                           "%s: given up" % (self.poison_tries, topic[:100]))
        self.log("mqtt: %s" % self.last_error)

    def _on_disconnect(self, client, userdata, flags, reason, properties):
        now = time.monotonic()
        if self.connected:
            up_s = now - self.up_since
            self.log("mqtt: disconnected (%s) after %.1f s" % (reason, up_s))
            self.last_error = "the connection closed %.1f s after CONNACK: %s" % (up_s, reason)
            if up_s >= self.stable_s:
                self.delay = 0.5
                self._suspect = None
                self._strikes.clear()
            else:
                self._short_connection()
        elif self.connecting_since is not None:
            self.last_error = "the connection closed before a CONNACK: %s" % (reason,)
            self.log("mqtt: %s" % self.last_error)
        self.connecting_since = None
        self.connected = False
        self.subscribing.clear()  # sent again at the next CONNACK
        self.retry_at = now + self.delay
        self.delay = min(self.delay * 2, 30.0)

    def _short_connection(self):
        # A connection dropped soon after CONNACK with messages unacknowledged.
        # When it is again and again the same oldest one, the broker most
        # likely closes on that message (a topic it refuses: too deep, too
        # long; a packet over a size it did not announce): paho would send it
        # first after every reconnect, forever, and nothing behind it would
        # pass. After poison_tries such drops it is dropped and counted.
        # Our own "online" is never the suspect: a broker that closes every
        # connection right after CONNACK leaves it unacknowledged each time
        # (and would next be blamed on the first reading queued: a broker
        # failing so costs one reading in poison_tries connections, each
        # counted and said, the back-off growing meanwhile).
        pending = self.subscribing
        if pending:
            # Our SUBSCRIBEs go before any message paho sends again: the
            # oldest unanswered one is the suspect. Its strikes are cleared
            # by a SUBACK (a SUBACK not read before the close can make
            # another one look oldest once).
            topic = next(iter(pending.values()))
            pending.clear()
            n = self._strikes[topic] = self._strikes.get(topic, 0) + 1
            if n >= self.poison_tries:
                self._drop_subscription(topic)
            return
        oldest = None
        for mid, m in self.inflight.items():
            if mid != self._online_mid:
                oldest = m
                break
        if oldest is None:
            self._suspect = None
            return
        if oldest is self._suspect:
            self._suspect_count += 1
        else:
            self._suspect = oldest
            self._suspect_count = 1
        if self._suspect_count < self.poison_tries:
            return
        self._suspect = None
        self.dropped += 1
        self.refused += 1
        self.last_error = ("the broker closed the connection %d times with the message on %s "
                           "(%d bytes) unacknowledged: dropped"
                           % (self.poison_tries, oldest[0][:100], len(oldest[1])))
        self.log("mqtt: %s" % self.last_error)
        # The back-off is not reset: a broker that closes every connection
        # soon after CONNACK looks the same, and must not be hammered.
        self._new_client(skip=oldest)

    def _new_client(self, skip=None):
        # Start again with a paho client of our own making: paho has no public
        # way to take back one message it holds, so it is given the others
        # again from our copy (self.inflight), oldest first, as new messages.
        c = self.client
        self.client = None
        if c is not None:
            sock = c.socket()
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
        again = [m for m in self.inflight.values() if m is not skip]
        self.inflight.clear()
        self.handed = self.acked
        self._online_mid = None
        self.connected = False
        self.connecting_since = None
        self.outbox.extendleft(reversed(again))

    def _hand(self, topic, payload, qos, retain):
        # A message to paho; QoS 1 ones kept until acknowledged. Returns its mid.
        info = self.client.publish(topic, payload, qos, retain)
        if qos:
            self.inflight[info.mid] = (topic, payload, qos, retain)
            self.handed += 1
        return info.mid

    def _on_publish(self, client, userdata, mid, reason, properties):
        if self.inflight.pop(mid, None) is None:
            return  # QoS 0 (counted when written) or from a client given up
        self.acked += 1
        if reason.is_failure:
            # MQTT 5: a PUBACK with a reason code of 0x80 or more says the
            # broker did not take the message (§3.4.2.1: not authorized,
            # quota exceeded...): lost, so counted as dropped, not published.
            self.dropped += 1
            self.refused += 1
            self.last_error = "the broker refused a message: %s" % (reason,)
        else:
            self.published += 1

    def _on_message(self, client, userdata, msg):
        if msg.retain:
            # Only our command topics are subscribed. A retained message is
            # one published earlier and kept by the broker (sent on every
            # subscription, so at every reconnect): not a command for now.
            self.retained_ignored += 1
            return
        topic = msg.topic
        if len(msg.payload) > self.max_command:
            self.commands_dropped += 1
            now = time.monotonic()
            text = "a command of %d bytes (more than %d) on %s: dropped" % (
                len(msg.payload), self.max_command, topic[:100])
            self.last_error = text
            if now >= self._next_command_log:  # one log line per 10 s at most
                self._next_command_log = now + 10.0
                self.log("mqtt: " + text)
            if topic in self.topics:
                self._queue_message(topic + "/result", json.dumps(
                    {"error": "the command is %d bytes, more than the gateway takes (%d)"
                     % (len(msg.payload), self.max_command)}).encode("utf-8"), self.qos, False)
            return
        self.commands += 1
        t = topic.encode("utf-8")
        self.emit(b"C", _TOPIC.pack(len(t)) + t + bytes(msg.payload))

    # the gateway side

    def log(self, text):
        self.emit(b"L", text.encode("utf-8"))

    def emit(self, kind, body):
        data = frame(kind, body)
        try:
            while data:
                n = os.write(1, data)
                data = data[n:]
        except BrokenPipeError:
            # The gateway is gone (killed): nobody is left to tell. Stop as
            # when its end of our input closes (a traceback said so before).
            self.stopping = True

    def status(self):
        s = {"connected": self.connected, "published": self.published,
             "dropped": self.dropped, "refused": self.refused, "queued": len(self.outbox),
             "inflight": self.handed - self.acked, "commands": self.commands,
             "connects": self.connects, "error": self.last_error,
             "commands_dropped": self.commands_dropped, "retained_ignored": self.retained_ignored,
             "subscriptions_refused": self.subscriptions_refused,
             "max_packet": self.max_packet}
        self.emit(b"T", json.dumps(s).encode("utf-8"))

    def take(self, kind, body):
        if kind == b"P":
            self._queue(body, 0, len(body))
        elif kind == b"S":
            t = str(body, "utf-8")
            if t not in self.topics:
                self.topics[t] = None
                if self.connected:
                    self._subscribe(t)
        elif kind == b"U":
            t = str(body, "utf-8")
            if t in self.topics:
                del self.topics[t]
                self._strikes.pop(t, None)
                if self.connected:
                    self.client.unsubscribe(t)
        elif kind == b"X":
            self.stopping = True

    def _queue(self, buf, pos, end):
        # The publish frame body in buf[pos:end] into the outbox. A topic's
        # text is decoded once and kept: readings come back to the same
        # topics (one per resource), so the table is the resources' count;
        # cleared if it ever grows past _MAX_TOPICS.
        flags, tl = _FLAGS_TOPIC.unpack_from(buf, pos)
        pos += 3
        raw = bytes(buf[pos:pos + tl])
        topic = self._topic_text.get(raw)
        if topic is None:
            if len(self._topic_text) >= _MAX_TOPICS:
                self._topic_text.clear()
            topic = self._topic_text[raw] = str(raw, "utf-8")
        self._queue_message(topic, bytes(buf[pos + tl:end]), (flags >> 1) & 3, (flags & 1) == 1)

    def _queue_message(self, topic, payload, qos, retain):
        box = self.outbox
        if len(box) >= self.max_queue:
            box.popleft()
            self.dropped += 1
        box.append((topic, payload, qos, retain))

    def take_frame(self, kind, buf, start, end):
        """A frame from the gateway (FrameReader.scan's callback): a publish
        queued straight from the reader's buffer (one copy of the payload,
        no (kind, body) pair per reading), the others through take()."""
        if kind == b"P":
            self._queue(buf, start, end)
        else:
            self.take(kind, bytes(buf[start:end]))

    def pump(self):
        """Hand queued messages to paho while the window has room; returns
        how many. (publish() only queues packets here, see _make(): nothing
        in this loop calls back into on_publish or on_disconnect.)"""
        box = self.outbox
        if not box or not self.connected:
            return 0
        publish = self.client.publish
        inflight = self.inflight
        room = self.window - len(inflight)
        max_packet = self.max_packet
        handed = 0
        sent = 0
        while box:
            m = box[0]
            topic, payload, qos, retain = m
            if max_packet is not None and len(payload) + 4 * len(topic) + 16 > max_packet:
                if _publish_size(topic, payload, qos, self.version) > max_packet:
                    box.popleft()
                    self.dropped += 1
                    self.refused += 1
                    self.last_error = ("a message on %s of %d bytes is over the broker's "
                                       "Maximum Packet Size (%d): dropped"
                                       % (topic[:100], len(payload), max_packet))
                    continue
            if qos:
                if handed >= room:
                    break
                inflight[publish(topic, payload, qos, retain).mid] = m
                handed += 1
            elif publish(topic, payload, 0, retain).rc != 0:
                break  # not connected after all: keep it
            else:
                sent += 1
            box.popleft()
        self.handed += handed
        self.published += sent
        return handed + sent

    def connect(self):
        try:
            if self.client is None:
                self.client = self._make()
                self.client.connect(self.host, self.port, keepalive=30)
            else:
                self.client.reconnect()
            self.connecting_since = time.monotonic()
        except OSError as e:
            self.last_error = "cannot connect to %s:%d: %s" % (self.host, self.port, e)
            self.retry_at = time.monotonic() + self.delay
            self.delay = min(self.delay * 2, 30.0)

    def _check_connack(self, now):
        # A broker that takes the TCP connection and never answers CONNECT:
        # paho would wait for its keep-alive (30 s) each time, saying nothing.
        since = self.connecting_since
        if since is None or self.connected or now - since < self.connack_timeout_s:
            return
        self.last_error = "no CONNACK within %.1f s" % self.connack_timeout_s
        self.log("mqtt: %s from %s:%d" % (self.last_error, self.host, self.port))
        self._new_client()
        self.retry_at = now + self.delay
        self.delay = min(self.delay * 2, 30.0)

    def run(self):
        reader = FrameReader()
        stdin = 0
        os.set_blocking(stdin, False)
        inbuf = bytearray(1 << 20)  # the pipe's size (MqttLink asks for 1 MB)
        inview = memoryview(inbuf)
        next_status = 0.0
        next_misc = 0.0
        stop_by = None
        self.connect()
        while True:
            now = time.monotonic()
            c = self.client
            sock = c.socket() if c is not None else None
            if sock is None and not self.connected and now >= self.retry_at and not (
                    self.stopping and not self.outbox):
                self.connect()
                c = self.client
                sock = c.socket()
            rl = [] if self.stopping else [stdin]
            wl = []
            if sock is not None:
                rl.append(sock)
                if c.want_write():
                    wl.append(sock)
            try:
                r, _, _ = select.select(rl, wl, [], 0.05)
            except (OSError, ValueError):
                r = []
            if stdin in r:
                # Into a buffer made once: os.read(fd, 1 MB) would allocate
                # (and give back) a megabyte on every round, which a profile
                # showed costing more than a reading's whole PUBLISH.
                try:
                    n = os.readv(stdin, [inbuf])
                except BlockingIOError:
                    n = None
                if n == 0:
                    self.stopping = True  # the gateway went away
                elif n:
                    reader.scan(inview[:n], self.take_frame)
            c = self.client
            if c is not None:
                if sock is not None and sock in r:
                    c.loop_read(100)
                if now >= next_misc:
                    # Keep-alive and connection timeouts (seconds apart):
                    # not needed on every round.
                    c.loop_misc()
                    self._check_connack(now)
                    next_misc = now + 0.1
            self.write(self.pump())
            now = time.monotonic()
            if now >= next_status:
                self.status()
                next_status = now + 0.5
            if self.stopping:
                if stop_by is None:
                    stop_by = now + 5.0
                done = not self.outbox and not self.inflight
                if done or now >= stop_by:
                    break
        if self.client is not None and self.connected:
            info = self.client.publish(self.status_topic, b"offline", qos=1, retain=True)
            end = time.monotonic() + 2.0
            while not info.is_published() and time.monotonic() < end and self.connected:
                self.client.loop(0.05)
            self.client.disconnect()
            # disconnect() only queues the DISCONNECT (see _make): send it, or
            # the broker takes the closed socket for a crash and sends the Will.
            self.write()
        self.status()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    host, port, prefix, client_id, qos, max_queue, version = argv[:7]
    more = {}
    if len(argv) > 7:
        more["max_command"] = int(argv[7])
    if len(argv) > 8:
        more["connack_timeout_s"] = float(argv[8])
    try:
        p = Publisher(host, int(port), prefix, client_id, int(qos), int(max_queue), int(version),
                      **more)
    except ImportError:
        sys.stderr.write("coapy gateway: --mqtt needs paho-mqtt (pip install paho-mqtt)\n")
        return 1
    p.run()
    return 0


# -- the gateway's end --------------------------------------------------------------


class MqttLink:
    """Starts the publisher process and talks to it; never blocks the caller.

    publish() frames a message into a buffer that flush() writes as the
    pipe takes it; a buffer beyond max_buffer bytes drops further messages
    and counts them (`dropped`). poll_fd() is readable when the publisher
    has something to say: read() then calls on_command(topic, payload) for
    each message on a subscribed topic and keeps the latest status. When
    the publisher process dies (or says something that is not frames) it is
    started again: poll_fd() changes, and on_new_fd(old_fd, new_fd) tells
    whoever polls it.
    """

    def __init__(self, host, port, prefix, client_id, qos=1, max_queue=100000, version=5,
                 on_command=None, log=None, max_buffer=32 * 1024 * 1024,
                 max_command=64 * 1024, connack_timeout_s=10.0, max_frame=16 * 1024 * 1024,
                 on_new_fd=None):
        self.args = [host, str(port), prefix, client_id, str(qos), str(max_queue), str(version),
                     str(max_command), repr(float(connack_timeout_s))]
        self.qos = qos
        self.on_command = on_command
        self.log = log or (lambda text: None)
        # on_new_fd(old_fd, new_fd): the publisher was restarted and poll_fd()
        # changed; whoever polls the old one must watch the new one instead.
        self.on_new_fd = on_new_fd
        self.max_buffer = max_buffer
        self.max_frame = max_frame
        self.status = {"connected": False, "published": 0, "dropped": 0, "queued": 0,
                       "inflight": 0}
        self.dropped = 0  # messages the gateway could not even hand over
        self.sent = 0  # messages handed to the publisher
        self.frame_errors = 0  # unreadable output from the publisher (it is restarted)
        self._out = bytearray()
        self._reader = FrameReader(max_frame)
        self._subs = {}  # topic -> None: a dict for its order and O(1) membership
        self.restarts = 0
        self._closing = False
        self.proc = None
        self._from = -1
        self._start()

    def _start(self):
        old = self.proc
        old_fd = self._from
        if old is not None:
            # Close the dead process's pipes now: left to the garbage
            # collector, a closed-on-its-side stdout stays readable (EOF) in
            # the caller's poller on every round.
            for f in (old.stdin, old.stdout):
                try:
                    f.close()
                except OSError:
                    pass
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__)] + self.args,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self._in = self.proc.stdin.fileno()
        self._from = self.proc.stdout.fileno()
        os.set_blocking(self._in, False)
        # read() is called when the poller says the pipe is readable; a
        # blocking pipe would hold the caller's loop if it ever is not.
        os.set_blocking(self._from, False)
        try:
            import fcntl

            fcntl.fcntl(self._in, 1031, 1 << 20)  # F_SETPIPE_SZ: a 1 MB pipe
        except (ImportError, OSError):
            pass
        self._reader = FrameReader(self.max_frame)
        for t in self._subs:
            self._out += frame(b"S", t.encode("utf-8"))
        if old is not None and self.on_new_fd is not None:
            self.on_new_fd(old_fd, self._from)

    def poll_fd(self):
        return self._from

    def write_fd(self):
        """The pipe to the publisher process (the end this process writes):
        to wait for room in it with POLLOUT when it is full."""
        return self._in

    def publish(self, topic, payload, retain=False, qos=None):
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        self.publish_to(self.head(topic, retain, qos), payload)

    def head(self, topic, retain=False, qos=None):
        """The part of a publish frame that stays the same for `topic` (its
        flags and topic), for publish_to(): worked out once per topic
        instead of per message."""
        return publish_head(topic, self.qos if qos is None else qos, retain)

    def publish_to(self, head, payload):
        """publish() with a head() made before; `payload` bytes."""
        out = self._out
        if len(out) > self.max_buffer:
            self.dropped += 1
            return
        out += _HEAD.pack(b"P", len(head) + len(payload))
        out += head
        out += payload
        self.sent += 1

    def subscribe(self, topic):
        if topic not in self._subs:
            self._subs[topic] = None
            self._out += frame(b"S", topic.encode("utf-8"))

    def unsubscribe(self, topic):
        if topic in self._subs:
            del self._subs[topic]
            self._out += frame(b"U", topic.encode("utf-8"))

    @property
    def pending_bytes(self):
        return len(self._out)

    def flush(self):
        """Write what the pipe takes now."""
        out = self._out
        while out:
            try:
                n = os.write(self._in, out)
            except BlockingIOError:
                return
            except (BrokenPipeError, OSError):
                self._died()
                return
            del out[:n]

    def read(self):
        """Take what the publisher said; never raises for what it said: output
        that is not frames (a frame beyond max_frame, bad JSON or UTF-8) is
        logged and counted (`frame_errors`), and the publisher restarted,
        since the stream cannot be resynchronised."""
        try:
            data = os.read(self._from, 1 << 20)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._died()
            return
        try:
            frames = self._reader.feed(data)
        except ValueError as e:
            self._frame_error(e)
            return
        for kind, body in frames:
            try:
                if kind == b"T":
                    self.status = json.loads(body)
                    continue
                if kind == b"L":
                    self.log(str(body, "utf-8", "replace"))
                    continue
                if kind != b"C":
                    continue
                (tl,) = _TOPIC.unpack_from(body, 0)
                topic = str(body[2:2 + tl], "utf-8")
            except (ValueError, struct.error) as e:
                self._frame_error(e)
                return
            if self.on_command is not None:
                self.on_command(topic, body[2 + tl:])

    def _frame_error(self, e):
        self.frame_errors += 1
        self.log("mqtt: unreadable output from the publisher process (%s); restarting it" % (e,))
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._died()

    def _died(self):
        # The publisher is gone: what it held is lost (the store still has
        # every reading); start another one.
        if self._closing:
            return
        if self.proc.poll() is None:
            # Its stdout closed (or its stdin broke) but it has not exited
            # yet: give it a moment, then end it, so that the closed pipe is
            # not left in the poller.
            try:
                self.proc.wait(1.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        lost = max(0, self.status.get("queued", 0) + self.status.get("inflight", 0))
        self.dropped += lost
        self.restarts += 1
        self.log("mqtt: the publisher process exited (%s); %d messages lost, restarting"
                 % (self.proc.returncode, lost))
        self.status = dict(self.status, connected=False, queued=0, inflight=0)
        self._start()

    def close(self, timeout_s=10.0):
        """Stop the publisher once it has published what it holds (at most
        timeout_s); returns its last status."""
        self._closing = True
        self._out += frame(b"X", b"")
        end = time.monotonic() + timeout_s
        while self._out and time.monotonic() < end and self.proc.poll() is None:
            self.flush()
            if self._out:
                time.sleep(0.01)
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        while self.proc.poll() is None and time.monotonic() < end:
            r, _, _ = select.select([self._from], [], [], 0.1)
            if r:
                self.read()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        try:
            rest = self.proc.stdout.read()
            if rest:
                for kind, body in self._reader.feed(rest):
                    if kind == b"T":
                        self.status = json.loads(body)
        except (OSError, ValueError):
            pass
        return self.status


if __name__ == "__main__":
    sys.exit(main())
