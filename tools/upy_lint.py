"""Flag Python that runs on CPython but breaks, or behaves differently, on
MicroPython (the firmware on ESP32 and Pico W boards).

    python tools/upy_lint.py [PATH ...]        (default: coapy_micro ports)
    python tools/upy_lint.py --rules           (what each rule checks, and why)

`make lint` runs it. It reads the source with the ast module, so strings,
comments and names that merely look like a pitfall are not findings. Each
finding prints as `file:line: [rule] why`, then the line. Exit status: 0
when there is nothing to look at, 1 when there are findings, 2 on usage
errors or a file that does not parse.

A line that is right despite a rule carries a marker saying why, on the
flagged line (or any line of the flagged statement):

    return "%d" % v if isinstance(v, int) else str(v)  # upy-ok: bools handled above

A marker without a reason is a finding itself. A file that never runs on a
board (the `coapy` command, the CPython fallbacks) says so once, in a
comment of its own among its first lines: `# upy-ok-file: why`.
"""
import ast
import os
import re
import sys

# rule id -> (short name, why it matters on MicroPython)
RULES = {
    "U01": ("unstable sort",
            "sort() and sorted() are not stable on MicroPython: items with equal keys "
            "(repeated options such as Uri-Path) come back in another order; insert in place"),
    "U02": ("bool is no int",
            "isinstance(True, int) is False on MicroPython: a check for int lets bools "
            "through on CPython only; test bool separately where it matters"),
    "U03": ("missing exception",
            "this exception class does not exist on MicroPython: catch OSError and "
            "compare e.errno (e.args[0]) with the errno module's names"),
    "U04": ("socket exception",
            "socket.timeout, socket.error, socket.gaierror and socket.herror do not exist "
            "on MicroPython: catch OSError"),
    "U05": ("codec name",
            "MicroPython knows only 'utf-8' and 'ascii', spelled in lower case"),
    "U06": ("__slots__",
            "__slots__ is ignored on MicroPython: it saves nothing there"),
    "U07": ("wall clock",
            "time.time() is whole seconds on boards (and its epoch is 2000 on some), and "
            "time.monotonic/perf_counter/time_ns are missing: use ticks_ms, ticks_add "
            "and ticks_diff"),
    "U08": ("module missing",
            "this module is not in MicroPython firmware: keep it out of code that runs "
            "on a board"),
    "U09": ("method missing",
            "MicroPython's str, bytes, int or memoryview has no such method"),
    "U10": ("recv_into",
            "no socket on any MicroPython port has recv_into/recvfrom_into"),
    "U11": ("keyword to built-in",
            "most MicroPython built-ins take positional arguments only: a keyword "
            "raises TypeError (or is ignored) there"),
    "U12": ("step slice",
            "slices with a step are not supported on str, bytes and tuples everywhere"),
    "U13": ("exception chaining",
            "`raise X from Y` is not supported: raise X alone"),
    "U14": ("match",
            "MicroPython has no match statement"),
    "U15": ("assert",
            "asserts vanish under mpy-cross -O1: never check input with assert"),
    "U16": ("ticks arithmetic",
            "ticks wrap (every 2**30 ms on 32-bit boards): compare and subtract them "
            "with ticks_diff, never with - or <"),
    "U17": ("from_bytes signed",
            "int.from_bytes ignores a third argument on MicroPython: sign by hand"),
    "U18": ("__del__",
            "__del__ is never called on MicroPython: close resources explicitly"),
    "U19": ("traceback attributes",
            "exceptions carry no __traceback__, __cause__ or __context__ on MicroPython"),
    "U20": ("work at import",
            "a call at module level of a package's module runs on every board that "
            "imports it: do the work when it is first needed (const() is folded by the "
            "compiler and costs nothing)"),
    "U21": ("attribute outside __init__",
            "an attribute first set outside __init__ (and not defaulted in the class) "
            "grows the instance's attribute table on MicroPython: an allocation and a "
            "copy, each time on a fresh object"),
    "U00": ("marker without reason",
            "an upy-ok marker must say why the line is right"),
    "U22": ("stale marker",
            "an upy-ok marker on a line no rule flags: remove it (or the line changed)"),
}

