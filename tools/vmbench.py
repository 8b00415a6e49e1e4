"""What the benchmarks that measure inside the MicroPython VM share
(tools/bench_codec.py, tools/bench_alloc.py): the package compiled as a
board loads it, and a script run in the VM whose `name value` lines are
its figures."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def compile_package(out):
    """coapy_micro/*.py compiled by mpy-cross into the folder `out` (what
    `--pkg` of tools/mpvm/run.mjs installs as the package), each as
    tools/build_board.py compiles it for a board (the source's name a .mpy
    carries, which the board interns on loading, included)."""
    from build_board import compile_mpy

    out = Path(out)
    for src in sorted((ROOT / "coapy_micro").glob("*.py")):
        compile_mpy(src, out / (src.stem + ".mpy"))


def run_vm(pkg, script, *args):
    """Runs `script` (with sys.argv[1:] = args) in the MicroPython VM with
    the package from the folder `pkg`; the `name value` lines it prints, as
    a dict of ints. A failure in the VM ends the benchmark with its output."""
    cmd = ["node", str(ROOT / "tools" / "mpvm" / "run.mjs"), "--pkg", str(pkg), "--script",
           str(script), *args]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if proc.returncode:
        sys.exit("MicroPython VM benchmark %s failed:\n%s%s"
                 % (Path(script).name, proc.stdout, proc.stderr))
    return {k: int(v) for k, v in (line.split() for line in proc.stdout.splitlines())}


def held_after_import(pkg, *modules, names_before=0):
    """Bytes of heap still held, once garbage is collected, after importing
    `modules` in a fresh VM with the package from the folder `pkg`
    (`names_before`: that many names interned first, as an application's
    own would be; see tools/bench_alloc.py for why that moves the figure).

    A script run in the VM cannot measure that itself: there, gc.collect()
    frees nothing while a Python frame is live, so a figure read inside one
    also counts what loading left behind (buffers of the .mpy loader, about
    a sixth more for the codec), which a board's collector takes back. The
    test harness of tools/mpvm/run.mjs collects between test functions, with
    no frame live, so the imports are made in one such function and the heap
    read at the start of the next."""
    import tempfile

    imports = "\n".join("    import %s" % m for m in modules)
    # (Interned as the script is compiled, before the base reading.)
    names = ("class Names:\n    pass\n" + "".join(
        "Names.name_%d = 0\n" % i for i in range(names_before))) if names_before else ""
    src = ("import support\nR = {}\n" + names + "\n\ndef test_0():\n    R['base'] = support.heap_now()\n"
           "%s\n\n\ndef test_1():\n    print('held', support.heap_now() - R['base'])\n" % imports)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp, "held_after_import.py")
        script.write_text(src)
        cmd = ["node", str(ROOT / "tools" / "mpvm" / "run.mjs"), "--pkg", str(pkg), "--echo",
               "--tests", str(script)]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    for line in proc.stdout.splitlines():
        if line.startswith("held "):
            return int(line.split()[1])
    sys.exit("MicroPython VM measurement failed:\n%s%s" % (proc.stdout, proc.stderr))
