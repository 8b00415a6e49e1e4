"""The few things CPython and MicroPython spell differently, in one place.

On MicroPython this is three imports; CPython gets the same names from
_cpython.py, which a board never loads (its code would cost heap there).
"""
try:
    from micropython import const
    from time import ticks_add, ticks_diff, ticks_ms

    IS_MICROPYTHON = True
except ImportError:  # CPython
    from ._cpython import const, ticks_add, ticks_diff, ticks_ms

    IS_MICROPYTHON = False
