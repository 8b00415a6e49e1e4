"""The sensor node on the host (CPython, or the MicroPython unix port).

    python3 ports/unix/node.py [PORT] [SECONDS]

Runs ports/common/node_app.py, the same code a board runs, with a simulated
temperature sensor, on 127.0.0.1.
"""
import sys

# The repository root is three path components up (no os.path on MicroPython).
_root = "/".join(__file__.split("/")[:-3]) or "."
sys.path.insert(0, _root)
sys.path.insert(0, _root + "/ports/common")

import node_app  # noqa: E402

port = int(sys.argv[1]) if len(sys.argv) > 1 else 5683
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else None
node_app.run(("127.0.0.1", port), seconds=seconds)
