# upy-ok-file: the gateway runs on the host only (CPython: sqlite3, paho-mqtt, processes)
"""`coapy gateway`: the command line of the gateway (host only).

    coapy gateway [--bind ADDR] [--port N] [--db FILE] [--mqtt mqtt://HOST:PORT]
                  [--topic-prefix coap] [--poll FILTER] [--poll-interval S] ...

cli.py registers it with add_parser(subparsers); run(args) is the command.
What goes where (see gateway.py): the Resource Directory on ADDR:N
(/rd, /rd-lookup/ep, /rd-lookup/res, /.well-known/rd), readings in the SQLite
file FILE (table `readings`), and with --mqtt each reading retained on
<prefix>/<ep>/<path>, endpoint states on <prefix>/<ep>/$status, commands
from <prefix>/<ep>/<path>/set (a CoAP PUT, outcome on .../set/result).

The terminal shows the endpoints, their resources with the last reading and
its age, and the counts of notifications, stores, publishes and drops:
redrawn in place on a terminal, printed every --status-interval seconds
otherwise; SIGUSR1 asks for it at once (also with --status-interval 0).
Events (registrations, expiries, failed observations, the broker coming and
going) are printed as they happen, and with -v every reading. SIGTERM or Ctrl-C
stops it cleanly: observations are cancelled, the store written, queued
MQTT messages published (a few seconds at most).
"""
import sys

HELP = "run a Resource Directory that collects its nodes' readings (SQLite, MQTT)"


def _seconds(text):
    import argparse

    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not v >= 0:
        raise argparse.ArgumentTypeError("a number of seconds, not %r" % text)
    return v


def _rate(text):
    import argparse

    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not 0 <= v < float("inf"):
        raise argparse.ArgumentTypeError("a number of readings per second, not %r" % text)
    return v


def _mqtt_uri(text):
    # mqtt://HOST[:PORT] -> (host, port)
    import argparse
    from urllib.parse import urlsplit

    u = urlsplit(text)
    try:
        port = u.port or 1883
    except ValueError:
        port = None
    if u.scheme != "mqtt" or not u.hostname or port is None or u.path not in ("", "/"):
        raise argparse.ArgumentTypeError("expected mqtt://HOST[:PORT], not %r" % text)
    return (u.hostname, port)


def _prefix(text):
    import argparse

    if not text or any(c in text for c in "+#\x00") or text.startswith("/") or text.endswith("/"):
        raise argparse.ArgumentTypeError("a topic prefix without + # or a leading or "
                                         "trailing /, not %r" % text)
    return text


def add_parser(sub):
    """Add the `gateway` command to an argparse subparsers object."""
    import argparse

    p = sub.add_parser("gateway", help=HELP, description=HELP + ".",
                       epilog="MQTT topics: <prefix>/<ep>/<path> (readings, SenML JSON, "
                              "retained), <prefix>/<ep>/$status, <prefix>/<ep>/<path>/set "
                              "(a PUT; outcome on .../set/result), <prefix>/$gateway/<id>.")
    p.add_argument("--bind", metavar="ADDR", default=None,
                   help="address to listen on (default :: for IPv6 and IPv4, else 0.0.0.0)")
    p.add_argument("--port", type=int, default=5683, metavar="N",
                   help="UDP port of the Resource Directory (default 5683; 0 picks one)")
    p.add_argument("--db", metavar="FILE", default="coapy-gateway.db",
                   help="SQLite file for readings and registrations (default %(default)s)")
    p.add_argument("--no-db", action="store_true", help="keep no store")
    p.add_argument("--mqtt", type=_mqtt_uri, metavar="mqtt://HOST:PORT", default=None,
                   help="publish to this MQTT broker (port 1883 if not given)")
    p.add_argument("--topic-prefix", type=_prefix, default="coap", metavar="PREFIX",
                   help="first level of every MQTT topic (default %(default)s)")
    p.add_argument("--client-id", default=None, metavar="ID",
                   help="MQTT client id (default coapy-gw-<host>-<port>); two gateways on "
                        "one broker need two ids")
    p.add_argument("--qos", type=int, choices=(0, 1), default=1,
                   help="MQTT QoS of readings (default 1: none lost while the broker is away)")
    p.add_argument("--mqtt-queue", type=int, default=100000, metavar="N",
                   help="messages kept while the broker is away (default %(default)s; "
                        "beyond, the oldest are dropped and counted)")
    p.add_argument("--mqtt-v311", action="store_true",
                   help="speak MQTT 3.1.1 instead of 5 (for old brokers)")
    p.add_argument("--poll", action="append", default=[], metavar="FILTER",
                   help="also poll non-observable resources matching this link filter "
                        "(e.g. rt=uptime-s, href=/sys/*; & joins conditions); repeatable")
    p.add_argument("--poll-interval", type=_seconds, default=60.0, metavar="SECONDS",
                   help="how often to poll them (default 60)")
    p.add_argument("--status-interval", type=_seconds, default=2.0, metavar="SECONDS",
                   help="refresh the status display this often (default 2; 0: never)")
    p.add_argument("--max-registrations", type=int, default=1000, metavar="N",
                   help="size of the registration table (default %(default)s)")
    p.add_argument("--max-per-host", type=int, default=64, metavar="N",
                   help="registrations one host may hold (default %(default)s): no host "
                        "takes the table from the others")
    p.add_argument("--max-observed", type=int, default=4096, metavar="N",
                   help="resources observed or polled at most (default %(default)s)")
    p.add_argument("--max-observed-per-host", type=int, default=None, metavar="N",
                   help="of those, at most N for the endpoints of one host (default: a "
                        "quarter of --max-observed): no host takes the table from the others")
    p.add_argument("--shard-size", type=int, default=32, metavar="N",
                   help="resources observed per UDP socket (default %(default)s): a response "
                        "is matched among a socket's observations one by one")
    p.add_argument("--rate-limit", type=_rate, default=50.0, metavar="N",
                   help="readings kept per resource and second, sustained (default %(default)g; "
                        "0: no limit): a node notifying faster has the excess dropped and "
                        "counted, before the store and the broker")
    p.add_argument("--burst", type=int, default=100, metavar="N",
                   help="readings a resource may send at once above its rate (default "
                        "%(default)s)")
    p.add_argument("--multicast", action="store_true",
                   help="also answer RD discovery sent to All-CoAP-Nodes (224.0.1.187)")
    p.add_argument("--seconds", type=_seconds, default=None, help=argparse.SUPPRESS)
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="also print every reading")
    p.set_defaults(func=run)
    return p


