# What the core offers an event loop (coapy_micro.aio uses these):
# EndPoint.sockets, EndPoint.next_event_ms(now), EndPoint.on_queued and
# Client.next_event_ms(now). A loop sleeps for next_event_ms between
# datagrams, so each must name the next timer exactly: too late and a
# retransmission or a deadline is missed, 0 when nothing is due and the
# loop spins. Portable: CPython (pytest) and the VM, on the fake network.
# Rules: module-level `def test_*()` only, asserts show their values.
from fakenet import CLIENT, SERVER, fixed, pair
from coapy_micro.client import Client
from coapy_micro.connection import Message

CON, NON, ACK = Message.CON, Message.NON, Message.ACK
GET, CONTENT = 1, 69
SERVER2 = ("10.0.0.3", 5683)


def test_sockets_lists_the_primary_one_first_then_registered_ones():
    net, c, s = pair()
    assert c.sockets == [c.socket], c.sockets
    extra = net.socket(("224.0.1.187", 5683))
    c.register(extra)
    assert c.sockets == [c.socket, extra], c.sockets


def test_next_event_ms_names_each_timer():
    # ack_random_factor 1.0 and a fixed rand: the first timeout is exactly
    # ack_timeout_ms, then doubles.
    net, c, s = pair(client={"ack_timeout_ms": 1000, "ack_random_factor": 1.0,
                             "rand": fixed(0)})
    net.socket(SERVER2)  # silent
    now = net.clock()
    assert c.next_event_ms(now) == -1  # nothing to do: sleep until a datagram
    rec = c.send(Message(CON, GET, token=b"a"), SERVER2)
    assert c.next_event_ms(now) == 0  # queued: transmit now
    c.process(0)
    assert rec.created_time is not None
    assert c.next_event_ms(net.clock()) == 1000, c.next_event_ms(net.clock())
    assert c.next_event_ms(net.clock() + 400) == 600
    assert c.next_event_ms(net.clock() + 1500) == 0  # overdue counts as now
    c.process(1000)  # waits until the retransmission is due...
    assert net.now == 1000, net.now
    assert c.next_event_ms(net.clock()) == 0
    c.process(0)  # ...and sends it: the next timeout is twice as long
    assert len(net.sent(CLIENT, SERVER2)) == 2, net.log
    assert c.next_event_ms(net.clock()) == 2000, c.next_event_ms(net.clock())


def test_next_event_ms_gives_a_con_held_by_nstart_no_time_of_its_own():
    net, c, s = pair(client={"ack_timeout_ms": 1000, "ack_random_factor": 1.0,
                             "rand": fixed(0)})
    net.socket(SERVER2)  # silent: the first CON keeps its slot
    first = c.send(Message(CON, GET, token=b"a"), SERVER2)
    held = c.send(Message(CON, GET, token=b"b"), SERVER2)
    c.process(0)
    assert first.created_time is not None and held.created_time is None
    # The held one waits for the first one's ACK or timer: 1000, not 0.
    assert c.next_event_ms(net.clock()) == 1000, c.next_event_ms(net.clock())
    # A NON is not held by NSTART: due now.
    c.send(Message(NON, GET, token=b"c"), SERVER2)
    assert c.next_event_ms(net.clock()) == 0


def test_next_event_ms_of_a_non_request_is_its_lifetime():
    net, c, s = pair()
    net.socket(SERVER2)
    c.send(Message(NON, GET, token=b"n"), SERVER2)
    c.process(0)
    assert c.next_event_ms(net.clock()) == c.non_lifetime_ms, c.next_event_ms(net.clock())


def test_on_queued_is_called_for_every_message_send_queues():
    net, c, s = pair()
    seen = []
    c.on_queued = seen.append
    r1 = c.send(Message(CON, GET, token=b"a"), SERVER)
    r2 = c.send(Message(NON, GET, token=b"b"), SERVER)
    assert seen == [r1, r2], seen
    c.on_queued = None
    c.send(Message(NON, GET, token=b"c"), SERVER)
    assert len(seen) == 2


def test_client_next_event_ms_covers_deadlines_observations_and_the_end_point():
    net, c, s = pair(client={"ack_timeout_ms": 1000, "ack_random_factor": 1.0,
                             "rand": fixed(0)})
    net.socket(SERVER2)  # silent
    client = Client(c, timeout_ms=300)
    now = net.clock()
    assert client.next_event_ms(now) == -1
    h = client.start("get", "coap://10.0.0.3/x")
    assert client.next_event_ms(now) == 0  # queued in the EndPoint
    c.process(0)
    # The deadline (300 ms) comes before the retransmission (1000 ms).
    assert client.next_event_ms(net.clock()) == 300, client.next_event_ms(net.clock())
    assert client.next_event_ms(net.clock() + 500) == 0  # overdue
    client.process(400)
    assert h.done and isinstance(h.error, Exception), h
    assert client.next_event_ms(net.clock()) == -1
    # An observation answered with Max-Age 60: renewed 60 s + margin_ms later.
    def on_rx(ep, rx):
        if ep is s and rx.message.code == GET:
            rx.ack(Message(ACK, CONTENT, payload=b"1", observe=1, max_age=60))
        elif ep is c:
            client.handle(rx)

    obs = client.observe("coap://10.0.0.2/t", margin_ms=5000)
    net.run(100, on_rx)
    client.check()
    assert obs.notifications == 1 and not obs.done, (obs.notifications, obs.error)
    wait = client.next_event_ms(net.clock())
    assert 64000 < wait <= 65000, wait
