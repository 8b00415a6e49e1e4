# What an EndPoint does with what it receives (RFC 7252 §4.2-§4.5, §5.3.2):
# duplicates, pings, unsolicited responses, stray ACK/RST, malformed input,
# the bounded dedup cache. Portable: CPython (pytest) and the MicroPython VM.
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
import support
from fakenet import CLIENT, ROGUE, SERVER, Net, fixed, mtype, pair, tid
from coapy_micro.connection import Message

CON, NON, ACK, RST = Message.CON, Message.NON, Message.ACK, Message.RST
GET, POST, CHANGED, CONTENT = 1, 2, 68, 69


def rst(t):
    return bytes([0x70, 0, t >> 8, t & 255])


def server_with_rogue(**kw):
    # A server EndPoint and a raw socket to write arbitrary datagrams at it.
    net = Net()
    s = net.endpoint(SERVER, **kw)
    return net, s, net.socket(ROGUE)


def drain(ep):
    # Everything process(0) hands to the application right now.
    out = []
    while True:
        rx = ep.process(0)
        if rx is None:
            return out
        out.append(rx)


# -- duplicates (RFC 7252 §4.5) ----------------------------------------------

def test_duplicate_con_replays_the_reply_and_is_not_redelivered():
    net, c, s = pair(client={"rand": fixed(0)})
    net.link(SERVER, CLIENT, drop=[1])  # the piggybacked ACK is lost once
    runs = []

    def on_rx(ep, rx):
        if ep is s:
            runs.append(rx.transaction_id)  # a non-idempotent handler
            rx.ack(Message(ACK, CHANGED, payload=b"done %d" % len(runs)))

    rec = c.send(Message(CON, POST, token=b"dup", payload=b"+1"), SERVER)
    net.run(100000, on_rx)
    assert runs == [rec.transaction_id], runs  # the handler ran once
    sent = net.sent(SERVER, CLIENT)
    assert [t for t, _ in sent] == [0, 2000], sent  # the reply, then its replay
    assert sent[0][1] == sent[1][1], sent  # the very same bytes
    assert s.duplicates == 1, s.duplicates
    assert rec.done and rec.response.message.payload == b"done 1", (rec.done, rec.response)


def test_duplicate_con_before_the_answer_is_absorbed():
    net, s, rogue = server_with_rogue()
    req = Message(CON, GET, token=b"slow").encode(0x0101)
    rogue.sendto(req, SERVER)
    (rx,) = drain(s)
    rogue.sendto(req, SERVER)  # the peer retransmits while the app is busy
    assert drain(s) == [] and net.sent(SERVER) == [], net.log
    rx.ack(Message(ACK, CONTENT, payload=b"ok"))
    rogue.sendto(req, SERVER)  # now the duplicate gets the same reply again
    assert drain(s) == [], s
    sent = net.sent(SERVER, ROGUE)
    assert len(sent) == 2 and sent[0][1] == sent[1][1], sent
    assert s.duplicates == 2, s.duplicates


def test_duplicate_non_is_dropped():
    net, c, s = pair()
    net.link(CLIENT, SERVER, dup=1.0)  # every datagram arrives twice
    c.send(Message(NON, POST, token=b"n", payload=b"reading"), SERVER)
    c.process(0)
    got = drain(s)
    assert len(got) == 1, got
    assert s.duplicates == 1 and net.sent(SERVER) == [], (s.duplicates, net.log)


def test_dedup_entry_expires_after_exchange_lifetime():
    # 247 s for the defaults: MAX_TRANSMIT_SPAN 45 s + 2 x MAX_LATENCY + PROCESSING_DELAY.
    net, s, rogue = server_with_rogue()
    assert s.exchange_lifetime_ms == 247000 and s.non_lifetime_ms == 145000, (
        s.exchange_lifetime_ms, s.non_lifetime_ms)
    req = Message(CON, GET, token=b"x").encode(7)
    rogue.sendto(req, SERVER)
    drain(s)[0].ack()
    s.process(246999)
    rogue.sendto(req, SERVER)
    assert drain(s) == [] and s.duplicates == 1, s.duplicates  # still a duplicate
    s.process(1)
    rogue.sendto(req, SERVER)
    assert len(drain(s)) == 1, net.now  # 247000 ms later: a new message


