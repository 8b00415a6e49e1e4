import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
# The repo root (import coapy_micro without installing), tests/ (import peers)
# and tests/portable (portable tests import support, as they do in the VM).
for p in (TESTS.parent, TESTS, TESTS / "portable"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import support  # noqa: E402  (needs the path above)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    # Portable tests skip with support.Skip (no pytest in the VM); report it as a skip here too.
    try:
        return (yield)
    except support.Skip as e:
        pytest.skip(str(e))
