# Checks tests/portable/support.py itself; runs on CPython and in the MicroPython VM.
import support

_buf = bytearray(8)


def _arith(a, b):
    # Small-int arithmetic and index stores only: allocation-free on MicroPython.
    n = 0
    for i in range(len(_buf)):
        _buf[i] = (a * i + b) & 255
        n += _buf[i]
    return n


def _make_list(a):
    return [a, a]


def _raise_value_error():
    raise ValueError("boom")


def test_raises():
    e = support.raises(ValueError, int, "x")
    assert isinstance(e, ValueError)
    support.raises(AssertionError, support.raises, KeyError, len, b"")  # nothing raised
    support.raises(AssertionError, support.raises, KeyError, int, "x")  # wrong type


def test_alloc_bytes():
    n = support.alloc_bytes(bytearray, 100)
    if not support.IS_MICROPYTHON:
        assert n is None
        raise support.Skip("measures the MicroPython heap")
    assert n >= 100, n
    assert support.alloc_bytes(_arith, 3, 4) == 0


def test_no_alloc():
    support.assert_no_alloc(_arith, 3, 4)
    if not support.IS_MICROPYTHON:
        assert support.no_alloc(_make_list, 1) is None
        raise support.Skip("needs micropython.heap_lock()")
    assert support.no_alloc(_make_list, 1) is False
    support.raises(AssertionError, support.assert_no_alloc, _make_list, 1)
    # Another exception under the lock is reported, after unlocking.
    e = support.raises(AssertionError, support.no_alloc, _raise_value_error)
    assert "ValueError" in str(e)
