# A Server on a real UDP socket in a small fixed heap, run out of memory on
# purpose, for tests/test_small_heap.py:
#   micropython -X heapsize=192k pressure_node.py PORT CLIENT_PORT
# One process plays node and client (over loopback): the heap is filled
# with ballast, leaving only small scattered holes, so that no read buffer
# of full size (max_message_size + 1) can be allocated. Prints one JSON
# line with what happened at each step.
import gc
import json
import socket
import sys
import time

from coapy_micro.connection import EndPoint, Message
from coapy_micro.server import Resource, Server

port = int(sys.argv[1])
ep = EndPoint()
ep.bind(("127.0.0.1", port))
srv = Server(ep)
srv.add("x", Resource(get=lambda r: (69, b"ok"), post=lambda r: (68, b"stored")))
client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
client.bind(socket.getaddrinfo("127.0.0.1", int(sys.argv[2]))[0][-1])
client.setblocking(False)
node = socket.getaddrinfo("127.0.0.1", port)[0][-1]
GET_X = Message(0, 1, b"", b"g", uri_path="x")
POST_X = Message(0, 2, b"p" * 900, b"b", uri_path="x")  # past the small read buffer
# Every datagram made now: the client has no memory to spare later either.
DATA = {mid: (POST_X if mid in (3, 5) else GET_X).encode(mid) for mid in range(1, 6)}
out = {"heap": gc.mem_free() + gc.mem_alloc(), "warm": None, "starved_get": None,
       "starved_post": None, "starved_get_again": None, "memory_errors": 0, "dropped": 0,
       "recovered_post": None, "memory_errors_after": 0}


def ask(mid):
    # Send, let the node serve (ten tries: a starved one ends process()
    # early), collect the answer codes.
    client.sendto(DATA[mid], node)
    time.sleep_ms(5)
    errors = 0
    for _ in range(10):
        try:
            srv.process(0)
        except Exception as e:  # must not happen: reported, not raised
            errors += 1
            print("raised", repr(e))
    codes = []
    while True:
        try:
            codes.append(client.recv(64)[1])
        except OSError:
            return codes, errors


def starve():
    # The heap filled with ballast but for a few KB in small scattered
    # holes (in a function: a new global would need room of its own).
    ballast = None
    for size in (16384, 2048, 256, 32, 0):  # big blocks first, then the gaps
        try:
            while True:
                ballast = (ballast, bytearray(size))  # no list to grow
        except MemoryError:
            pass
    for _ in range(80):  # give back a few KB, in small scattered pieces
        ballast = ballast[0]
    gc.collect()
    try:  # and fill any hole a collection opened that a full read would fit
        while True:
            ballast = (ballast, bytearray(1024))
    except MemoryError:
        pass
    out["starved_get"] = ask(2)  # read again small: served
    out["starved_post"] = ask(3)  # too big for that: dropped
    out["starved_get_again"] = ask(4)
    out["memory_errors"] = ep.memory_errors
    out["dropped"] = ep.dropped


out["warm"] = ask(1)
gc.collect()
starve()
gc.collect()
out["recovered_post"] = ask(5)  # memory back: it is served
out["memory_errors_after"] = ep.memory_errors
print(json.dumps(out))
