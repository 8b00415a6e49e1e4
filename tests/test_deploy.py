"""`make deploy` as a board user runs it, on the MicroPython unix port
behind a pty standing in for the board: deploy, `mpremote ... exec "import
main"`, then libcoap's client reads /sensors/temp from the node; a second
deploy copies nothing, a changed setting copies one file; Ctrl-C leaves the
port free for the next run; a Wi-Fi board without settings is refused.

Needs socat, coap-client-notls and the unix port (skip on a laptop without
them, fail under CI=true).
"""
import re
import subprocess
import sys
from pathlib import Path

import pytest

import upy
from interop import LOOPBACK, coap_answers, coap_client, free_udp_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "tools" / "deploy.py"


def make_deploy(board, device, config, stage):
    """`make deploy PORT=device BOARD=board CONFIG=config STAGE=stage`."""
    return subprocess.run(["make", "-s", "-C", str(ROOT), "deploy", "PORT=%s" % device,
                           "BOARD=%s" % board, "CONFIG=%s" % config, "STAGE=%s" % stage],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def board(tmp_path):
    b = upy.PtyBoard(tmp_path / "board")
    yield b
    b.close()


def test_deploy_import_main_and_get_the_temperature(board, tmp_path):
    port = free_udp_port()
    config = tmp_path / "config.py"
    config.write_text("COAP_PORT = %d\n" % port)
    stage = tmp_path / "stage"
    # What an older deploy left: the node app as source, which MicroPython
    # would import before the .mpy of the same name.
    (board.dir / "lib").mkdir()
    (board.dir / "lib" / "node_app.py").write_text("raise ImportError('stale node_app.py')\n")

    first = make_deploy("unix", board.tty, config, stage)
    assert first.returncode == 0, first.stdout + first.stderr
    staged = int(re.search(r"staged (\d+) files", first.stdout).group(1))
    assert "%d file(s) copied, 0 up to date" % staged in first.stdout, first.stdout
    on_board = sorted(p.relative_to(board.dir).as_posix() for p in board.dir.rglob("*")
                      if p.is_file() and p.name != "tty")
    assert "main.py" in on_board and "config.py" in on_board
    assert "lib/coapy_micro/server.mpy" in on_board and "lib/node_app.mpy" in on_board
    # The source an older deploy left is gone: it would shadow the .mpy.
    assert "lib/node_app.py" not in on_board, on_board
    assert not [f for f in on_board if f.startswith("lib/coapy_micro/") and f.endswith(".py")]
    assert "lib/coapy_micro/cli.mpy" not in on_board  # host only
    assert "lib/coapy_micro/_cpython.mpy" not in on_board  # CPython's stand-ins
    assert (board.dir / "config.py").read_text() == config.read_text()

    # A second deploy copies nothing; a changed setting copies config.py only.
    again = make_deploy("unix", board.tty, config, stage)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 file(s) copied, %d up to date" % staged in again.stdout, again.stdout
    port = free_udp_port()
    config.write_text("COAP_PORT = %d\n" % port)
    changed = make_deploy("unix", board.tty, config, stage)
    assert "1 file(s) copied, %d up to date" % (staged - 1) in changed.stdout, changed.stdout
    assert "copied     config.py" in changed.stdout

    # What a board does at boot: import main. It serves until interrupted.
    board.mpremote("exec", "--no-follow", "import main")
    assert coap_answers(LOOPBACK, port, seconds=15), "the deployed node does not answer"
    temp = coap_client("coap://%s:%d/sensors/temp" % (LOOPBACK, port))
    assert 10 < float(temp) < 35, temp
    assert coap_client("coap://%s:%d/hello" % (LOOPBACK, port)) == "hello from a coapy_micro node"

    # Ctrl-C: the node closes its socket, so the same port binds again.
    board.interrupt()
    rerun = board.mpremote("exec", "import node_app\n"
                           "node_app.run(('127.0.0.1', %d), seconds=0.5)" % port)
    assert "node: serving CoAP on 127.0.0.1:%d" % port in rerun.stdout, rerun.stdout
    assert "EADDRINUSE" not in rerun.stdout + rerun.stderr


@pytest.mark.parametrize("board_name", ["esp32", "rp2"])
def test_wifi_board_without_config_is_refused(board_name, tmp_path):
    proc = make_deploy(board_name, "/dev/null", tmp_path / "config.py", tmp_path / "stage")
    assert proc.returncode != 0
    assert "refused: no %s" % (tmp_path / "config.py") in proc.stderr, proc.stderr
    assert "WIFI_SSID" in proc.stderr and "config.example.py" in proc.stderr
    assert not (tmp_path / "stage").exists()  # nothing built, nothing copied


def test_wifi_board_with_the_example_settings_is_refused(tmp_path):
    config = tmp_path / "config.py"
    config.write_text((ROOT / "config.example.py").read_text())
    proc = subprocess.run([sys.executable, str(DEPLOY), "--port", "/dev/null", "--board", "esp32",
                           "--config", str(config)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "set WIFI_SSID" in proc.stderr, proc.stderr
