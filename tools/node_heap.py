"""How much heap the running sensor node needs, for each way of putting
coapy_micro on a board, measured on the MicroPython unix port (64-bit) and
in the MicroPython WebAssembly VM (32-bit, as ESP32 and Pico W are).

    python tools/node_heap.py [--heap 512k] [--only unix|vm]

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

The node app (ports/common/node_app.py, node_main.py) comes in the same
form as the package: source in the .py form, .mpy in the .mpy form (as
`make deploy` puts it: tools/build_board.py compiles both), inside the
image in the romfs form. The .mpy form is what tools/bench_alloc.py
reports against the running node's target.

The measurement (tools/upy/node_heap_probe.py, the same steps on both
runtimes): with the node app and the package importable, heap in use
(gc.mem_alloc(), not the heap's size: the VM grows its heap on demand)
after a collection, before and after importing node_app, and after making
the Node (EndPoint bound, resources added) and serving one GET; and the
peak on the way (micropython.mem_peak()). Then, as the demo node runs
beside a gateway, "observed": an observer of /sensors/temp registered and
one notification sent (this loads server_observe.py and the EndPoint's
transmission table, transactions.py, which answering GETs does not). The ROMFS image itself is read
into the heap before the first reading, so it is not counted. The peer that
sends the GET is made in a step of its own and what it holds is not
counted. On the unix port the GET comes over real UDP sockets; the VM has
none, so there it comes over the project's fake network
(tests/portable/fakenet.py), and its build has no micropython.mem_peak(),
so it gives no peak.

A collection in the VM frees nothing while Python code runs; its harness
(tools/mpvm/run.mjs --tests) collects between the probe's steps, with no
frame live, which is why the probe is split into steps.

Host tool (CPython; needs mpy-cross, mpremote, the unix port and node with
tools/mpvm/node_modules: `make setup`).
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
RUN_MJS = ROOT / "tools" / "mpvm" / "run.mjs"
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
        for name in NODE_APP:
            shutil.copyfile(ROOT / "ports" / "common" / name, lib / name)
    else:
        build_board.build(lib, log=lambda line: None)  # the node app as .mpy too
    for name in list(lib.glob("*.*py")):
        if name.stem + ".py" not in NODE_APP:
            name.unlink()  # wifi: a board's, not needed here
    if form != "romfs":
        return str(lib), None
    image = top / "rom.img"
    proc = subprocess.run([sys.executable, "-m", "mpremote", "romfs", "-o", str(image),
                           "build", str(lib)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError("mpremote romfs build failed:\n" + proc.stdout + proc.stderr)
    return "/rom", image


def measure(form, heap="512k", port=None):
    """{"import": bytes, "running": bytes, "peak": bytes, "observed":
    bytes} for one form, on the unix port."""
    exe = micropython()
    if exe is None:
        raise RuntimeError("the MicroPython unix port is not installed (make setup)")
    with tempfile.TemporaryDirectory() as tmp:
        path, image = lay_out(form, Path(tmp))
        args = [exe, "-X", "heapsize=" + heap, str(PROBE), path, str(image or "")]
        env = dict(os.environ)
        env.pop("MICROPYPATH", None)
        proc = subprocess.run(args, cwd=tmp, capture_output=True, text=True, timeout=60, env=env)
    figures = read_figures(proc.stdout)
    if proc.returncode != 0 or set(figures) != {"import", "running", "peak", "observed"}:
        raise RuntimeError("the probe failed for %s:\n%s%s" % (form, proc.stdout, proc.stderr))
    return figures


class Unsupported(Exception):
    """The form cannot be measured on this runtime (the message says why)."""


def measure_vm(form):
    """{"import": bytes, "running": bytes, "peak": bytes or None,
    "observed": bytes} for one form, in the WebAssembly VM; raises Unsupported if the VM cannot hold
    the form (a ROMFS image without vfs.VfsRom)."""
    node = shutil.which("node")
    if node is None or not (RUN_MJS.parent / "node_modules").is_dir():
        raise RuntimeError("the MicroPython VM needs node and tools/mpvm/node_modules (make setup)")
    with tempfile.TemporaryDirectory() as tmp:
        path, image = lay_out(form, Path(tmp))
        cmd = [node, str(RUN_MJS), "--echo", "--app", path if image is None else str(Path(tmp) / "none")]
        if image is None:
            cmd += ["--pkg", str(Path(path) / build_board.PACKAGE)]
        else:  # the package only in the image: --pkg names a folder that does not exist
            cmd += ["--pkg", str(Path(tmp) / "none"), "--file", str(image), "/rom.img"]
        proc = subprocess.run(cmd + ["--tests", str(PROBE)], cwd=tmp, capture_output=True,
                              text=True, timeout=300)
    for line in proc.stdout.splitlines():
        if line.startswith("heap romfs-unsupported "):
            raise Unsupported(line.split(" ", 2)[2])
    figures = read_figures(proc.stdout)
    if proc.returncode != 0 or set(figures) != {"import", "running", "peak", "observed"}:
        raise RuntimeError("the probe failed in the VM for %s:\n%s%s"
                           % (form, proc.stdout, proc.stderr))
    return figures


def read_figures(out):
    """The probe's `heap NAME N` lines as {NAME: N} (N None for `none`)."""
    figures = {}
    for line in out.splitlines():
        if line.startswith("heap "):
            _, name, value = line.split()
            figures[name] = None if value == "none" else int(value)
    return figures


FORMS = (".py", ".mpy", "romfs")


def row(form, f):
    peak = "n/a" if f["peak"] is None else "%d" % f["peak"]
    return "  %-8s %10d %10d %10s %10d" % (form, f["import"], f["running"], peak, f["observed"])


HEADER = "  %-8s %10s %10s %10s %10s" % ("form", "imported", "running", "peak", "observed")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--heap", default="512k", help="the unix port's fixed heap")
    parser.add_argument("--only", choices=("unix", "vm"), help="measure on one runtime only")
    args = parser.parse_args(argv)
    if args.only != "vm":
        print("heap of the running node on the MicroPython unix port (64-bit), bytes:")
        print(HEADER)
        for form in FORMS:
            print(row(form, measure(form, args.heap)))
    if args.only != "unix":
        print("heap of the running node in the MicroPython WebAssembly VM (32-bit), bytes:")
        print(HEADER)
        notes = []
        for form in FORMS:
            try:
                f = measure_vm(form)
            except Unsupported as e:
                print("  %-8s not measured: %s" % (form, e))
                continue
            print(row(form, f))
            if f["peak"] is None and not notes:
                notes.append("peak n/a: this VM is built without micropython.mem_peak()")
        notes.append("the GET served in the VM came over the fake network of "
                     "tests/portable/fakenet.py (the VM has no sockets)")
        for note in notes:
            print("  " + note)
    print("frozen firmware is not measured (none can be built here): it needs at most the "
          "romfs figure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