# Exception classes CPython has and MicroPython does not.
_MISSING_EXCEPTIONS = {
    "TimeoutError", "BlockingIOError", "ConnectionError", "ConnectionResetError",
    "ConnectionRefusedError", "ConnectionAbortedError", "BrokenPipeError",
    "InterruptedError", "FileNotFoundError", "FileExistsError", "PermissionError",
    "IsADirectoryError", "NotADirectoryError", "ProcessLookupError",
    "ChildProcessError", "UnicodeDecodeError", "UnicodeEncodeError", "ResourceWarning",
}
# Standard-library modules programs reach for that firmware does not have.
_MISSING_MODULES = {
    "abc", "argparse", "base64", "bisect", "codecs", "contextlib", "copy", "csv",
    "dataclasses", "datetime", "decimal", "email", "enum", "fnmatch", "fractions",
    "functools", "getopt", "glob", "html", "http", "inspect", "ipaddress", "itertools",
    "locale", "logging", "numbers", "operator", "pathlib", "pickle", "queue", "shutil",
    "signal", "sqlite3", "statistics", "string", "subprocess", "tempfile", "textwrap",
    "threading", "traceback", "types", "typing", "unittest", "urllib", "uuid",
    "warnings", "weakref", "xml",
}
_MISSING_METHODS = {
    "bit_length", "capitalize", "casefold", "center", "expandtabs", "format_map",
    "isascii", "isdecimal", "isidentifier", "isnumeric", "isprintable", "istitle",
    "ljust", "maketrans", "removeprefix", "removesuffix", "rjust", "swapcase",
    "title", "tobytes", "translate", "zfill",
}
# Built-in functions and methods that take no keyword argument on MicroPython.
# Calls that take keywords on CPython but not on MicroPython. (Those that
# refuse keywords on CPython too, such as str.join or socket.sendto, are left
# out: the CPython run of the tests already fails on them.)
_POSITIONAL_ONLY = {
    "from_bytes", "to_bytes", "encode", "decode", "split", "rsplit", "replace",
    "socket", "getaddrinfo", "deque", "sum", "zip", "round", "int", "bytes", "bytearray",
}
_PRINT_KEYWORDS = {"sep", "end", "file"}
_WALL_CLOCK = {"time", "monotonic", "perf_counter", "time_ns", "monotonic_ns",
               "perf_counter_ns", "process_time"}
_TICKS = {"ticks_ms", "ticks_us", "ticks_cpu"}
_CODECS = {"utf-8", "ascii"}

_MARK = re.compile(r"#\s*upy-ok\b(:?)\s*(.*)$")
_FILE_MARK = re.compile(r"#\s*upy-ok-file:\s*\S")
_SKIP_DIRS = {".git", "__pycache__", ".venv", "node_modules", "build", "dist"}


