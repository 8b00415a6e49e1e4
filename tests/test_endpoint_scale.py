"""An EndPoint with a thousand transmissions open (a gateway observing a
thousand resources): what one process() call, one response and one request
sent cost does not grow with them, and registering them all costs in
proportion to their number.

Counted, not timed: the lines of coapy_micro that run (sys.settrace), on
CPython. Before the tables had indexes, every process() call walked every
record, every response and every queued CON scanned them all, and
registering 1,000 observations took 70 s of CPU.
"""
from fakenet import CLIENT, Net
from linecount import counted
from coapy_micro.connection import Message

CON, NON, ACK = Message.CON, Message.NON, Message.ACK
GET, CONTENT = 1, 69


class Gateway:
    """A client EndPoint observing `n` resources, one on each of n nodes
    (raw sockets that answer as the test writes)."""

    def __init__(self, n):
        self.net = Net()
        self.ep = self.net.endpoint(CLIENT, max_in_flight=n + 16)
        self.nodes = [("10.1.%d.%d" % (i >> 8, i & 255), 5683) for i in range(n)]
        self.socks = [self.net.socket(a) for a in self.nodes]
        self.recs = []
        self.lines = 0  # what registering took

    def register(self):
        ep = self.ep
        for node in self.nodes:
            msg = Message(CON, GET, token=ep.new_token(), uri_path="temp", observe=0)
            rec, k = counted(ep.send, msg, node)
            rec.several_responses = True
            self.recs.append(rec)
            self.lines += k
        _, k = counted(ep.process, 0)  # every CON goes out (one per node: NSTART)
        self.lines += k
        for rec, sock in zip(self.recs, self.socks):
            # Each node answers with the piggybacked first notification.
            answer = Message(ACK, CONTENT, b"21.5", rec.message.token, observe=1)
            sock.sendto(answer.encode(rec.transaction_id), CLIENT)
            rx, k = counted(self.ep.process, 0)
            assert rx is not None and rx.pertains_to is rec, rx
            self.lines += k
        assert all(not r.done and r.response is not None for r in self.recs)
        return self

    def notification(self, i, seq, tid):
        """Lines run to take a NON notification from node i."""
        m = Message(NON, CONTENT, b"22", self.recs[i].message.token, observe=seq)
        self.socks[i].sendto(m.encode(tid), CLIENT)
        rx, k = counted(self.ep.process, 0)
        assert rx is not None and rx.pertains_to is self.recs[i], rx
        return k


def test_registering_costs_in_proportion_to_the_observations():
    small = Gateway(100).register().lines
    large = Gateway(1000).register().lines
    # Ten times the observations: ten times the work, not a hundred.
    assert large < 12 * small, (small, large)


def test_an_idle_process_call_does_not_walk_open_observations():
    few = Gateway(100).register()
    many = Gateway(1000).register()
    idle = [counted(g.ep.process, 0)[1] for g in (few, many)]
    assert idle[0] == idle[1] and idle[1] < 100, idle


def test_a_notification_costs_the_same_among_a_thousand():
    few = Gateway(100).register()
    many = Gateway(1000).register()
    got = (few.notification(50, 2, 0x3000), many.notification(500, 2, 0x3000))
    assert got[0] == got[1], got


def test_a_request_sent_costs_the_same_among_a_thousand():
    # send(), its first transmission (NSTART: is a CON to that node already
    # awaiting its ACK?) and a new token.
    costs = []
    for g in (Gateway(100).register(), Gateway(1000).register()):
        token, k1 = counted(g.ep.new_token)
        rec, k2 = counted(g.ep.send, Message(CON, GET, token=token, uri_path="x"), g.nodes[3])
        _, k3 = counted(g.ep.process, 0)
        assert rec.created_time is not None, rec.created_time
        costs.append((k1, k2, k3))
    assert costs[0] == costs[1], costs
