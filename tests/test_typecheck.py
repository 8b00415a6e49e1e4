"""`make typecheck` (tools/typecheck.py) checks board code against each
board's own stubs, without the host's site-packages: it finds what is
wrong on one chip and right on another, and a CPython-only call. (CI runs
`make typecheck` itself over the whole tree.)"""
import shutil
import sys
from pathlib import Path

import pytest

from peers import need

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import typecheck  # noqa: E402

PROBE = '''import esp32
import time

print(esp32.raw_temperature())
print(time.monotonic())
'''


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    need(shutil.which("pyright", path=str(Path(sys.executable).parent)) is not None,
         "pyright not installed (make setup installs requirements-test.txt)")
    d = tmp_path_factory.mktemp("typecheck")
    (d / "probe.py").write_text(PROBE)
    return d


def messages(board, probe):
    found = typecheck.findings(board, only=[probe / "probe.py"], work=probe / board)
    return [(f[3], f[2]) for f in found if f[0].endswith("probe.py")]


def test_raw_temperature_is_missing_on_the_esp32_s3_only(probe):
    s3 = messages("esp32s3", probe)
    classic = messages("esp32", probe)
    assert any(line == 4 and "raw_temperature" in m for line, m in s3), s3
    assert not any("raw_temperature" in m for _, m in classic), classic


def test_cpython_only_calls_are_findings(probe):
    # time.monotonic() is CPython's; MicroPython has ticks_ms().
    assert any(line == 5 and "monotonic" in m for line, m in messages("rp2", probe))
