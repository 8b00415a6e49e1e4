# upy-ok-file: the gateway runs on the host only (CPython: sqlite3, paho-mqtt, processes)
"""The gateway: a Resource Directory whose nodes' readings are collected,
kept and published (host only).

    gw = Gateway(bind="0.0.0.0", port=5683, db="gateway.db", mqtt=("broker", 1883))
    gw.run()                          # until gw.stop() (or SIGTERM via command.py)

What it does:
- serves an RFC 9176 Resource Directory (coapy_micro.rd_server) on bind:port;
- observes (RFC 7641) every registered resource whose link has `obs`, and
  polls every `poll_interval_s` the others that match a `poll` filter
  (link-format queries such as 'rt=uptime-s' or 'href=/sys/*');
- turns each notification or poll answer into a SenML JSON pack
  (coapy_micro.senml), named '<ep>/' + path, timed by the gateway's clock;
- keeps every reading in SQLite (store.Store: batched writes, WAL) and the
  RD's registrations too, so a restarted gateway knows its endpoints and
  observes them again;
- with an MQTT broker, publishes each reading retained on
  <prefix>/<ep>/<path>, each endpoint's state on <prefix>/<ep>/$status
  ({"status": "online"|"offline", "reason": ...}, retained), and turns a
  message on <prefix>/<ep>/<path>/set into a CoAP PUT to that resource,
  publishing the outcome on <prefix>/<ep>/<path>/set/result. The MQTT work
  runs in a process of its own (publisher.py); readings are written to it
  together, at most `mqtt_hold_ms` (2 ms) after the first waiting, so that
  it, the broker and the subscribers take them in rounds of several (at
  8,000 readings/s, about a quarter less CPU per reading in the MQTT
  process and the broker than one write per loop round).

Only resources on the registration's base host, named by an IP address,
are observed, polled or sent commands: a link cannot send the gateway
elsewhere. The base is the address the registrant registered from unless
it names one (RFC 9176 §5 lets a commissioning tool register on a node's
behalf); an explicit base of another host is followed, as the RD is
trusted without security (§8), and the Client's NSTART paces what the
gateway sends there. Bounds: the RD's table (max_registrations,
max_per_source per host, max_links), max_observed resources watched in
all, and max_watched_per_host of them for one registering host.

An endpoint is online from its registration until it expires or is removed
or one of its observations fails (no answer, RST, an error), and online again
when a failed observation comes back. Failed observations are retried with
back-off (2 s doubling to 60 s) while the registration lives.

Observations are spread over EndPoints of `shard_size` each (each on an
ephemeral port), and one poll() waits on all of them. Each socket asks for
a 1 MB receive buffer: notifications that arrive while the loop writes a
batch to SQLite wait there instead of being dropped by the kernel. (The
EndPoint and the Client index their tables past a few dozen entries, so
the shard size hardly changes the CPU a notification costs: measured about
the same with 32 and with 1,024 resources a shard.)
"""
import functools
import json
import select
import socket
import sqlite3
import time

from .. import senml
from ..client import Client
from ..connection import EndPoint
from ..link import filter_links
from ..rd_server import ResourceDirectory
from ..server import Server
from ..trace import shown  # (the gateway.shown of its terminal and logs)
from ..uri import UriError, is_ip_literal, split
from .store import Store, StoreError

# How often the loop looks after timers (ms): RD expiry and group
# responses, observation health, polls, the store's batches.
_HOUSEKEEPING_MS = 100
_CLIENT_CHECK_S = 0.5  # Client.process(0) per shard: re-registration, deadlines
_HEALTH_S = 1.0
_RETRY_MIN_S = 2.0
_RETRY_MAX_S = 60.0
_DRAIN = 256  # datagrams read from one socket per wake-up
_RCVBUF = 1 << 20  # a shard socket's receive buffer asked for (bytes)
_MQTT_HOLD_BYTES = 32768  # frames for the MQTT process written once this many wait


def _family_of_host(host):
    # Targets are IP literals (see _add_node): no lookup needed.
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _family_of(uri):
    return _family_of_host(split(uri)[1])


# Written as %XX in a topic level (topic_part): '%' itself, what MQTT gives
# a meaning in a topic ('/' between levels, the wildcards '+' and '#', MQTT
# 5 §4.7.1), '@' (between an endpoint's name and its sector), '$' (the
# gateway's own levels, $status and $gateway, start with it), and the
# control characters, which a topic should not hold (NUL must not, §1.5.4)
# and a subscriber's terminal would act on.
_TOPIC_ESCAPED = "%/+#@$"


def _escaped(c):
    return c in _TOPIC_ESCAPED or c < " " or "\x7f" <= c <= "\x9f"


def topic_part(text):
    """`text` as one MQTT topic level, one to one: '%', '/', '+', '#', '@',
    '$' and control characters written as %XX (their code point in hex), so
    two different names never share a topic ('node/1' is 'node%2F1',
    'node_1' stays)."""
    for c in text:
        if _escaped(c):
            break
    else:
        return text  # the common case: nothing to encode
    return "".join("%%%02X" % ord(c) if _escaped(c) else c for c in text)


