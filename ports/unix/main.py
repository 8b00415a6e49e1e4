"""The node as `make deploy BOARD=unix` leaves it: the MicroPython unix
port standing in for a board (no Wi-Fi, a simulated sensor).

Importing it serves the node on 127.0.0.1:config.COAP_PORT until Ctrl-C
(SIGINT), exactly as a board's main.py does after joining Wi-Fi:

    cd DIR && micropython -c "import main"     (or over mpremote:
    mpremote connect PTY resume exec "import main")
"""
import sys

# A board searches /lib; the unix port does not, so add the deployed one.
if "lib" not in sys.path:
    sys.path.append("lib")

import config  # noqa: E402
import node_main  # noqa: E402

node_main.start(config, host="127.0.0.1")
