# upy-ok-file: imported on CPython only, by _compat.py
"""What MicroPython has built in and CPython lacks, for _compat.py on CPython:
const() and the wrapping millisecond ticks of the `time` module."""
from time import monotonic_ns as _monotonic_ns


def const(x):
    """MicroPython's const(): an identity function here."""
    return x


# The same period as a 32-bit board (2**30 ms), so code that forgets to
# use ticks_diff() fails on the host too, not only after 12 days on a node.
_TICKS_MASK = (1 << 30) - 1
_TICKS_HALF = 1 << 29


def ticks_ms():
    return (_monotonic_ns() // 1000000) & _TICKS_MASK


def ticks_add(ticks, delta):
    return (ticks + delta) & _TICKS_MASK


def ticks_diff(a, b):
    return ((a - b + _TICKS_HALF) & _TICKS_MASK) - _TICKS_HALF
