"""The package's module boundaries, read from the source (CPython, ast):

- no module uses another module's private names: `from .x import _y`,
  `something._y` where `_y` is not defined in the module doing it, or
  `module._y`. Private means a leading underscore (dunders excepted). The
  private module `_compat` is shared by the package on purpose: its public
  names (const, ticks_ms...) may be imported by every module; `_cpython`
  is where _compat finds them on CPython, imported by _compat alone.
  A module may use a private name of a package outside coapy_micro only
  where FOREIGN_PRIVATE lists it, with the reason.
- the import graph of coapy_micro/ has no cycle, counting every import:
  at module level and inside functions (the lazy ones included).

A failure names the offending file, line and name, or the cycle.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "coapy_micro"
# private module -> the modules that may import it
SHARED_PRIVATE_MODULES = {"_compat": None, "_cpython": ("_compat",)}
# module -> private names of other packages it uses. aio.py: MicroPython's
# asyncio has no public call to wait for a socket that is not a stream, nor
# to bring a sleeping task's wake-up forward; its own StreamReader waits
# with core._io_queue.queue_read(sock), and core._task_queue is where a
# sleeping task waits for its time (moved there with remove() and push()).
FOREIGN_PRIVATE = {"aio": ("_io_queue", "_task_queue")}


def _modules():
    """{dotted name below the package: ast}: 'server', 'gateway.store', and
    'gateway' for a subpackage's __init__.py."""
    out = {}
    for p in sorted(PACKAGE.rglob("*.py")):
        parts = list(p.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts.pop()
        out[".".join(parts)] = ast.parse(p.read_text(), str(p))
    return out


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _package_of(name, modules):
    # The package a module's relative imports start from ('' is coapy_micro).
    if "." not in name and name not in _subpackages(modules):
        return ""
    if name in _subpackages(modules):
        return name
    return name.rsplit(".", 1)[0]


def _subpackages(modules):
    return {m.rsplit(".", 1)[0] for m in modules if "." in m}


def _imports(tree, modules, name=""):
    """[(line, imported module's dotted name, [names imported from it])]
    within the package; `name` is the importing module (for relative imports)."""
    out = []
    here = _package_of(name, modules)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 0:
                if not mod.startswith("coapy_micro"):
                    continue
                mod = mod[len("coapy_micro"):].lstrip(".")
            else:
                base = here.split(".") if here else []
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(base + ([mod] if mod else []))
            if mod and not (node.module is None and node.level):
                out.append((node.lineno, mod, [a.name for a in node.names]))
            else:  # from . import x, y: each a module of that package
                for a in node.names:
                    sub = (mod + "." if mod else "") + a.name
                    if sub in modules:
                        out.append((node.lineno, sub, []))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("coapy_micro."):
                    out.append((node.lineno, a.name[len("coapy_micro."):], []))
    return out


def _defined_privates(tree):
    """Private names this module defines: functions, classes, class-level
    names, module globals, and attributes its classes assign on `self`
    (an assignment to another object's private attribute defines nothing)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
              and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return {n for n in names if _private(n)}


def test_no_module_uses_another_modules_private_names():
    modules = _modules()
    offences = []
    for name, tree in modules.items():
        own = _defined_privates(tree)
        aliases = {}  # local name -> package module, for `module._x`
        for line, mod, imported in _imports(tree, modules, name):
            if mod not in modules:
                offences.append("%s.py:%d imports coapy_micro.%s, which does not exist"
                                % (name, line, mod))
            if _private(mod.split(".")[-1]) and not (mod in SHARED_PRIVATE_MODULES and (
                    SHARED_PRIVATE_MODULES[mod] is None or name in SHARED_PRIVATE_MODULES[mod])):
                offences.append("%s.py:%d imports the private module %s" % (name, line, mod))
            for n in imported:
                if _private(n):
                    offences.append("%s.py:%d imports %s, private to %s.py" % (name, line, n, mod))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for a in node.names:
                    if a.name in modules or a.name.startswith("coapy_micro."):
                        full = a.name[len("coapy_micro."):] if a.name.startswith("coapy_micro.") else a.name
                        aliases[a.asname or a.name.split(".")[-1]] = full
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and _private(node.attr)):
                continue
            base = node.value
            if isinstance(base, ast.Name) and base.id in aliases and aliases[base.id] != name:
                offences.append("%s.py:%d uses %s.%s, private to %s.py"
                                % (name, node.lineno, base.id, node.attr, aliases[base.id]))
            elif node.attr not in own and node.attr not in FOREIGN_PRIVATE.get(name, ()):
                offences.append("%s.py:%d uses .%s, a private name this module does not define"
                                % (name, node.lineno, node.attr))
    def where(text):  # 'server.py:12 ...' -> ('server.py', 12)
        f, _, rest = text.partition(":")
        return f, int(rest.split()[0])

    assert not offences, "\n".join(sorted(set(offences), key=where))


def _graph():
    modules = _modules()
    graph = {}
    for name, tree in modules.items():
        graph[name] = sorted({mod for _, mod, _ in _imports(tree, modules, name) if mod != name})
    return graph


def _cycle(graph):
    """One import cycle as a list of module names (first == last), or None."""
    state = {}  # 1: on the current path, 2: done

    def visit(m, path):
        state[m] = 1
        path.append(m)
        for d in graph.get(m, ()):
            if state.get(d) == 1:
                return path[path.index(d):] + [d]
            if d not in state:
                found = visit(d, path)
                if found:
                    return found
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m, [])
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle():
    graph = _graph()
    assert "server" in graph and "message" in graph["server"], graph  # the graph is read
    assert "gateway.store" in graph["gateway.gateway"], graph  # subpackages too
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    # The check above can fail: a graph with a lazy back edge is a cycle.
    assert _cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert _cycle({"a": ["b"], "b": [], "c": ["a", "b"]}) is None
