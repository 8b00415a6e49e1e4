"""codes.py's name tables load on first use: a module that only reads the
constants (codes.CONTENT, as the node app does) does not import
code_names.py; the first name(), parse(), dotted(), media_type() or
content_format() does, through codes itself (PEP 562 module __getattr__),
and `from coapy_micro.codes import name` works as before. CPython, in a
fresh interpreter (other tests have imported it here); the portable
test_codes.py runs the same calls in the MicroPython VM."""
import subprocess
import sys

from interop import ROOT

SCRIPT = r"""
import sys
from coapy_micro import codes
print("constants", codes.CONTENT, codes.TEXT_PLAIN, "coapy_micro.code_names" in sys.modules)
print("name", codes.name(69), "coapy_micro.code_names" in sys.modules)
from coapy_micro.codes import content_format, dotted
print("imported", dotted(132), content_format("json"))
try:
    codes.NO_SUCH_NAME
except AttributeError:
    print("unknown AttributeError")
"""


def test_code_names_load_on_first_use():
    p = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["constants 69 0 False", "name CONTENT True",
                                     "imported 4.04 50", "unknown AttributeError"], p.stdout
