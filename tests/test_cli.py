"""The `coapy` command, run as `python -m coapy_micro` in a subprocess.

Against `coapy serve` (also a subprocess), libcoap's coap-server-notls and a
scripted UDP peer for the answers neither gives on demand (5.xx, RST): exit
statuses, the -v format, --payload TEXT / @FILE / @-, --content-format and
--accept by name, --non, --timeout, the discover table.

CPython only. libcoap missing: skip on a laptop, fail under CI=true.
"""
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

from coapy_micro.demo_node import DemoNode

from coapy_micro.connection import Message
from interop import LOOPBACK, ROOT, coapy_serve


def coapy(*args, stdin=None, timeout=60):
    """Run `python -m coapy_micro ARGS`; the CompletedProcess (bytes out)."""
    return subprocess.run([sys.executable, "-m", "coapy_micro", *args], cwd=ROOT,
                          input=stdin, capture_output=True, timeout=timeout)


def err(proc):
    return proc.stderr.decode("utf-8", "replace")


def lines_then_interrupt(args, want, within_s=60):
    """Run `python -m coapy_micro ARGS` until it has printed `want` lines
    (or ended, or `within_s` passed), then press Ctrl-C (SIGINT). Returns
    (its output lines, stderr text, exit status, whether it was still
    running when interrupted). Waiting for the lines, not for a fixed time,
    holds on a loaded machine, where the interpreter alone may take seconds
    to start."""
    import os
    import select
    import signal

    p = subprocess.Popen([sys.executable, "-m", "coapy_micro", *args], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    got = b""
    deadline = time.monotonic() + within_s
    while got.count(b"\n") < want:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([p.stdout], [], [], left)[0]:
            break
        chunk = os.read(p.stdout.fileno(), 4096)
        if not chunk:
            break  # it ended
        got += chunk
    still = p.poll() is None
    p.send_signal(signal.SIGINT)
    out, errs = p.communicate(timeout=30)
    return (got + out).decode().splitlines(), errs.decode("utf-8", "replace"), p.returncode, still


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """'coap://127.0.0.1:PORT' of `coapy serve` on a port it picks (--port
    0); its log must show no traceback when it stops."""
    with coapy_serve(tmp_path_factory.mktemp("serve") / "stderr.txt", port=0) as uri:
        yield uri


# libcoap: 'coap://127.0.0.1:PORT' of a coap-server-notls (tests/conftest.py).


class ScriptedPeer:
    """A UDP socket on loopback answering each CoAP request with
    reply(tid, request) -> bytes (or None), in a thread."""

    def __init__(self, reply):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.settimeout(0.1)
        self.uri = "coap://%s:%d" % (LOOPBACK, self.sock.getsockname()[1])
        self.reply = reply
        self.done = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done:
            try:
                data, addr = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            tid, msg = Message.decode(data)
            out = self.reply(tid, msg)
            if out is not None:
                self.sock.sendto(out, addr)

    def close(self):
        self.done = True
        self.thread.join(5)
        self.sock.close()


# -- help and arguments -------------------------------------------------------


def test_help_documents_the_exit_statuses():
    p = coapy("--help")
    assert p.returncode == 0
    text = p.stdout.decode()
    for cmd in ("get", "post", "put", "delete", "fetch", "patch", "ipatch", "discover", "serve"):
        assert re.search(r"^\s+%s\s" % cmd, text, re.M), cmd
    for status in ("0", "2", "3", "4", "5", "6", "7", "8"):
        assert re.search(r"^  %s  \S" % status, text, re.M), status
    assert "timeout" in text and "4.xx" in text and "5.xx" in text and "RST" in text
    assert "RFC 7959" in text and "--max-body" in text and "--deadline" in text
    p = coapy("get", "--help")
    assert p.returncode == 0 and b"@FILE" in p.stdout and b"exit status" in p.stdout


def test_console_script_entry_point():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"coapy": "coapy_micro.cli:main"}
    from coapy_micro import cli

    assert callable(cli.main)


