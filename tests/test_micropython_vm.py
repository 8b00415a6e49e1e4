"""Runs tests/portable/test_*.py inside the real MicroPython VM (the
WebAssembly port under Node, tools/mpvm/run.mjs): a 32-bit MicroPython, the
runtime whose allocation figures are a board's.

One pytest test per portable test function, so a VM failure is reported under
the test's own name. pytest also collects the same files directly on CPython,
and tests/test_micropython_unix.py runs them on the unix port.
MPVM_TIMEOUT_S (default 600) bounds each file's VM run: a test that hangs the
VM becomes a failure naming it.
"""
import os
import shutil

import pytest

import portable_runs
from peers import need

RUNNER = portable_runs.ROOT / "tools" / "mpvm" / "run.mjs"
TIMEOUT_S = float(os.environ.get("MPVM_TIMEOUT_S", "600"))
RUNTIME = "the MicroPython VM"
HANG_HINT = (": an endless loop, or an exception other than MemoryError escaping while "
             "micropython.heap_lock() was active")


@pytest.fixture(scope="session")
def vm_results():
    """{file name: results}, one node process per file, run in parallel."""
    node = shutil.which("node")
    need(node is not None and (RUNNER.parent / "node_modules").is_dir(),
         "the MicroPython VM needs node and tools/mpvm/node_modules (cd tools/mpvm && npm ci)")
    return portable_runs.run_all(lambda path: portable_runs.run_file(
        [node, str(RUNNER), "--tests"], path, RUNTIME, TIMEOUT_S, hang_hint=HANG_HINT))


@pytest.mark.parametrize("file, test", list(portable_runs.cases()))
def test_in_micropython(vm_results, file, test):
    portable_runs.report(vm_results, RUNTIME, file, test)
