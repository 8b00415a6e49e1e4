"""The main job, on loopback with no board: a sensor node and a gateway.

Starts ports/unix/node.py (the node code a board runs, with a simulated
sensor) as its own process, then acts as the gateway with coapy_micro's
Client: discovers the node's resources through /.well-known/core, reads
every sensor it found a few times, observes the temperature for a few
seconds (RFC 7641), and shows what an error looks like.
Finishes by itself.

    make demo        (or: python3 tools/demo.py)
"""
import os
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


def main():
    port = free_port()
    node = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "ports", "unix", "node.py"), str(port), "30"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    client = Client(timeout_ms=5000)
    try:
        print(node.stdout.readline().strip())  # the node says where it listens
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
        print("demo finished")
    except CoapError as e:
        raise SystemExit("gateway: %s" % e)
    finally:
        client.close()
        node.terminate()
        node.wait(5)


if __name__ == "__main__":
    main()
