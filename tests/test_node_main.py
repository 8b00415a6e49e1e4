"""ports/common/node_main.py (what a board's main.py does) on CPython with
fakes for the network join, the node, the reset and the watchdog: a node
that cannot join Wi-Fi, or whose loop ends with an error, resets the board;
Ctrl-C leaves it at the REPL; the watchdog starts only when configured and
the loop feeds it. Nothing waits for real."""
import types

import pytest

import node_app
import node_main


class Board:
    """Records what node_main does to the board."""

    def __init__(self):
        self.resets = 0
        self.sleeps = []
        self.log = []
        self.runs = []
        self.wdts = []

    def reset(self):
        self.resets += 1

    def watchdog(self, ms):
        wdt = types.SimpleNamespace(ms=ms, fed=0)
        wdt.feed = lambda: setattr(wdt, "fed", wdt.fed + 1)
        self.wdts.append(wdt)
        return wdt


@pytest.fixture
def board(monkeypatch):
    b = Board()
    b.node = None  # what the fake node_app.run does: None returns, else raised

    def run(bind, read_c=None, log=print, seconds=None, feed=None, end_point=None, rd=None,
            ep_name=None, lt_s=None):
        b.runs.append((bind, read_c))
        b.rd = (rd, ep_name, lt_s)
        for _ in range(3):
            if feed:
                feed()
        if b.node is not None:
            raise b.node

    monkeypatch.setattr(node_app, "run", run)
    return b


def start(b, config, **kw):
    node_main.start(config, lambda: 21.0, reset=b.reset, watchdog=b.watchdog, log=b.log.append,
                    sleep_ms=b.sleeps.append, **kw)


def test_serves_on_the_joined_address_and_configured_port(board):
    start(board, types.SimpleNamespace(COAP_PORT=5700), join=lambda: "192.0.2.7")
    assert [r[0] for r in board.runs] == [("192.0.2.7", 5700)]
    assert board.resets == 0 and board.wdts == []  # no WATCHDOG_MS: no watchdog


def test_no_wifi_resets_the_board(board):
    def join():
        raise OSError("Wi-Fi connection timed out")

    start(board, types.SimpleNamespace(), join=join, restart_delay_ms=5000)
    assert board.runs == [] and board.resets == 1
    assert board.sleeps == [5000]
    assert "timed out" in board.log[0] and "resetting" in board.log[-1]


def test_a_node_that_stops_with_an_error_resets_the_board(board):
    board.node = MemoryError("memory allocation failed")
    start(board, types.SimpleNamespace(), join=lambda: "192.0.2.7")
    assert board.resets == 1 and "MemoryError" in board.log[0]


def test_ctrl_c_leaves_the_board_at_the_repl(board):
    board.node = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        start(board, types.SimpleNamespace(), join=lambda: "192.0.2.7")
    assert board.resets == 0


def test_without_reset_the_error_is_raised(board):
    # The unix port has no board to reset: the error reaches the caller.
    board.node = OSError(98, "EADDRINUSE")
    with pytest.raises(OSError):
        node_main.start(types.SimpleNamespace(), host="127.0.0.1", log=board.log.append)
    assert board.runs[0][0] == ("127.0.0.1", 5683)


def test_watchdog_started_after_the_join_and_fed_by_the_loop(board):
    order = []

    def join():
        order.append(("join", len(board.wdts)))
        return "192.0.2.7"

    start(board, types.SimpleNamespace(WATCHDOG_MS=8000), join=join)
    assert order == [("join", 0)]  # a slow join cannot trip it
    assert [(w.ms, w.fed) for w in board.wdts] == [(8000, 3)]


def test_rd_settings_reach_the_node(board):
    start(board, types.SimpleNamespace(RD_URI="coap://192.0.2.10", RD_EP="greenhouse-1",
                                       RD_LT_S=600), join=lambda: "192.0.2.7")
    assert board.rd == ("coap://192.0.2.10", "greenhouse-1", 600)


def test_no_rd_configured_registers_nowhere(board):
    start(board, types.SimpleNamespace(), join=lambda: "192.0.2.7")
    assert board.rd == (None, None, None)


def test_config_example_names_the_rd_settings():
    # The template documents what node_main reads; RD_URI stays commented
    # out (a fresh config registers nowhere).
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "config.example.py").read_text()
    ns = {}
    exec(compile(text, "config.example.py", "exec"), ns)
    assert "RD_URI" not in ns and ns["RD_LT_S"] == 300, ns.get("RD_LT_S")
    assert '# RD_URI = "coap://' in text and '# RD_EP = "' in text
