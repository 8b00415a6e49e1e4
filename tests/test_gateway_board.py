"""The board build (tools/build_board.py, `make board`) takes the RD modules
and SenML, which run on boards, and leaves the host-only gateway package out
(it is a subpackage: the build compiles coapy_micro/*.py only)."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import build_board  # noqa: E402


def test_rd_and_senml_are_built_and_the_gateway_is_not(tmp_path):
    files = build_board.build(tmp_path, log=lambda line: None)
    names = sorted(p.relative_to(tmp_path).as_posix() for p, size in files)
    for m in ("rd", "rd_server", "senml"):
        assert "coapy_micro/%s.mpy" % m in names, names
    assert not any("gateway" in n for n in names), names
    assert not (tmp_path / "coapy_micro" / "gateway").exists()
    assert (ROOT / "coapy_micro" / "gateway" / "gateway.py").exists()  # else this checks nothing
