# InteropNode (interop_node.py) on the MicroPython unix port, for
# tests/test_server_interop.py:  micropython run_interop_node.py PORT
# Prints "ready", then one line per event, `@@ [kind, value]` in JSON
# (bytes as a list of ints), written before the response leaves, so a
# client that has its answer finds the event already in the pipe. Runs
# until interrupted (SIGINT).
import json
import sys

from coapy_micro.connection import EndPoint
from interop_node import InteropNode


def event(kind, value):
    if isinstance(value, (bytes, bytearray)):
        value = list(value)
    print("@@", json.dumps([kind, value]))


def main(port):
    ep = EndPoint()
    ep.bind(("127.0.0.1", port))
    node = InteropNode(ep, event)
    print("ready")
    try:
        while True:
            node.step(50)
    except KeyboardInterrupt:
        pass
    finally:
        ep.close()


main(int(sys.argv[1]))
