"""tools/bench_gateway.py counts what it claims to: the simulator's
notifications are what a node's Server would send (the project's encoder
makes the same bytes; NON with every 20th CON; Observe increasing; each
value new), and a load counts as carried only when arrivals keep up and
nothing goes missing."""
import sys
import types
from pathlib import Path

from coapy_micro.message import Message

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import bench_gateway  # noqa: E402


class _Sock:
    def sendto(self, data, remote):
        pass


def _sim():
    ep = types.SimpleNamespace(socket=_Sock())
    sim = bench_gateway.NodeSim(ep, None)
    sim.observers = {0: (("127.0.0.1", 40000), b"\x01\x02\x03\x04"), 1: (("127.0.0.1", 40001), b"")}
    return sim


def test_simulated_notifications_are_what_the_encoder_makes():
    sim = _sim()
    sim.check()  # raises SystemExit if a byte differs
    seen = []
    for i in range(60):
        k = i % 2
        remote, data = sim.datagram(k, b"%d" % i)
        tid, m = Message.decode(data)
        assert remote == sim.observers[k][0]
        assert m.token == sim.observers[k][1] and m.code == 69 and m.payload == b"%d" % i
        assert m.get_uint(12) == 0  # text/plain
        seen.append((m.transaction_type, tid, m.get_uint(6)))
    types_ = [t for t, _, _ in seen]
    assert types_.count(Message.CON) == 3 and types_[19] == Message.CON, types_  # every 20th
    assert all(t in (Message.CON, Message.NON) for t in types_)
    tids = [tid for _, tid, _ in seen]
    assert len(set(tids)) == 60, tids  # a message ID each
    obs = [o for _, _, o in seen]
    assert obs == sorted(obs) and len(set(obs)) == 60, obs  # fresh (RFC 7641 §3.4)


def test_a_load_is_carried_only_when_it_keeps_up_and_loses_nothing():
    ok = {"offered": 1000.0, "rate": 990.0, "sent": 4000, "arrived": 4000}
    assert bench_gateway.sustained(ok)
    assert not bench_gateway.sustained(dict(ok, rate=900.0))  # falling behind
    assert not bench_gateway.sustained(dict(ok, arrived=3900))  # 2.5% went missing


def test_the_subscriber_count_takes_whole_lines_and_no_status_topics():
    text = (b"coap/n000/r1\ncoap/n000/$status\ncoap/$gateway/gw-1\ncoap/n001/r0\n"
            b"coap/n002/r9\n")
    for cut in range(len(text) + 1):
        n1, rest = bench_gateway.count_readings(text[:cut])
        n2, rest = bench_gateway.count_readings(rest + text[cut:])
        assert (n1 + n2, rest) == (3, b""), cut


def test_the_machines_busy_time_is_read_and_grows():
    # Each step prints the cores the machine was busy and how much of that
    # was other work than the load's processes (bench_gateway.step).
    a = bench_gateway.machine_cpu_s()
    end = bench_gateway.time.process_time() + 0.05
    while bench_gateway.time.process_time() < end:
        pass
    b = bench_gateway.machine_cpu_s()
    assert isinstance(a, float) and 0 < a <= b
    assert b - a >= 0.02  # this process alone kept a core busy 0.05 s (counted in ticks)
