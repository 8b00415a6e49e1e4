"""ports/common/wifi.py (the Wi-Fi join the board mains share), on CPython
with a fake `network` module and a fake clock standing in for MicroPython's
time.ticks_ms / ticks_diff / sleep_ms. Nothing waits for real."""
import importlib.util
import sys
import types
from pathlib import Path

import pytest

WIFI = Path(__file__).resolve().parent.parent / "ports" / "common" / "wifi.py"


class FakeWLAN:
    """network.WLAN(network.STA_IF) that comes up after `polls` isconnected() calls."""

    def __init__(self, polls):
        self.polls = polls
        self.calls = []

    def active(self, on):
        self.calls.append(("active", on))

    def isconnected(self):
        if self.polls is None:
            return False
        up = self.polls <= 0
        self.polls -= 1
        return up

    def connect(self, ssid, password):
        self.calls.append(("connect", ssid, password))

    def ifconfig(self):
        return ("192.0.2.7", "255.255.255.0", "192.0.2.1", "192.0.2.1")


@pytest.fixture
def board(monkeypatch):
    """(load(wlan) -> the wifi module on that interface, the fake clock's sleeps)."""
    sleeps = []
    clock = [1000]

    def sleep_ms(ms):
        assert len(sleeps) < 10000, "connect() does not stop waiting"
        sleeps.append(ms)
        clock[0] += ms

    fake_time = types.SimpleNamespace(ticks_ms=lambda: clock[0], ticks_diff=lambda a, b: a - b,
                                      sleep_ms=sleep_ms)

    def load(wlan):
        fake_network = types.SimpleNamespace(STA_IF=0, WLAN=lambda iface: wlan)
        monkeypatch.setitem(sys.modules, "network", fake_network)
        monkeypatch.setitem(sys.modules, "time", fake_time)
        spec = importlib.util.spec_from_file_location("wifi", WIFI)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load, sleeps


def test_connects_and_returns_the_ip(board):
    load, sleeps = board
    wlan = FakeWLAN(polls=3)
    assert load(wlan).connect("home", "secret") == "192.0.2.7"
    assert wlan.calls == [("active", True), ("connect", "home", "secret")]
    assert sleeps == [200, 200]


def test_already_connected_does_not_reconnect(board):
    load, sleeps = board
    wlan = FakeWLAN(polls=0)
    assert load(wlan).connect("home", "secret") == "192.0.2.7"
    assert wlan.calls == [("active", True)] and sleeps == []


def test_gives_up_after_timeout_ms(board):
    load, sleeps = board
    with pytest.raises(OSError, match="timed out"):
        load(FakeWLAN(polls=None)).connect("home", "secret", timeout_ms=1000)
    assert sleeps == [200] * 6  # polls every 200 ms until more than 1000 ms have passed
