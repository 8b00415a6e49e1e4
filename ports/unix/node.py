"""The sensor node on the host (CPython, or the MicroPython unix port).

    python3 ports/unix/node.py [PORT] [SECONDS] [--rd URI] [--ep NAME] [--lt SECONDS]
    micropython ports/unix/node.py [PORT] [SECONDS] [--rd URI] [--ep NAME] [--lt SECONDS]

Runs ports/common/node_app.py, the same code a board runs, with a simulated
temperature sensor, on 127.0.0.1 (PORT 5683, forever, by default). The first
line it prints says on which runtime, the second where it serves.

--rd, --ep and --lt are a board's RD_URI, RD_EP and RD_LT_S (config.py):
register with that Resource Directory (e.g. `coapy gateway`'s,
coap://127.0.0.1:5683) under that endpoint name (default coapy-node-PORT),
for that lifetime, and keep the registration alive; Ctrl-C (SIGINT)
deregisters and stops.
"""
import sys

# The repository root is three path components up (no os.path on MicroPython).
_root = "/".join(__file__.split("/")[:-3]) or "."
sys.path.insert(0, _root)
sys.path.insert(0, _root + "/ports/common")

import node_app  # noqa: E402


# `--NAME VALUE` options node.py accepts: NAME -> (default, what the value
# is called in the usage line, the function that converts it). Features
# that need settings of their own add theirs here, in the order the usage
# line shows them (a tuple, not a dict: MicroPython keeps no dict order).
OPTIONS = (
    ("rd", None, "URI", str),  # the Resource Directory to register with
    ("ep", None, "NAME", str),  # the endpoint name there
    ("lt", None, "SECONDS", int),  # the registration's lifetime
)
USAGE = "usage: node.py [PORT] [SECONDS]" + "".join(
    [" [--%s %s]" % (o[0].replace("_", "-"), o[2]) for o in OPTIONS])


def parse(argv):
    """{'port', 'seconds', and each of OPTIONS} from the arguments:
    positional PORT and SECONDS, options anywhere."""
    args = {"port": 5683, "seconds": None}
    convert = {}
    for name, default, metavar, fn in OPTIONS:
        args[name] = default
        convert[name] = fn
    positional = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--"):
            name = a[2:].replace("-", "_")
            if name not in convert:
                raise SystemExit("node.py: unknown option %s\n%s" % (a, USAGE))
            if i + 1 >= len(argv):
                raise SystemExit("node.py: %s needs a value" % a)
            try:
                args[name] = convert[name](argv[i + 1])
            except ValueError:
                raise SystemExit("node.py: %s %s: not a valid value\n%s" % (a, argv[i + 1], USAGE))
            i += 2
            continue
        positional.append(a)
        i += 1
    if len(positional) > 2:
        raise SystemExit(USAGE)
    try:
        if positional:
            args["port"] = int(positional[0])
        if len(positional) > 1:
            args["seconds"] = float(positional[1])
    except ValueError:
        raise SystemExit(USAGE)
    return args


def runtime():
    impl = sys.implementation
    v = impl.version
    if impl.name == "micropython":
        port = "unix" if sys.platform in ("linux", "darwin", "freebsd") else sys.platform
        return "MicroPython %d.%d.%d (%s port)" % (v[0], v[1], v[2], port)
    return "CPython %d.%d.%d" % (v[0], v[1], v[2])


def main(argv):
    args = parse(argv)
    print("node: running on %s" % runtime())
    try:
        node_app.run(("127.0.0.1", args["port"]), seconds=args["seconds"], rd=args["rd"],
                     ep_name=args["ep"], lt_s=args["lt"])
    except KeyboardInterrupt:
        pass


main(sys.argv[1:])