def _short(pack):
    # A reading's value for the terminal: the first record's.
    if not pack:
        return "-"
    r = pack[0]
    for k in ("v", "vb", "vs", "vd"):
        if k in r:
            v = r[k]
            text = ("%g" % v) if isinstance(v, float) else str(v)
            return text if len(text) <= 24 else text[:21] + "..."
    return "-"


class Target:
    """One resource of a registered endpoint: observed, polled, or only
    reachable through its /set topic."""

    def __init__(self, node, link, uri, path):
        self.node = node
        self.link = link
        self.uri = uri
        self.path = path
        self.name = senml.clean_name(path) if path else "x"
        # One topic level per path segment, each as it was decoded: a '/'
        # inside a segment (%2F in the URI) stays inside its level. A
        # segment "set" is written %73et: <topic>/set is the command topic
        # of a resource, which the data topic of its subresource /set must
        # not be (the gateway, subscribed there, would take its own
        # readings for commands).
        self.topic = "%s/%s" % (node.topic, "/".join(
            "%73et" if s == "set" else topic_part(s) for s in split(uri)[3]))
        self.mode = None  # 'observe', 'poll' or None
        self.obs = None  # observe.Observation
        self.shard = None
        self.pending = None  # a poll in flight
        self.next_poll = 0.0
        self.retry_at = None
        self.backoff_s = _RETRY_MIN_S
        self.failed = None  # why the last observation ended
        self.count = 0
        self.last_text = None  # the last reading's SenML JSON
        self.mqtt_head = None  # MqttLink.head() of its topic, made at its first reading
        self.last_t = None
        # Its token bucket (Gateway.rate_per_s, burst): full at the start.
        self.tokens = 0.0
        self.tokens_t = None  # monotonic time of the last refill; None: full
        self.limited = 0  # readings dropped by the bucket
        self.missed = 0  # notifications its observations could not fetch whole
        self.missed_seen = 0  # of them, those counted from its current obs
        # Every reading of this resource starts the same: its SenML JSON up
        # to the time, written once here instead of per reading.
        self.head = '[{"bn":%s,"n":%s,"bt":' % (json.dumps(node.bn), json.dumps(self.name))

    @property
    def last(self):
        """The last reading's SenML pack (decoded when asked for)."""
        return None if self.last_text is None else json.loads(self.last_text)

    def senml_text(self, payload, content_format, now):
        """The SenML JSON of one reading, as senml.dumps(senml.records(...))
        gives it. The common case, a number in text, is written straight
        from `head`: no dicts, no JSON encoder."""
        if content_format is None or content_format == 0:
            try:
                v = senml.number(str(payload, "utf-8"))
            except UnicodeError:
                v = None
            if v is not None:
                # repr() of an int or a finite float is its JSON text.
                return '%s%r,"v":%r}]' % (self.head, now, v)
        return senml.dumps(senml.records(payload, content_format, self.node.bn, self.name, now))


class Node:
    """What the gateway knows about one registration."""

    def __init__(self, reg, prefix):
        self.reg = reg
        self.ep = reg.ep
        self.d = reg.d  # the sector, or None
        name = topic_part(reg.ep) if reg.d is None else "%s@%s" % (topic_part(reg.ep),
                                                                    topic_part(reg.d))
        self.topic = "%s/%s" % (prefix, name)
        self.bn = senml.clean_name(reg.ep if reg.d is None else reg.d + "." + reg.ep) + "/"
        self.base = reg.base
        self.links = reg.links_text()
        self.targets = []
        self.by_set = {}  # <topic>/set -> Target
        self.host = None  # whose share of the watched table (Gateway._add_node)
        self.limited = 0  # readings of its resources dropped by their rate limit
        self.missed = 0  # notifications of its resources not fetched whole
        self.status = None  # published state ('online' / 'offline')
        self.reason = None


class Shard:
    """An EndPoint and its Client, observing up to `size` resources."""

    def __init__(self, family, bind, size):
        self.family = family
        self.size = size
        self.ep = EndPoint(family, max_in_flight=size + 48, dedup_size=512,
                           max_message_size=4096)
        self.ep.bind((bind, 0))
        try:
            # Room for the notifications that arrive while the loop is busy
            # elsewhere (a batch written to SQLite takes some ms): what does
            # not fit is dropped by the kernel. As much as the system allows
            # (it caps the request at its rmem_max).
            self.ep.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        except OSError:
            pass
        self.client = Client(self.ep, timeout_ms=15000)
        self.count = 0
        self.fd = self.ep.socket.fileno()


