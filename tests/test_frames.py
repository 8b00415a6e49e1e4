"""The functions a served request passes through keep their call frames on
the C stack on MicroPython: a frame over 11 words is a heap allocation at
every call (tools/frames.py says why that matters on a board, and what it
cost the unix-port server)."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import frames  # noqa: E402  (tools/frames.py)

# What one CON GET answered by a handler passes through, module by module.
# Not all of it: EndPoint._dispatch, _Dedup.note and ReceptionRecord.respond
# keep frames of 20 to 23 words. Split to fit, they cost more in calls than
# their heap frames did (measured in instructions per request under
# valgrind, the unix-port Server driven by the C load generator: 290k as
# they are, 307k split), so they stay whole. message.encode_reply_into fits
# without a split (its parameters reused as its locals).
PER_REQUEST = {
    "connection.py": [
        "EndPoint.process", "EndPoint._ready", "EndPoint._due_ms", "EndPoint._wait",
        "EndPoint._guarded", "EndPoint._receive", "EndPoint._read", "EndPoint._take",
        "_decoded", "_Dedup._unlink", "_Dedup.reply",
    ],
    "message.py": ["Message.decode_from", "_walk", "option_next", "_options_end",
                   "encode_reply_into", "_token_into"],
    "server.py": [
        "Server.process", "Server._handled", "Server.handle", "Request._load",
        "Server.route", "Server._segment", "Server._option",
        "_child", "Server._respond", "Server.call",
        "Request.__enter__", "Request.__exit__", "Server.render", "Server._answer_out",
        "Server.option_bytes",
    ],
}


def test_frames_are_read_from_the_bytecode(tmp_path):
    src = tmp_path / "sample.py"
    src.write_text(
        "def small(a):\n"
        "    return a\n"
        "def guarded(self, req, handler):\n"
        "    try:\n"
        "        return handler(req)\n"
        "    except Exception as e:\n"
        "        return e\n"
        "class K:\n"
        "    def wide(self, a, b, c, d, e, f, g, h, i, j, k):\n"
        "        return a\n")
    got = {name: v for (_, name), v in frames.frames([src]).items()}
    assert got["small"] == (2, 0, 2), got
    state, exc, words = got["guarded"]
    assert exc == 2 and words == state + 6 and words > frames.WORDS_ON_STACK, got
    assert got["K.wide"][2] > frames.WORDS_ON_STACK, got


def test_a_served_request_takes_no_frame_from_the_heap():
    got = frames.frames([ROOT / "coapy_micro" / f for f in PER_REQUEST])
    missing = ["%s %s" % (f, n) for f, names in PER_REQUEST.items()
               for n in names if (f, n) not in got]
    assert not missing, "renamed or gone (update PER_REQUEST): %s" % missing
    heavy = ["%s %s: %d words" % (f, n, got[(f, n)][2]) for f, names in PER_REQUEST.items()
             for n in names if got[(f, n)][2] > frames.WORDS_ON_STACK]
    assert not heavy, "frames on the heap at every request: %s" % heavy