def test_non_dedup_entry_expires_after_non_lifetime():
    net, s, rogue = server_with_rogue()
    req = Message(NON, GET, token=b"x").encode(8)
    rogue.sendto(req, SERVER)
    assert len(drain(s)) == 1
    s.process(144999)
    rogue.sendto(req, SERVER)
    assert drain(s) == [], net.now
    s.process(1)
    rogue.sendto(req, SERVER)
    assert len(drain(s)) == 1, net.now


def test_dedup_is_per_remote():
    # The same message id from two peers is two messages.
    net, s, rogue = server_with_rogue()
    other = net.socket(("10.0.0.67", 40000))
    req = Message(CON, GET, token=b"x").encode(9)
    rogue.sendto(req, SERVER)
    other.sendto(req, SERVER)
    got = drain(s)
    assert [rx.remote for rx in got] == [ROGUE, ("10.0.0.67", 40000)], got


def test_full_dedup_cache_evicts_the_oldest():
    net, s, rogue = server_with_rogue(dedup_size=4)
    runs = []

    def deliver(t):
        rogue.sendto(Message(CON, POST, token=b"k").encode(t), SERVER)
        for rx in drain(s):
            runs.append(rx.transaction_id)
            rx.ack(Message(ACK, CHANGED))
        assert s.dedup_count <= 4, s.dedup_count

    for t in (1, 2, 3, 4, 5):  # the 5th takes the slot of the 1st
        deliver(t)
    assert runs == [1, 2, 3, 4, 5], runs
    for t in (2, 3, 4, 5):  # still remembered: replayed, not delivered
        deliver(t)
    assert runs == [1, 2, 3, 4, 5] and s.duplicates == 4, (runs, s.duplicates)
    # Evicted: a late duplicate of message 1 is taken for a new message and the
    # handler runs again (the price of a bounded cache; size it for the
    # traffic of one EXCHANGE_LIFETIME). It evicts message 2 in turn.
    deliver(1)
    assert runs == [1, 2, 3, 4, 5, 1], runs
    deliver(2)
    assert runs == [1, 2, 3, 4, 5, 1, 2], runs
    deliver(5)
    assert runs == [1, 2, 3, 4, 5, 1, 2] and s.duplicates == 5, (runs, s.duplicates)
    assert len(net.sent(SERVER, ROGUE)) == 12, net.sent(SERVER, ROGUE)  # 7 ACKs + 5 replays


# Regression: the cache was one ring shared by every peer, so sixteen
# datagrams from another port, between a CON POST and its retransmission,
# pushed the POST out and its handler ran twice (RFC 7252 §4.5: process it
# once).

def test_a_flood_from_another_port_does_not_flush_a_pending_exchange():
    for size in (16, 64):  # a board's table (scanned) and a gateway's (indexed)
        net, s, rogue = server_with_rogue(dedup_size=size)
        flood = net.socket(("10.0.0.66", 40001))  # the same host, another port
        runs = []
        post = Message(CON, POST, token=b"p", payload=b"+1").encode(0x0101)
        rogue.sendto(post, SERVER)
        for rx in drain(s):
            runs.append(rx.transaction_id)
            rx.ack(Message(ACK, CHANGED, payload=b"done"))
        for i in range(size + 16):  # the cache's size, and more
            flood.sendto(Message(CON, POST, token=b"f").encode(0x2000 + i), SERVER)
            for rx in drain(s):
                rx.ack(Message(ACK, CHANGED))
        assert s.dedup_count == size, (size, s.dedup_count)
        rogue.sendto(post, SERVER)  # the client retransmits: its ACK was lost
        assert drain(s) == [] and runs == [0x0101], (size, runs)
        sent = net.sent(SERVER, ROGUE)
        assert len(sent) == 2 and sent[0][1] == sent[1][1], (size, sent)  # replayed


def test_dedup_entries_are_shared_out_among_peers():
    # A newcomer takes the oldest entry; a peer holding at least as many as
    # the owner of the oldest gives up its own oldest instead.
    net, s, a = server_with_rogue(dedup_size=8)
    b = net.socket(("10.0.0.67", 40000))
    c = net.socket(("10.0.0.68", 40000))

    def send(sock, t):
        sock.sendto(Message(NON, GET, token=b"x").encode(t), SERVER)
        return len(drain(s))

    for t in range(3):
        assert send(a, t) == 1  # a holds 3
    for t in range(100, 120):
        assert send(b, t) == 1  # b floods: fills the rest, then rotates its own
    for t in range(3):
        assert send(a, t) == 0, t  # a's three are all still known
    assert send(b, 119) == 0 and send(b, 100) == 1  # b kept only its newest
    assert send(c, 7) == 1  # a newcomer takes the oldest entry (one of a's)
    assert send(a, 0) == 1 and s.dedup_count == 8, s.dedup_count


