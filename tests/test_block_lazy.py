"""Block-wise transfer is loaded only when a transfer needs it: a server and
a client exchanging small bodies import none of block.py, server_block.py
and client_block.py; the first large body loads all three (the server's
half to send it, the client's to reassemble it). CPython, in a fresh
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
srv.add("s", Resource(get=lambda r: (69, b"x" * 1024), put=lambda r: (68, b"")))
c = Client(net.endpoint(CLIENT))

def run(*args):
    h = c.start(*args)
    while not h.done:
        srv.process(0)
        c.process(10)
    return h.result()

assert run("get", "coap://10.0.0.2/s").payload == b"x" * 1024
assert run("put", "coap://10.0.0.2/s", b"y" * 1024).code == 68
MODS = ("coapy_micro.block", "coapy_micro.server_block", "coapy_micro.client_block")
print("small", any(m in sys.modules for m in MODS))
srv.add("b", Resource(get=lambda r: (69, b"z" * 1025)))
assert run("get", "coap://10.0.0.2/b").payload == b"z" * 1025
print("large", all(m in sys.modules for m in MODS))
"""


def test_block_module_is_loaded_only_for_large_bodies():
    p = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["small", "False", "large", "True"], p.stdout
