"""Observe is loaded only when something observes: a server with an
observable resource answering plain GETs, notify() with no observer, and a
client making plain requests import neither server_observe.py nor
client_observe.py; the first registration loads both. CPython, in a fresh
interpreter (other tests have imported them here)."""
import subprocess
import sys

from interop import ROOT

SCRIPT = r"""
import sys
sys.path[:0] = ["tests/portable", "."]
from fakenet import CLIENT, SERVER, Net
from coapy_micro.client import Client
from coapy_micro.server import Resource, Server

net = Net()
srv = Server(net.endpoint(SERVER))
srv.add("t", Resource(get=lambda r: (69, b"21.5"), obs=True))
c = Client(net.endpoint(CLIENT))

def run(*args):
    h = c.start(*args)
    while not h.done:
        srv.process(0)
        c.process(10)
    return h.result()

assert run("get", "coap://10.0.0.2/t").payload == b"21.5"
assert srv.notify("t") == 0
MODS = ("coapy_micro.server_observe", "coapy_micro.client_observe")
print("plain", any(m in sys.modules for m in MODS))
got = []
ob = c.observe("coap://10.0.0.2/t", got.append)
while not got:
    srv.process(0)
    c.process(10)
print("observed", all(m in sys.modules for m in MODS), srv.observers("t"))
"""


def test_observe_module_is_loaded_only_when_observing():
    p = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["plain", "False", "observed", "True", "1"], p.stdout
