"""The benchmark tools count what they claim to: the C load generator
(tools/loadgen/loadgen.c) against tiny servers written here, each wrong in
one way; the C echo it is measured against; the harness end to end; and how
tools/bench.py reads targets. Correctness only: no test asserts a rate or a
time, and every run is a fraction of a second.
"""
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from peers import need

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import bench  # noqa: E402
import bench_server  # noqa: E402
from coapy_micro.message import Message  # noqa: E402

SHORT = dict(seconds=0.3, warmup=0.0, window=8, timeout_ms=5000)


@pytest.fixture(scope="module")
def tools():
    need(bench_server.compiler() is not None,
         "no C compiler (cc) to build the load generator (Debian: apt-get install gcc)")
    return bench_server.build_loadgen()


class TinyServer:
    """A UDP server on a thread: answer(data) gives the reply (or None for
    none) to each datagram; every datagram and its source is kept."""

    def __init__(self, answer):
        self.answer = answer
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.received = []  # (data, (host, port))
        self.answered = 0
        self.stopping = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stopping:
            try:
                data, addr = self.sock.recvfrom(1500)
            except socket.timeout:
                continue
            self.received.append((data, addr))
            reply = self.answer(data)
            if reply is not None:
                self.sock.sendto(reply, addr)
                self.answered += 1

    def close(self):
        self.stopping = True
        self.thread.join()
        self.sock.close()


def piggybacked(data, code=0x45, token=None, payload=b"ok"):
    """ACK with the request's message ID, `token` (default: the request's)."""
    tkl = data[0] & 15
    tok = data[4:4 + tkl] if token is None else token
    return bytes((0x60 | len(tok), code, data[2], data[3])) + tok + b"\xff" + payload


def run(tools, answer, **kw):
    srv = TinyServer(answer)
    try:
        args = dict(SHORT)
        args.update(kw)
        r = bench_server.run_loadgen(tools["loadgen"], srv.port, **args)
    finally:
        srv.close()
    return r, srv


BAD = ("bad_token", "bad_code", "bad_payload", "bad_type", "malformed", "resets")


def test_counts_every_valid_answer_and_only_those(tools):
    r, srv = run(tools, piggybacked)
    assert r["completed"] > 0
    assert all(r[k] == 0 for k in BAD), r
    # With no warm-up every answer counts, but those still on their way when
    # the run ended (at most the window).
    assert srv.answered - r["window"] <= r["completed"] <= srv.answered
    assert r["retransmissions"] == r["timeouts"] == 0


def test_requests_are_con_gets_of_the_path_with_unique_ids_and_tokens(tools):
    r, srv = run(tools, piggybacked, path="sensors/temp")
    assert r["completed"] > 0
    mids, tokens = set(), set()
    for data, addr in srv.received:
        mid, m = Message.decode(data)  # the project's own decoder, not the generator's idea
        assert m.transaction_type == Message.CON and m.code == 1
        assert [o.value for o in m.findOptions(11)] == ["sensors", "temp"]
        assert len(m.token) == 8
        mids.add((addr, mid))
        tokens.add(m.token)
    assert len(mids) == len(tokens) == len(srv.received)


def test_an_answer_with_another_token_does_not_count(tools):
    def wrong_token(data):
        tok = bytearray(data[4:4 + (data[0] & 15)])
        tok[-1] ^= 1
        return piggybacked(data, token=bytes(tok))

    r, srv = run(tools, wrong_token)
    assert srv.answered > 0
    assert r["completed"] == 0
    # Every answer is one (but those still on their way at the end).
    assert srv.answered - r["window"] <= r["bad_token"] <= srv.answered


def test_an_answer_without_a_token_does_not_count(tools):
    r, srv = run(tools, lambda data: piggybacked(data, token=b""))
    assert srv.answered > 0 and r["completed"] == 0 and r["bad_token"] > 0


def test_a_wrong_code_or_payload_does_not_count(tools):
    r, _ = run(tools, lambda data: piggybacked(data, code=0x84))  # 4.04
    assert r["completed"] == 0 and r["bad_code"] > 0
    r, _ = run(tools, lambda data: piggybacked(data, payload=b"no"))
    assert r["completed"] == 0 and r["bad_payload"] > 0
    r, _ = run(tools, lambda data: piggybacked(data, payload=b"no"), payload=None)
    assert r["completed"] > 0 and r["bad_payload"] == 0  # no payload asked for


