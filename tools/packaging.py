"""Write the mip and freezing descriptions of the board package from the
sources, so they cannot drift from tools/build_board.py:

    package.json                 mip: `mpremote mip install github:OWNER/coapy_micro`
                                 (coapy_micro without host-only modules)
    ports/common/package.json    mip: the node app, depending on the above
    manifest.py                  freezing into firmware (FROZEN_MANIFEST=...)

    python tools/packaging.py            rewrite the three files
    python tools/packaging.py --check    exit 1 if any is out of date

OWNER is where the repository is published: the node app's dependency is
github:OWNER/coapy_micro (REPOSITORY below; change it in a fork, then run
this). tests/test_packaging.py runs --check. Host tool (CPython).
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import build_board  # noqa: E402

ROOT = build_board.ROOT
REPOSITORY = "github:OWNER/coapy_micro"
BRANCH = "main"
VERSION = "0.1.0"
NODE_APP = ("node_app.py", "node_main.py", "wifi.py")  # ports/common, as a board has them in lib/


def _json(urls, deps=None):
    lines = ['{', '  "urls": [']
    lines += ["    %s%s" % (json.dumps([u, u]), "," if i < len(urls) - 1 else "")
              for i, u in enumerate(urls)]
    lines.append("  ],")
    if deps:
        lines.append('  "deps": [%s],' % ", ".join(json.dumps(d) for d in deps))
    lines.append('  "version": %s' % json.dumps(VERSION))
    return "\n".join(lines + ["}"]) + "\n"


MANIFEST = '''# Freezing coapy_micro into MicroPython firmware: its bytecode then runs
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

# The portable package, without the host-only modules ({host_only}).
package(
    "coapy_micro",
    files=(
{files}
    ),
    base_path=".",
    opt=3,
)

# The node app (main.py and config.py stay on the filesystem, easy to change).
{node_app}
'''


def outputs():
    """{path: text} of the three files."""
    modules = [p.name for p in build_board.board_sources()]
    return {
        ROOT / "package.json": _json(["%s/%s" % (build_board.PACKAGE, m) for m in modules]),
        ROOT / "ports" / "common" / "package.json": _json(list(NODE_APP), [[REPOSITORY, BRANCH]]),
        ROOT / "manifest.py": MANIFEST.format(
            host_only=", ".join(build_board.HOST_ONLY),
            files="\n".join('        "%s",' % m for m in modules),
            node_app="\n".join('module("%s", base_path="ports/common", opt=3)' % m for m in NODE_APP)),
    }


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    stale = []
    for path, text in outputs().items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path.relative_to(ROOT).as_posix())
        if "--check" not in argv:
            path.write_text(text)
    if "--check" in argv and stale:
        sys.stderr.write("out of date: %s (run python tools/packaging.py)\n" % ", ".join(stale))
        return 1
    for name in stale:
        print("wrote", name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
