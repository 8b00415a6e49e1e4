# Block-wise transfer by the Client (RFC 7959) against our Server,
# both on fakenet: Block2 reassembly (ETag checked, max_body), Block1
# uploads (the server's smaller block size taken, errors passed through),
# 10 KB each way, also over a lossy link. Portable: CPython (pytest) and the
# MicroPython VM. Rules: module-level `def test_*()` only, asserts show
# their values, no pytest.
import support
from fakenet import CLIENT, SERVER, Net
from coapy_micro.client import BlockError, BodyChanged, Client
from coapy_micro.options import Option
from coapy_micro.server import Resource, Server

CONTENT, CHANGED, TOO_LARGE = 69, 68, 141
BLOCK1, BLOCK2, ETAG = 27, 23, 4
URI = "coap://10.0.0.2/f"


def body(n, salt=0):
    out = bytearray(n)
    for i in range(n):
        out[i] = (i * 7 + salt + i // 251) & 255
    return bytes(out)


class Rig:
    def __init__(self, client_kw=None, **kw):
        self.net = Net()
        self.srv = Server(self.net.endpoint(SERVER), **kw)
        self.cep = self.net.endpoint(CLIENT)
        self.c = Client(self.cep, **(client_kw or {}))
        self.sent = []  # what the client sent: (code, block1, block2, payload length)
        send = self.net.send

        def hooked(src, dst, data):
            send(src, dst, data)
            if src == CLIENT:
                from coapy_micro.connection import Message

                m = Message.decode(data)[1]
                if m.code:
                    self.sent.append((m.code, m.findOption(BLOCK1) and m.findOption(BLOCK1).value,
                                      m.findOption(BLOCK2) and m.findOption(BLOCK2).value,
                                      len(m.payload)))
        self.net.send = hooked

    def run(self, *args, **kw):
        h = self.c.start(*args, **kw)
        n = 0
        while not h.done:
            self.srv.process(0)
            self.c.process(10)
            n += 1
            assert n < 5000, n
        return h


def test_block2_download_of_10_kb_is_reassembled():
    data = body(10240)
    rig = Rig()
    rig.srv.add("f", Resource(get=lambda r: (CONTENT, data)))
    h = rig.run("get", URI)
    assert h.error is None and h.response.code == CONTENT, h
    assert h.response.payload == data, len(h.response.payload)
    assert [s[2] for s in rig.sent] == [None] + [(i, False, 6) for i in range(1, 10)], rig.sent


def test_block2_with_a_lossy_link():
    data = body(5000)
    rig = Rig()
    rig.net.links_both(CLIENT, SERVER, loss=0.2)
    rig.srv.add("f", Resource(get=lambda r: (CONTENT, data)))
    h = rig.run("get", URI, timeout_ms=None)
    assert h.error is None and h.response.payload == data, h


def test_block2_restarts_when_the_etag_changes():
    state = [body(3000), 0]

    def get(r):
        state[1] += 1
        if state[1] == 2:
            state[0] = body(3000, 1)  # changes after the first block went out
        return (CONTENT, state[0])

    rig = Rig()
    rig.srv.add("f", Resource(get=get))
    h = rig.run("get", URI)
    assert h.error is None and h.response.payload == body(3000, 1), h
    assert [s[2] for s in rig.sent] == [None, (1, False, 6), (0, False, 6), (1, False, 6),
                                        (2, False, 6)], rig.sent


def test_block2_body_changing_all_the_time_is_body_changed():
    n = [0]

    def get(r):
        n[0] += 1
        return (CONTENT, body(2000, n[0]))

    rig = Rig()
    rig.srv.add("f", Resource(get=get))
    h = rig.run("get", URI)
    assert isinstance(h.error, BodyChanged), h.error


def test_block2_beyond_max_body_is_block_error():
    rig = Rig(client_kw={"max_body": 2048})
    rig.srv.add("f", Resource(get=lambda r: (CONTENT, body(5000))))
    h = rig.run("get", URI)
    assert isinstance(h.error, BlockError) and not isinstance(h.error, BodyChanged), h.error


def test_block1_upload_of_10_kb_in_1024_byte_blocks():
    data = body(10240)
    got = []
    rig = Rig(max_body=16384)
    rig.srv.add("f", Resource(put=lambda r: got.append(r.payload) or (CHANGED, b"")))
    h = rig.run("put", URI, data)
    assert h.error is None and h.response.code == CHANGED, h
    assert got == [data], [len(g) for g in got]
    assert [s[1] for s in rig.sent] == [(i, i < 9, 6) for i in range(10)], rig.sent


def test_block1_shrinks_to_the_servers_block_size():
    data = body(3000)
    got = []
    rig = Rig(block_size=256)
    rig.srv.add("f", Resource(post=lambda r: got.append(r.payload) or (CHANGED, b"")))
    h = rig.run("post", URI, data)
    assert h.error is None and got == [data], (h, [len(g) for g in got])
    blocks = [s[1] for s in rig.sent]
    assert blocks[0] == (0, True, 6) and blocks[1] == (4, True, 4), blocks
    assert blocks[-1] == (11, False, 4) and len(blocks) == 9, blocks


def test_block1_per_request_block_size_and_413():
    rig = Rig(max_body=100)
    rig.srv.add("f", Resource(put=lambda r: (CHANGED, b"")))
    h = rig.run("put", URI, body(500), block_size=64)
    assert h.error is None and h.response.code == TOO_LARGE, h
    assert h.response.message.get_uint(60) == 100, h.response.options
    assert rig.sent[0][1] == (0, True, 2) and rig.sent[0][3] == 64, rig.sent


def test_block2_late_negotiation_to_the_clients_block_size():
    data = body(1500)
    rig = Rig(client_kw={"block_size": 256})
    rig.srv.add("f", Resource(get=lambda r: (CONTENT, data)))
    h = rig.run("get", URI)
    assert h.error is None and h.response.payload == data, h
    assert [s[2] for s in rig.sent] == [None, (4, False, 4), (5, False, 4)], rig.sent


def test_upload_answered_in_blocks_is_read_on_with_the_same_method():
    # RFC 7959 §2.7: after the last Block1 block, the rest of a Block2
    # response comes by the same method with Block2 and no payload. The
    # server keeps that response: the handler runs once.
    data = body(2000)
    rig = Rig()
    calls = []

    def echo(r):
        calls.append(len(r.payload))
        return (CHANGED, r.payload)

    rig.srv.add("f", Resource(post=echo))
    h = rig.run("post", URI, data)
    assert h.error is None and h.response.payload == data and h.response.code == CHANGED, h
    assert [(s[0], s[1], s[2], s[3]) for s in rig.sent] == [
        (2, (0, True, 6), None, 1024), (2, (1, False, 6), None, 976),
        (2, None, (1, False, 6), 0)], rig.sent
    assert calls == [2000], calls
    assert rig.srv.assemblies == 0, rig.srv.assemblies  # the last block went


def test_concurrent_uploads_to_one_resource_get_a_request_tag():
    a = body(3000, 1)
    b = body(2500, 2)
    got = []
    rig = Rig()
    rig.srv.add("f", Resource(put=lambda r: got.append(r.payload) or (CHANGED, b"")))
    h1 = rig.c.start("put", URI, a)
    h2 = rig.c.start("put", URI, b)
    n = 0
    while not (h1.done and h2.done):
        rig.srv.process(0)
        rig.c.process(10)
        n += 1
        assert n < 5000, n
    assert h1.error is None and h2.error is None, (h1, h2)
    assert h1.response.code == CHANGED and h2.response.code == CHANGED, (h1, h2)
    assert len(got) == 2 and a in got and b in got, [len(g) for g in got]
    assert h1.request.findOption(292) is None and h2.request.findOption(292) is not None, h2.request


# -- servers that break the block-wise rules: every transfer ends, in a
# bounded number of requests, with a BlockError that says what went wrong
# (RFC 7959). The server here is a script: answer(n, request) -> the
# response Message (n counts the requests, from 1), sent piggybacked.

ACK = 2
CONTINUE = 95


class Script:
    def __init__(self, answer, client_kw=None, keep=True):
        self.net = Net(log=keep)
        self.cep = self.net.endpoint(CLIENT)
        self.c = Client(self.cep, **(client_kw or {}))
        self.got = []  # the requests the server received (keep=False: None each)
        send = self.net.send

        def hooked(src, dst, data):
            send(src, dst, data)
            if dst != SERVER:
                return
            from coapy_micro.connection import Message

            t, m = Message.decode(data)
            if not m.code:
                return
            self.got.append(m if keep else None)
            r = answer(len(self.got), m)
            if r is not None:
                r.token = m.token
                self.net.inject(SERVER, CLIENT, r.encode(t), self.net.now + 1)
        self.net.send = hooked

    def run(self, *args, **kw):
        h = self.c.start(*args, **kw)
        n = 0
        while not h.done:
            self.c.process(100)
            n += 1
            assert n < 3000, (n, len(self.got))  # was: no end at all
        return h


def reply(code, payload=b"", block2=None, block1=None, etag=None):
    from coapy_micro.connection import Message

    m = Message(ACK, code, payload)
    if etag is not None:
        m.addOption(Option(ETAG, etag))
    if block2 is not None:
        m.addOption(Option(BLOCK2, (block2[0] << 4) | (8 if block2[1] else 0) | block2[2]))
    if block1 is not None:
        m.addOption(Option(BLOCK1, (block1[0] << 4) | (8 if block1[1] else 0) | block1[2]))
    return m


def asked(m, number):
    o = m.findOption(number)
    return None if o is None else o.value


def test_empty_block_0_with_more_set_is_a_block_error_not_a_loop():
    # Seen: Block2 0/1/1024 with no payload made the client ask for the same
    # block forever (700,000 requests in 60 s). RFC 7959 §2.2, §2.4: every
    # block but the last carries exactly its block size.
    s = Script(lambda n, m: reply(CONTENT, b"", (0, True, 6)))
    h = s.run("get", URI)
    assert isinstance(h.error, BlockError), h.error
    assert len(s.got) == 1, len(s.got)
    text = str(h.error)
    assert "0 bytes" in text and "M set" in text and "RFC 7959" in text, text


def test_short_block_with_more_set_is_a_block_error():
    s = Script(lambda n, m: reply(CONTENT, b"x" * 100, (n - 1, True, 2)))  # 100 of 64
    h = s.run("get", URI)
    assert isinstance(h.error, BlockError) and len(s.got) == 1, (h.error, len(s.got))
    s = Script(lambda n, m: reply(CONTENT, b"x" * 40, (n - 1, n < 3, 2)))  # 40 of 64
    h = s.run("get", URI)
    assert isinstance(h.error, BlockError) and "40 bytes" in str(h.error), h.error


def test_last_block_may_be_short_but_never_longer():
    s = Script(lambda n, m: reply(CONTENT, b"a" * 64 if n == 1 else b"b" * 10, (n - 1, n == 1, 2)))
    h = s.run("get", URI)
    assert h.error is None and h.response.payload == b"a" * 64 + b"b" * 10, h
    s = Script(lambda n, m: reply(CONTENT, b"a" * 64 if n == 1 else b"b" * 65, (n - 1, n == 1, 2)))
    h = s.run("get", URI)
    assert isinstance(h.error, BlockError) and "65 bytes" in str(h.error), h.error


def test_plain_response_in_the_middle_of_a_transfer_is_a_block_error():
    # Seen: block 0 (M set), then a 2.05 without Block2, returned as the
    # whole body: silently cut short (exit 0 in the command).
    def answer(n, m):
        if n == 1:
            return reply(CONTENT, b"a" * 1024, (0, True, 6))
        return reply(CONTENT, b"tail")
    s = Script(answer)
    h = s.run("get", URI)
    assert isinstance(h.error, BlockError) and h.response is None, (h.error, h.response)
    assert "1024 bytes" in str(h.error) and "without Block2" in str(h.error), h.error
    assert [asked(m, BLOCK2) for m in s.got] == [None, (1, False, 6)], s.got


def test_error_response_in_the_middle_of_a_transfer_is_that_response():
    def answer(n, m):
        if n == 1:
            return reply(CONTENT, b"a" * 1024, (0, True, 6))
        return reply(163, b"busy")  # 5.03
    s = Script(answer)
    h = s.run("get", URI)
    assert h.error is None and h.response.code == 163, (h.error, h.response)


def test_block_out_of_place_is_a_block_error():
    s = Script(lambda n, m: reply(CONTENT, b"a" * 64, (0, True, 2)))  # block 0 again and again
    h = s.run("get", URI)
    assert isinstance(h.error, BlockError) and len(s.got) == 2, (h.error, len(s.got))
    assert "offset 0" in str(h.error) and "ends at 64" in str(h.error), h.error
    # A first block other than the one asked for.
    s = Script(lambda n, m: reply(CONTENT, b"a" * 64, (3, True, 2)))
    h = s.run("get", URI)
    assert isinstance(h.error, BlockError) and len(s.got) == 1, (h.error, len(s.got))


def test_a_block_asked_for_by_the_application_comes_alone():
    s = Script(lambda n, m: reply(CONTENT, b"c" * 64, (2, True, 2)))
    h = s.run("get", URI, options=(Option(BLOCK2, (2 << 4) | 2),))
    assert h.error is None and h.response.payload == b"c" * 64, h
    assert len(s.got) == 1, len(s.got)


def test_reserved_szx_7_is_a_block_error():
    s = Script(lambda n, m: reply(CONTENT, b"z" * 16, (0, True, 7)))
    h = s.run("get", URI)
    assert isinstance(h.error, BlockError) and "SZX 7" in str(h.error), h.error


def test_endless_16_byte_blocks_stop_at_max_body():
    # A server that hands out correct 16-byte blocks without end: the
    # transfer stops at max_body, after max_body / 16 + 1 requests.
    s = Script(lambda n, m: reply(CONTENT, b"q" * 16, (n - 1, True, 0)),
               client_kw={"max_body": 2048, "block_size": 16}, keep=False)
    h = s.run("get", URI)
    assert isinstance(h.error, BlockError) and "max_body" in str(h.error), h.error
    assert len(s.got) == 2048 // 16 + 1, len(s.got)


def test_transfer_timeout_bounds_the_whole_transfer():
    # Each exchange is quick (1 ms), so timeout_ms never fires; the
    # transfer as a whole is stopped by transfer_timeout_ms, saying how far
    # it got. (The fake network answers in 1 ms; 16-byte blocks.)
    from coapy_micro.client import RequestTimeout

    s = Script(lambda n, m: reply(CONTENT, b"q" * 16, (n - 1, True, 0)),
               client_kw={"max_body": 1 << 20, "block_size": 16, "timeout_ms": 1000,
                          "transfer_timeout_ms": 500}, keep=False)
    h = s.run("get", URI)
    assert isinstance(h.error, RequestTimeout), h.error
    assert 400 <= len(s.got) <= 520 and s.net.now <= 600, (len(s.got), s.net.now)
    text = str(h.error)
    assert "transfer_timeout_ms (500 ms)" in text and "requests" in text, text


def test_a_body_past_max_body_is_body_too_large_and_never_held():
    # The body outgrowing max_body ends the transfer with BodyTooLarge (a
    # BlockError, importable from client as BlockError is), before the block
    # that would pass the bound is kept: 1000 bytes of max_body in 64-byte
    # blocks stop when block 15 would bring the body to 1024.
    from coapy_micro.client import BodyTooLarge

    s = Script(lambda n, m: reply(CONTENT, b"q" * 64, (n - 1, True, 2)),
               client_kw={"max_body": 1000}, keep=False)
    h = s.run("get", URI)
    assert isinstance(h.error, BodyTooLarge) and isinstance(h.error, BlockError), h.error
    assert h.error.max_body == 1000 and h.response is None, (h.error.max_body, h.response)
    assert "960 bytes in blocks so far" in str(h.error), h.error
    assert len(h.transfer.down) == 960 and len(s.got) == 16, (len(h.transfer.down), len(s.got))
    # A body of exactly max_body is read whole.
    s = Script(lambda n, m: reply(CONTENT, b"q" * 64, (n - 1, n < 16, 2)),
               client_kw={"max_body": 1024}, keep=False)
    h = s.run("get", URI)
    assert h.error is None and len(h.response.payload) == 1024, (h.error, h)


def _num(m):
    # The Block2 number a request asks for (0 without one).
    v = asked(m, BLOCK2)
    return 0 if v is None else v[0]


def test_max_body_per_request():
    # start() takes a max_body for one request, tighter than the client's:
    # a caller bounds one download without a client of its own.
    from coapy_micro.client import BodyTooLarge

    s = Script(lambda n, m: reply(CONTENT, b"q" * 16, (_num(m), True, 0)),
               client_kw={"max_body": 1 << 20, "block_size": 16}, keep=False)
    h = s.run("get", URI, max_body=160)
    assert isinstance(h.error, BodyTooLarge) and len(s.got) == 11, (h.error, len(s.got))
    assert h.max_body == 160 and h.transfer_timeout_ms is None, h.max_body


def test_transfer_timeout_per_request():
    # start() and request() take a transfer_timeout_ms for one request: one
    # bounded where the client has no bound, lifted (None) or replaced
    # where it has one.
    from coapy_micro.client import RequestTimeout

    s = Script(lambda n, m: reply(CONTENT, b"q" * 16, (_num(m), True, 0)),
               client_kw={"max_body": 1 << 20, "block_size": 16, "timeout_ms": 1000},
               keep=False)
    start = s.net.now
    h = s.run("get", URI, transfer_timeout_ms=300)
    assert isinstance(h.error, RequestTimeout), h.error
    assert "transfer_timeout_ms (300 ms)" in str(h.error), h.error
    assert s.net.now - start <= 400 and len(s.got) >= 200, (s.net.now - start, len(s.got))
    assert h.transfer_timeout_ms == 300, h.transfer_timeout_ms
    # A client's own transfer_timeout_ms, lifted for one request (None),
    # or replaced by a longer one.
    s = Script(lambda n, m: reply(CONTENT, b"q" * 16, (_num(m), _num(m) < 99, 0)),
               client_kw={"block_size": 16, "timeout_ms": 1000, "transfer_timeout_ms": 20},
               keep=False)
    h = s.run("get", URI)
    assert isinstance(h.error, RequestTimeout) and "(20 ms)" in str(h.error), h.error
    for t in (None, 5000):
        h = s.run("get", URI, transfer_timeout_ms=t)
        assert h.error is None and len(h.response.payload) == 1600, (t, h.error)
    # request() passes it on: the client's 20 ms bound lifted.
    r = s.c.request("get", URI, transfer_timeout_ms=None)
    assert len(r.payload) == 1600, len(r.payload)


def test_upload_to_a_server_that_ignores_block1_is_a_block_error():
    # Seen: two servers in use answer block 0 (M set) of a PUT with a final
    # 2.04 and no Block1: reported as success, the server had stored one
    # block. Block1 is critical (RFC 7959 §2.1, §2.5).
    s = Script(lambda n, m: reply(CHANGED))
    h = s.run("put", URI, body(3000))
    assert isinstance(h.error, BlockError), (h.error, h.response)
    text = str(h.error)
    assert "did not take the body in blocks" in text and "1024 bytes" in text, text
    assert len(s.got) == 1, len(s.got)


def test_upload_acknowledged_block_by_block_with_2_04_goes_on():
    # A server that stores blocks as they come answers each with 2.04 and
    # Block1 (RFC 7959 §2.5, non-atomic): every block goes up.
    def answer(n, m):
        b = asked(m, BLOCK1)
        return reply(CHANGED, b"", block1=(b[0], b[1], b[2]))
    s = Script(answer)
    data = body(3000)
    h = s.run("put", URI, data)
    assert h.error is None and h.response.code == CHANGED, (h.error, h.response)
    assert b"".join(m.payload for m in s.got) == data, [len(m.payload) for m in s.got]


def test_continue_answering_the_last_block_is_a_block_error():
    def answer(n, m):
        b = asked(m, BLOCK1)
        return reply(CONTINUE, b"", block1=(b[0], True, b[2]))
    s = Script(answer)
    h = s.run("put", URI, body(2000))
    assert isinstance(h.error, BlockError) and "2.31" in str(h.error), h.error
    assert len(s.got) == 2, len(s.got)


def test_upload_error_response_ends_it_as_that_response():
    s = Script(lambda n, m: reply(TOO_LARGE))
    h = s.run("put", URI, body(3000))
    assert h.error is None and h.response.code == TOO_LARGE, (h.error, h.response)