class Terminal:
    """The status display and the event log, on stderr."""

    def __init__(self, interval_s, out=None):
        import time

        self.out = out or sys.stderr
        self.tty = hasattr(self.out, "isatty") and self.out.isatty()
        self.interval_s = interval_s
        self.next = time.monotonic() + interval_s
        self.recent = []
        self.asked = False  # show() was called: draw at the next round

    def show(self):
        """Draw the display at the next round, whatever the interval
        (safe from a signal handler: it only sets a flag)."""
        self.asked = True

    def event(self, text):
        if self.tty:
            self.recent.append(text)
            del self.recent[:-8]
        self.out.write(text + "\n")
        self.out.flush()

    def round(self, gw):
        import time

        now = time.monotonic()
        if self.asked:
            self.asked = False
        elif not self.interval_s or now < self.next:
            return
        self.next = now + self.interval_s
        lines = gw.render()
        if self.tty:
            self.out.write("\x1b[H\x1b[J" + "\n".join(lines + [""] + self.recent) + "\n")
        else:
            self.out.write("\n".join(lines) + "\n")
        self.out.flush()


def run(args):
    """The command: 0 when stopped by SIGTERM / Ctrl-C / --seconds."""
    import signal
    import socket
    import sqlite3

    from .gateway import Gateway
    from .store import StoreError

    term = Terminal(args.status_interval)
    binds = [args.bind] if args.bind else ["::", "0.0.0.0"]  # upy-ok: host only, a list
    gw = None
    error = None
    for bind in binds:
        try:
            gw = Gateway(bind=bind, port=args.port, db=None if args.no_db else args.db,
                         mqtt=args.mqtt, prefix=args.topic_prefix, poll=args.poll,
                         poll_interval_s=args.poll_interval, client_id=args.client_id,
                         qos=args.qos, mqtt_queue=args.mqtt_queue,
                         mqtt_version=4 if args.mqtt_v311 else 5,
                         max_registrations=args.max_registrations, log=term.event,
                         shard_size=args.shard_size, max_per_source=args.max_per_host,
                         max_observed=args.max_observed,
                         max_watched_per_host=args.max_observed_per_host,
                         multicast=args.multicast,
                         rate_per_s=args.rate_limit or None, burst=args.burst)
            break
        except (StoreError, sqlite3.Error) as e:
            # One line, not a traceback: the file is another gateway's, no
            # database, or in a directory that is missing or not writable.
            sys.stderr.write("coapy gateway: cannot use the store %s: %s\n" % (args.db, e))
            return 1
        except (OSError, socket.gaierror) as e:
            error = e
    if gw is None:
        sys.stderr.write("coapy gateway: cannot listen on %s port %d: %s\n"
                         % (binds[-1], args.port, error))
        return 1
    if getattr(args, "verbose", False):
        from .. import senml

        from .gateway import shown

        gw.on_reading = lambda t, pack: term.event("gateway: reading from %s /%s (%s): %s" % (
            shown(t.node.ep), shown(t.path), t.mode, shown(senml.dumps(pack))))
    import platform

    term.event("coapy gateway: running on %s %s" % (platform.python_implementation(),
                                                    platform.python_version()))
    host, port = gw.address[0], gw.address[1]
    where = "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)
    term.event("coapy gateway: listening on %s (Resource Directory at /rd, lookups at "
               "/rd-lookup/ep and /rd-lookup/res)" % where)
    if gw.store is not None:
        term.event("coapy gateway: readings go to %s (table readings)" % gw.store.path)
    if gw.mqtt is not None:
        term.event("coapy gateway: publishing to mqtt://%s:%d under %s/ as %s"
                   % (args.mqtt[0], args.mqtt[1], args.topic_prefix, gw.client_id))
    signal.signal(signal.SIGTERM, lambda *a: gw.stop())
    if hasattr(signal, "SIGUSR1"):
        signal.signal(signal.SIGUSR1, lambda *a: term.show())
    try:
        gw.run(args.seconds, on_round=term.round)
    except KeyboardInterrupt:
        pass
    finally:
        gw.close()
        c = gw.counters()
        term.event("coapy gateway: stopped; " + ", ".join("%s %s" % (k, v) for k, v in c.items()))
    return 0
