# Heap of the running sensor node, read inside the MicroPython unix port by
# tools/node_heap.py:  micropython node_heap_probe.py LIBDIR [ROMFS_IMAGE]
# Prints `heap import N` (node_app and the package imported) and
# `heap running N` (the Node made, bound, one GET served), each the growth
# of gc.mem_alloc() after a collection over the reading taken at the start,
# and `heap peak N`: the most that was ever allocated at once on the way,
# over the same start (micropython.mem_peak(): compiling .py source needs
# room that is given back afterwards, but must be there).
import gc
import micropython
import socket
import sys

lib, image = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""
if image:
    import vfs

    with open(image, "rb") as f:
        rom = f.read()  # on the heap before the first reading: not counted
    vfs.mount(vfs.VfsRom(rom), "/rom")
sys.path.insert(0, lib)
gc.collect()
base = gc.mem_alloc()
base_current = micropython.mem_current()

import node_app  # noqa: E402

gc.collect()
print("heap import", gc.mem_alloc() - base)

# A free port: bind 0 is not reported back on this port (no getsockname),
# so try a few.
node = None
for port in range(47300, 47400):
    try:
        node = node_app.Node(("127.0.0.1", port), read_c=lambda: 21.5, log=lambda s: None)
        break
    except OSError:
        pass
peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
peer.bind(socket.getaddrinfo("127.0.0.1", 0)[0][-1])
# CON GET /sensors/temp, token 0x01, message ID 0x0101.
peer.sendto(b"\x41\x01\x01\x01\x01\xb7sensors\x04temp", socket.getaddrinfo("127.0.0.1", port)[0][-1])
node.serve(seconds=0.3)
answer = peer.recv(64)
assert answer[1] == 69 and answer.endswith(b"21.50"), answer
peer.close()
gc.collect()
print("heap running", gc.mem_alloc() - base)
print("heap peak", micropython.mem_peak() - base_current)
node.close()