def test_dedup_sharing_matches_the_rule_over_a_long_mixed_run():
    # Four peers, one of them far busier, sending new and repeated message
    # IDs in a pseudo-random order: what the EndPoint calls a duplicate is
    # exactly what the sharing rule (above) keeps, checked against a plain
    # list that applies it the slow way. One message in eight is then
    # forgotten (ReceptionRecord.forget(): the newest entry leaves, as for a
    # request that could not be processed). (A table over 32 entries is
    # indexed on CPython, a smaller one scanned: both sizes are run.)
    for size in (12, 40):
        _mixed_run(size)


def _mixed_run(size):
    net = Net(log=False)  # (a log of every datagram would not fit a board-sized heap)
    s = net.endpoint(SERVER, dedup_size=size)
    a = net.socket(ROGUE)
    socks = [a] + [net.socket(("10.0.0.%d" % (70 + i), 40000)) for i in range(3)]
    kept = []  # (peer, message ID), oldest first
    x = 12345
    for step in range(1200):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        peer = 0 if x % 3 else (x >> 8) % 4  # peer 0 sends two in three
        mid = (x >> 12) % (2 * size)
        entry = (peer, mid)
        socks[peer].sendto(Message(NON, GET, token=b"x").encode(mid), SERVER)
        rxs = drain(s)
        got = len(rxs)
        if entry in kept:
            assert got == 0, (size, step, entry)
            continue
        assert got == 1, (size, step, entry)
        if len(kept) == size:
            owner = kept[0][0]
            mine = [e for e in kept if e[0] == peer]
            theirs = [e for e in kept if e[0] == owner]
            if owner != peer and mine and len(mine) >= len(theirs):
                kept.remove(mine[0])  # it gives up its own oldest
            else:
                kept.pop(0)
        kept.append(entry)
        if (x >> 20) % 8 == 0:
            rxs[0].forget()
            kept.remove(entry)
    assert s.dedup_count == len(kept), (s.dedup_count, len(kept))


def test_a_cache_of_one_or_two_entries_still_detects_the_latest():
    for size in (1, 2):
        net, s, rogue = server_with_rogue(dedup_size=size)
        for t in range(5):
            m = Message(CON, POST, token=b"k").encode(0x700 + t)
            rogue.sendto(m, SERVER)
            got = drain(s)
            assert len(got) == 1, (size, t, got)
            got[0].ack(Message(ACK, CHANGED))
            rogue.sendto(m, SERVER)  # its retransmission: replayed, not delivered
            assert drain(s) == [] and s.dedup_count == min(t + 1, size), (size, t)
        assert s.duplicates == 5 and len(net.sent(SERVER, ROGUE)) == 10, (size, s.duplicates)


def test_process_0_after_an_empty_read_returns_without_polling_again():
    # Under load on CPython the EndPoint reads its socket straight away,
    # without a poll; when that read finds it empty, process(0) returns at
    # once, where it used to poll for 0 ms (a system call at the end of every
    # drain). A board always polls first (an empty read costs it an
    # allocation), so there the second call polls once, and only once.
    net, s, rogue = server_with_rogue()
    poller = net.pairs[-1][1]
    polls = []
    real_poll = poller.poll

    def counting(timeout=-1):
        polls.append(timeout)
        return real_poll(timeout)

    poller.poll = counting
    rogue.sendto(bytes([0x50, GET, 0, 7]), SERVER)  # a NON GET
    rx = s.process(0)
    assert rx is not None and rx.transaction_id == 7, rx
    before = len(polls)
    assert s.process(0) is None
    polls_after = len(polls) - before
    assert polls_after == (1 if support.IS_MICROPYTHON else 0), (polls_after, polls)
    # And a datagram that comes later is still read by the next call.
    rogue.sendto(bytes([0x50, GET, 0, 8]), SERVER)
    rx = s.process(0)
    assert rx is not None and rx.transaction_id == 8, rx
    assert s.process(0) is None


