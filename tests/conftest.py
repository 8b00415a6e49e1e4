import signal
import sys
from pathlib import Path

import pytest

# A process a shell without job control starts in the background (`make
# test &` in a script, some CI runners) has SIGINT ignored, and every child
# inherits that: a CPython node, client or demo then never sees the Ctrl-C
# the tests send it (SIGINT) and runs on until the test times out. A handler
# is not inherited across exec (an ignored signal is), so setting Python's
# own here gives every child the default again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

TESTS = Path(__file__).resolve().parent
# The repo root (import coapy_micro without installing), tests/ (import peers),
# tests/portable (portable tests import support, as they do in the VM) and
# ports/common (the node app, as a board imports it from /lib).
for p in (TESTS.parent, TESTS, TESTS / "portable", TESTS.parent / "ports" / "common"):
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


# -- peers shared by the interop modules (tests/interop.py) --------------------


@pytest.fixture
def broker(tmp_path):
    # A mosquitto of the test's own on an ephemeral port (tests/rdpeers.py),
    # for the gateway's tests.
    from rdpeers import Broker

    b = Broker(tmp_path / "broker")
    yield b
    b.stop()


@pytest.fixture(scope="module")
def libcoap_server():
    """(host, port) of a coap-server-notls on 127.0.0.1, one per test module
    (module-wide: tests change /example_data, each to a value of its own)."""
    import interop

    with interop.libcoap_server(interop.LOOPBACK) as port:
        yield (interop.LOOPBACK, port)


@pytest.fixture(scope="module")
def libcoap(libcoap_server):
    """'coap://127.0.0.1:PORT' of the module's coap-server-notls."""
    return "coap://%s:%d" % libcoap_server
