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
off from 0.5 s doubling to 30 s.
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
    def __init__(self, host, port, prefix, client_id, qos=1, max_queue=100000, version=5):
        import paho.mqtt.client as mqtt

        self.mqtt = mqtt
        self.host = host
        self.port = port
        self.prefix = prefix
        self.client_id = client_id
        self.qos = qos
        self.max_queue = max_queue
        self.version = version
        self.outbox = collections.deque()
        self._topic_text = {}  # a topic's UTF-8 bytes -> its text
        self.topics = []  # subscriptions, kept across reconnects
        self.window = 100
        self.handed = 0  # QoS 1 messages given to paho
        self.acked = 0
        self.published = 0  # acknowledged (QoS 1) or written (QoS 0)
        self.dropped = 0  # outbox overflow, and refused (below)
        self.refused = 0  # QoS 1 messages the broker answered with a failure
        self.commands = 0
        self.connects = 0
        self.connected = False
        self.last_error = None
        self.delay = 0.5
        self.retry_at = 0.0
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
        if reason.is_failure:
            self.last_error = "broker refused: %s" % reason
            self.log("mqtt: %s" % self.last_error)
            return
        self.connected = True
        self.connects += 1
        self.delay = 0.5
        rm = getattr(properties, "ReceiveMaximum", None) if properties is not None else None
        self.window = rm if rm else (100 if self.version == 5 else 1000)
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
        client.publish(self.status_topic, b"online", qos=1, retain=True)
        self.handed += 1
        for t in self.topics:
            client.subscribe(t, qos=1)

    def _on_disconnect(self, client, userdata, flags, reason, properties):
        if self.connected:
            self.log("mqtt: disconnected (%s)" % (reason,))
        self.connected = False
        self.retry_at = time.monotonic() + self.delay
        self.delay = min(self.delay * 2, 30.0)

    def _on_publish(self, client, userdata, mid, reason, properties):
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
        self.commands += 1
        t = msg.topic.encode("utf-8")
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
             "connects": self.connects, "error": self.last_error}
        self.emit(b"T", json.dumps(s).encode("utf-8"))

    def take(self, kind, body):
        if kind == b"P":
            self._queue(body, 0, len(body))
        elif kind == b"S":
            t = str(body, "utf-8")
            if t not in self.topics:
                self.topics.append(t)
                if self.connected:
                    self.client.subscribe(t, qos=1)
        elif kind == b"U":
            t = str(body, "utf-8")
            if t in self.topics:
                self.topics.remove(t)
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
        box = self.outbox
        if len(box) >= self.max_queue:
            box.popleft()
            self.dropped += 1
        box.append((topic, bytes(buf[pos + tl:end]), (flags >> 1) & 3, (flags & 1) == 1))

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
        room = self.window - (self.handed - self.acked)
        handed = 0
        sent = 0
        while box:
            topic, payload, qos, retain = box[0]
            if qos:
                if handed >= room:
                    break
                publish(topic, payload, qos, retain)
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
        except OSError as e:
            self.last_error = "cannot connect to %s:%d: %s" % (self.host, self.port, e)
            self.retry_at = time.monotonic() + self.delay
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
                sock = self.client.socket()
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
                    next_misc = now + 0.1
            self.write(self.pump())
            now = time.monotonic()
            if now >= next_status:
                self.status()
                next_status = now + 0.5
            if self.stopping:
                if stop_by is None:
                    stop_by = now + 5.0
                done = not self.outbox and self.handed == self.acked
                if done or now >= stop_by:
                    break
        if self.client is not None and self.connected:
            info = self.client.publish(self.status_topic, b"offline", qos=1, retain=True)
            self.handed += 1
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
    host, port, prefix, client_id, qos, max_queue, version = argv
    try:
        p = Publisher(host, int(port), prefix, client_id, int(qos), int(max_queue), int(version))
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
    each message on a subscribed topic and keeps the latest status.
    """

    def __init__(self, host, port, prefix, client_id, qos=1, max_queue=100000, version=5,
                 on_command=None, log=None, max_buffer=32 * 1024 * 1024):
        self.args = [host, str(port), prefix, client_id, str(qos), str(max_queue), str(version)]
        self.qos = qos
        self.on_command = on_command
        self.log = log or (lambda text: None)
        self.max_buffer = max_buffer
        self.status = {"connected": False, "published": 0, "dropped": 0, "queued": 0,
                       "inflight": 0}
        self.dropped = 0  # messages the gateway could not even hand over
        self.sent = 0  # messages handed to the publisher
        self._out = bytearray()
        self._reader = FrameReader()
        self._subs = []
        self.restarts = 0
        self._closing = False
        self._start()

    def _start(self):
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__)] + self.args,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self._in = self.proc.stdin.fileno()
        self._from = self.proc.stdout.fileno()
        os.set_blocking(self._in, False)
        try:
            import fcntl

            fcntl.fcntl(self._in, 1031, 1 << 20)  # F_SETPIPE_SZ: a 1 MB pipe
        except (ImportError, OSError):
            pass
        self._reader = FrameReader()
        for t in self._subs:
            self._out += frame(b"S", t.encode("utf-8"))

    def poll_fd(self):
        return self._from

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
            self._subs.append(topic)
            self._out += frame(b"S", topic.encode("utf-8"))

    def unsubscribe(self, topic):
        if topic in self._subs:
            self._subs.remove(topic)
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
        try:
            data = os.read(self._from, 1 << 20)
        except BlockingIOError:
            return
        if not data:
            self._died()
            return
        for kind, body in self._reader.feed(data):
            if kind == b"T":
                self.status = json.loads(body)
            elif kind == b"C":
                (tl,) = _TOPIC.unpack_from(body, 0)
                if self.on_command is not None:
                    self.on_command(str(body[2:2 + tl], "utf-8"), body[2 + tl:])
            elif kind == b"L":
                self.log(str(body, "utf-8"))

    def _died(self):
        # The publisher is gone: what it held is lost (the store still has
        # every reading); start another one.
        if self._closing or self.proc.poll() is None:
            return
        lost = max(0, self.status.get("queued", 0) + self.status.get("inflight", 0))
        self.dropped += lost
        self.restarts += 1
        self.log("mqtt: the publisher process exited (%s); %d messages lost, restarting"
                 % (self.proc.returncode, lost))
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
