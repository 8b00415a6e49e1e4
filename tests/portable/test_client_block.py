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
