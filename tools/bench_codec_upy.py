# Codec benchmark inside the MicroPython VM. tools/bench_codec.py runs it
# through tools/mpvm/run.mjs and formats the `name value` lines it prints.
# (The import cost is measured by the host in a separate, minimal script: this
# file's own names, interned when it is compiled, would hide part of it.)
import gc
import time

from coapy_micro.message import Message
from support import alloc_bytes  # tests/portable/support.py, installed by run.mjs

MID = 0x1234
TOKEN = b"\x01\x02\x03\x04"
WORKLOADS = (
    ("request", Message(Message.CON, 1, token=TOKEN, uri_path="sensors/livingroom/temp", uri_query="unit=C")),
    ("response", Message(Message.ACK, 69, token=TOKEN, content_format=50, payload=bytes(range(100)))),
)
ROUNDS = 5000
buf = bytearray(1152)
view = memoryview(buf)

for name, msg in WORKLOADS:
    data = msg.encode(MID)
    print("alloc_encode_into_" + name, alloc_bytes(msg.encode_into, buf, MID))
    print("alloc_decode_" + name, alloc_bytes(Message.decode, data))
    print("alloc_encode_" + name, alloc_bytes(msg.encode, MID))
    # Round trips as an endpoint does them: encode_into a send buffer, decode a
    # datagram (the view slice stands for it; decode copies it to bytes).
    # Best of 3.
    best = 1 << 29
    for _ in range(3):
        gc.collect()
        t0 = time.ticks_ms()
        for _ in range(ROUNDS):
            Message.decode(view[:msg.encode_into(buf, MID)])
        best = min(best, time.ticks_diff(time.ticks_ms(), t0))
    print("rate_" + name, ROUNDS * 1000 // max(best, 1))