@pytest.mark.parametrize("args", [
    ("get",),  # no URI
    ("get", "http://127.0.0.1/x"),
    ("get", "coap://127.0.0.1:99999/"),
    ("get", "coaps://127.0.0.1/x"),  # no DTLS here
    ("get", "coap://127.0.0.1/", "--content-format", "nonsense/type"),
    ("get", "coap://127.0.0.1/", "--accept", "-3"),
    ("get", "coap://127.0.0.1/", "--timeout", "0"),
    ("brew", "coap://127.0.0.1/"),
    ("discover", "coap:/x"),
    ("get", "coap://127.0.0.1/", "--block", "100"),  # not a power of two
    ("put", "coap://127.0.0.1/", "--block", "2048"),
])
def test_usage_errors_exit_2(args):
    p = coapy(*args)
    assert p.returncode == 2, (p.returncode, err(p))
    assert p.stdout == b""
    assert err(p).strip()


# -- against `coapy serve` ----------------------------------------------------


def test_get_writes_the_payload_to_stdout(served):
    p = coapy("get", served + "/hello")
    assert (p.returncode, p.stdout, p.stderr) == (0, b"Hello from coapy_micro!", b"")


def test_not_found_exits_4(served):
    p = coapy("get", served + "/no/such")
    assert p.returncode == 4
    assert p.stdout == b""
    assert "4.04 Not Found" in err(p)


def test_accept_by_name(served):
    # /hello produces text/plain only: Accept json is 4.06 (exit 4).
    p = coapy("get", served + "/hello", "--accept", "json")
    assert p.returncode == 4 and "4.06 Not Acceptable" in err(p), err(p)
    p = coapy("get", served + "/hello", "-A", "text/plain")
    assert p.returncode == 0 and p.stdout == b"Hello from coapy_micro!"


VERBOSE = [
    r"-> CON 0\.01 GET  mid=(\d+) token=([0-9a-f]{8})  to 127\.0\.0\.1:(\d+)",
    r"->   Uri-Port: \3",
    r"->   Uri-Path: hello",
    r"<- ACK 2\.05 Content  mid=\1 token=\2  from 127\.0\.0\.1:\3",
    r"<-   Content-Format: 0 \(text/plain;charset=utf-8\)",
    r"<-   payload \(23 bytes\): Hello from coapy_micro!",
]


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_prints_each_message(served, where):
    args = ("-v", "get", served + "/hello") if where == "before" else ("get", served + "/hello", "-v")
    p = coapy(*args)
    assert p.returncode == 0 and p.stdout == b"Hello from coapy_micro!"
    assert re.fullmatch("\n".join(VERBOSE) + "\n", err(p)), err(p)
    assert int(re.search(r"to 127\.0\.0\.1:(\d+)", err(p)).group(1)) == int(served.rsplit(":", 1)[1])


def test_payload_from_file_is_sent_raw(served, tmp_path):
    data = bytes(range(256)) * 3 + b"\r\n\x00end"
    f = tmp_path / "blob.bin"
    f.write_bytes(data)
    p = coapy("put", served + "/upload", "--payload", "@%s" % f, "--content-format", "octet-stream")
    assert p.returncode == 0, err(p)
    p = coapy("-v", "get", served + "/upload")
    assert p.returncode == 0 and p.stdout == data
    assert "<-   Content-Format: 42 (application/octet-stream)" in err(p)
    assert "<-   payload (%d bytes): 0x000102" % len(data) in err(p)