def test_dedup_size_zero_remembers_nothing():
    net, s, rogue = server_with_rogue(dedup_size=0)
    req = Message(NON, POST, token=b"k").encode(3)
    rogue.sendto(req, SERVER)
    rogue.sendto(req, SERVER)
    assert len(drain(s)) == 2 and s.dedup_count == 0, s.dedup_count


# -- answered by the message layer (RFC 7252 §4.2, §4.3, §5.3.2) -------------

def test_ping_from_a_raw_peer_gets_rst():
    net, s, rogue = server_with_rogue()
    rogue.sendto(b"\x40\x00\xbe\xef", SERVER)
    assert drain(s) == [], s
    assert net.sent(SERVER, ROGUE) == [(0, rst(0xBEEF))], net.log


def test_empty_non_is_dropped():
    net, s, rogue = server_with_rogue()
    rogue.sendto(b"\x50\x00\xbe\xef", SERVER)
    assert drain(s) == [] and net.sent(SERVER) == [], net.log


def test_unsolicited_con_response_gets_rst():
    net, s, rogue = server_with_rogue()
    resp = Message(CON, CONTENT, token=b"zz", payload=b"?").encode(0x1234)
    rogue.sendto(resp, SERVER)
    assert drain(s) == [], s
    assert net.sent(SERVER, ROGUE) == [(0, rst(0x1234))], net.log
    rogue.sendto(resp, SERVER)  # its retransmission gets the same RST
    assert drain(s) == [], s
    assert net.sent(SERVER, ROGUE) == [(0, rst(0x1234))] * 2, net.log


def test_unsolicited_non_response_is_dropped():
    net, s, rogue = server_with_rogue()
    rogue.sendto(Message(NON, CONTENT, token=b"zz").encode(0x1235), SERVER)
    assert drain(s) == [] and net.sent(SERVER) == [], net.log
    assert s.dropped == 1, s.dropped


def test_response_from_another_remote_does_not_match():
    net, c, s = pair(client={"rand": fixed(0)})
    rogue = net.socket(ROGUE)
    rec = c.send(Message(CON, GET, token=b"mine"), SERVER)
    c.process(0)
    rogue.sendto(Message(NON, CONTENT, token=b"mine").encode(1), CLIENT)
    rogue.sendto(Message(CON, CONTENT, token=b"mine").encode(2), CLIENT)
    rogue.sendto(bytes([0x60, 0, rec.transaction_id >> 8, rec.transaction_id & 255]), CLIENT)
    assert drain(c) == [], c
    assert net.sent(CLIENT, ROGUE) == [(0, rst(2))], net.log
    assert rec.response is None and rec.response_type is None and not rec.done, (rec.response,
                                                                                  rec.done)
    c.process(2000)
    c.process(0)
    assert net.times(CLIENT, SERVER) == [0, 2000], net.times(CLIENT, SERVER)  # still retransmitting


def test_ack_and_rst_matching_nothing_are_ignored():
    net, s, rogue = server_with_rogue()
    for d in (b"\x60\x00\x00\x01", b"\x70\x00\x00\x02",
              Message(ACK, CONTENT, token=b"t", payload=b"p").encode(3)):
        rogue.sendto(d, SERVER)
    assert drain(s) == [] and net.sent(SERVER) == [], net.log
    assert s.dropped == 3, s.dropped


def test_second_ack_is_ignored():
    net, c, s = pair()
    net.link(SERVER, CLIENT, dup=1.0)
    rec = c.send(Message(CON, GET, token=b"2a"), SERVER)
    c.process(0)
    drain(s)[0].ack(Message(ACK, CONTENT))
    got = drain(c)
    assert len(got) == 1 and got[0].pertains_to is rec, got


# -- malformed datagrams (RFC 7252 §4.2, §4.3, §3) -----------------------------

def test_malformed_con_gets_rst_with_its_message_id():
    cases = (
        b"\x49\x01\xab\xcd" + b"123456789",  # token length 9 (reserved)
        b"\x44\x01\xab\xce\x01\x02",  # token longer than the datagram
        b"\x40\x01\xab\xcf\xf0",  # option delta nibble 15
        b"\x40\x01\xab\xd0\xff",  # payload marker with no payload
        b"\x40\x01\xab\xd1\x0d",  # option length byte missing
        b"\x40\x00\xab\xd2\x01",  # an Empty message with a byte after the header
    )
    net, s, rogue = server_with_rogue()
    for d in cases:
        rogue.sendto(d, SERVER)
        assert drain(s) == [], d
        assert net.sent(SERVER, ROGUE)[-1] == (0, rst(tid(d))), (d, net.sent(SERVER, ROGUE))
    assert len(net.sent(SERVER, ROGUE)) == len(cases), net.log
    assert s.dropped == len(cases), s.dropped


