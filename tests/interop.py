"""Peers, ports and servers shared by the real-socket interop tests.

- free_udp_port, coap_answers: a port to start a peer on, and whether
  something there answers a CoAP ping yet (probed with a plain socket, never
  with the code under test);
- libcoap: libcoap_server() runs coap-server-notls, coap_client() runs
  coap-client-notls once;
- aiocoap: need_aiocoap(), aiocoap_request() (one request with aiocoap's
  client);
- coapy_serve(): `python -m coapy_micro serve` in a subprocess;
- BackgroundLoop: a server loop of ours in a thread that stop() ends and
  whose exceptions it re-raises.

tests/conftest.py makes the module-wide fixtures (libcoap, libcoap_server)
from these. CPython only. A missing peer skips on a laptop and fails under
CI=true (peers.need).
"""
import asyncio
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from peers import need

LOOPBACK = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent

LIBCOAP_HINT = "(Debian/Ubuntu: apt-get install libcoap3-bin)"
AIOCOAP_MISSING = "aiocoap not installed (make setup installs requirements-test.txt)"


# -- ports ------------------------------------------------------------------


def free_udp_port(host=LOOPBACK, family=socket.AF_INET):
    """A UDP port free on `host` right now (it may be taken before it is used:
    callers retry)."""
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def coap_answers(host, port, family=socket.AF_INET, seconds=5.0):
    """True once something at (host, port) answers a CoAP ping (CON, 0.00)
    with anything; probes with a plain socket, not with the code under test."""
    deadline = time.monotonic() + seconds
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(0.1)
        mid = 0x2200
        while time.monotonic() < deadline:
            mid += 1
            s.sendto(bytes([0x40, 0, mid >> 8, mid & 0xFF]), (host, port))
            try:
                s.recvfrom(64)
                return True
            except (socket.timeout, ConnectionRefusedError):
                pass
    return False


def stop(proc):
    """Terminate a subprocess (kill it if it lingers) and reap it."""
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- libcoap ------------------------------------------------------------------


def start_libcoap(address):
    """(process, port) of a coap-server-notls listening on `address`
    ('127.0.0.1', '::1', or '::' for both families), answering pings."""
    need(shutil.which("coap-server-notls"), "coap-server-notls not found " + LIBCOAP_HINT)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    probe = "::1" if family == socket.AF_INET6 else LOOPBACK
    for _ in range(3):  # the free port may be taken between probe and bind
        port = free_udp_port(probe, family)
        proc = subprocess.Popen(["coap-server-notls", "-A", address, "-p", str(port), "-v", "0"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if coap_answers(probe, port, family) and proc.poll() is None:
            return proc, port
        stop(proc)
    pytest.fail("coap-server-notls did not start answering on %s" % address)


@contextmanager
def libcoap_server(address=LOOPBACK):
    """The port of a coap-server-notls on `address`, stopped on exit."""
    proc, port = start_libcoap(address)
    try:
        yield port
    finally:
        stop(proc)


def coap_client(*args, stderr=True):
    """The output of one coap-client-notls run (5 s wait), stripped: stdout
    followed by stderr (where it writes a 4.xx/5.xx code), or stdout only."""
    need(shutil.which("coap-client-notls"), "coap-client-notls not found " + LIBCOAP_HINT)
    proc = subprocess.run(["coap-client-notls", "-B", "5", *args],
                          capture_output=True, text=True, timeout=20)
    return (proc.stdout + proc.stderr if stderr else proc.stdout).strip()


# -- aiocoap ----------------------------------------------------------------------


def need_aiocoap():
    """The aiocoap module (skip on a laptop without it, fail under CI=true)."""
    try:
        import aiocoap
    except ImportError:
        need(False, AIOCOAP_MISSING)
    return aiocoap


def aiocoap_request(uri, code="GET", payload=b"", non=False, options=()):
    """One request with aiocoap's client (a fresh context, 10 s at most):
    its response Message. NON when `non` (aiocoap 0.4.17 picks the message
    type from the request's transport_tuning); `options`: aiocoap option
    instances to add."""
    aiocoap = need_aiocoap()

    async def run():
        ctx = await aiocoap.Context.create_client_context()
        try:
            kw = {"transport_tuning": aiocoap.Unreliable()} if non else {}
            req = aiocoap.Message(code=getattr(aiocoap, code), uri=uri, payload=payload, **kw)
            for opt in options:
                req.opt.add_option(opt)
            return await asyncio.wait_for(ctx.request(req).response, 10)
        finally:
            await ctx.shutdown()

    return asyncio.run(run())


# -- `coapy serve` ----------------------------------------------------------------


def _serve_port(proc, log, bind, seconds):
    # The port `coapy serve` reports on stderr ("listening on ADDR:PORT"),
    # or None if it exits or stays silent for `seconds`.
    pattern = re.compile(r"listening on %s:(\d+)" % re.escape(bind))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        m = pattern.search(log.read_text())
        if m:
            return int(m.group(1))
        time.sleep(0.05)
    return None


@contextmanager
def coapy_serve(log, port=0, bind=LOOPBACK):
    """'coap://BIND:PORT' of `python -m coapy_micro serve --bind BIND --port
    PORT`, its stderr in the file `log`. port=0 lets the server pick one (it
    reports it); port=None takes a free one and passes it (retried if it is
    taken meanwhile). On exit the server is stopped and its log must show no
    traceback (nothing went wrong inside it meanwhile)."""
    for _ in range(3 if port is None else 1):
        want = free_udp_port(bind) if port is None else port
        with open(log, "wb") as f:
            proc = subprocess.Popen([sys.executable, "-m", "coapy_micro", "serve",
                                     "--bind", bind, "--port", str(want)],
                                    cwd=ROOT, stdout=subprocess.DEVNULL, stderr=f)
        got = _serve_port(proc, log, bind, 10)
        if got is not None:
            break
        stop(proc)
    if got is None:
        pytest.fail("coapy serve did not start:\n" + log.read_text())
    assert want in (0, got), (want, got)
    try:
        yield "coap://%s:%d" % (bind, got)
    finally:
        stop(proc)
    assert "Traceback" not in log.read_text(), log.read_text()


# -- our own servers in a thread ----------------------------------------------------


class BackgroundLoop:
    """A server loop in a daemon thread: a subclass sets self.ep (an
    EndPoint), defines loop(stopped) (run until stopped() is true) and calls
    start(). stop() ends the loop, joins the thread, closes the EndPoint and
    re-raises what the loop raised."""

    did_not_stop = "the server loop did not stop"

    def start(self):
        self.error = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()

    def loop(self, stopped):
        raise NotImplementedError

    def _main(self):
        try:
            self.loop(self._stop.is_set)
        except BaseException as e:  # reported by stop()
            self.error = e

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        self.ep.close()
        assert not self._thread.is_alive(), self.did_not_stop
        if self.error is not None:
            raise self.error