def test_large_payload_from_file_goes_up_in_blocks(served, tmp_path):
    # RFC 7959: 3 KB from @FILE in 64-byte Block1 blocks (48 requests),
    # read back in 16-byte Block2 blocks.
    data = bytes((i * 7 + i // 251) & 255 for i in range(3072))
    f = tmp_path / "3k.bin"
    f.write_bytes(data)
    p = coapy("-v", "put", served + "/upload", "--payload", "@%s" % f, "--block", "64")
    assert p.returncode == 0, err(p)
    assert err(p).count("Block1: 47/0/64") == 2, err(p)  # the last block and its echo
    assert err(p).count("PUT") == 48, err(p).count("PUT")
    p = coapy("get", served + "/upload", "--block", "16")
    assert p.returncode == 0 and p.stdout == data, len(p.stdout)
    p = coapy("get", served + "/large")
    assert p.returncode == 0 and p.stdout == DemoNode().large_text()


def test_payload_text_post_and_delete(served):
    p = coapy("post", served + "/upload", "--payload", "h\u00e9llo", "-t", "text/plain")
    assert p.returncode == 0, err(p)
    assert coapy("get", served + "/upload").stdout == "h\u00e9llo".encode()
    p = coapy("-v", "delete", served + "/upload")
    assert p.returncode == 0 and "<- ACK 2.02 Deleted" in err(p), err(p)
    assert coapy("get", served + "/upload").stdout == b""


def test_payload_from_stdin(served):
    p = coapy("put", served + "/upload", "--payload", "@-", stdin=b"piped\n")
    assert p.returncode == 0, err(p)
    assert coapy("get", served + "/upload").stdout == b"piped\n"


def test_unreadable_payload_file_exits_1(served, tmp_path):
    p = coapy("put", served + "/upload", "--payload", "@%s" % (tmp_path / "missing"))
    assert p.returncode == 1 and "cannot read the payload" in err(p), err(p)


def test_non_request(served):
    p = coapy("get", served + "/hello", "--non", "-v")
    assert p.returncode == 0 and p.stdout == b"Hello from coapy_micro!"
    lines = err(p).splitlines()
    assert lines[0].startswith("-> NON 0.01 GET  mid="), lines
    assert any(ln.startswith("<- NON 2.05 Content  mid=") for ln in lines), lines


def test_demo_resources(served):
    p = coapy("get", served + "/sensors/temp")
    assert p.returncode == 0 and 0 < float(p.stdout) < 50, p.stdout
    p = coapy("get", served + "/time")
    assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", p.stdout), p.stdout
    p = coapy("get", served + "/large")
    assert p.returncode == 0 and len(p.stdout) >= 2048, len(p.stdout)
    assert p.stdout.count(b"\n") >= 20


def test_discover_table(served):
    p = coapy("discover", served)
    assert p.returncode == 0, err(p)
    lines = p.stdout.decode().splitlines()
    assert lines[0].split() == ["PATH", "RT", "IF", "CT", "TITLE", "OBS"], lines
    # Columns line up under the header.
    starts = [lines[0].index(h) for h in ("RT", "IF", "CT", "TITLE", "OBS")]
    rows = {ln.split()[0]: ln for ln in lines[1:]}
    assert set(rows) == {"/hello", "/time", "/sensors/temp", "/large", "/upload"}, rows
    temp = rows["/sensors/temp"]
    assert [temp[s:].split("  ")[0] for s in starts] == [
        "temperature-c", "sensor", "0 (text/plain)", "Temperature", "yes"], temp
    assert rows["/upload"][starts[2]:].startswith("-"), rows["/upload"]


def test_discover_with_a_filter(served):
    p = coapy("discover", served + "?rt=temp*", "-v")
    assert p.returncode == 0, err(p)
    lines = p.stdout.decode().splitlines()
    assert [ln.split()[0] for ln in lines[1:]] == ["/sensors/temp"], lines
    assert "->   Uri-Path: .well-known\n->   Uri-Path: core\n->   Uri-Query: rt=temp*" in err(p)


# -- error statuses -----------------------------------------------------------


def test_timeout_exits_3():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((LOOPBACK, 0))
        t0 = time.monotonic()
        p = coapy("get", "coap://%s:%d/x" % (LOOPBACK, silent.getsockname()[1]), "--timeout", "0.5")
        assert time.monotonic() - t0 < 10
    assert p.returncode == 3, err(p)
    assert "no response" in err(p) and p.stdout == b""


@pytest.mark.parametrize("code, status", [(160, 5), (163, 5), (132, 4), (95, 0)])
def test_response_class_sets_the_exit_status(code, status):
    peer = ScriptedPeer(lambda tid, m: Message(Message.ACK, code, b"why", m.token).encode(tid))
    try:
        p = coapy("get", peer.uri + "/x")
    finally:
        peer.close()
    assert p.returncode == status, err(p)
    assert p.stdout == b"why"


def test_reset_exits_6():
    peer = ScriptedPeer(lambda tid, m: bytes([0x70, 0, tid >> 8, tid & 255]))
    try:
        p = coapy("get", peer.uri + "/x")
    finally:
        peer.close()
    assert p.returncode == 6, err(p)
    assert "RST" in err(p)


def _hostile(payload, options=()):
    # A server answering every request with `payload` and `options`.
    from coapy_micro.options import Option

    def answer(tid, m):
        r = Message(Message.ACK, 69, payload, m.token)
        for n, v in options:
            r.addOption(Option(n, v))
        return r.encode(tid)
    return ScriptedPeer(answer)


def test_discover_shows_a_hostile_servers_text_escaped():
    # Link-format carrying terminal commands (a title that retitles the
    # window, a target that clears the screen) and a ct that str.isdigit()
    # takes for a number ('²'): the table shows them escaped, exit 0.
    peer = _hostile(b'</x%1B[2J>;title="\x1b]0;owned\x07",</y>;ct="\xc2\xb2 40"', [(12, 40)])
    try:
        p = coapy("discover", peer.uri)
    finally:
        peer.close()
    assert p.returncode == 0, err(p)
    assert b"\x1b" not in p.stdout and b"\x07" not in p.stdout, p.stdout
    out = p.stdout.decode()
    assert "\\x1b]0;owned\\x07" in out and "/x%1B[2J" in out, out
    assert "\u00b2, 40 (application/link-format)" in out, out


def test_verbose_trace_escapes_control_characters_a_server_sent():
    # ESC and BEL in a string option, a C1 control (CSI, U+009B) in the
    # payload: none reaches the terminal raw.
    peer = _hostile("ok \u009b2J".encode(), [(8, "\x1b]0;owned\x07")])
    try:
        p = coapy("-v", "get", peer.uri + "/x")
    finally:
        peer.close()
    assert p.returncode == 0, err(p)
    assert b"\x1b" not in p.stderr and b"\x07" not in p.stderr and b"\xc2\x9b" not in p.stderr, p.stderr
    assert b"\\x1b]0;owned\\x07" in p.stderr, p.stderr  # Location-Path, escaped
    assert b"0x6f6b20c29b324a" in p.stderr, p.stderr  # the payload, in hex


def test_unresolvable_host_exits_7():
    p = coapy("get", "coap://no-such-host.invalid/x")
    assert p.returncode == 7, err(p)
    assert "unreachable" in err(p)


def test_serve_on_a_port_in_use_exits_1():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind((LOOPBACK, 0))
        p = coapy("serve", "--bind", LOOPBACK, "--port", str(taken.getsockname()[1]))
    assert p.returncode == 1 and "cannot listen" in err(p), err(p)


# -- against libcoap ----------------------------------------------------------


def test_libcoap_get_and_separate_response(libcoap):
    p = coapy("get", libcoap + "/")
    assert p.returncode == 0 and b"libcoap" in p.stdout
    p = coapy("-v", "get", libcoap + "/async?1")
    assert p.returncode == 0 and p.stdout == b"done"
    kinds = [ln.split("  ")[0] for ln in err(p).splitlines() if not ln.startswith(("->   ", "<-   "))]
    assert kinds == ["-> CON 0.01 GET", "<- ACK 0.00 Empty", "<- CON 2.05 Content",
                     "-> ACK 0.00 Empty"], err(p)


def test_libcoap_put_get_and_not_found(libcoap):
    p = coapy("put", libcoap + "/example_data", "--payload", "cli was here")
    assert p.returncode == 0, err(p)
    assert coapy("get", libcoap + "/example_data").stdout == b"cli was here"
    p = coapy("get", libcoap + "/missing")
    assert p.returncode == 4 and "4.04 Not Found" in err(p)


def test_libcoap_discover(libcoap):
    p = coapy("discover", libcoap)
    assert p.returncode == 0, err(p)
    lines = p.stdout.decode().splitlines()
    rows = {ln.split()[0]: ln.split() for ln in lines[1:]}
    assert {"/", "/time", "/async", "/example_data"} <= set(rows), lines
    assert rows["/time"][:2] == ["/time", "ticks"] and rows["/time"][-1] == "yes", rows["/time"]
    assert rows["/async"][-1] == "-", rows["/async"]


def test_exit_status_of_each_response_class():
    from coapy_micro.cli import exit_status

    # 2.01 2.05 2.31 4.00 4.04 5.00 5.05 3.04 (class 3 is reserved)
    got = [exit_status(c) for c in (65, 69, 95, 128, 132, 160, 165, 100)]
    assert got == [0, 0, 0, 4, 4, 5, 5, 1], got


def test_get_observe_prints_each_notification(served):
    p = coapy("get", "--observe", "3.5", served + "/time")
    assert p.returncode == 0, err(p)
    lines = p.stdout.decode().splitlines()
    assert len(lines) >= 3, lines  # the first response, then one a second
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", ln) for ln in lines), lines


def test_get_observe_without_seconds_runs_until_interrupted(served):
    # The first response and a notification, then Ctrl-C: it ends with 0.
    lines, errs, status, still = lines_then_interrupt(["get", "--observe", served + "/time"], 2)
    assert len(lines) >= 2 and still, (lines, errs)
    assert status == 0, (status, errs)


# -- servers that break the rules, and long transfers ----------------------------------
# Every request of the command ends, in bounded time, with the body or a
# clear message and a documented exit status, never a traceback.

BLOCK1, BLOCK2, ETAG = 27, 23, 4


def block_reply(tid, m, code=69, payload=b"", block2=None, block1=None, etag=None):
    from coapy_micro.options import Option

    r = Message(Message.ACK, code, payload, m.token)
    if etag is not None:
        r.addOption(Option(ETAG, etag))
    for number, v in ((BLOCK2, block2), (BLOCK1, block1)):
        if v is not None:
            r.addOption(Option(number, (v[0] << 4) | (8 if v[1] else 0) | v[2]))
    return r.encode(tid)


def asked_block(m, number=BLOCK2):
    o = m.findOption(number)
    return None if o is None else o.value


def no_traceback(p):
    assert "Traceback" not in err(p), err(p)


def test_empty_first_block_exits_8_at_once():
    # Seen: Block2 0/1/1024 with no payload kept the command asking for the
    # same block forever (700,000 requests in 60 s).
    n = []

    def reply(tid, m):
        n.append(1)
        return block_reply(tid, m, block2=(0, True, 6))
    peer = ScriptedPeer(reply)
    try:
        p = coapy("get", peer.uri + "/x", timeout=30)
    finally:
        peer.close()
    no_traceback(p)
    assert p.returncode == 8 and p.stdout == b"", (p.returncode, err(p))
    assert "0 bytes of payload" in err(p) and "RFC 7959" in err(p), err(p)
    assert len(n) == 1, len(n)


def test_body_cut_short_exits_8():
    # Seen: block 0 (M set), then a plain 2.05: that 2.05 was printed as the
    # whole body, exit 0.
    def reply(tid, m):
        if asked_block(m) is None:
            return block_reply(tid, m, payload=b"a" * 1024, block2=(0, True, 6))
        return block_reply(tid, m, payload=b"the end")
    peer = ScriptedPeer(reply)
    try:
        p = coapy("get", peer.uri + "/x")
    finally:
        peer.close()
    no_traceback(p)
    assert p.returncode == 8 and p.stdout == b"", (p.returncode, err(p))
    assert "the rest of the body is missing" in err(p), err(p)


def test_upload_not_taken_in_blocks_exits_8(tmp_path):
    # Seen: a server that ignores Block1 answers block 0 with a final 2.04:
    # reported as success, the server had one block of the file.
    got = []

    def reply(tid, m):
        got.append(len(m.payload))
        return block_reply(tid, m, code=68)
    f = tmp_path / "5k.bin"
    f.write_bytes(bytes(5000))
    peer = ScriptedPeer(reply)
    try:
        p = coapy("put", peer.uri + "/x", "--payload", "@%s" % f)
    finally:
        peer.close()
    no_traceback(p)
    assert p.returncode == 8, (p.returncode, err(p))
    assert "did not take the body in blocks" in err(p) and "Block1 is critical" in err(p), err(p)
    assert got == [1024], got


def test_body_changing_all_the_time_exits_8():
    # Seen: BodyChanged (and BlockError) printed a Python traceback, exit 1.
    n = []

    def reply(tid, m):
        n.append(1)
        num = (asked_block(m) or (0, False, 6))[0]
        return block_reply(tid, m, payload=b"b" * 64, block2=(num, True, 2),
                           etag=bytes([len(n) & 255]))
    peer = ScriptedPeer(reply)
    try:
        p = coapy("get", peer.uri + "/x", "--block", "64")
    finally:
        peer.close()
    no_traceback(p)
    assert p.returncode == 8 and "kept changing" in err(p), (p.returncode, err(p))


def endless_16_byte_blocks(count):
    def reply(tid, m):
        count.append(1)
        num = (asked_block(m) or (0, False, 0))[0]
        return block_reply(tid, m, payload=b"q" * 16, block2=(num, True, 0))
    return reply


def test_max_body_bounds_a_server_handing_out_16_byte_blocks():
    # Seen: with a 16 MiB limit such a server held the command for 97 s and
    # a million requests.
    from coapy_micro import cli

    args = cli.build_parser().parse_args(["get", "coap://127.0.0.1/x"])
    assert args.max_body <= 1024 * 1024 and args.deadline <= 300, (args.max_body, args.deadline)
    n = []
    peer = ScriptedPeer(endless_16_byte_blocks(n))
    try:
        p = coapy("get", peer.uri + "/x", "--max-body", "4096", "--block", "16")
    finally:
        peer.close()
    no_traceback(p)
    assert p.returncode == 8 and "max_body (4096 bytes)" in err(p), (p.returncode, err(p))
    assert len(n) == 4096 // 16 + 1, len(n)


def test_deadline_bounds_the_whole_transfer_and_progress_shows():
    n = []
    peer = ScriptedPeer(endless_16_byte_blocks(n))
    t0 = time.monotonic()
    try:
        p = coapy("get", peer.uri + "/x", "--max-body", "100000000", "--block", "16",
                  "--deadline", "3.5")
    finally:
        peer.close()
    took = time.monotonic() - t0
    no_traceback(p)
    assert p.returncode == 3, (p.returncode, err(p))
    assert "did not finish within transfer_timeout_ms (3500 ms)" in err(p), err(p)
    assert "--deadline 3.5 s" in err(p), err(p)
    assert took < 30, took  # 3.5 s, with room for a loaded machine to start Python
    lines = [ln for ln in err(p).splitlines() if "bytes received in" in ln]
    assert 1 <= len(lines) <= 3, err(p)  # after 2 s, then once a second
    assert re.fullmatch(r"coapy: \d+ bytes received in \d+ requests, \d s", lines[0]), lines


def test_timeout_says_what_was_dropped():
    # A server whose answers the EndPoint cannot take (malformed here; a
    # datagram beyond max_message_size is the other case): the timeout says
    # so instead of only "no response".
    def reply(tid, m):
        raw = bytearray(Message(Message.ACK, 69, b"ok", m.token).encode(tid))
        raw[0] = (raw[0] & 0xF0) | 9  # token length 9: reserved (RFC 7252 §3)
        return bytes(raw)
    peer = ScriptedPeer(reply)
    try:
        p = coapy("get", peer.uri + "/x", "--timeout", "2.5")
    finally:
        peer.close()
    no_traceback(p)
    assert p.returncode == 3, (p.returncode, err(p))
    assert re.search(r"\d datagrams? from 127\.0\.0\.1:\d+ dropped: malformed", err(p)), err(p)


def test_get_observe_for_a_week_keeps_observing(served):
    # Seen: `get --observe 604800` returned after 0.14 s with exit 3 (a week
    # is beyond what ticks can hold).
    # Still observing after the first response and two notifications (more
    # than two seconds in), then Ctrl-C.
    lines, errs, status, still = lines_then_interrupt(
        ["get", "--observe", "604800", served + "/time"], 3)
    assert still, (status, lines, errs)
    assert len(lines) >= 3, (lines, errs)
    assert status == 0, (status, errs)
