"""tools/build_board.py (`make board`): what gets copied to a board.

Builds into a temporary folder and checks it holds every board module of
coapy_micro as .mpy and nothing host-only, with ports/common/*.py next to
the package; then loads that package in the MicroPython VM (the .mpy files,
as a board would) and runs a request through it.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from peers import need

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "build_board.py"
RUNNER = ROOT / "tools" / "mpvm" / "run.mjs"
HOST_ONLY = {"cli", "trace", "demo_node", "__main__", "_cpython"}


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """(output folder, the tool's stdout) of one build_board.py run."""
    out = tmp_path_factory.mktemp("board")
    proc = subprocess.run([sys.executable, str(TOOL), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc.stdout


def test_board_modules_are_compiled_and_host_only_ones_left_out(board):
    out, _ = board
    sources = {p.stem for p in (ROOT / "coapy_micro").glob("*.py")}
    assert HOST_ONLY <= sources  # else this test checks nothing
    built = sorted(p.name for p in (out / "coapy_micro").iterdir())
    assert built == sorted(name + ".mpy" for name in sources - HOST_ONLY)
    for name in built:
        data = (out / "coapy_micro" / name).read_bytes()
        assert data[:1] == b"M" and data[1] == 6, name  # .mpy header: 'M', version 6


def test_the_node_app_is_compiled_next_to_the_package(board):
    # .mpy like the package: a board would otherwise compile it at every
    # boot (the compiler's room on the heap) and hold more once loaded.
    out, _ = board
    common = sorted((ROOT / "ports" / "common").glob("*.py"))
    assert {p.name for p in common} >= {"node_app.py", "wifi.py"}
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == [p.stem + ".mpy" for p in common]
    for p in common:
        data = (out / (p.stem + ".mpy")).read_bytes()
        assert data[:1] == b"M" and data[1] == 6, p.name


def test_prints_each_file_and_the_total(board):
    out, text = board
    lines = text.splitlines()
    files = sorted(p for p in out.rglob("*") if p.is_file())
    rows = {ln.split()[0]: int(ln.split()[1]) for ln in lines[:-1]}
    assert rows == {p.relative_to(out).as_posix(): p.stat().st_size for p in files}
    total = sum(p.stat().st_size for p in files)
    assert lines[-1].startswith("%d files, %d bytes in " % (len(files), total)), lines[-1]


def test_rebuild_removes_stale_modules(board, tmp_path):
    out = tmp_path / "again"
    (out / "coapy_micro").mkdir(parents=True)
    (out / "coapy_micro" / "gone.mpy").write_bytes(b"M\x06")
    proc = subprocess.run([sys.executable, str(TOOL), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert not (out / "coapy_micro" / "gone.mpy").exists()
    assert (out / "coapy_micro" / "message.mpy").exists()


VM_SCRIPT = """
import coapy_micro.connection as connection
import coapy_micro.server as server
from coapy_micro import codes
from coapy_micro.message import Message

for m in (connection, server):
    assert m.__file__.endswith(".mpy"), m.__file__
req = Message(Message.CON, codes.GET, token=b"\\x01", uri_path="hello")
tid, back = Message.decode(req.encode(0x1234))
assert tid == 0x1234 and [o.value for o in back.findOptions(11)] == ["hello"]
print("board package ok")
"""


def test_the_built_package_loads_in_micropython(board, tmp_path):
    node = shutil.which("node")
    need(node is not None and (RUNNER.parent / "node_modules").is_dir(),
         "the MicroPython VM needs node and tools/mpvm/node_modules (cd tools/mpvm && npm ci)")
    out, _ = board
    script = tmp_path / "check.py"
    script.write_text(VM_SCRIPT)
    proc = subprocess.run([node, str(RUNNER), "--pkg", str(out / "coapy_micro"), "--script", str(script)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "board package ok" in proc.stdout, proc.stdout + proc.stderr


TRACEBACK_SCRIPT = """
import io
import sys
from coapy_micro.message import Message

try:
    Message.decode(b"\\x80\\x01\\x00\\x00")  # CoAP version 2: refused
except Exception as e:
    buf = io.StringIO()
    sys.print_exception(e, buf)
    print(buf.getvalue())
"""


def _traceback(node, pkg, tmp_path):
    script = tmp_path / "tb.py"
    script.write_text(TRACEBACK_SCRIPT)
    proc = subprocess.run([node, str(RUNNER), "--pkg", str(pkg), "--script", str(script)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [ln.strip() for ln in proc.stdout.splitlines() if "coapy_micro/message.py" in ln]


def test_line_numbers_are_left_out_unless_debug(board, tmp_path):
    # The default build drops the line-number tables (mpy-cross -O3: less
    # heap once loaded); a traceback still names the file and function.
    # --debug keeps them.
    node = shutil.which("node")
    need(node is not None and (RUNNER.parent / "node_modules").is_dir(),
         "the MicroPython VM needs node and tools/mpvm/node_modules (cd tools/mpvm && npm ci)")
    out, text = board
    assert "mpy-cross -O3;" in text.splitlines()[-1]
    lean = _traceback(node, out / "coapy_micro", tmp_path)
    assert lean and all(", line 1, in " in ln for ln in lean), lean
    debug = tmp_path / "debug"
    proc = subprocess.run([sys.executable, str(TOOL), "--out", str(debug), "--debug"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "mpy-cross -O0, line numbers kept;" in proc.stdout.splitlines()[-1]
    full = _traceback(node, debug / "coapy_micro", tmp_path)
    assert [ln.split(", in ")[1] for ln in full] == [ln.split(", in ")[1] for ln in lean]
    assert all(", line 1, in " not in ln for ln in full), full
    for mpy in (out / "coapy_micro").glob("*.mpy"):  # and the lean files are smaller
        assert mpy.stat().st_size <= (debug / "coapy_micro" / mpy.name).stat().st_size, mpy.name