def test_malformed_non_ack_rst_and_short_datagrams_are_dropped():
    net, s, rogue = server_with_rogue()
    for d in (b"\x59\x01\x00\x01" + b"123456789", b"\x50\x01\x00\x02\xf0",  # NON
              b"\x60\x45\x00\x03\xff", b"\x70\x00\x00\x04\x01",  # ACK, RST
              b"", b"\x40", b"\x40\x01\x00"):  # shorter than a header
        rogue.sendto(d, SERVER)
        assert drain(s) == [], d
    assert net.sent(SERVER) == [], net.log


def test_other_versions_are_dropped():
    net, s, rogue = server_with_rogue()
    for d in (b"\x80\x01\x00\x05", b"\x00\x01\x00\x06", b"\xc0\x00\x00\x07",
              b"\x89\x01\x00\x08"):  # versions 2, 0, 3; a malformed version 2
        rogue.sendto(d, SERVER)
        assert drain(s) == [], d
    assert net.sent(SERVER) == [], net.log


def test_oversized_datagram_is_dropped():
    net, s, rogue = server_with_rogue(max_message_size=64)
    big = Message(CON, POST, token=b"b", payload=b"x" * 80).encode(9)
    rogue.sendto(big, SERVER)
    assert drain(s) == [] and net.sent(SERVER) == [], net.log
    fits = Message(CON, POST, token=b"b", payload=b"x" * 58).encode(10)
    assert len(fits) == 64, len(fits)
    rogue.sendto(fits, SERVER)
    assert len(drain(s)) == 1, fits


def test_reception_record_ack_only_on_con():
    net, s, rogue = server_with_rogue()
    rogue.sendto(Message(NON, GET, token=b"n").encode(1), SERVER)
    (rx,) = drain(s)
    support.raises(ValueError, rx.ack)
    support.raises(ValueError, rx.ack, Message(ACK, CONTENT))
    assert net.sent(SERVER) == [], net.log


def test_reset_answers_a_con_and_is_replayed():
    net, s, rogue = server_with_rogue()
    req = Message(CON, GET, token=b"r").encode(0x4242)
    rogue.sendto(req, SERVER)
    drain(s)[0].reset()
    rogue.sendto(req, SERVER)
    assert drain(s) == [], s
    assert net.sent(SERVER, ROGUE) == [(0, rst(0x4242))] * 2, net.log


# -- a registered (multicast) socket (RFC 7252 §8) ------------------------------

GROUP = ("224.0.1.187", 5683)


def test_registered_socket_request_is_answered_from_the_primary_socket():
    net, c, s = pair()
    ms = net.socket(GROUP)  # joined the All-CoAP-Nodes group
    s.register(ms)
    rec = c.send(Message(NON, GET, token=b"mc", uri_path=".well-known/core"), GROUP)
    c.process(0)
    assert net.sent(CLIENT, GROUP) and rec.response_type == NON, net.log
    rx = s.process(0)
    assert rx is not None and rx.remote == CLIENT, rx
    s.send(Message(NON, CONTENT, token=rx.message.token, payload=b"</x>"), rx.remote)
    s.process(0)
    assert [d[1] for d in net.log] == [CLIENT, SERVER], net.log  # not from the group
    got = c.process(0)
    assert got is not None and got.pertains_to is rec and rec.response is got, got


# Regression: a multicast request was once finished by its first response, so
# the other group members' answers were dropped (RFC 7252 §8.2).

def test_multicast_request_collects_every_response():
    net = Net()
    c = net.endpoint(CLIENT)
    servers = [net.endpoint(("10.0.0.%d" % (10 + i), 5683)) for i in range(2)]
    for s in servers:
        ms = net.socket(GROUP)
        s.register(ms)
    rec = c.send(Message(NON, GET, token=b"all"), GROUP)
    c.process(0)
    for s in servers:
        rx = s.process(0)
        assert rx is not None, rx
        s.send(Message(NON, CONTENT, token=rx.message.token, payload=b"hi"), rx.remote)
        s.process(0)
    got = drain(c)
    remotes = [rx.remote for rx in got]
    assert remotes == [("10.0.0.10", 5683), ("10.0.0.11", 5683)], remotes
    assert [rx.pertains_to is rec for rx in got] == [True, True], remotes
    assert [rx.remote for rx in rec.responses] == remotes, rec.responses


