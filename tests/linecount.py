"""Counting, not timing: how many lines of coapy_micro a call runs
(sys.settrace, CPython). A cost that must not grow with some input is
asserted on this count, which a busy machine does not change."""
import sys

PKG = "coapy_micro"


def counted(fn, *args):
    """(what fn(*args) returned, lines of coapy_micro it ran)."""
    n = [0]

    def local(frame, event, arg):
        if event == "line":
            n[0] += 1
        return local

    def calls(frame, event, arg):
        return local if PKG in frame.f_code.co_filename else None

    sys.settrace(calls)
    try:
        got = fn(*args)
    finally:
        sys.settrace(None)
    return got, n[0]
