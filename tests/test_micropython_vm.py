"""Runs tests/portable/test_*.py inside the real MicroPython VM (tools/mpvm/run.mjs).

One pytest test per portable test function, so a VM failure is reported under
the test's own name. pytest also collects the same files directly on CPython.
MPVM_TIMEOUT_S (default 600) bounds each file's VM run: a test that hangs the
VM becomes a failure naming it.
"""
import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from peers import need

ROOT = Path(__file__).resolve().parent.parent
PORTABLE = ROOT / "tests" / "portable"
RUNNER = ROOT / "tools" / "mpvm" / "run.mjs"
TIMEOUT_S = float(os.environ.get("MPVM_TIMEOUT_S", "600"))
TEST_DEF = re.compile(r"^def (test_\w+)\s*\(", re.M)  # same rule as run.mjs
FILES = sorted(PORTABLE.glob("test_*.py"))


def _cases():
    for path in FILES:
        for name in dict.fromkeys(TEST_DEF.findall(path.read_text())):
            yield pytest.param(path.name, name, id=f"{path.name}::{name}")


def _tail(text, lines=30):
    return "\n".join(text.splitlines()[-lines:])


def _run_file(node, path):
    """VM results of one file: ({test: (outcome, detail)}, note for unreported tests)."""
    try:
        proc = subprocess.run([node, str(RUNNER), "--tests", str(path)], cwd=ROOT,
                              capture_output=True, text=True, timeout=TIMEOUT_S)
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
    note = f"node exited with {proc.returncode}" if not hung else "node was killed"
    if hung and started is not None:
        results[started] = ("failed", f"{path.name}::{started} did not finish within MPVM_TIMEOUT_S="
                            f"{TIMEOUT_S:g}s in the MicroPython VM: an endless loop, or an exception "
                            "other than MemoryError escaping while micropython.heap_lock() was active")
        note = f"not run: the VM hung in {started} first"
    if err.strip():
        note += "; node stderr:\n" + _tail(err)
    return results, note


@pytest.fixture(scope="session")
def vm_results():
    """{file name: VM results of _run_file}, one node process per file, run in parallel."""
    node = shutil.which("node")
    need(node is not None and (RUNNER.parent / "node_modules").is_dir(),
         "the MicroPython VM needs node and tools/mpvm/node_modules (cd tools/mpvm && npm ci)")
    with ThreadPoolExecutor(min(len(FILES), os.cpu_count() or 1)) as pool:
        return dict(zip((p.name for p in FILES), pool.map(lambda p: _run_file(node, p), FILES)))


@pytest.mark.parametrize("file, test", list(_cases()))
def test_in_micropython(vm_results, file, test):
    results, note = vm_results[file]
    outcome, detail = results.get(test) or results.get("<import>") or (None, None)
    if outcome == "skipped":
        pytest.skip(detail)
    if outcome == "failed":
        pytest.fail(f"{file}::{test} in MicroPython:\n{detail}", pytrace=False)
    if outcome != "passed":
        pytest.fail(f"the MicroPython VM run did not report {file}::{test} ({note})", pytrace=False)
