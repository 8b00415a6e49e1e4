"""The sensor node on the host (CPython, or the MicroPython unix port).

    python3 ports/unix/node.py [PORT] [SECONDS]
    micropython ports/unix/node.py [PORT] [SECONDS]

Runs ports/common/node_app.py, the same code a board runs, with a simulated
temperature sensor, on 127.0.0.1 (PORT 5683, forever, by default). The first
line it prints says where it serves and on which runtime.
"""
import sys

# The repository root is three path components up (no os.path on MicroPython).
_root = "/".join(__file__.split("/")[:-3]) or "."
sys.path.insert(0, _root)
sys.path.insert(0, _root + "/ports/common")

import node_app  # noqa: E402


# `--NAME VALUE` options node.py accepts, NAME -> default. Features that
# need settings of their own add theirs here (e.g. "rd": None for --rd URI).
OPTIONS = {}
USAGE = "usage: node.py [PORT] [SECONDS]" + "".join(
    " [--%s %s]" % (name.replace("_", "-"), name.upper()) for name in OPTIONS)


def parse(argv):
    """{'port', 'seconds', and each of OPTIONS} from the arguments:
    positional PORT and SECONDS, options anywhere."""
    args = {"port": 5683, "seconds": None}
    args.update(OPTIONS)
    positional = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--"):
            name = a[2:].replace("-", "_")
            if name not in OPTIONS:
                raise SystemExit("node.py: unknown option %s\n%s" % (a, USAGE))
            if i + 1 >= len(argv):
                raise SystemExit("node.py: %s needs a value" % a)
            args[name] = argv[i + 1]
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
        node_app.run(("127.0.0.1", args["port"]), seconds=args["seconds"])
    except KeyboardInterrupt:
        pass


main(sys.argv[1:])