class Gateway:
    """See the module notes. log(text): one line for the terminal.
    on_reading(target, pack): told of every reading (a Target, its SenML)."""

    def __init__(self, bind="0.0.0.0", port=5683, db="coapy-gateway.db", mqtt=None,
                 prefix="coap", poll=(), poll_interval_s=60.0, client_id=None, qos=1,
                 mqtt_queue=100000, mqtt_version=5, shard_size=32, max_registrations=1000,
                 max_links=64, max_per_source=64, max_observed=4096, log=None,
                 multicast=False, on_reading=None, max_watched_per_host=None,
                 rate_per_s=50.0, burst=100, max_topic_levels=64, max_topic_bytes=1024,
                 mqtt_hold_ms=2, lookup_refill_ms=8000):
        self.log = log or (lambda text: None)
        self.on_reading = on_reading  # callable(target, senml pack), per reading
        self.prefix = prefix
        self.poll_filters = [q.split("&") for q in poll]
        self.poll_interval_s = poll_interval_s
        self.shard_size = shard_size
        # Resources observed or polled at most (each costs a record in a
        # shard's EndPoint and its Client): beyond, links are left alone.
        self.max_observed = max_observed
        self.watched = 0
        # And at most this many by the endpoints of one host (the address
        # they registered from): by default a quarter of the table, so one
        # host's registrations (max_per_source of max_links each would be
        # the whole table) cannot take it from the others.
        self.max_watched_per_host = (max(1, max_observed // 4) if max_watched_per_host is None
                                     else max_watched_per_host)
        self.watched_by_host = {}  # host -> resources watched for its endpoints
        # Readings kept per resource: a token bucket of `burst` readings
        # refilled at rate_per_s (None: no limit). A node that notifies
        # faster has the excess dropped before the store and the broker
        # (counted per resource, per endpoint and in all), so one node
        # cannot fill the disk and the MQTT queue for everyone. The default
        # is far above what a sensor sends (a reading every 20 ms, sustained).
        self.rate_per_s = rate_per_s
        self.burst = float(max(1, burst))
        self.limited = 0
        # A resource whose topics would be deeper or longer than this is
        # left alone: a broker disconnects a client that publishes past its
        # own limits (mosquitto: more than 200 levels; MQTT 5 §4.7.3: 65,535
        # bytes at most), and a message it refuses that way, sent again at
        # every reconnect, would stop every other node's readings. Counted
        # over the longest topic used, <prefix>/<ep>/<path>/set/result.
        self.max_topic_levels = max_topic_levels
        self.max_topic_bytes = max_topic_bytes
        self.missed = 0  # notifications lost by observations (Observation.missed)
        # How long a reading's frame may wait to be written to the MQTT
        # process with the next ones (see run()).
        self.mqtt_hold_s = mqtt_hold_ms / 1000.0
        self.started = time.time()
        # The store first: a file another gateway holds, or one that is no
        # database, stops the start before a port is taken (StoreError).
        self.store = Store(db) if db else None
        saved = self._saved()
        try:
            family = socket.getaddrinfo(bind, port)[0][0]
            self.rd_ep = EndPoint(family, max_in_flight=128, dedup_size=512,
                                  max_message_size=4096)
            if family == socket.AF_INET6 and hasattr(socket, "IPV6_V6ONLY"):
                self.rd_ep.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            self.rd_ep.bind((bind, port))
        except BaseException:
            if self.store is not None:
                self.store.close()
            raise
        self.address = self.rd_ep.socket.getsockname()
        self.bind = bind
        self.server = Server(self.rd_ep, max_body=65536, leisure_ms=1000)
        self.rd = ResourceDirectory(self.server, max_registrations=max_registrations,
                                    max_links=max_links, max_payload=16384,
                                    # (8 attributes a link: 64 links of
                                    # rt, if, ct, obs and a few more fit)
                                    max_link_attrs=8 * max_links,
                                    max_per_source=max_per_source, max_fetches=8,
                                    on_change=self._rd_change,
                                    # The lookup budget (rd_server): one
                                    # whole-table lookup (1000 x 64 links,
                                    # about 0.35 s of CPU) per 8 s a host,
                                    # four per 8 s for all hosts together:
                                    # lookups take at most about a fifth of
                                    # the loop's core from the readings,
                                    # whoever asks from however many
                                    # addresses (None: no budget).
                                    lookup_refill_ms=lookup_refill_ms)
        if multicast:
            self._join_group(family, port)
        self.nodes = {}  # registration id -> Node
        self.by_set = {}  # <prefix>/<ep>/<path>/set -> Target
        self.shards = []
        self._events = []  # RD changes, handled after the request that made them
        self._dirty = {}  # registration id -> Registration to save, or None to delete
        self._store_error = None  # the store's last error told in the log
        self._running = False
        self.notifications = 0  # readings received (notifications and poll answers)
        self.stored = 0
        self.errors = 0  # error responses, unusable notifications
        self.commands = 0
        self.mqtt = None
        self.client_id = None
        if mqtt is not None:
            from .publisher import MqttLink

            cid = client_id or "coapy-gw-%s-%d" % (socket.gethostname(), self.address[1])
            self.client_id = cid
            self.mqtt = MqttLink(mqtt[0], mqtt[1], prefix, cid, qos, mqtt_queue, mqtt_version,
                                 on_command=self._command, log=self.log)
        self._poller = select.poll()
        self._fds = {}
        # The MQTT pipe's write end while it is full and waited on with
        # POLLOUT (see _pipe_full()), else None.
        self._pipe_fd = None
        self._watch(self.rd_ep.socket.fileno(), self._drain_rd)
        if self.mqtt is not None:
            self._watch(self.mqtt.poll_fd(), self.mqtt.read)
            self.mqtt.on_new_fd = self._mqtt_restarted
        if saved:
            self._restore(saved)

    def _watch(self, fd, fn):
        self._poller.register(fd, select.POLLIN)
        self._fds[fd] = fn

    def _pipe_full(self):
        # The pipe took only part of what waits: the MQTT process is not
        # reading (busy, or stuck in a blocking connect to a broker). Its
        # write end is polled for room, once, instead of written again on
        # every round, which would spin this loop at a core's full use for
        # as long as that lasts. (The frames wait meanwhile; their queue is
        # bounded and counts what it drops: MqttLink.publish_to().)
        fd = self.mqtt.write_fd()
        self._poller.register(fd, select.POLLOUT)
        self._fds[fd] = self._pipe_room
        self._pipe_fd = fd

    def _pipe_room(self):
        # POLLOUT (room, or an error: a dead process) on the full pipe: no
        # longer polled, and written at once. What it does not take waits
        # for the next try (mqtt_hold_ms on), which polls again if need be.
        # (A dead process is restarted by flush(), with pipes of its own.)
        self._unwatch(self._pipe_fd)
        self._pipe_fd = None
        if self.mqtt is not None:
            self.mqtt.flush()

    def _unwatch(self, fd):
        # No longer poll `fd` (which may be closed already).
        try:
            self._poller.unregister(fd)
        except (KeyError, ValueError):
            pass
        self._fds.pop(fd, None)

    def _mqtt_restarted(self, old_fd, new_fd):
        # The publisher process was restarted: poll its new pipe, not the
        # closed one (ready on every round, it would spin this loop).
        self._unwatch(old_fd)
        if self._pipe_fd is not None:
            # The full pipe waited on was the old process's: closed, and
            # its number free for the new pipes (new_fd may be it).
            self._unwatch(self._pipe_fd)
            self._pipe_fd = None
        self._watch(new_fd, self.mqtt.read)

    def _join_group(self, family, port):
        # Answer RD discovery sent to All-CoAP-Nodes (224.0.1.187, RFC 7252
        # §12.8) on the RD's port, through a socket of its own.
        from ..multicast import ALL_COAP_NODES_V4, join_group

        if family != socket.AF_INET:
            self.log("gateway: --multicast joins the IPv4 group only; bind an IPv4 address")
            return
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ALL_COAP_NODES_V4, port))
        join_group(s, ALL_COAP_NODES_V4, self.bind if self.bind not in ("0.0.0.0", "") else
                   "0.0.0.0")
        self.rd_ep.register(s)
        self._watch(s.fileno(), self._drain_rd)

    # -- the RD's table -----------------------------------------------------

    def _saved(self):
        # The registrations a previous run kept (read before anything else
        # starts: a file that opens but cannot be read is refused too).
        if self.store is None:
            return []
        try:
            return self.store.registrations()
        except (sqlite3.Error, ValueError) as e:
            self.store.close()
            raise StoreError("its registrations cannot be read: %s" % (e,)) from e

    def _restore(self, saved):
        now = time.time()
        n = 0
        for row in saved:
            left_ms = int((row["expires"] - now) * 1000)
            if left_ms <= 0:
                self._dirty[row["id"]] = None  # deleted at the next save
                continue
            try:
                reg = self.rd.restore(row["id"], row["ep"], row["d"], row["base"],
                                      row["base_explicit"], row["lt"], left_ms, row["links"],
                                      row["attrs"], row["source"])
            except ValueError as e:
                self.log("gateway: saved registration %s (%s) dropped: %s"
                         % (shown(str(row["id"])), shown(str(row["ep"])), e))
                self._dirty[row["id"]] = None
                continue
            n += 1
            self._events.append(("register", reg))
        if n:
            self.log("gateway: %d registrations restored from %s" % (n, self.store.path))

    def _rd_change(self, event, reg):
        # Called from inside the RD's request handlers: acted on after them.
        self._events.append((event, reg))

    def _handle_events(self):
        events = self._events
        self._events = []
        for event, reg in events:
            node = self.nodes.get(reg.id)
            if event in ("register", "update"):
                self._dirty[reg.id] = reg
                if node is None:
                    self._add_node(reg)
                elif node.base != reg.base or node.links != reg.links_text():
                    self._drop_node(node, None)
                    self._add_node(reg)
                elif event == "register" and node.status == "offline":
                    self._retry_now(node)
            else:
                self._dirty[reg.id] = None
                if node is not None:
                    why = "registration expired" if event == "expire" else "deregistered"
                    self._drop_node(node, why)

    def _save(self):
        # Write the registrations that changed since the last time: once a
        # second at most, however often registrants update (an update is a
        # request anybody can send; a disk write per request is not).
        dirty = self._dirty
        if not dirty or self.store is None:
            dirty.clear()
            return
        self._dirty = {}
        now = time.time()
        changes = {rid: None if reg is None else (reg, now + reg.left_ms / 1000.0)
                   for rid, reg in dirty.items()}
        if not self.store.save_registrations(changes):
            # Not written (the file locked by another process, the disk
            # full): kept and tried again at the next round, unless a newer
            # change of the same registration came meanwhile. The loop goes
            # on: the RD and the readings do not wait for the disk.
            for rid, reg in dirty.items():
                self._dirty.setdefault(rid, reg)

    def _store_health(self):
        # Tell a store failure once per new error text (not once per try:
        # a full disk fails every second).
        e = self.store.last_error
        if e is not None and e != self._store_error:
            self._store_error = e
            self.log("gateway: the store %s failed (%d errors): %s; kept and tried again"
                     % (self.store.path, self.store.errors, shown(e)))

    def _add_node(self, reg):
        node = Node(reg, self.prefix)
        self.nodes[reg.id] = node
        observed = 0
        try:
            home = split(reg.base)[1]
        except UriError:
            home = None  # a base that is no coap:// URI: nothing to observe there
        # Whose share of the table this registration's resources take: the
        # host it registered from (a restored registration may not know it:
        # then its base's).
        node.host = reg.host if reg.host is not None else home
        by_host = self.watched_by_host
        for link in reg.resolved():
            try:
                parts = split(link.target)  # once: host, family and path from it
            except UriError as e:
                # Not a coap:// URI, or a path that does not decode (a
                # percent-escape that is no UTF-8): nothing to do with it.
                self.log("gateway: %s: %s cannot be used (%s); left alone"
                         % (shown(reg.ep), shown(link.target[:120]), shown(str(e)[:200])))
                continue
            host = parts[1]
            path = "/".join(parts[3])  # the decoded segments
            family = _family_of_host(host)
            if host != home:
                # A registrant speaks for its own host only: the gateway does
                # not observe, poll or PUT elsewhere because a link says so
                # (RFC 9176 without security trusts registrants; §8.4).
                self.log("gateway: %s: %s is on another host; left alone"
                         % (shown(reg.ep), shown(link.target)))
                continue
            if not is_ip_literal(host):
                # A host name would mean a DNS lookup inside the loop that
                # serves everyone (a registrant can name a slow one). Nodes
                # that send no base are known by their address anyway.
                self.log("gateway: %s: %s is a host name, not an address; left alone"
                         % (shown(reg.ep), shown(link.target)))
                continue
            t = Target(node, link, link.target, path)
            st = t.topic + "/set"
            longest = st + "/result"
            levels = longest.count("/") + 1
            size = len(longest.encode("utf-8", "surrogatepass"))
            if levels > self.max_topic_levels or size > self.max_topic_bytes:
                self.log("gateway: %s: /%s would need a topic of %d levels and %d bytes (at "
                         "most %d and %d); left alone" % (
                             shown(reg.ep), shown(path[:64]), levels, size,
                             self.max_topic_levels, self.max_topic_bytes))
                continue
            if st in node.by_set:
                # Two links that differ only in what a topic does not name
                # (a port, a query): the first keeps the topic.
                self.log("gateway: %s: %s has the topic of %s; left alone"
                         % (shown(reg.ep), shown(link.target), shown(node.by_set[st].uri)))
                continue
            node.targets.append(t)
            node.by_set[st] = t
            self.by_set[st] = t
            if self.mqtt is not None:
                self.mqtt.subscribe(st)
            wanted = "observe" if link.get("obs") is not None else (
                "poll" if any(filter_links([link], q) for q in self.poll_filters) else None)
            if wanted is not None:
                if self.watched >= self.max_observed:
                    self.log("gateway: %s: /%s not %sd: %d resources watched already"
                             % (shown(reg.ep), shown(path), wanted, self.watched))
                    wanted = None
                elif by_host.get(node.host, 0) >= self.max_watched_per_host:
                    self.log("gateway: %s: /%s not %sd: its host %s has %d resources "
                             "watched already" % (shown(reg.ep), shown(path), wanted,
                                                  shown(str(node.host)), by_host[node.host]))
                    wanted = None
                else:
                    self.watched += 1
                    by_host[node.host] = by_host.get(node.host, 0) + 1
            if wanted == "observe":
                t.mode = "observe"
                self._observe(t, family)
                observed += 1
            elif wanted == "poll":
                t.mode = "poll"
                t.shard = self._shard(family)
        self.log("gateway: %s registered from %s: %d resources, %d observed"
                 % (shown(reg.ep), shown(reg.base), len(node.targets), observed))
        self._set_status(node, "online", None)

    def _drop_node(self, node, why):
        for t in node.targets:
            self._stop(t)
            st = t.topic + "/set"
            if self.by_set.get(st) is t:
                del self.by_set[st]
                if self.mqtt is not None:
                    self.mqtt.unsubscribe(st)
        self.nodes.pop(node.reg.id, None)
        if why is not None:
            self.log("gateway: %s %s" % (shown(node.ep), shown(why)))
            self._set_status(node, "offline", why)

    def _retry_now(self, node):
        for t in node.targets:
            if t.mode == "observe" and t.obs is None:
                t.retry_at = 0.0

    # -- observing ----------------------------------------------------------

    def _shard(self, family):
        best = None
        for s in self.shards:
            if s.family == family and s.count < s.size and (best is None or s.count < best.count):
                best = s
        if best is None:
            wild = "::" if family == socket.AF_INET6 else "0.0.0.0"
            bind = self.bind
            try:
                if socket.getaddrinfo(bind, 0)[0][0] != family:
                    bind = wild
            except OSError:
                bind = wild
            best = Shard(family, bind, self.shard_size)
            self.shards.append(best)
            self._watch(best.fd, lambda s=best: self._drain_shard(s))
        return best

    def _observe(self, t, family=None):
        if t.shard is None:
            t.shard = self._shard(family or _family_of(t.uri))
            t.shard.count += 1
        t.missed_seen = 0  # a new Observation counts from 0
        try:
            # (A partial, not a lambda: one Python call less per notification.)
            t.obs = t.shard.client.observe(t.uri, callback=functools.partial(self._reading, t),
                                           margin_ms=5000)
        except Exception as e:  # the shard's EndPoint is full, a bad URI
            t.obs = None
            self._failed(t, "cannot observe: %r" % (e,))

    def _stop(self, t):
        if t.obs is not None and not t.obs.done:
            t.obs.cancel()
        t.obs = None
        if t.pending is not None and not t.pending.done:
            t.pending.cancel()
        t.pending = None
        if t.shard is not None and t.mode == "observe":
            t.shard.count -= 1
        if t.mode is not None:
            self.watched -= 1
            host = t.node.host
            n = self.watched_by_host[host] - 1
            if n:
                self.watched_by_host[host] = n
            else:
                del self.watched_by_host[host]  # the table holds hosts that watch
        t.shard = None
        t.mode = None

    def _failed(self, t, why):
        t.failed = why
        t.retry_at = time.monotonic() + t.backoff_s
        t.backoff_s = min(t.backoff_s * 2, _RETRY_MAX_S)
        node = t.node
        self._set_status(node, "offline", "/%s: %s" % (t.path, why))

    def _health(self, now):
        # Notice observations that ended; observe again when their time comes.
        for node in list(self.nodes.values()):
            for t in node.targets:
                if t.mode != "observe":
                    continue
                o = t.obs
                if o is not None and o.missed != t.missed_seen:
                    self._missed(t, o.missed)
                if o is not None and o.done:
                    t.obs = None
                    if o.error is None:
                        why = "the node answered without Observe (its observer table is full?)"
                    else:
                        why = "observation ended: %s" % (o.error,)
                    self.log("gateway: %s /%s: %s" % (shown(node.ep), shown(t.path), shown(why)))
                    self._failed(t, why)
                elif o is None and t.retry_at is not None and now >= t.retry_at:
                    t.retry_at = None
                    self._observe(t)
            if node.status == "offline" and node.reason is not None and node.reason[:1] == "/":
                if all(t.failed is None for t in node.targets):
                    self._set_status(node, "online", None)

    def _missed(self, t, missed):
        # Notifications larger than a block that the observation could not
        # fetch whole (RFC 7959 §3.4: the body is read with a GET; it
        # changed between its blocks every time, or the GET failed): no
        # reading came of them. Counted, told once per resource, shown.
        n = missed - t.missed_seen
        t.missed_seen = missed
        if n <= 0:
            return
        first = t.missed == 0
        t.missed += n
        t.node.missed += n
        self.missed += n
        if first:
            self.log("gateway: %s /%s: a notification larger than a block could not be read "
                     "whole (its body changed between blocks, or the GET failed): no reading; "
                     "counted in missed" % (shown(t.node.ep), shown(t.path)))

    def _polls(self, now):
        for node in self.nodes.values():
            for t in node.targets:
                if t.mode != "poll" or now < t.next_poll or (t.pending is not None and
                                                             not t.pending.done):
                    continue
                t.next_poll = now + self.poll_interval_s
                try:
                    t.pending = t.shard.client.start("get", t.uri, callback=lambda h, t=t:
                                                     self._polled(t, h))
                except Exception as e:
                    self._failed(t, "cannot poll: %r" % (e,))

    def _polled(self, t, h):
        if h.response is not None:
            self._reading(t, h.response)
        else:
            self._failed(t, "poll: %s" % (h.error,))

    # -- readings -------------------------------------------------------------

    def _reading(self, t, resp):
        # Every notification comes through here: kept short. Of the CPU a
        # notification costs this process (about 150,000 instructions,
        # 45-55 µs on CPython 3.11), this and what it calls (SenML text, a
        # row for the store, a frame for the MQTT process) take about a
        # seventh; the rest is the CoAP layers before it: the datagram read
        # and decoded, the duplicate check, the observation found and its
        # options read (Observe, Max-Age, Block2 and Content-Format in one
        # walk: resp.content_format is the value read then).
        if resp.code >> 5 != 2:
            self.errors += 1
            return
        rate = self.rate_per_s
        if rate is not None:
            # The resource's token bucket: a few float operations.
            mono = time.monotonic()
            last = t.tokens_t
            tokens = self.burst if last is None else t.tokens + (mono - last) * rate
            if tokens > self.burst:
                tokens = self.burst
            t.tokens_t = mono
            if tokens < 1.0:
                t.tokens = tokens
                self._limited(t)
                return
            t.tokens = tokens - 1.0
        now = time.time()
        try:
            text = t.senml_text(resp.payload, resp.content_format, now)
        except Exception as e:
            # Whatever a node sends, it must not end the loop every other
            # node's readings go through: counted, told, and passed over.
            # (senml keeps anything it cannot read as data, so this is a
            # last guard, not the way a bad payload is meant to go.)
            self.errors += 1
            self.log("gateway: %s /%s: reading refused: %r"
                     % (shown(t.node.ep), shown(t.path), e))
            return
        self.notifications += 1
        t.count += 1
        t.last_text = text
        t.last_t = now
        if t.failed is not None:
            t.failed = None
            t.backoff_s = _RETRY_MIN_S
        if self.store is not None:
            self.store.add(now, t.node.ep, t.path, text, t.node.d)
        mqtt = self.mqtt
        if mqtt is not None:
            head = t.mqtt_head
            if head is None:
                head = t.mqtt_head = mqtt.head(t.topic, retain=True)
            mqtt.publish_to(head, text.encode())
        if self.on_reading is not None:
            self.on_reading(t, json.loads(text))

    def _limited(self, t):
        # A reading over its resource's rate: dropped, counted, told once
        # per endpoint (a flood would otherwise flood the log too).
        t.limited += 1
        node = t.node
        node.limited += 1
        self.limited += 1
        if node.limited == 1:
            self.log("gateway: %s /%s notifies faster than %g readings/s (burst %d): the "
                     "excess is dropped and counted" % (shown(node.ep), shown(t.path),
                                                       self.rate_per_s, self.burst))

    def _set_status(self, node, status, reason):
        if node.status == status and node.reason == reason:
            return
        node.status = status
        node.reason = reason
        if self.mqtt is not None:
            body = {"status": status, "t": time.time(), "base": node.base,
                    "gateway": self.client_id}
            if reason is not None:
                body["reason"] = reason
            self.mqtt.publish(node.topic + "/$status", _json(body), retain=True)

    # -- MQTT commands ---------------------------------------------------------

    def _command(self, topic, payload):
        t = self.by_set.get(topic)
        if t is None:
            return  # not ours (any more)
        self.commands += 1
        body, cf = _put_body(payload)
        shard = t.shard or self._shard(_family_of(t.uri))
        result = topic + "/result"

        def done(h):
            r = h.response
            if r is not None:
                out = {"code": "%d.%02d" % (r.code >> 5, r.code & 31)}
                if r.payload:
                    out["payload"] = str(r.payload, "utf-8", "replace")
            else:
                out = {"error": str(h.error)}
            self.mqtt.publish(result, _json(out))

        try:
            shard.client.start("put", t.uri, body, cf, callback=done)
        except Exception as e:
            self.mqtt.publish(result, _json({"error": "cannot send: %r" % (e,)}))

    # -- the loop -------------------------------------------------------------

    def _drain_rd(self):
        ep = self.rd_ep
        rd = self.rd
        for _ in range(64):
            rx = ep.process(0)
            if rx is None:
                break
            rd.handle(rx)
        if self._events:
            self._handle_events()

    def _drain_shard(self, s):
        # Up to shard_size resources share this socket and its kernel
        # buffer. A node flooding notifications has its excess dropped by
        # its rate limit after each is read and matched (cheap, but not
        # free), and what the kernel drops before that when the flood fills
        # the buffer can be anyone's on the shard: a rate limit cannot
        # help there. Reading _DRAIN datagrams per wake-up keeps the buffer
        # as empty as the CPU allows; the Observe sequence numbers and the
        # next notification repair a lost one (RFC 7641 §4.4).
        ep = s.ep
        c = s.client
        for _ in range(_DRAIN):
            rx = ep.process(0)
            if rx is None:
                break
            if not c.handle(rx):
                m = rx.message
                if m.transaction_type == 0 and 1 <= m.code <= 31:
                    rx.reset()  # a request to an observer's port: nobody serves here

    def stop(self):
        """Make run() return (within a loop round)."""
        self._running = False

    def run(self, seconds=None, on_round=None):
        """Serve until stop() (or for `seconds`). on_round(gateway) is
        called once per housekeeping round (the terminal display)."""
        self._running = True
        start = time.monotonic()
        next_house = 0.0
        next_check = 0.0
        next_health = 0.0
        poll = self._poller.poll
        fds = self._fds
        mqtt_by = None  # monotonic time by which what waits for the MQTT pipe is written
        if self._events:
            self._handle_events()
        while self._running:
            now = time.monotonic()
            if seconds is not None and now - start >= seconds:
                break
            wait = int((next_house - now) * 1000)
            mqtt = self.mqtt
            if mqtt is not None and mqtt.pending_bytes and self._pipe_fd is None:
                # Frames wait for the pipe (see below; housekeeping's status
                # messages too): wake up for them.
                if mqtt_by is None:
                    mqtt_by = now + self.mqtt_hold_s
                left = int((mqtt_by - now) * 1000 + 0.999)
                if left < wait:
                    wait = left
            if wait < 0:
                wait = 0
            try:
                events = poll(wait)
            except InterruptedError:
                events = ()
            for fd, ev in events:
                fn = fds.get(fd)
                if fn is not None:
                    fn()
            now = time.monotonic()
            mqtt = self.mqtt
            if mqtt is not None and mqtt.pending_bytes and self._pipe_fd is None:
                # Frames for the MQTT process are written together, at most
                # mqtt_hold_ms after the first of them or once
                # _MQTT_HOLD_BYTES wait: each write wakes that process, and
                # each of its rounds costs a select, a read and, to the
                # broker, a TCP segment (two setsockopt calls, the broker
                # and the subscriber woken): per message, less the more a
                # round carries. A few ms on a reading's way to the broker.
                if mqtt_by is None:
                    mqtt_by = now + self.mqtt_hold_s
                if now >= mqtt_by or mqtt.pending_bytes >= _MQTT_HOLD_BYTES:
                    mqtt.flush()
                    mqtt_by = None
                    if mqtt.pending_bytes:
                        self._pipe_full()
            elif self._pipe_fd is None:
                mqtt_by = None
            if now < next_house:
                continue
            next_house = now + _HOUSEKEEPING_MS / 1000.0
            self.rd.tick()
            if self._events:
                self._handle_events()
            if now >= next_check:
                next_check = now + _CLIENT_CHECK_S
                for s in self.shards:
                    s.client.process(0)  # deadlines, re-registrations
            if now >= next_health:
                next_health = now + _HEALTH_S
                self._health(now)
                self._polls(now)
                self._save()
            if self.store is not None:
                self.store.maybe_flush(now)
                self.stored = self.store.stored
                if self.store.last_error is not self._store_error:
                    self._store_health()
            if on_round is not None:
                on_round(self)
        self._running = False

    def close(self):
        """Deregister our observations (best effort), write what waits,
        stop the publisher, close the sockets."""
        for node in list(self.nodes.values()):
            for t in node.targets:
                if t.obs is not None and not t.obs.done:
                    t.obs.cancel()
        for s in self.shards:
            for _ in range(4):
                rx = s.ep.process(0)  # sends the deregistrations
                if rx is None:
                    break
        if self.store is not None:
            self._save()
            self.store.close()
            self.stored = self.store.stored
        if self.mqtt is not None:
            self.mqtt.close()
        for s in self.shards:
            s.ep.close()
        self.rd_ep.close()

    # -- what the terminal shows ---------------------------------------------

    def counters(self):
        c = {"notifications": self.notifications, "errors": self.errors,
             "endpoints": len(self.nodes), "commands": self.commands,
             "rate_limited": self.limited, "missed": self.missed,
             "lookups_refused": self.rd.lookups_refused}
        if self.store is not None:
            c["stored"] = self.store.stored
            c["store_dropped"] = self.store.dropped
            c["store_errors"] = self.store.errors
            c["store_pending"] = self.store.pending + len(self._dirty)
        if self.mqtt is not None:
            st = self.mqtt.status
            c["published"] = st.get("published", 0)
            c["mqtt_dropped"] = st.get("dropped", 0) + self.mqtt.dropped
            c["mqtt_queued"] = st.get("queued", 0) + st.get("inflight", 0)
            c["mqtt"] = "connected" if st.get("connected") else "disconnected"
        return c

    def render(self, max_nodes=20, now=None):
        """The status lines for the terminal."""
        now = now or time.time()
        c = self.counters()
        host = self.address[0]
        head = "coapy gateway on %s:%d: %d endpoint%s" % (
            "[%s]" % host if ":" in host else host, self.address[1], c["endpoints"],
            "" if c["endpoints"] == 1 else "s")
        if self.mqtt is not None:
            head += ", mqtt %s" % c["mqtt"]
        lines = [head]
        line = "  notifications %d" % c["notifications"]
        if "stored" in c:
            line += "  stored %d" % c["stored"]
        if "published" in c:
            line += "  published %d  queued %d" % (c["published"], c["mqtt_queued"])
        dropped = c.get("store_dropped", 0) + c.get("mqtt_dropped", 0)
        line += "  dropped %d  errors %d" % (dropped, c["errors"])
        if self.limited:
            line += "  rate-limited %d" % self.limited
        if self.missed:
            line += "  missed %d" % self.missed
        if c["lookups_refused"]:
            line += "  lookups refused %d" % c["lookups_refused"]
        lines.append(line)
        if self.store is not None and self.store.last_error is not None:
            lines.append("  store: %d failed writes, %d rows waiting; last: %s" % (
                c["store_errors"], c["store_pending"], shown(self.store.last_error)))
        nodes = list(self.nodes.values())
        for node in nodes[:max_nodes]:
            state = node.status or "-"
            if node.reason:
                state += " (%s)" % node.reason
            if node.limited:
                state += ", %d over its rate limit" % node.limited
            if node.missed:
                state += ", %d notifications missed" % node.missed
            lines.append("  %-16s %s  %s" % (shown(node.ep), shown(node.base), shown(state)))
            for t in node.targets:
                if t.mode is None:
                    continue
                if t.last_t is None:
                    last, age = "-", "-"
                else:
                    last, age = _short(t.last), "%.1fs" % (now - t.last_t)
                lines.append("      /%-24s %-7s %-24s %8s  %d" % (shown(t.path), t.mode,
                                                                  shown(last), age, t.count))
        if len(nodes) > max_nodes:
            lines.append("  ... and %d more endpoints" % (len(nodes) - max_nodes))
        return lines


def _json(obj):
    return json.dumps(obj, separators=(",", ":"))


def _put_body(payload):
    # What a /set message becomes: a SenML pack's first value as text, or
    # the payload as it is (text/plain if it is UTF-8, else octet-stream).
    try:
        text = str(payload, "utf-8")
    except UnicodeDecodeError:
        return bytes(payload), 42
    t = text.strip()
    if t[:1] == "[":
        try:
            pack = json.loads(t)
            r = pack[0]
            for k in ("v", "vb", "vs"):
                if k in r:
                    v = r[k]
                    if isinstance(v, bool):
                        v = "true" if v else "false"
                    return str(v).encode("utf-8"), 0
        except (ValueError, IndexError, KeyError, TypeError, AttributeError, RecursionError,
                MemoryError):
            pass  # (RecursionError: JSON nested past the decoder's depth, from anyone who
            # can publish to the topic) sent as it came
    return bytes(payload), 0

