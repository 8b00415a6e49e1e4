"""A Server run out of memory for real: the MicroPython unix port in a fixed
192 KB heap (what an ESP32 without PSRAM leaves a program), the package
loaded from .mpy as a board loads it, real UDP sockets on loopback
(tests/upy_peers/pressure_node.py).

The heap is filled with ballast until no read buffer of full size fits. A
small request is still served (read again with a small buffer), a large
one is dropped and counted, no MemoryError leaves process(), and each
datagram costs one failed read, not a loop of them (before, a recvfrom
that could not allocate left its datagram queued and process() raised
MemoryError again and again). Memory back, the large one is served.
"""
import json
import subprocess
import sys

import portable_runs
import upy
from interop import free_udp_port

HEAP = "192k"


def test_a_starved_server_serves_what_fits_and_recovers(tmp_path):
    upy.need_micropython()
    build = subprocess.run([sys.executable, str(portable_runs.ROOT / "tools" / "build_board.py"),
                            "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    script = portable_runs.ROOT / "tests" / "upy_peers" / "pressure_node.py"
    proc = upy.run([script, free_udp_port(), free_udp_port()], paths=[tmp_path], heap=HEAP,
                   timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert not [x for x in lines if x.startswith("raised")], proc.stdout  # nothing left process()
    got = json.loads(lines[-1])
    assert got["warm"] == [[69], 0], got
    assert got["starved_get"] == [[69], 0] and got["starved_get_again"] == [[69], 0], got
    assert got["starved_post"] == [[], 0], got  # dropped: it does not fit a small read
    # One failed read per datagram (three datagrams), the POST counted as dropped.
    assert got["memory_errors"] == 3 and got["dropped"] == 1, got
    assert got["recovered_post"] == [[68], 0] and got["memory_errors_after"] == 3, got


def test_a_body_larger_than_the_heap_ends_the_request_not_the_loop():
    # A Client out of memory for real (tests/upy_peers/starved_client.py):
    # a server hands out 1 KB blocks without end, max_body (1 MiB) is more
    # than the heap (512 KB: the fake network and the tests it imports are
    # compiled from source here). Before, the MemoryError of the growing
    # body left Client.process(); now the request ends with a CoapError
    # that says so and how far it got, and the next request is answered.
    upy.need_micropython()
    script = portable_runs.ROOT / "tests" / "upy_peers" / "starved_client.py"
    proc = upy.run([script], paths=[portable_runs.ROOT / "tests" / "portable", portable_runs.ROOT],
                   heap="512k", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "raised" not in got, got
    assert got["error"] == "CoapError" and "no memory left" in got["text"], got
    assert "bytes in" in got["text"] and got["requests"] > 1, got
    assert got["after"] == [69, "None"], got
