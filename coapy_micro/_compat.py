"""The few things CPython and MicroPython spell differently, in one place.

Only what several modules need lives here; everything is cheap to import.
"""
import sys

IS_MICROPYTHON = sys.implementation.name == "micropython"

try:
    from micropython import const
except ImportError:  # CPython: const() is an identity function

    def const(x):
        return x


try:
    from time import ticks_ms, ticks_add, ticks_diff
except ImportError:  # CPython: emulate MicroPython's wrapping millisecond ticks
    from time import monotonic_ns as _monotonic_ns

    # The same period as a 32-bit board (2**30 ms), so code that forgets to
    # use ticks_diff() fails on the host too, not only after 12 days on a node.
    _TICKS_PERIOD = const(1 << 30)
    _TICKS_MASK = const((1 << 30) - 1)
    _TICKS_HALF = const(1 << 29)

    def ticks_ms():
        return (_monotonic_ns() // 1000000) & _TICKS_MASK

    def ticks_add(ticks, delta):
        return (ticks + delta) & _TICKS_MASK

    def ticks_diff(a, b):
        return ((a - b + _TICKS_HALF) & _TICKS_MASK) - _TICKS_HALF