def test_reserved_code_classes_are_rejected():
    # Classes 1, 6 and 7 are reserved (RFC 7252 §12.1; 7.xx is signaling,
    # TCP only): neither a request nor a response.
    net, s, rogue = server_with_rogue()
    for i, code in enumerate((32, 63, 192, 224, 255)):
        rogue.sendto(bytes([0x40, code, 0, i]), SERVER)  # CON: RST
        rogue.sendto(bytes([0x50, code, 1, i]), SERVER)  # NON: dropped
        assert drain(s) == [], code
        assert net.sent(SERVER, ROGUE)[-1] == (0, rst(i)), (code, net.sent(SERVER, ROGUE))
    assert len(net.sent(SERVER, ROGUE)) == 5, net.log


def test_rst_answers_a_non_request():
    net, c, s = pair()
    rec = c.send(Message(NON, GET, token=b"nr"), SERVER)
    c.process(0)
    s.process(0).reset()
    got = c.process(0)
    assert got is not None and got.pertains_to is rec, got
    assert rec.response_type == RST and rec.done, (rec.response_type, rec.done)


def test_separate_response_overtaking_a_lost_empty_ack_acknowledges():
    # RFC 7252 §5.2.2: the separate response may arrive before the empty ACK
    # (here: lost); it ends the retransmission of the request.
    net, c, s = pair(client={"rand": fixed(0)})
    net.link(SERVER, CLIENT, drop=[1])  # the empty ACK
    rec = c.send(Message(CON, GET, token=b"ov"), SERVER)
    c.process(0)
    rx = s.process(0)
    rx.ack()
    s.send(Message(CON, CONTENT, token=b"ov", payload=b"v"), CLIENT)
    s.process(0)
    got = c.process(0)
    assert got is not None and got.pertains_to is rec and rec.response is got, got
    assert rec.done and rec.response_type == ACK, (rec.done, rec.response_type)
    got.ack()
    assert c.process(100000) is None
    assert net.times(CLIENT, SERVER) == [0, 0], net.times(CLIENT, SERVER)  # request, ACK


def test_observe_notifications_pertain_to_the_registration():
    # A request its sender marks as answered several times (an Observe
    # registration, RFC 7641) stays matched after its first response;
    # `responses` keeps the latest few; after cancel(), a CON notification
    # is rejected with RST (RFC 7641 §3.6).
    net, c, s = pair()
    rec = c.send(Message(CON, GET, token=b"obs", observe=0, uri_path="t"), SERVER)
    rec.several_responses = True
    c.process(0)
    rx = s.process(0)
    rx.ack(Message(ACK, CONTENT, observe=1, payload=b"n1"))
    first = c.process(0)
    assert first.pertains_to is rec and not rec.done, (first, rec.done)
    for i in range(2, 7):
        s.send(Message(CON, CONTENT, token=b"obs", observe=i, payload=b"n%d" % i), CLIENT)
        s.process(0)
        n = c.process(0)
        assert n is not None and n.pertains_to is rec, (i, n)
        n.ack()
        s.process(0)  # the server sees the ACK
    assert rec.response is first, rec.response
    got = [r.message.payload for r in rec.responses]
    assert got == [b"n3", b"n4", b"n5", b"n6"], got  # bounded: the last 4
    rec.cancel()
    assert rec.done, rec.done
    s.send(Message(CON, CONTENT, token=b"obs", observe=7), CLIENT)
    s.process(0)
    assert c.process(0) is None
    last = net.sent(CLIENT, SERVER)[-1][1]
    assert mtype(last) == RST, last


def test_the_endpoint_knows_nothing_of_observe():
    # Observe options do not keep a record open: only the sender's mark does.
    net, c, s = pair()
    rec = c.send(Message(CON, GET, token=b"obs", observe=0, uri_path="t"), SERVER)
    c.process(0)
    s.process(0).ack(Message(ACK, CONTENT, observe=1, payload=b"n1"))
    first = c.process(0)
    assert first.pertains_to is rec and rec.done and c.in_flight == 0, (first, rec.done)
