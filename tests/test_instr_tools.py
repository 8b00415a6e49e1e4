"""tools/instr_server.py and tools/instr_notify.py, the instruction counts
docs/benchmarks.md quotes (valgrind's cachegrind: a figure a busy machine
does not move), run as a developer runs them, with small counts. What they
print is read back and must be sane: every runtime measured, each figure in
the range a CoAP request or notification costs, and the system calls per
request those of each loop. They are not in `make bench` (valgrind makes a
server some 50 times slower), so this keeps them from going stale.
"""
import re
import shutil
import subprocess
import sys
from pathlib import Path

from peers import need

ROOT = Path(__file__).resolve().parent.parent


def run(tool, *args):
    need(shutil.which("valgrind") is not None,
         "the instruction counts need valgrind (Debian: apt-get install valgrind)")
    p = subprocess.run([sys.executable, str(ROOT / "tools" / tool), *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_instructions_per_request_of_the_bare_loop_and_the_unix_port_server():
    out = run("instr_server.py", "--only", "bare,upy-server", "--n", "500,1500")
    got = {m.group(1): (int(m.group(2)), float(m.group(3))) for m in re.finditer(
        r"^(\S+)\s+(\d+) instructions/request\s+([\d.]+) system calls/request", out, re.M)}
    assert set(got) == {"bare", "upy-server"}, out
    # The bare loop reads and answers with no CoAP in between; the Server on
    # the unix port decodes, routes and answers, in bytecode: some 15k and
    # 240k today, so an order of magnitude either way is a broken tool.
    assert 2000 < got["bare"][0] < 100000, out
    assert 50000 < got["upy-server"][0] < 2000000 and got["upy-server"][0] > got["bare"][0], out
    # recvfrom and sendto per request; the unix port polls before each read.
    assert got["bare"][1] == 2.0 and got["upy-server"][1] == 3.0, out


def test_instructions_per_notification_taken_in_on_both_runtimes():
    out = run("instr_notify.py", "--only", "cpython,micropython", "--n", "300,900")
    got = {m.group(1): int(m.group(2)) for m in re.finditer(
        r"^(\S+)\s+(\d+) instructions/notification", out, re.M)}
    assert set(got) == {"cpython", "micropython"}, out
    # Every notification sent was delivered to its observation.
    for sent, delivered in re.findall(r"notifications (\d+) delivered (\d+)", out):
        assert int(delivered) >= int(sent), out
    assert 20000 < got["cpython"] < 1000000 and 50000 < got["micropython"] < 3000000, out
