"""Type-check the board code against MicroPython's own stubs, per board.

    make typecheck            (or: python tools/typecheck.py [BOARD...])

For each board (esp32, esp32s3, rp2) the pinned stub packages (STUBS) are
installed once into build/stubs/BOARD (pip --target; they overlap, so one
folder each), and pyright checks coapy_micro/ (less the host-only modules),
ports/common/ and the board's ports/BOARD/main.py against them: MicroPython's
builtins and standard library as typeshed (typeshedPath), the board's
modules (machine, network, esp32...) as stubs, and no host site-packages
(an empty virtual environment), so a CPython-only call is an error.
config.py (git-ignored) is checked as config.example.py.

Every finding fails. Where the code is right and the checker cannot see it
(a ticks value, which the stubs type apart from int; the socket module,
missing on the WebAssembly port), the line says so in a
`# pyright: ignore[rule]: why` comment; attributes that start as None get a
`# type:` comment naming what they hold later.

Host tool (CPython; pyright from requirements-test.txt). Prints pyright's
findings per board; exit status 0 when no board has any.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import build_board  # noqa: E402

ROOT = build_board.ROOT
STDLIB = "micropython-stdlib-stubs==1.29.0.post2"
STUBS = {  # board -> (stub package, its main.py)
    "esp32": ("micropython-esp32-stubs==1.29.0.post1", "ports/esp32/main.py"),
    "esp32s3": ("micropython-esp32-esp32-generic-s3-stubs==1.29.0.post1", "ports/esp32/main.py"),
    "rp2": ("micropython-rp2-rpi-pico-w-stubs==1.29.0.post1", "ports/rp2/main.py"),
}
WORK = ROOT / "build" / "typecheck"


def stubs(board):
    """build/stubs/BOARD with the board's stubs installed (once)."""
    target = ROOT / "build" / "stubs" / board
    stamp = target / ".installed"
    want = "%s %s\n" % (STUBS[board][0], STDLIB)
    if not stamp.exists() or stamp.read_text() != want:
        if target.exists():
            shutil.rmtree(target)
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                               "--target", str(target), STUBS[board][0], STDLIB],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError("pip could not install the %s stubs:\n%s" % (board, proc.stderr))
        stamp.write_text(want)
    return target


def files(board):
    """What pyright checks for `board`, relative to the repository root."""
    out = [p.relative_to(ROOT).as_posix() for p in build_board.board_sources()]
    out += sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "ports" / "common").glob("*.py"))
    return out + [STUBS[board][1]]


def config(board, stub_dir, only=None, work=None):
    """The pyrightconfig.json for `board`, in build/typecheck/BOARD/ (or
    `work`); `only`: check these files (absolute paths) instead."""
    work = work or WORK / board
    (work / "settings").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "config.example.py", work / "settings" / "config.py")
    venv = work / "no-site-packages"
    (venv / "lib" / "python3.8" / "site-packages").mkdir(parents=True, exist_ok=True)
    (venv / "pyvenv.cfg").write_text("home = /nonexistent\n")
    cfg = {
        "include": [os.path.relpath(ROOT / f, work) for f in (only or files(board))],
        "typeshedPath": str(stub_dir),
        "stubPath": str(stub_dir),
        "extraPaths": [str(ROOT), str(ROOT / "ports" / "common"), str(work / "settings")],
        "venvPath": str(work),
        "venv": "no-site-packages",
        "pythonVersion": "3.8",
        "pythonPlatform": "Linux",
        "typeCheckingMode": "standard",
        "reportMissingModuleSource": "none",
    }
    path = work / "pyrightconfig.json"
    path.write_text(json.dumps(cfg, indent=2))
    return path


def findings(board, only=None, work=None):
    """pyright's diagnostics for one board: [(file, relative to ROOT where
    it is below it, rule, message, line)]. only, work: see config()."""
    cfg = config(board, stubs(board), only, work)
    pyright = shutil.which("pyright", path=str(Path(sys.executable).parent)) or "pyright"
    proc = subprocess.run([pyright, "--outputjson", "-p", str(cfg)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        raise RuntimeError("pyright failed (exit %d):\n%s%s"
                           % (proc.returncode, proc.stdout, proc.stderr))
    out = []
    for d in report["generalDiagnostics"]:
        if d["severity"] != "error":
            continue
        path = Path(d["file"]).resolve()
        rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
        out.append((rel, d.get("rule", ""), d["message"].splitlines()[0],
                    d["range"]["start"]["line"] + 1))
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    boards = argv or list(STUBS)
    failed = []
    for board in boards:
        if board not in STUBS:
            sys.stderr.write("typecheck: unknown board %r (one of %s)\n" % (board, ", ".join(STUBS)))
            return 2
        try:
            found = findings(board)
        except RuntimeError as e:
            print("== %s: %s" % (board, e))
            failed.append(board)
            continue
        print("== %s (%s): %d finding(s)" % (board, STUBS[board][0], len(found)))
        for f in found:
            print("  %s:%d: %s (%s)" % (f[0], f[3], f[2], f[1]))
        if found:
            failed.append(board)
    if failed:
        print("typecheck: findings for %s" % ", ".join(failed))
        return 1
    print("typecheck: clean for %s" % ", ".join(boards))
    return 0


if __name__ == "__main__":
    sys.exit(main())
