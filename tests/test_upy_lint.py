"""tools/upy_lint.py (`make lint`): each rule fires on the pitfall it names
and not on look-alikes, markers silence a line only with a reason, and the
exit status says whether there is something to look at."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import upy_lint  # noqa: E402


def rules(src, in_package=False):
    return sorted({rule for _, rule in upy_lint.check_source(src, "t.py", in_package)})


def test_each_rule_fires_on_its_pitfall():
    cases = {
        "U01": "x = sorted(y)\n",
        "U02": "ok = isinstance(v, int)\n",
        "U03": "try:\n    f()\nexcept TimeoutError:\n    pass\n",
        "U04": "try:\n    f()\nexcept socket.timeout:\n    pass\n",
        "U05": "t = b.decode('UTF-8')\n",
        "U06": "class A:\n    __slots__ = ('a',)\n",
        "U07": "import time\nt = time.time()\n",
        "U08": "import logging\n",
        "U09": "s = t.zfill(4)\n",
        "U10": "n = s.recv_into(buf)\n",
        "U11": "v = int.from_bytes(b, byteorder='big')\n",
        "U12": "odd = data[::2]\n",
        "U13": "try:\n    f()\nexcept OSError as e:\n    raise ValueError('x') from e\n",
        "U15": "def f(x):\n    assert x > 0\n",
        "U16": "def f(t0):\n    return ticks_ms() - t0\n",
        "U17": "v = int.from_bytes(b, 'big', True)\n",
        "U18": "class A:\n    def __del__(self):\n        pass\n",
        "U19": "def f(e):\n    return e.__traceback__\n",
        "U20": "TABLE = build()\n",
        "U21": "class A:\n    def __init__(self):\n        self.a = 1\n\n    def m(self):\n        self.b = 2\n",
    }
    for rule, src in cases.items():
        assert rule in rules(src, rule == "U20"), (rule, rules(src), src)
    if sys.version_info >= (3, 10):
        assert "U14" in rules("match x:\n    case 1:\n        pass\n")


def test_look_alikes_are_not_findings():
    clean = (
        "# sorted(x) in a comment, isinstance(v, int) too\n"
        "TEXT = 'time.time() and sorted() in a string'\n"
        "SIZE = const(4)\n"
        "ok = isinstance(v, int) or isinstance(v, bool)\n"
        "ok = isinstance(v, (int, bool))\n"
        "t = b.decode('utf-8')\n"
        "half = data[1:3]\n"
        "print('x', end='')\n"
        "def f(t0):\n"
        "    return ticks_diff(ticks_ms(), t0)\n"
        "class A:\n"
        "    b = None\n"
        "    def __init__(self):\n"
        "        self.a = 1\n"
        "    def m(self):\n"
        "        self.a = 2\n"
        "        self.b = 3\n"
        "class R:\n"  # set by a method __init__ calls: set while it is made
        "    def __init__(self, x):\n"
        "        self._load(x)\n"
        "    def _load(self, x):\n"
        "        self.x = x\n"
    )
    assert rules(clean) == [], rules(clean)
    assert rules("ok = isinstance(v, (int, bool))\n") == []
    assert rules("SIZE = const(4)\n", in_package=True) == []


def test_markers_need_a_reason_and_something_to_silence():
    assert rules("x = sorted(y)  # upy-ok: one key per item, no ties\n") == []
    assert rules("x = sorted(y)  # upy-ok\n") == ["U00", "U01"]
    assert rules("x = sorted(y)  # upy-ok:\n") == ["U00", "U01"]
    assert rules("x = 1  # upy-ok: nothing here\n") == ["U22"]
    # A statement over several lines: the marker may sit on any of them.
    assert rules("x = sorted(\n    y)  # upy-ok: one key per item\n") == []


def test_a_file_that_never_runs_on_a_board_says_so_once():
    src = "# upy-ok-file: host-only tool\nimport argparse\nx = sorted(y)\n"
    assert rules(src) == []


def test_work_at_import_counts_in_packages_only():
    assert rules("RUN = main()\n", in_package=False) == []
    assert rules("try:\n    import x\nexcept ImportError:\n    x = load()\n", True) == []
    assert rules("if __name__ == '__main__':\n    main()\n", True) == []


def test_exit_status_and_output(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("x = sorted(y)\n")
    good = tmp_path / "good.py"
    good.write_text("x = 1\n")
    tool = [sys.executable, str(ROOT / "tools" / "upy_lint.py")]
    p = subprocess.run(tool + [str(bad)], capture_output=True, text=True)
    assert p.returncode == 1 and "bad.py:1: [U01 unstable sort]" in p.stdout, p.stdout
    p = subprocess.run(tool + [str(good)], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout == "", p.stdout
    broken = tmp_path / "broken.py"
    broken.write_text("def (:\n")
    p = subprocess.run(tool + [str(broken)], capture_output=True, text=True)
    assert p.returncode == 2 and "does not parse" in p.stderr, p.stderr
    p = subprocess.run(tool + ["--rules"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.count("\n") == len(upy_lint.RULES), p.stdout


def test_the_package_is_clean():
    # What `make lint` checks, so that `make test` notices a new finding too.
    p = subprocess.run([sys.executable, str(ROOT / "tools" / "upy_lint.py"), "coapy_micro"],
                       cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
