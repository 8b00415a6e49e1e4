# Freezing coapy_micro into MicroPython firmware: its bytecode then runs
# from flash, and a running node needs far less heap than one loading .mpy
# files (README: "Three ways onto a board"). In a board's build, from the
# MicroPython source tree:
#
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/coapy_micro/manifest.py
#
# The board's own manifest is included first, so the firmware keeps what it
# had. opt=3: bytecode without line-number tables, as the firmware's own
# asyncio is frozen and as tools/build_board.py compiles the .mpy files
# (frozen, the saving is flash rather than heap; tracebacks name the file
# and function, not the line: drop opt=3 below while chasing a fault).
# Written by tools/packaging.py from the sources: do not edit by hand.
include("$(PORT_DIR)/boards/manifest.py")

# The portable package, without the host-only modules (cli.py, trace.py, demo_node.py, __main__.py, _cpython.py).
package(
    "coapy_micro",
    files=(
        "__init__.py",
        "_compat.py",
        "aio.py",
        "block.py",
        "client.py",
        "client_block.py",
        "client_observe.py",
        "code_names.py",
        "codes.py",
        "connection.py",
        "link.py",
        "message.py",
        "multicast.py",
        "options.py",
        "outcome.py",
        "rd.py",
        "rd_server.py",
        "senml.py",
        "server.py",
        "server_block.py",
        "server_discovery.py",
        "server_observe.py",
        "server_separate.py",
        "server_upload.py",
        "transactions.py",
        "uri.py",
    ),
    base_path=".",
    opt=3,
)

# The node app (main.py and config.py stay on the filesystem, easy to change).
module("node_app.py", base_path="ports/common", opt=3)
module("node_main.py", base_path="ports/common", opt=3)
module("wifi.py", base_path="ports/common", opt=3)
