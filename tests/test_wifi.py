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

    def disconnect(self):
        self.calls.append(("disconnect",))

    def ipconfig(self, name):
        # MicroPython 1.24 and later (ifconfig() is deprecated in 1.29).
        assert name == "addr4", name
        return ("192.0.2.7", "255.255.255.0")


class OldWLAN(FakeWLAN):
    """Firmware before 1.24: ifconfig() only."""

    ipconfig = None

    def ifconfig(self):
        return ("192.0.2.8", "255.255.255.0", "192.0.2.1", "192.0.2.1")


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
    wlan = FakeWLAN(polls=None)
    with pytest.raises(OSError, match="timed out"):
        load(wlan).connect("home", "secret", timeout_ms=1000)
    assert sleeps == [200] * 6  # polls every 200 ms until more than 1000 ms have passed
    assert wlan.calls[-1] == ("disconnect",)  # the next attempt starts afresh


def test_older_firmware_without_ipconfig_uses_ifconfig(board):
    load, _ = board
    wlan = OldWLAN(polls=0)
    wlan.ipconfig = None
    assert load(wlan).connect("home", "secret") == "192.0.2.8"


def test_join_retries_with_back_off_then_connects(board):
    load, sleeps = board
    wlan = FakeWLAN(polls=None)
    wifi = load(wlan)
    attempts = []
    real_connect = wifi.connect

    def flaky(ssid, password, timeout_ms):
        attempts.append(timeout_ms)
        if len(attempts) < 3:
            raise OSError("Wi-Fi connection timed out")
        wlan.polls = 0
        return real_connect(ssid, password, timeout_ms)

    wifi.connect = flaky
    log = []
    assert wifi.join("home", "secret", attempts=5, timeout_ms=500, backoff_ms=1000,
                     log=log.append) == "192.0.2.7"
    assert attempts == [500, 500, 500]
    assert sleeps == [1000, 2000]  # doubled after each failure
    assert len(log) == 2 and "attempt 1 of 5" in log[0]


def test_join_gives_up_after_the_last_attempt(board):
    load, sleeps = board
    wifi = load(FakeWLAN(polls=None))
    log = []
    with pytest.raises(OSError, match="timed out"):
        wifi.join("home", "secret", attempts=4, timeout_ms=200, backoff_ms=30000, log=log.append)
    assert len(log) == 4 and "attempt 4 of 4" in log[-1]
    waits = [s for s in sleeps if s != 200]
    assert waits == [30000, 60000, 60000]  # back-off capped at a minute, none after the last
