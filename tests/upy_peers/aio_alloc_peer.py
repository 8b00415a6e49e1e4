# What a served request allocates, through aio.serve() or Server.process(),
# on the MicroPython unix port (tests/test_aio.py):
#
#   micropython aio_alloc_peer.py PORT MODE N        (MODE: serve or process)
#
# Serves GET /t on 127.0.0.1:PORT. With gc disabled, the handler reads
# gc.mem_alloc() at each request into a list made beforehand (storing a
# small int allocates nothing), so the difference between two readings is
# everything one request-to-request cycle allocated: waiting, reading,
# decoding, handling, answering. After N requests it prints
# `@@ ["alloc", [bytes per cycle...]]` and exits.
import gc
import json
import sys

from coapy_micro.connection import EndPoint
from coapy_micro.server import Resource, Server

port, mode, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ep = EndPoint()
ep.bind(("127.0.0.1", port))
srv = Server(ep)
marks = [0] * n
count = [0]
done = [None]
ANSWER = (69, b"21.5")


def get(request):
    i = count[0]
    marks[i] = gc.mem_alloc()
    count[0] = i + 1
    if i + 1 == n and done[0] is not None:
        done[0].set()
    return ANSWER


srv.add("t", Resource(get=get))
print("ready")
gc.collect()
gc.disable()
if mode == "process":
    while count[0] < n:
        srv.process(None)
else:
    import asyncio

    from coapy_micro import aio

    async def main():
        done[0] = asyncio.Event()
        serving = asyncio.create_task(aio.serve(srv))
        await done[0].wait()
        serving.cancel()

    asyncio.run(main())
gc.enable()
print("@@ " + json.dumps(["alloc", [marks[i + 1] - marks[i] for i in range(n - 1)]]))
ep.close()
