# Helpers for portable tests: this file runs unchanged on CPython (under pytest)
# and inside the MicroPython VM (tools/mpvm/run.mjs copies it to /lib).
# Keep it to the shared Python subset (docs/micropython.md).
import gc
import sys

IS_MICROPYTHON = sys.implementation.name == "micropython"

if IS_MICROPYTHON:
    import micropython

# Bytes in a machine word. Allocation figures scale with it: the WebAssembly
# VM is 32-bit like ESP32 and RP2 boards (its figures are a board's); the
# MicroPython unix port is 64-bit, where objects take about twice as much.
WORD_BYTES = 8 if sys.maxsize > 0x7FFFFFFF else 4
RUNTIME = ("cpython" if not IS_MICROPYTHON
           else "webassembly" if sys.platform == "webassembly" else "unix port")


class Skip(Exception):
    """Raise to skip a test: both pytest (via conftest.py) and run.mjs report it as skipped."""


def raises(exc_type, fn, *args, **kw):
    """Call fn(*args, **kw); return the exc_type it raised, else AssertionError."""
    try:
        fn(*args, **kw)
    except exc_type as e:
        return e
    except Exception as e:
        raise AssertionError("expected %r, got %r" % (exc_type, e))
    raise AssertionError("expected %r, nothing was raised" % (exc_type,))


def _call(fn, args):
    # fn(*args) allocates on MicroPython, which would spoil the measurement and
    # raise MemoryError under heap_lock(): dispatch on the count instead.
    n = len(args)
    if n == 0:
        return fn()
    if n == 1:
        return fn(args[0])
    if n == 2:
        return fn(args[0], args[1])
    return fn(args[0], args[1], args[2])


def _check_args(args):
    if len(args) > 3:
        raise TypeError("at most 3 arguments")


def alloc_bytes(fn, *args):
    """Bytes of heap allocated by one fn(*args) call on MicroPython; None on CPython.

    Exact unless the call itself triggers a garbage collection (keep it small).
    """
    if not IS_MICROPYTHON:
        return None
    _check_args(args)
    gc.collect()
    before = gc.mem_alloc()
    _call(fn, args)
    return gc.mem_alloc() - before


# Where no_alloc() records what happened while the heap is locked: storing into
# an existing list does not allocate. [kind, exception]; kind 1 = MemoryError,
# 2 = any other exception.
_locked = [0, None]


def no_alloc(fn, *args):
    """Run fn(*args) under micropython.heap_lock().

    Returns True if it completed without allocating, False if it needed the heap
    (MemoryError), None on CPython. AssertionError if fn raised anything else.
    """
    if not IS_MICROPYTHON:
        return None
    _check_args(args)
    rec = _locked
    rec[0] = 0
    rec[1] = None
    # Rules for the locked region, else the VM spins forever: nothing may
    # escape it but MemoryError, no new globals, exactly one heap_unlock().
    micropython.heap_lock()
    try:
        _call(fn, args)
    except MemoryError:
        rec[0] = 1
    except BaseException as e:
        rec[0] = 2
        rec[1] = e
    micropython.heap_unlock()
    if rec[0] == 2:
        e = rec[1]
        rec[1] = None
        raise AssertionError("%r raised %r under heap_lock()" % (fn, e))
    return rec[0] == 0


def assert_no_alloc(fn, *args):
    """AssertionError if fn(*args) allocates on MicroPython; no-op on CPython."""
    if no_alloc(fn, *args) is False:
        raise AssertionError("%r allocated on the heap" % (fn,))


def heap_now():
    """gc.mem_alloc() on MicroPython, without collecting; None on CPython.

    In the WebAssembly VM a gc.collect() made while a test runs reclaims
    nothing; the harness collects before each test, so read at the start of
    a test this is the heap the earlier tests left alive. Tests that compare
    heaps split their work over consecutive test functions for that reason.
    """
    if not IS_MICROPYTHON:
        return None
    return gc.mem_alloc()
