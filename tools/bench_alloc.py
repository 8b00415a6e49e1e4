"""What serving costs on a board: heap allocated per request served, per
notification, by importing the server, and held by a running node, all
inside the MicroPython VM (WebAssembly port, 32-bit, as the boards are) with
the package compiled by mpy-cross as a board loads it.

    make bench          (with the other benchmarks)
    .venv/bin/python tools/bench_alloc.py

The script that runs inside the VM: tools/bench_server_upy.py (bytes per
request, beyond recvfrom's own result, and per notification; with the
argument `node`, the heap of the running node). Allocation is counted exactly
(gc.mem_alloc() around the work), so these figures do not depend on how
busy the machine is.
"""
import sys
import tempfile
from pathlib import Path

from vmbench import ROOT, compile_package, run_vm

# Heap a fresh VM keeps after importing what a node that serves, observes
# and moves blocks loads, in a script holding nothing else (names interned by
# a bigger script would hide part of the cost).
IMPORT_COST = """import gc
before = 0
gc.collect()
before = gc.mem_alloc()
import coapy_micro.server
%s
gc.collect()
print("import", gc.mem_alloc() - before)
"""

# (what, key in the VM's output, at most this many bytes)
PER_REQUEST = (
    ("CON GET /sensors/temp", "alloc_con_get_temp", 128),
    ("CON GET /hello", "alloc_con_get_hello", 128),
    ("NON GET /sensors/temp", "alloc_non_get_temp", 128),
    ("CON GET of an unknown path (4.04)", "alloc_not_found", 128),
    ("CON GET /.well-known/core", "alloc_discovery", 1024),
    ("one notification to one observer", "alloc_notification", 128),
    ("  the same, notify(resource)", "alloc_notification_resource", 128),
    ("  per observer, 16 observers", "alloc_notification_16_observers_each", 128),
)
IMPORT_ALL_MAX = 30 * 1024
NODE_RUNNING_MAX = 45 * 1024


def verdict(ok):
    return "met" if ok else "NOT MET"


def main():
    with tempfile.TemporaryDirectory() as tmp:
        mpy = Path(tmp, "mpy")
        mpy.mkdir()
        compile_package(mpy)
        vm = run_vm(mpy, ROOT / "tools" / "bench_server_upy.py")
        vm.update(run_vm(mpy, ROOT / "tools" / "bench_server_upy.py", "node"))
        imports = {}
        for key, lines in (("server_observe", "import coapy_micro.server_observe"),
                           ("server_block", "import coapy_micro.server_block"),
                           ("all", "import coapy_micro.server_observe\n"
                                   "import coapy_micro.server_block")):
            script = Path(tmp, "import_%s.py" % key)
            script.write_text(IMPORT_COST % lines)
            imports[key] = run_vm(mpy, script)["import"]

    print("MicroPython 1.29 VM (WebAssembly, 32-bit), package compiled by mpy-cross; heap "
          "allocated per request served (beyond recvfrom's own result), counted exactly:")
    for label, key, most in PER_REQUEST:
        print("  %-36s %6d bytes (target <= %d): %s"
              % (label, vm[key], most, verdict(vm[key] <= most)))
    print("  importing server + server_observe + server_block: %d bytes (target <= %d): %s"
          % (imports["all"], IMPORT_ALL_MAX, verdict(imports["all"] <= IMPORT_ALL_MAX)))
    print("    (server + server_observe: %d, server + server_block: %d)"
          % (imports["server_observe"], imports["server_block"]))
    print("  the demo node running: %d bytes (target <= %d): %s"
          % (vm["heap_node_running"], NODE_RUNNING_MAX,
             verdict(vm["heap_node_running"] <= NODE_RUNNING_MAX)))
    print("    (node_app from source as `make deploy` puts it, the package from .mpy; %d bytes "
          "once imported, the rest is the Node made and one GET served)"
          % vm["heap_node_import"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