def test_malformed_answers_and_resets_do_not_count(tools):
    r, _ = run(tools, lambda data: data[:2])  # shorter than a header
    assert r["completed"] == 0 and r["malformed"] > 0
    # An option length nibble of 15 is a message format error (RFC 7252 3.1).
    r, _ = run(tools, lambda data: piggybacked(data)[:-3] + b"\x0f\xffok")
    assert r["completed"] == 0 and r["malformed"] > 0
    r, _ = run(tools, lambda data: bytes((0x70, 0, data[2], data[3])))  # RST
    assert r["completed"] == 0 and r["resets"] > 0


def test_retransmits_a_con_until_answered(tools):
    seen = set()

    def second_time_only(data):
        key = bytes(data[2:4])
        if key in seen:
            return piggybacked(data)
        seen.add(key)
        return None

    r, srv = run(tools, second_time_only, timeout_ms=20)
    assert r["completed"] > 0 and r["retransmissions"] > 0
    assert all(r[k] == 0 for k in BAD), r
    # Every retransmission repeats its request byte for byte.
    firsts = {}
    for data, addr in srv.received:
        firsts.setdefault((addr, data[2:4]), data)
        assert firsts[(addr, data[2:4])] == data


def test_gives_up_on_a_silent_server(tools):
    r, srv = run(tools, lambda data: None, timeout_ms=10,
                 extra=("--max-retransmit", "1"))
    assert r["completed"] == 0 and r["timeouts"] > 0
    assert len(srv.received) >= 2 * r["timeouts"]  # each: one try, one retransmission


def test_nobody_listening_is_refused_not_counted(tools):
    port = bench_server.free_port()  # bound and closed: nothing listens there
    r = bench_server.run_loadgen(tools["loadgen"], port, seconds=0.2, warmup=0.0, window=4,
                                 timeout_ms=10)
    assert r["completed"] == 0 and r["refused"] > 0


def test_non_requests_are_matched_by_token(tools):
    mid = [0]
    types = set()

    def non_answer(data):
        types.add(data[0] >> 4 & 3)
        tkl = data[0] & 15
        mid[0] += 1
        return bytes((0x50 | tkl, 0x45, mid[0] >> 8 & 255, mid[0] & 255)) \
            + data[4:4 + tkl] + b"\xffok"

    r, _ = run(tools, non_answer, non=True)
    assert types == {Message.NON}
    assert r["type"] == "NON" and r["completed"] > 0
    assert all(r[k] == 0 for k in BAD), r


def test_an_ack_to_a_non_request_does_not_count(tools):
    r, srv = run(tools, piggybacked, non=True)  # only a CON is acknowledged
    assert srv.answered > 0 and r["completed"] == 0 and r["bad_type"] > 0


def test_a_fresh_socket_when_a_sockets_message_ids_run_out(tools):
    r, srv = run(tools, piggybacked, extra=("--mids-per-socket", "200"))
    assert r["completed"] > 400 and r["sockets"] > 2
    assert all(r[k] == 0 for k in BAD), r
    # No (source port, message ID) pair twice, with many source ports.
    pairs = [(addr, data[2:4]) for data, addr in srv.received]
    assert len(set(pairs)) == len(pairs)
    # (The last socket's requests may still be unread when the server stops.)
    assert 2 < len({addr for _, addr in srv.received}) <= r["sockets"]


def test_the_c_echo_answers_what_the_generator_validates(tools):
    proc = subprocess.Popen([tools["echo"]], stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline().split()[1])
        for non in (False, True):
            r = bench_server.run_loadgen(tools["loadgen"], port, non=non, **SHORT)
            assert r["completed"] > 0
            assert all(r[k] == 0 for k in BAD), r
    finally:
        proc.kill()
        proc.wait()


