# A Client run out of memory for real (tests/test_small_heap.py): on the
# MicroPython unix port in a fixed small heap, over the test suite's fake
# network, a server hands out 1 KB blocks of a body without end and the
# client's max_body (1 MiB) is more than the heap. The transfer must end
# with a CoapError saying so, not a MemoryError out of process(); then a
# plain request on the same client is answered. Prints one JSON line.
import json

from test_client_block import CONTENT, URI, Script, reply


def endless(n, m):
    return reply(CONTENT, b"q" * 1024, (n - 1, True, 6))


out = {}
s = Script(endless, client_kw={"max_body": 1 << 20}, keep=False)
try:
    h = s.run("get", URI)
    out["error"] = type(h.error).__name__
    out["text"] = str(h.error)
    out["requests"] = len(s.got)
except MemoryError as e:
    out["raised"] = "MemoryError: %s" % e
s = None
h = None
s = Script(lambda n, m: reply(CONTENT, b"21.5"), keep=False)
try:
    h = s.run("get", URI)
    out["after"] = [h.response.code if h.response is not None else None, str(h.error)]
except MemoryError as e:
    out["after_raised"] = "MemoryError: %s" % e
print(json.dumps(out))
