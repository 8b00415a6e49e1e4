"""The server's rarer parts are loaded only when a peer asks for them: the
demo node (ports/common/node_app.py) serving its GETs and its notification
tick loads none of server_separate.py (deferred answers),
server_discovery.py and link.py (/.well-known/core), server_upload.py
(Block1), server_block.py, server_observe.py and multicast.py; a deferred
answer, a discovery and a Block1 upload each load their own module and no
other. (The heap figures of `make bench` count on this: a module the node
loaded anyway would save nothing.) CPython, in a fresh interpreter (other
tests have imported them here)."""
import subprocess
import sys

from interop import ROOT

SCRIPT = r"""
import sys
sys.path[:0] = ["tests/portable", "ports/common", "."]
from fakenet import CLIENT, SERVER, Net
from coapy_micro.client import Client
import node_app

LAZY = ("server_separate", "server_discovery", "link", "server_upload", "server_block",
        "server_observe", "multicast")

def loaded():
    return [m for m in LAZY if "coapy_micro." + m in sys.modules]

net = Net()
node = node_app.Node(SERVER, read_c=lambda: 21.5, log=lambda line: None,
                     end_point=net.endpoint(SERVER))
srv = node.server
c = Client(net.endpoint(CLIENT))

def run(*args, **kw):
    h = c.start(*args, **kw)
    while not h.done:
        srv.process(0)
        c.process(10)
    return h.result()

for path in ("sensors/temp", "hello", "sys/uptime"):
    assert run("get", "coap://10.0.0.2/" + path).code == 69
assert srv.notify("sensors/temp") == 0
node.serve(seconds=0.05)
print("node", loaded())

def slow(req):
    d = req.defer()
    d.respond(69, b"later")

srv.add("slow", node_app.Resource(get=slow))
assert run("get", "coap://10.0.0.2/slow").payload == b"later"
print("deferred", loaded())
assert b"</hello>" in run("get", "coap://10.0.0.2/.well-known/core").payload
print("discovered", loaded())
srv.add("up", node_app.Resource(put=lambda r: (68, b"")))
assert run("put", "coap://10.0.0.2/up", b"u" * 40, block_size=16).code == 68
print("uploaded", loaded())
"""


def test_the_node_loads_no_rare_part_and_each_loads_alone():
    p = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [
        "node []",
        "deferred ['server_separate']",
        "discovered ['server_separate', 'server_discovery', 'link']",
        "uploaded ['server_separate', 'server_discovery', 'link', 'server_upload',"
        " 'server_block']",
    ], p.stdout


# A node served by a bare socket on the fake network (a Client would load
# transactions.py in this process for its own sends).
SCRIPT_TX = r"""
import sys
sys.path[:0] = ["tests/portable", "ports/common", "."]
import fakenet
from fakenet import CLIENT, SERVER, Net
import node_app

net = Net()
node = node_app.Node(SERVER, read_c=lambda: 21.5, log=lambda line: None,
                     end_point=net.endpoint(SERVER))
peer = fakenet.Socket(net)
peer.bind(CLIENT)

def ask(data):
    peer.sendto(data, SERVER)
    node.server.process(0)
    return peer.recvfrom(1152)[0]

# CON GET /sensors/temp; NON GET /hello; CON GET /nothing (4.04); a ping.
assert ask(b"\x41\x01\x01\x01\x01\xb7sensors\x04temp")[1] == 69
assert ask(b"\x51\x01\x01\x02\x02\xb5hello")[1] == 69
assert ask(b"\x41\x01\x01\x03\x03\xb7nothing")[1] == 132
assert ask(b"\x40\x00\x01\x04")[0] & 0x30 == 0x30  # RST
node.serve(seconds=0.05)
print("served", "coapy_micro.transactions" in sys.modules, node.ep.in_flight)
# GET /sensors/temp with Observe: 0, then a notification.
assert ask(b"\x41\x01\x01\x05\x05\x60\x57sensors\x04temp")[1] == 69
assert node.server.notify("sensors/temp") == 1
node.server.process(0)
print("observed", "coapy_micro.transactions" in sys.modules)
"""


def test_a_node_answering_requests_does_not_load_the_transmission_table():
    p = subprocess.run([sys.executable, "-c", SCRIPT_TX], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["served False 0", "observed True"], p.stdout