def _name(node):
    """'a.b.c' for a Name/Attribute chain, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _is_ticks_call(node):
    if isinstance(node, ast.Call):
        n = _name(node.func)
        return n is not None and n.split(".")[-1] in _TICKS
    return False


class _Checker(ast.NodeVisitor):
    def __init__(self):
        self.found = []  # (node, rule)
        self.bool_checked = set()  # id() of isinstance(x, int) calls or-ed with isinstance(x, bool)

    def flag(self, node, rule):
        self.found.append((node, rule))

    # -- calls -------------------------------------------------------------

    def visit_Call(self, node):
        fn = _name(node.func)
        last = fn.split(".")[-1] if fn else None
        if last == "sorted" or (isinstance(node.func, ast.Attribute) and node.func.attr == "sort"):
            self.flag(node, "U01")
        if fn == "isinstance" and len(node.args) == 2 and id(node) not in self.bool_checked:
            t = node.args[1]
            types = t.elts if isinstance(t, ast.Tuple) else [t]
            names = {_name(x) for x in types}
            if "int" in names and "bool" not in names:
                self.flag(node, "U02")
        if last in ("encode", "decode") or fn in ("str", "bytes", "bytearray"):
            for a in node.args:
                if (isinstance(a, ast.Constant) and isinstance(a.value, str)
                        and a.value.lower().replace("_", "-") in ("utf-8", "utf8", "ascii",
                                                                    "latin-1", "latin1",
                                                                    "iso-8859-1", "utf-16")
                        and a.value not in _CODECS):
                    self.flag(node, "U05")
        if fn is not None and fn.startswith("time.") and last in _WALL_CLOCK:
            self.flag(node, "U07")
        if isinstance(node.func, ast.Attribute) and node.func.attr in _MISSING_METHODS:
            self.flag(node, "U09")
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("recv_into", "recvfrom_into"):
            self.flag(node, "U10")
        if node.keywords and last in _POSITIONAL_ONLY:
            self.flag(node, "U11")
        if fn == "print" and any(k.arg not in _PRINT_KEYWORDS for k in node.keywords):
            self.flag(node, "U11")
        if last == "from_bytes" and len(node.args) >= 3:
            self.flag(node, "U17")
        self.generic_visit(node)

    def visit_BoolOp(self, node):
        # `isinstance(v, int) or isinstance(v, bool)` checks both.
        if isinstance(node.op, ast.Or):
            checks = [v for v in node.values if isinstance(v, ast.Call)
                      and _name(v.func) == "isinstance" and len(v.args) == 2]
            bools = {ast.dump(c.args[0]) for c in checks if _name(c.args[1]) == "bool"}
            for c in checks:
                if ast.dump(c.args[0]) in bools:
                    self.bool_checked.add(id(c))
        self.generic_visit(node)

    # -- names and attributes -----------------------------------------------

    def visit_Name(self, node):
        if node.id in _MISSING_EXCEPTIONS:
            self.flag(node, "U03")

    def visit_Attribute(self, node):
        n = _name(node)
        if n in ("socket.timeout", "socket.error", "socket.gaierror", "socket.herror"):
            self.flag(node, "U04")
        if node.attr in ("__traceback__", "__cause__", "__context__", "with_traceback"):
            self.flag(node, "U19")
        self.generic_visit(node)

    # -- statements -----------------------------------------------------------

    def visit_Import(self, node):
        for a in node.names:
            if a.name.split(".")[0] in _MISSING_MODULES:
                self.flag(node, "U08")

    def visit_ImportFrom(self, node):
        if node.level == 0 and node.module and node.module.split(".")[0] in _MISSING_MODULES:
            self.flag(node, "U08")

    def visit_Subscript(self, node):
        s = node.slice
        if isinstance(s, ast.Slice) and s.step is not None:
            self.flag(node, "U12")
        self.generic_visit(node)

    def visit_Raise(self, node):
        if node.cause is not None:
            self.flag(node, "U13")
        self.generic_visit(node)

    def visit_Match(self, node):
        self.flag(node, "U14")
        self.generic_visit(node)

    def visit_Assert(self, node):
        self.flag(node, "U15")
        self.generic_visit(node)

    def visit_BinOp(self, node):
        if isinstance(node.op, ast.Sub) and (_is_ticks_call(node.left) or _is_ticks_call(node.right)):
            self.flag(node, "U16")
        self.generic_visit(node)

    def visit_Compare(self, node):
        sides = [node.left] + list(node.comparators)
        ordering = any(isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)) for op in node.ops)
        if ordering and any(_is_ticks_call(x) for x in sides):
            self.flag(node, "U16")
        self.generic_visit(node)

    def visit_ClassDef(self, node):
        defaults = set()
        init_attrs = set()
        for item in node.body:
            if isinstance(item, ast.Assign):
                for t in item.targets:
                    if isinstance(t, ast.Name):
                        defaults.add(t.id)
            elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                defaults.add(item.target.id)
            elif isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                defaults.add(item.name)  # a method or property of that name
                if item.name == "__slots__":
                    pass
            if isinstance(item, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "__slots__" for t in item.targets):
                self.flag(item, "U06")
        # What __init__ stores, itself or through a method of the class it
        # calls (self._load(...)): set while the object is made, either way.
        builders = {"__init__"}
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                builders |= _self_calls(item)
            if isinstance(item, ast.FunctionDef) and item.name == "__del__":
                self.flag(item, "U18")
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and item.name in builders:
                init_attrs |= _self_stores(item)
        known = defaults | init_attrs
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and item.name not in builders and not _is_static(item):
                for store in _self_store_nodes(item):
                    if store.attr not in known:
                        self.flag(store, "U21")
                        known.add(store.attr)  # once per attribute
        self.generic_visit(node)


def _is_static(fn):
    for d in fn.decorator_list:
        if _name(d) in ("staticmethod", "classmethod"):
            return True
    return False


def _self_store_nodes(fn):
    if not fn.args.args:
        return []
    me = fn.args.args[0].arg
    out = []
    for n in ast.walk(fn):
        if (isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)
                and isinstance(n.value, ast.Name) and n.value.id == me):
            out.append(n)
    return out


def _self_calls(fn):
    # Names of the methods `fn` calls on its first argument (self.x(...)).
    if not fn.args.args:
        return set()
    me = fn.args.args[0].arg
    out = set()
    for n in ast.walk(fn):
        if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                and isinstance(n.func.value, ast.Name) and n.func.value.id == me):
            out.add(n.func.attr)
    return out


def _self_stores(fn):
    return {n.attr for n in _self_store_nodes(fn)}


def _module_level_work(tree, checker):
    # Calls in module-level statements, other than const() and what runs
    # only as a script or inside a try/except import fallback.
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef,
                             ast.AsyncFunctionDef)):
            continue
        if isinstance(stmt, ast.If) and _name(getattr(stmt.test, "left", None)) == "__name__":
            continue
        if isinstance(stmt, ast.Try):
            continue  # import fallbacks: `try: import x / except ImportError: ...`
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # the docstring
        for n in ast.walk(stmt):
            if isinstance(n, ast.Call) and _name(n.func) != "const":
                checker.flag(n, "U20")
                break


def check_source(text, path="<source>", in_package=True):
    """[(line, rule id)] of the findings in `text`, markers applied.
    in_package: the file is a module of a package (U20 applies)."""
    lines = text.splitlines()
    for line in lines[:5]:
        if _FILE_MARK.search(line):
            return []
    tree = ast.parse(text, path)
    checker = _Checker()
    checker.visit(tree)
    if in_package:
        _module_level_work(tree, checker)
    marks = {}  # line -> has a reason
    for i, line in enumerate(lines, 1):
        m = _MARK.search(line)
        if m and "upy-ok-file" not in line:
            marks[i] = bool(m.group(1) and m.group(2).strip())
    found = set()
    used = set()
    for node, rule in checker.found:
        first = node.lineno
        last = getattr(node, "end_lineno", None) or first
        marked = None
        for i in range(first, last + 1):
            if marks.get(i):
                marked = i
                break
        if marked is None:
            found.add((first, rule))
        else:
            used.add(marked)
    for i, reason in marks.items():
        if not reason:
            found.add((i, "U00"))
        elif i not in used:
            found.add((i, "U22"))
    return sorted(found)


def _files(paths):
    for p in paths:
        if os.path.isfile(p):
            yield p
            continue
        for root, dirs, names in os.walk(p):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
            for n in sorted(names):
                if n.endswith(".py"):
                    yield os.path.join(root, n)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--rules"]:
        for rid, (short, why) in RULES.items():
            print("%s %s: %s" % (rid, short, why))
        return 0
    if any(a.startswith("-") for a in argv):
        sys.stderr.write("usage: upy_lint.py [--rules] [PATH ...]\n")
        return 2
    paths = argv or [p for p in ("coapy_micro", "ports") if os.path.exists(p)]
    count = 0
    for path in _files(paths):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        in_package = os.path.exists(os.path.join(os.path.dirname(path) or ".", "__init__.py"))
        try:
            findings = check_source(text, path, in_package)
        except SyntaxError as e:
            sys.stderr.write("%s:%s: does not parse: %s\n" % (path, e.lineno, e.msg))
            return 2
        lines = text.splitlines()
        for line, rule in findings:
            count += 1
            print("%s:%d: [%s %s] %s\n    %s" % (path, line, rule, RULES[rule][0], RULES[rule][1],
                                                 lines[line - 1].strip()))
    if count:
        print("%d finding(s): fix them, or mark a line that is right with `# upy-ok: why`" % count)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
