# Runs portable tests inside the real MicroPython unix port (real sockets,
# 64-bit). The unix-port twin of tools/mpvm/run.mjs, same output protocol:
#
#   MICROPYPATH=tests/portable:. micropython tools/upy/run.py FILE.py
#
# imports FILE.py and calls its module-level `def test_*` functions in source
# order (MicroPython's dict order is not definition order, so the order comes
# from the source text). Before each test it prints
# `@@START {"file","test"}`, after it `@@RESULT {"file","test","outcome","detail"}`
# (outcome passed|failed|skipped); anything else on stdout is the tests' own
# output. An import failure is one failed result with test "<import>".
# tests/test_micropython_unix.py starts one interpreter per file.
#
# MicroPython only (sys.print_exception, io.StringIO capture by hand).
import gc
import io
import json
import sys

import support


def _names(path):
    out = []
    with open(path) as f:
        for line in f:
            if line.startswith("def test_"):
                name = line[4:].split("(")[0].strip()
                if name not in out:
                    out.append(name)
    return out


def _emit(marker, rec):
    print(marker, json.dumps(rec))


def _detail(e):
    s = io.StringIO()
    sys.print_exception(e, s)
    return s.getvalue()


def _run_file(path):
    base = path.split("/")[-1]
    mod_name = base[:-3]
    failed = 0
    try:
        mod = __import__(mod_name)
    except BaseException as e:  # noqa: B036 (nothing may escape the runner)
        _emit("@@RESULT", {"file": base, "test": "<import>", "outcome": "failed", "detail": _detail(e)})
        return 1
    for name in _names(path):
        _emit("@@START", {"file": base, "test": name})
        # Each test starts from a heap holding only what is alive (as in the
        # VM harness): support.heap_now() reads it.
        gc.collect()
        try:
            getattr(mod, name)()
            outcome, detail = "passed", ""
        except support.Skip as e:
            outcome, detail = "skipped", str(e)
        except BaseException as e:  # noqa: B036
            outcome, detail = "failed", _detail(e)
            failed = 1
        _emit("@@RESULT", {"file": base, "test": name, "outcome": outcome, "detail": detail})
    return failed


def main(argv):
    if len(argv) != 1:
        print("usage: micropython tools/upy/run.py FILE.py")
        return 2
    return _run_file(argv[0])


sys.exit(main(sys.argv[1:]))
