"""Running tests/portable/test_*.py inside a MicroPython, from pytest.

Shared by tests/test_micropython_vm.py (the WebAssembly VM under Node,
tools/mpvm/run.mjs: 32-bit, no sockets) and tests/test_micropython_unix.py
(the unix port, tools/upy/run.py: 64-bit, real sockets). Both runners print
`@@START {"file","test"}` before and `@@RESULT {"file","test","outcome",
"detail"}` after each test function; one interpreter runs one file, files
run in parallel, and a file that outlives its timeout becomes a failure
naming the test that was running.
"""
import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PORTABLE = ROOT / "tests" / "portable"
TEST_DEF = re.compile(r"^def (test_\w+)\s*\(", re.M)  # the runners use the same rule
FILES = sorted(PORTABLE.glob("test_*.py"))


def cases():
    """One pytest.param(file name, test name) per portable test function."""
    for path in FILES:
        for name in dict.fromkeys(TEST_DEF.findall(path.read_text())):
            yield pytest.param(path.name, name, id=f"{path.name}::{name}")


def _tail(text, lines=30):
    return "\n".join(text.splitlines()[-lines:])


def run_file(argv, path, runtime, timeout_s, env=None, hang_hint=""):
    """Results of one interpreter running the file `path` (`argv` + [path]):
    ({test: (outcome, detail)}, a note for tests it did not report)."""
    try:
        proc = subprocess.run([*argv, str(path)], cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout_s, env=env)
        out, err, hung = proc.stdout, proc.stderr, False
    except subprocess.TimeoutExpired as e:  # partial output is bytes here
        out, err, hung = (e.stdout or b"").decode(), (e.stderr or b"").decode(), True
    results, started = {}, None
    for line in out.splitlines():
        if line.startswith("@@START "):
            started = json.loads(line[8:])["test"]
        elif line.startswith("@@RESULT "):
            rec = json.loads(line[9:])
            results[rec["test"]] = (rec["outcome"], rec["detail"])
            started = None
    note = f"{runtime} exited with {proc.returncode}" if not hung else f"{runtime} was killed"
    if started is not None:
        why = (f"did not finish within {timeout_s:g} s in {runtime}{hang_hint}" if hung
               else f"ended {runtime} ({note}) before reporting")
        results[started] = ("failed", f"{path.name}::{started} {why}\n{_tail(out)}")
        note = f"not run: {runtime} stopped in {started} first"
    if err.strip():
        note += f"; {runtime} stderr:\n" + _tail(err)
    return results, note


def run_all(run_one):
    """{file name: run_one(path)} for every portable file, in parallel."""
    with ThreadPoolExecutor(min(len(FILES), os.cpu_count() or 1)) as pool:
        return dict(zip((p.name for p in FILES), pool.map(run_one, FILES)))


def report(results_by_file, runtime, file, test):
    """Turn one test's result in `runtime` into a pytest outcome."""
    results, note = results_by_file[file]
    outcome, detail = results.get(test) or results.get("<import>") or (None, None)
    if outcome == "skipped":
        pytest.skip(detail)
    if outcome == "failed":
        pytest.fail(f"{file}::{test} in {runtime}:\n{detail}", pytrace=False)
    if outcome != "passed":
        pytest.fail(f"{runtime} did not report {file}::{test} ({note})", pytrace=False)
