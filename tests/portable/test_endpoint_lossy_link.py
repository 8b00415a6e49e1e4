# Reliability over a bad link, on the fake network: loss both ways, duplicated
# and reordered datagrams. Portable: CPython (pytest) and the MicroPython VM.
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
from fakenet import CLIENT, SERVER, pair
from coapy_micro.connection import Message

CON, NON, ACK, RST = Message.CON, Message.NON, Message.ACK, Message.RST
POST, CHANGED = 2, 68
N = 50

# Both ends tuned for the link (transmission parameters are per EndPoint
# and tunable): with 30 % loss each way an attempt succeeds with
# p = 0.49, so MAX_RETRANSMIT 4 would lose about 3 % of the exchanges; 8
# retransmissions leave about 0.2 %. The server's EXCHANGE_LIFETIME follows
# from the same parameters, so its dedup entries outlive every retransmission.
PARAMS = {"ack_timeout_ms": 1000, "max_retransmit": 8, "max_in_flight": N, "dedup_size": 32}


def test_con_posts_over_a_lossy_link_each_handled_exactly_once():
    server_kw = dict(PARAMS)
    net, c, s = pair(seed=20240601, client=PARAMS, server=server_kw)
    net.link(CLIENT, SERVER, loss=0.3, dup=0.1, delay=20, jitter=400)
    net.link(SERVER, CLIENT, loss=0.3, dup=0.1, delay=20, jitter=400)
    runs = {}
    gave_up = []
    c.on_unacknowledged = lambda rec: gave_up.append(rec.message.payload)

    def on_rx(ep, rx):
        if ep is s:
            m = rx.message
            assert m.code == POST, m
            runs[m.payload] = runs.get(m.payload, 0) + 1
            rx.ack(Message(ACK, CHANGED, payload=b"ok " + m.payload))
        else:
            assert rx.pertains_to is not None, rx.message  # nothing unsolicited

    recs = []
    for i in range(N):
        m = Message(CON, POST, token=c.new_token(), payload=b"reading %d" % i)
        recs.append(c.send(m, SERVER))
    limit = 3600000  # one fake hour
    while net.now < limit and not all(r.done for r in recs):
        net.run(10000, on_rx)
    assert gave_up == [], gave_up
    unanswered = [r.message.payload for r in recs if r.response is None]
    assert unanswered == [], unanswered
    wrong = [r.message.payload for r in recs
             if r.response.message.payload != b"ok " + r.message.payload]
    assert wrong == [], wrong
    assert [r.response_type for r in recs] == [ACK] * N, [r.response_type for r in recs]
    # The handler ran exactly once per request, for every request.
    assert len(runs) == N, len(runs)
    more = [(k, v) for k, v in runs.items() if v != 1]
    assert more == [], more
    # The scenario did exercise loss, duplication and retransmission.
    tx = len(net.sent(CLIENT, SERVER))
    assert tx > N + 20, tx
    assert s.duplicates > 0, s.duplicates
    assert c.in_flight == 0 and s.dedup_count <= 32, (c.in_flight, s.dedup_count)


def test_non_over_a_lossy_link_is_at_most_once():
    # NON is never repeated: some are lost, none is delivered twice although
    # the link duplicates. All 50 leave at once, so the dedup cache must hold
    # them all (with the default 16, late copies of evicted ones get through).
    net, c, s = pair(seed=7, client={"max_in_flight": N}, server={"dedup_size": N})
    net.link(CLIENT, SERVER, loss=0.3, dup=0.3, delay=5, jitter=50)
    runs = {}

    def on_rx(ep, rx):
        runs[rx.message.payload] = runs.get(rx.message.payload, 0) + 1

    for i in range(N):
        c.send(Message(NON, POST, token=b"%d" % i, payload=b"r%d" % i), SERVER)
    net.run(10000, on_rx)
    assert len(net.sent(CLIENT, SERVER)) == N, len(net.sent(CLIENT, SERVER))
    more = [(k, v) for k, v in runs.items() if v != 1]
    assert more == [], more
    assert 0 < len(runs) < N, len(runs)


def test_fakenet_is_deterministic():
    # The same seed gives the same draws and the same traffic on every runtime.
    from fakenet import Lcg, Net, fixed
    r = Lcg(12345)
    draws = [r.draw() for _ in range(4)]
    assert draws == [21468, 9988, 22117, 3498], draws

    def scenario():
        net, c, s = pair(seed=99, client={"rand": fixed(0)})
        net.link(CLIENT, SERVER, loss=0.5, dup=0.2, delay=3, jitter=30)
        for i in range(5):
            c.send(Message(NON, POST, token=b"%d" % i), SERVER)
        net.run(1000, lambda ep, rx: None)
        return [(e[0], e[3]) for e in net.log], net.links[(CLIENT, SERVER)].dropped

    a = scenario()
    assert a == scenario(), a
    assert a[1] == 3, a  # the fixed outcome of seed 99: 3 of 5 lost
    # Explicit drops: a list of datagram numbers, or a callable(n, data).
    net, c, s = pair()
    net.link(CLIENT, SERVER, drop=lambda n, data: n % 2 == 0)
    for i in range(4):
        c.send(Message(NON, POST, token=b"%d" % i, payload=b"%d" % i), SERVER)
    got = []
    net.run(100, lambda ep, rx: got.append(rx.message.payload))
    assert got == [b"0", b"2"], got
    # A poll that could only wait forever is a test bug: it raises, not hangs.
    net = Net()
    c = net.endpoint(CLIENT)
    try:
        c.process(None)
    except AssertionError:
        pass
    else:
        raise AssertionError("process(None) on a silent network returned")
