"""The host node (ports/unix/node.py, the node app a board runs) with
--rd/--ep/--lt, on CPython and on the MicroPython unix port, over real
sockets on loopback:

- given only an RD's bare URI it finds the registration resource
  (/.well-known/core?rt=core.rd*), registers its resource tree under the
  endpoint name, and the RD's endpoint and resource lookups show it with the
  node's own address as base; Ctrl-C (SIGINT) deregisters;
- the same at aiocoap's RD (aiocoap-rd), a peer nobody here wrote;
- an RD that answers every registration 5.03 with Max-Age 0 gets a few,
  backed off, not a storm;
- its options come from one table: the usage line names them, bad values
  are refused clearly.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coapy_micro.client import Client
from coapy_micro.connection import EndPoint
from coapy_micro.link import parse
from coapy_micro.rd_server import ResourceDirectory
from coapy_micro.server import Server
from interop import LOOPBACK, BackgroundLoop, free_udp_port, need_aiocoap
from rdpeers import Proc, aiocoap_rd, micropython, wait_until

ROOT = Path(__file__).resolve().parent.parent
NODE = ROOT / "ports" / "unix" / "node.py"
RUNTIMES = ("cpython", "micropython")


class RDLoop(BackgroundLoop):
    """Our RD on 127.0.0.1 (an ephemeral port), its loop in a thread."""

    def __init__(self, max_registrations=8, busy_s=30):
        self.ep = EndPoint(max_in_flight=64, dedup_size=256, max_message_size=4096)
        self.ep.bind((LOOPBACK, 0))
        self.port = self.ep.socket.getsockname()[1]
        self.events = []
        self.rd = ResourceDirectory(Server(self.ep), max_registrations=max_registrations,
                                    busy_s=busy_s,
                                    on_change=lambda e, reg: self.events.append((e, reg.ep)))
        self.start()

    def loop(self, stopped):
        while not stopped():
            self.rd.process(20)


@pytest.fixture
def rd():
    loop = RDLoop()
    yield loop
    loop.stop()


def node_argv(runtime):
    if runtime == "micropython":
        return [micropython(), "-X", "heapsize=256k"]
    return [sys.executable]


def start_node(tmp_path, runtime, rd_port, ep, lt=30, rd_host=LOOPBACK):
    port = free_udp_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = Proc(node_argv(runtime) + [str(NODE), str(port), "120", "--rd",
                                   "coap://%s:%d" % (rd_host, rd_port), "--ep", ep, "--lt",
                                   str(lt)], tmp_path / "node.log", env=env)
    p.port = port
    return p


def lookup(rd_port, kind, query):
    """Links of an RD lookup (kind 'ep' or 'res'), found as RFC 9176 §4.3
    says (rt=core.rd-lookup-ep / -res), with our client."""
    c = Client()
    try:
        base = "coap://%s:%d" % (LOOPBACK, rd_port)
        r = c.request("get", base + "/.well-known/core?rt=core.rd-lookup-" + kind,
                      timeout_ms=10000)
        (link,) = parse(r.payload)
        r = c.request("get", base + link.target + "?" + query, timeout_ms=10000)
        return parse(r.payload)
    finally:
        c.close()


def stop(node):
    """Ctrl-C: the node deregisters, closes and exits; its output."""
    node.proc.send_signal(signal.SIGINT)
    node.proc.wait(20)
    return node.text()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_node_registers_with_our_rd_found_by_its_uri(tmp_path, rd, runtime):
    node = start_node(tmp_path, runtime, rd.port, "host-node-" + runtime)
    try:
        wait_until(lambda: "node: registered as" in node.text(), 30,
                   what="the registration:\n" + node.text())
        text = node.text()
        where = "coap://%s:%d" % (LOOPBACK, rd.port)
        assert "node: the RD takes registrations at %s/rd" % where in text, text
        assert ("node: registering with the RD at %s as host-node-%s (lifetime 30 s)"
                % (where, runtime)) in text, text
        (ep,) = lookup(rd.port, "ep", "ep=host-node-" + runtime)
        assert ep.get("base") == "coap://127.0.0.1:%d" % node.port, ep
        assert ep.get("lt") == "30", ep
        res = lookup(rd.port, "res", "ep=host-node-" + runtime)
        by_target = {link.target: link for link in res}
        temp = by_target["coap://127.0.0.1:%d/sensors/temp" % node.port]
        assert temp.get("rt") == "temperature-c" and temp.get("obs") is not None, temp
        assert set(by_target) == {"coap://127.0.0.1:%d/%s" % (node.port, p)
                                  for p in ("sensors/temp", "sys/uptime", "hello")}, by_target
        text = stop(node)
        assert "node: deregistered" in text and text.rstrip().endswith("node: stopped"), text
        wait_until(lambda: ("remove", "host-node-" + runtime) in rd.events, 10,
                   what="the removal at the RD")
        assert lookup(rd.port, "ep", "ep=host-node-" + runtime) == []
    finally:
        node.kill()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_node_registers_with_an_rd_named_by_a_host_name(tmp_path, rd, runtime):
    # The registrar resolves the name itself (once) and sends to the
    # address, the name as Uri-Host: over real sockets, where the unix port
    # resolves to raw sockaddr bytes. Updates every 2 s (lt 3) reach the RD.
    node = start_node(tmp_path, runtime, rd.port, "named-" + runtime, lt=3, rd_host="localhost")
    try:
        wait_until(lambda: "node: registered as" in node.text(), 30,
                   what="the registration:\n" + node.text())
        assert ("node: the RD takes registrations at coap://localhost:%d/rd" % rd.port
                in node.text()), node.text()
        wait_until(lambda: node.text().count("node: registration refreshed") >= 2, 30,
                   what="two updates:\n" + node.text())
        (ep,) = lookup(rd.port, "ep", "ep=named-" + runtime)
        assert ep.get("base") == "coap://127.0.0.1:%d" % node.port, ep
        text = stop(node)
        assert "node: deregistered" in text, text
    finally:
        node.kill()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_node_registers_at_aiocoap_rd(tmp_path, runtime):
    need_aiocoap()
    with aiocoap_rd(tmp_path / "rd.log") as (rd_port, proc):
        node = start_node(tmp_path, runtime, rd_port, "aio-" + runtime)
        try:
            wait_until(lambda: "node: registered as" in node.text(), 30,
                       what="the registration:\n" + node.text())
            (ep,) = wait_until(lambda: lookup(rd_port, "ep", "ep=aio-" + runtime), 20,
                               what="the endpoint at aiocoap's lookup")
            assert ep.get("base") == "coap://127.0.0.1:%d" % node.port, ep
            res = lookup(rd_port, "res", "rt=temperature-c")
            assert ["coap://127.0.0.1:%d/sensors/temp" % node.port] == [
                link.target for link in res], res
            text = stop(node)
            assert "node: deregistered" in text, text
            assert wait_until(lambda: lookup(rd_port, "ep", "ep=aio-" + runtime) == [], 10,
                              what="the removal at aiocoap's RD")
        finally:
            node.kill()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_node_backs_off_from_an_rd_answering_503_max_age_0(tmp_path, runtime):
    # Max-Age 0 (RFC 7252 §5.9.3.4) is no call to ask again at once: the
    # node app sent 9,612 registrations (and logged as many lines) in 5 s
    # to such an RD. Now each 5.03 waits the back-off (1-2 s, then 2-4 s,
    # 4-8 s...). A window that counts what arrived: a slow machine only
    # sends fewer.
    rd = RDLoop(max_registrations=0, busy_s=0)
    try:
        node = start_node(tmp_path, runtime, rd.port, "busy-" + runtime)
        try:
            wait_until(lambda: rd.rd.rejected >= 1, 30,
                       what="the first registration:\n" + node.text())
            time.sleep(5)
            n = rd.rd.rejected
            text = node.text()
        finally:
            node.kill()
    finally:
        rd.stop()
    # The first and at most two retries (the earliest 1 and 3 s after it); one
    # more for the window's start.
    assert 1 <= n <= 4, (n, text)
    said = text.count("node: RD: registration answered 5.03")
    assert 1 <= said <= 4, text


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_node_options(runtime):
    def run(*args):
        p = subprocess.run(node_argv(runtime) + [str(NODE), *args], capture_output=True,
                           text=True, timeout=30)
        return p.returncode, p.stdout + p.stderr

    code, out = run("--bogus", "1")
    assert code != 0, out
    assert "unknown option --bogus" in out, out
    assert "usage: node.py [PORT] [SECONDS] [--rd URI] [--ep NAME] [--lt SECONDS]" in out, out
    code, out = run("0", "1", "--lt", "soon")
    assert code != 0 and "--lt soon: not a valid value" in out, out
    code, out = run("0", "1", "--rd")
    assert code != 0 and "--rd needs a value" in out, out