def test_harness_end_to_end(tools, capsys):
    status = bench_server.main(["--only", "echo,bare", "--seconds", "0.2", "--warmup", "0",
                                "--runs", "1"])
    out = capsys.readouterr().out
    assert status == 0, out
    rows = [line.split() for line in out.splitlines()
            if line.startswith(("  bare UDP loop (CPython)", "  C echo (generator ceiling)"))]
    assert len(rows) == 2, out
    for row in rows:
        assert float(row[4]) > 0, out  # best req/s, after the four words of the name
    assert "load generator not the ceiling" in out


def test_bench_reads_target_lines():
    read = bench.TARGET.match
    m = read("CPython: coapy_micro Server / aiocoap: 12.1x (target >= 10x): met")
    assert m.group("status") == "met"
    assert m.group("text") == "CPython: coapy_micro Server / aiocoap: 12.1x (target >= 10x)"
    assert read("CON GET /hello 464 bytes (target <= 128): NOT MET").group("status") == "NOT MET"
    m = read("unix port: Server / EndPoint loop (target >= 0.8x): not measured (no micropython)")
    assert m.group("status") == "not measured (no micropython)"
    assert read("target: encode_into allocates 0 bytes: met").group("status") == "met"
    assert read("round 1/3: bare 99.0k") is None
    assert read("all deadlines: met") is None  # no target named


def test_bench_runs_every_host_benchmark_in_order():
    names = bench.ordered(bench.available())
    assert names[:3] == ["codec", "alloc", "server"]
    assert not any(n.endswith("_upy") for n in names)  # those run inside MicroPython
    assert set(bench.CORE) <= set(names)


def test_every_tools_bench_script_is_a_benchmark():
    # make bench runs every tools/bench_*.py without arguments: a helper
    # script another benchmark starts (a peer, a node) must not be named so.
    for name in bench.available():
        text = (ROOT / "tools" / ("bench_%s.py" % name)).read_text()
        assert "target" in text and "__main__" in text, name


def _runs(rates, busy=1.0):
    # Runs of one server as measure() records them, one per round.
    return [{"round": i, "rate": r, "per_cpu": r / busy} for i, r in enumerate(rates)]


def _verdict(results, pairs, capsys):
    bench_server.ratio_line(results, {}, "a", "b", "a / b", 0.8, pairs)
    line = capsys.readouterr().out.strip()
    assert bench.TARGET.match(line), line
    return line


def test_a_ratio_target_reads_the_median_of_rounds_not_the_best_runs(capsys):
    # a's runs against b's taken moments apart: 0.9, 0.85, 0.5 per round, the
    # last with one lucky run of b's (200), which alone sets the ratio of the
    # best runs to 0.5.
    results = {"a": _runs([90, 85, 100]), "b": _runs([100, 100, 200])}
    line = _verdict(results, {}, capsys)
    assert "0.85x per CPU-second, 0.85x in req/s (median of 3 rounds" in line, line
    assert "best runs 0.50x" in line, line
    assert line.endswith(": met"), line


def test_a_ratio_target_reads_the_side_by_side_figure_where_measured(capsys):
    results = {"a": _runs([90, 85, 80]), "b": _runs([100, 100, 100])}
    pairs = {("a", "b"): [{"round": i, "rate": r, "per_cpu": r} for i, r in
                          enumerate((0.78, 0.79, 0.95))]}
    line = _verdict(results, pairs, capsys)
    assert "0.79x per CPU-second, 0.79x in req/s side by side (median of 3 rounds" in line, line
    assert "one after the other 0.85x" in line, line
    assert line.endswith(": NOT MET"), line


def test_a_ratio_target_needs_both_per_cpu_second_and_req_s(capsys):
    # Per CPU-second a is at 0.9 of b, but it idled: in req/s 0.45.
    results = {"a": _runs([45, 45, 45], busy=0.5), "b": _runs([100, 100, 100])}
    line = _verdict(results, {}, capsys)
    assert "0.90x per CPU-second, 0.45x in req/s" in line, line
    assert line.endswith(": NOT MET"), line


def test_median_of_an_even_count_is_the_mean_of_the_middle_two():
    assert bench_server.median([3, 1, 2, 10]) == 2.5
    assert bench_server.median([0.9]) == 0.9
