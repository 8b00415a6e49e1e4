"""Every benchmark in one go, then one table of every target (`make bench`).

    .venv/bin/python tools/bench.py              (all of them, in ORDER)
    .venv/bin/python tools/bench.py server alloc (some of them)
    .venv/bin/python tools/bench.py --list

A benchmark is a script tools/bench_NAME.py (the *_upy.py scripts run
inside MicroPython and are driven by those). They run one after the other,
each in its own process, in ORDER and then any other tools/bench_*.py in
alphabetical order: a new benchmark is picked up by being there. Each prints
its figures as it goes; a line of its output that mentions a target and ends
in ": met", ": NOT MET" or ": not measured (why)" goes into the summary at
the end, so a benchmark reports a target by printing, for example:

    CPython: coapy_micro Server / aiocoap: 12.1x (target >= 10x): met

A benchmark that cannot run here (a peer it needs is missing) says why and
exits with status 77, or is listed in NEEDS with the programs it needs: it
is reported as not measured and the rest go on, since a benchmark is not a
test. One that fails otherwise, or a CORE one that cannot run (these need
only what `make setup` installs), makes this exit non-zero once all have
run. Each benchmark's own options are in its --help.
"""
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
# The order they run in; a tools/bench_*.py not named here runs after these.
ORDER = ["codec", "alloc", "server", "aio", "gateway"]
# Figures `make bench` must not go without.
CORE = {"codec", "alloc", "server"}
# Programs a benchmark needs that `make setup` does not install.
NEEDS = {"gateway": (("mosquitto", "/usr/sbin/mosquitto"), ("mosquitto_sub",))}
SKIPPED = 77

TARGET = re.compile(r"^(?P<text>.*\btarget\b.*?):? *(?P<status>met|NOT MET|not measured \(.*\))$")


def available():
    """{name: path} of every host benchmark script present."""
    found = {}
    for path in TOOLS.glob("bench_*.py"):
        name = path.stem[len("bench_"):]
        if not name.endswith("_upy"):
            found[name] = path
    return found


def ordered(names):
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def missing_programs(name):
    """What `name` needs that is not installed, as text ("" if nothing)."""
    gone = []
    for choices in NEEDS.get(name, ()):
        if not any(shutil.which(c) or os.path.exists(c) for c in choices):
            gone.append(choices[0])
    return ", ".join(gone)


def run_one(name, path):
    """Runs one benchmark, echoing its output: (status, summary lines)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # its lines as they come
    proc = subprocess.Popen([sys.executable, str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1, env=env)
    lines = []
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line.rstrip("\n"))
    proc.wait()
    found = []
    for line in lines:
        m = TARGET.match(line.strip())
        if m:
            found.append((" ".join(m.group("text").split()), m.group("status")))
    return proc.returncode, found, lines[-1] if lines else ""


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    present = available()
    if "--list" in argv:
        for name in ordered(present):
            print("%-10s tools/bench_%s.py%s" % (name, name, " (core)" if name in CORE else ""))
        return 0
    wanted = argv or ordered(set(present) | set(ORDER))
    started = time.monotonic()
    rows = []  # (benchmark, text, status)
    failed = []
    for name in wanted:
        path = present.get(name)
        t0 = time.monotonic()
        print("\n== %s (tools/bench_%s.py)" % (name, name), flush=True)
        if path is None:
            why = "tools/bench_%s.py is not there" % name
            print("   not measured: " + why)
            rows.append((name, "(whole benchmark)", "not measured (%s)" % why))
            if name in CORE:
                failed.append(name)
            continue
        gone = missing_programs(name)
        if gone:
            why = "needs %s, not installed" % gone
            print("   not measured: " + why)
            rows.append((name, "(whole benchmark)", "not measured (%s)" % why))
            continue
        status, found, last = run_one(name, path)
        took = time.monotonic() - t0
        print("   (%s took %.0f s)" % (name, took))
        rows.extend((name, text, st) for text, st in found)
        if status == SKIPPED and name not in CORE:
            rows.append((name, "(whole benchmark)", "not measured (%s)" % last.strip()))
        elif status != 0:
            failed.append(name)
            rows.append((name, "(whole benchmark)", "FAILED (exit %d): %s" % (status, last.strip())))
        elif not found:
            rows.append((name, "(figures only, no target)", "-"))

    print("\n== summary: every target (make bench took %.0f s; figures from a shared machine "
          "are indicative)" % (time.monotonic() - started))
    # Aligned up to a width; a longer text pushes its verdict along.
    width = min(max([len(t) for _, t, _ in rows] + [20]), 100)
    for name, text, status in rows:
        print("  %-8s %-*s  %s" % (name, width, text, status))
    met = sum(1 for r in rows if r[2] == "met")
    not_met = sum(1 for r in rows if r[2] == "NOT MET")
    unmeasured = sum(1 for r in rows if r[2].startswith("not measured"))
    print("  %d met, %d NOT MET, %d not measured" % (met, not_met, unmeasured))
    if failed:
        print("  FAILED: %s" % ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
