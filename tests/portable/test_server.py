# The Server: dispatch by path and method, response types and
# tokens, the errors RFC 7252 asks for, handler failures, No-Response (RFC
# 7967). Portable: CPython (pytest) and the MicroPython VM, on fakenet.
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
import support
from fakenet import CLIENT, ROGUE, SERVER, HandOver, HandOverPoller, Net, mtype, pair
from coapy_micro.connection import EndPoint, Message
from coapy_micro.message import encode_options
from coapy_micro.options import Option
from coapy_micro.server import Resource, Response, Server

CON, NON, ACK, RST = Message.CON, Message.NON, Message.ACK, Message.RST
GET, POST, PUT, DELETE, FETCH, PATCH, IPATCH = 1, 2, 3, 4, 5, 6, 7
CREATED, DELETED, CHANGED, CONTENT = 65, 66, 68, 69
BAD_REQUEST, BAD_OPTION, NOT_FOUND, METHOD_NOT_ALLOWED = 128, 130, 132, 133
NOT_ACCEPTABLE, UNSUPPORTED_CF = 134, 143
INTERNAL, PROXYING_NOT_SUPPORTED = 160, 165


class Rig:
    """A Server on fakenet and a raw socket (ROGUE) that writes requests
    byte for byte; ask() returns the [(tid, Message)] that came back."""

    def __init__(self, **kw):
        self.net = Net()
        self.ep = self.net.endpoint(SERVER)
        self.errors = []
        if "on_error" not in kw:
            kw["on_error"] = self.log_error
        self.srv = Server(self.ep, **kw)
        self.rogue = self.net.socket(ROGUE)
        self.tid = 0x2000

    def log_error(self, request, exc):
        self.errors.append((request, exc))

    def send(self, data):
        self.rogue.sendto(data, SERVER)

    def ask(self, msg_or_bytes):
        self.tid += 1
        data = msg_or_bytes
        if isinstance(data, Message):
            data = data.encode(self.tid)
        n = len(self.net.log)
        self.send(data)
        self.srv.process(0)  # receives and answers (a piggybacked ACK leaves now)
        self.srv.process(0)  # transmits what was queued (a NON response)
        out = []
        for e in self.net.log[n:]:
            if e[1] == SERVER and e[2] == ROGUE:
                out.append(Message.decode(e[3]))
        return out

    def one(self, msg_or_bytes):
        got = self.ask(msg_or_bytes)
        assert len(got) == 1, got
        return got[0]


def req(code=GET, path=None, mt=CON, token=b"tk", payload=b"", **kw):
    return Message(mt, code, payload, token, uri_path=path, **kw)


def raw(code, options, mt=CON, tid=0x3001, token=b"tk", payload=b""):
    """A request datagram with options written as given (Option instances
    ordered by number, repeats and bad lengths included)."""
    head = bytes((0x40 | (mt << 4) | len(token), code, tid >> 8, tid & 255))
    body = head + token + encode_options(options)
    if payload:
        body += b"\xff" + payload
    return body


def const_handler(code, payload=b"", cf=None):
    def h(request):
        return (code, payload, cf)
    return h


# -- dispatch and response types ---------------------------------------------

def test_con_get_is_answered_piggybacked_with_the_token():
    rig = Rig()
    rig.srv.add("sensors/temp", Resource(get=const_handler(CONTENT, b"21.5", 0)))
    tid, m = rig.one(req(GET, "sensors/temp", token=b"\x01\x02\x03\x04"))
    assert tid == rig.tid, (tid, rig.tid)
    assert (m.transaction_type, m.code, m.token) == (ACK, CONTENT, b"\x01\x02\x03\x04"), m
    assert m.payload == b"21.5" and m.get_uint(12) == 0, m


def test_non_request_gets_a_non_response_with_the_token():
    rig = Rig()
    rig.srv.add("/n", Resource(get=const_handler(CONTENT, b"x")))
    tid, m = rig.one(req(GET, "n", mt=NON, token=b"nn"))
    assert (m.transaction_type, m.code, m.token, m.payload) == (NON, CONTENT, b"nn", b"x"), m
    assert tid != rig.tid, (tid, rig.tid)  # its own message id


def test_empty_token_is_copied_as_empty():
    rig = Rig()
    rig.srv.add("a", Resource(get=const_handler(CONTENT)))
    tid, m = rig.one(req(GET, "a", token=b""))
    assert m.token == b"" and m.code == CONTENT, m


def test_every_method_reaches_its_handler():
    rig = Rig()
    seen = []

    def make(name, code):
        def h(request):
            seen.append((name, request.code, request.payload))
            return (code, name)
        return h

    rig.srv.add("r", Resource(get=make("get", CONTENT), post=make("post", CREATED),
                              put=make("put", CHANGED), delete=make("delete", DELETED),
                              fetch=make("fetch", CONTENT), patch=make("patch", CHANGED),
                              ipatch=make("ipatch", CHANGED)))
    codes = (GET, POST, PUT, DELETE, FETCH, PATCH, IPATCH)
    names = ("get", "post", "put", "delete", "fetch", "patch", "ipatch")
    answers = (CONTENT, CREATED, CHANGED, DELETED, CONTENT, CHANGED, CHANGED)
    for i in range(7):
        tid, m = rig.one(req(codes[i], "r", payload=b"p%d" % i))
        assert (m.code, m.payload) == (answers[i], names[i].encode()), (i, m)
    assert [s[0] for s in seen] == list(names), seen
    assert seen[2] == ("put", PUT, b"p2"), seen


def test_unknown_path_is_4_04():
    rig = Rig()
    rig.srv.add("sensors/temp", Resource(get=const_handler(CONTENT)))
    for path in ("nothing", "sensors", "sensors/temp/more", "sensors/tem", "sensors/tempo"):
        tid, m = rig.one(req(GET, path))
        assert (m.transaction_type, m.code, m.payload) == (ACK, NOT_FOUND, b""), (path, m)
    tid, m = rig.one(req(GET))  # no Uri-Path: the root, not registered
    assert m.code == NOT_FOUND, m


def test_method_without_handler_is_4_05():
    rig = Rig()
    rig.srv.add("ro", Resource(get=const_handler(CONTENT)))
    for code in (POST, PUT, DELETE, FETCH, PATCH, IPATCH, 8, 31):  # 8..31: no such method
        tid, m = rig.one(req(code, "ro"))
        assert (m.code, m.token) == (METHOD_NOT_ALLOWED, b"tk"), (code, m)


def test_root_and_path_spellings():
    rig = Rig()
    rig.srv.add("", Resource(get=const_handler(CONTENT, b"root")))
    rig.srv.add("/a/b", Resource(get=const_handler(CONTENT, b"ab")))
    rig.srv.add("a", Resource(get=const_handler(CONTENT, b"a")))
    assert rig.one(req(GET))[1].payload == b"root", rig.net.log
    assert rig.one(req(GET, "a/b"))[1].payload == b"ab", rig.net.log
    assert rig.one(req(GET, "a"))[1].payload == b"a", rig.net.log
    rig.srv.add("a", Resource(get=const_handler(CONTENT, b"A")))  # replaces
    assert rig.one(req(GET, "a"))[1].payload == b"A", rig.net.log
    paths = [p for p, r in rig.srv.resources()]
    assert paths == [".well-known/core", "", "a/b", "a"], paths


def test_empty_and_non_ascii_segments():
    rig = Rig()
    rig.srv.add("x//y", Resource(get=const_handler(CONTENT, b"empty middle")))
    rig.srv.add("caf\u00e9", Resource(get=const_handler(CONTENT, b"utf8")))
    assert rig.one(req(GET, ["x", "", "y"]))[1].payload == b"empty middle", rig.net.log
    assert rig.one(req(GET, ["x", "y"]))[1].code == NOT_FOUND, rig.net.log
    assert rig.one(req(GET, "caf\u00e9"))[1].payload == b"utf8", rig.net.log


def test_subtree_serves_every_path_below():
    rig = Rig()
    seen = []

    def files(request):
        seen.append(request.path)
        return (CONTENT, "/".join(request.path))

    rig.srv.add("files", Resource(get=files, subtree=True))
    rig.srv.add("files/special", Resource(get=const_handler(CONTENT, b"special")))
    assert rig.one(req(GET, "files"))[1].payload == b"files", rig.net.log
    assert rig.one(req(GET, "files/a/b"))[1].payload == b"files/a/b", rig.net.log
    assert rig.one(req(GET, "files/special"))[1].payload == b"special", rig.net.log
    # Below the exact resource, the nearest subtree above still serves.
    assert rig.one(req(GET, "files/special/x"))[1].payload == b"files/special/x", rig.net.log
    assert rig.one(req(GET, "filesx"))[1].code == NOT_FOUND, rig.net.log
    assert seen == [("files",), ("files", "a", "b"), ("files", "special", "x")], seen


def test_root_subtree_is_a_catch_all_behind_exact_paths():
    rig = Rig()
    rig.srv.add("", Resource(get=lambda r: (CONTENT, "any:" + "/".join(r.path)), subtree=True))
    rig.srv.add("known", Resource(get=const_handler(CONTENT, b"known")))
    assert rig.one(req(GET, "x/y"))[1].payload == b"any:x/y", rig.net.log
    assert rig.one(req(GET, "known"))[1].payload == b"known", rig.net.log
    assert rig.one(req(GET))[1].payload == b"any:", rig.net.log


def test_request_attributes():
    rig = Rig()
    got = []
    rig.srv.add("s/t", Resource(post=lambda r: got.append(r) or (CHANGED, b"")))
    m = Message(CON, POST, b"body", b"tok", uri_path="s/t", uri_query="a=1&b=%",
                content_format=50, accept=0)
    rig.one(m)
    (r,) = got
    assert (r.code, r.path, r.query, r.payload) == (POST, ("s", "t"), ("a=1", "b=%"), b"body"), r
    assert (r.content_format, r.accept, r.token, r.confirmable) == (50, 0, b"tok", True), r
    assert r.remote == ROGUE and r.message.code == POST and not r.multicast, r
    assert "s/t" in repr(r), repr(r)


def test_handler_result_forms():
    rig = Rig()
    etag = Option(4, b"\x01\x02")
    rig.srv.add("resp", Resource(get=lambda r: Response(CONTENT, b"{}", 50, (etag, Option(14, 60)))))
    rig.srv.add("two", Resource(get=lambda r: (CHANGED, "text")))
    rig.srv.add("three", Resource(get=lambda r: (CONTENT, b"\x01", 42)))
    m = rig.one(req(GET, "resp"))[1]
    assert (m.code, m.payload, m.get_uint(12), m.get_uint(14)) == (CONTENT, b"{}", 50, 60), m
    assert m.findOption(4).value == b"\x01\x02", m
    m = rig.one(req(GET, "two"))[1]
    assert (m.code, m.payload, m.get_uint(12)) == (CHANGED, b"text", None), m
    m = rig.one(req(GET, "three"))[1]
    assert (m.code, m.payload, m.get_uint(12)) == (CONTENT, b"\x01", 42), m


def test_handler_returning_none_without_defer_is_5_00():
    rig = Rig()
    rig.srv.add("none", Resource(get=lambda r: None))
    rig.srv.add("bad", Resource(get=lambda r: 42))
    assert rig.one(req(GET, "none"))[1].code == INTERNAL, rig.net.log
    assert rig.one(req(GET, "bad"))[1].code == INTERNAL, rig.net.log
    kinds = [type(e).__name__ for r, e in rig.errors]
    assert kinds == ["TypeError", "TypeError"], kinds


def test_a_content_format_no_uint_of_2_bytes_is_5_00_and_the_server_goes_on():
    # Content-Format is a uint of 0 to 2 bytes (RFC 7252 §5.10.3): anything
    # else a handler returns is its bug, answered 5.00 (§5.9.3) and reported,
    # never an exception out of process(). Each in both forms, answered
    # straight into the EndPoint (a plain CON or NON), through answer() (with
    # options of its own), and to a request with Block2 and Content-Format
    # (the block path).
    bad = (-1, 65536, "0", 1.5, True)
    rig = Rig()
    etag = Option(4, b"\x01")
    for cf in bad:
        rig.srv.add("t", Resource(get=lambda r, cf=cf: (CONTENT, b"x", cf),
                                  post=lambda r, cf=cf: (CHANGED, b"x" * 2000, cf)))
        rig.srv.add("r", Resource(get=lambda r, cf=cf: Response(CONTENT, b"x", cf),
                                  post=lambda r, cf=cf: Response(CONTENT, b"", cf, (etag,))))
        for m in (req(GET, "t"), req(GET, "r"), req(GET, "t", mt=NON), req(GET, "r", mt=NON),
                  req(POST, "r"), req(POST, "t", content_format=0, block2=(0, False, 6))):
            got = [(x[1].code, x[1].get_uint(12)) for x in rig.ask(m)]
            assert got == [(INTERNAL, None)], (cf, m, got)
    assert rig.srv.errors == 6 * len(bad), rig.srv.errors
    assert all(isinstance(e, ValueError) for r, e in rig.errors), rig.errors
    rig.srv.add("ok", Resource(get=const_handler(CONTENT, b"fine", 65535)))
    m = rig.one(req(GET, "ok"))[1]
    assert (m.code, m.payload, m.get_uint(12)) == (CONTENT, b"fine", 65535), m


def test_answer_by_hand_with_a_content_format_no_uint_of_2_bytes_is_5_00():
    # Server.answer() (and so a deferred answer and a notification, which
    # make their options the same way) refuses what is no Content-Format
    # (RFC 7252 §5.10.3): 65536 was sent as a 3-byte option before.
    for cf in (-1, 65536, "0", 1.5):
        rig = Rig()
        rig.srv.add("x", Resource(get=lambda r, cf=cf: r.server.answer(r, CONTENT, b"v", cf) or (CONTENT, b"late")))
        got = [(x[1].code, x[1].get_uint(12), x[1].payload) for x in rig.ask(req(GET, "x"))]
        assert got == [(INTERNAL, None, b"")], (cf, got)
        assert [type(e).__name__ for r, e in rig.errors] == ["ValueError"], (cf, rig.errors)
    rig = Rig()
    rig.srv.add("x", Resource(get=lambda r: r.server.answer(r, CONTENT, b"v", 65535) or (CONTENT, b"late")))
    m = rig.one(req(GET, "x"))[1]
    assert (m.code, m.get_uint(12), m.payload) == (CONTENT, 65535, b"v"), m


def test_a_resource_ct_no_uint_of_2_bytes_is_refused_when_made():
    # A served request takes its Content-Format from ct without a check:
    # the Resource checks it once (RFC 7252 §5.10.3).
    for ct in (-1, 65536, "0", (0, -1), [1.5], (True,)):
        support.raises(ValueError, Resource, lambda r: (CONTENT, b"x"), ct=ct)
    for ct in (True, 1.5):  # neither a format nor several
        support.raises(TypeError, Resource, lambda r: (CONTENT, b"x"), ct=ct)
    for ct in (None, 0, 65535, (0, 50), [60], ()):
        assert Resource(lambda r: (CONTENT, b"x"), ct=ct).ct == ct, ct


# -- handler failures ----------------------------------------------------------

def test_handler_raising_is_5_00_reported_and_the_server_keeps_serving():
    rig = Rig()
    calls = []

    def broken(request):
        calls.append(1)
        raise ValueError("sensor on fire")

    rig.srv.add("broken", Resource(get=broken))
    rig.srv.add("ok", Resource(get=const_handler(CONTENT, b"fine")))
    for mt, want in ((CON, ACK), (NON, NON)):
        tid, m = rig.one(req(GET, "broken", mt=mt))
        assert (m.transaction_type, m.code, m.payload) == (want, INTERNAL, b""), m
    assert rig.one(req(GET, "ok"))[1].payload == b"fine", rig.net.log
    assert len(calls) == 2 and rig.srv.errors == 2, (calls, rig.srv.errors)
    (r1, e1), (r2, e2) = rig.errors
    assert str(e1) == "sensor on fire" and r1.path == ("broken",), (r1, e1)


def test_a_raising_error_hook_does_not_stop_the_server():
    def hook(request, exc):
        raise RuntimeError("log full")

    rig = Rig(on_error=hook)
    rig.srv.add("broken", Resource(get=lambda r: 1 // 0))
    assert rig.one(req(GET, "broken"))[1].code == INTERNAL, rig.net.log
    assert rig.srv.errors == 1, rig.srv.errors


def test_no_error_hook_is_fine():
    rig = Rig(on_error=None)
    rig.srv.add("broken", Resource(get=lambda r: 1 // 0))
    assert rig.one(req(GET, "broken"))[1].code == INTERNAL, rig.net.log


def test_response_too_large_is_5_00():
    rig = Rig()
    # Beyond the EndPoint's max_message_size (1152) in options: a large
    # payload alone would go out in blocks (RFC 7959, server_block.py).
    rig.srv.add("big", Resource(get=lambda r: Response(CONTENT, b"x" * 1000,
                                                       options=(Option(65000, b"y" * 200),))))
    tid, m = rig.one(req(GET, "big"))
    assert (m.code, m.payload) == (INTERNAL, b""), m
    (r, e), = rig.errors
    assert isinstance(e, ValueError), e
    tid, m = rig.one(req(GET, "big", mt=NON))
    assert (m.transaction_type, m.code) == (NON, INTERNAL), m


# -- options: RFC 7252 §5.4 ----------------------------------------------------

def test_unrecognized_critical_option_is_4_02_with_a_diagnostic():
    rig = Rig()
    ran = []
    rig.srv.add("r", Resource(get=lambda r: ran.append(1) or (CONTENT, b"")))
    m = req(GET, "r")
    m.addOption(Option(65001, b"x"))  # odd: critical, and registered nowhere
    tid, a = rig.one(m)
    assert (a.transaction_type, a.code, a.token) == (ACK, BAD_OPTION, b"tk"), a
    assert a.payload == b"option 65001", a.payload
    assert ran == [], ran  # the handler never saw it
    # Also when the path is unknown: the option is checked first.
    m = req(GET, "nope")
    m.addOption(Option(2049, b""))
    assert rig.one(m)[1].code == BAD_OPTION, rig.net.log


def test_unrecognized_critical_option_in_a_non_is_rejected_with_rst():
    rig = Rig()
    rig.srv.add("r", Resource(get=const_handler(CONTENT)))
    m = req(GET, "r", mt=NON)
    m.addOption(Option(65001, b"x"))
    tid, a = rig.one(m)
    assert (a.transaction_type, a.code, tid) == (RST, 0, rig.tid), (tid, a)


def test_unrecognized_elective_options_are_ignored():
    rig = Rig()
    rig.srv.add("r", Resource(get=const_handler(CONTENT, b"ok")))
    m = req(GET, "r")
    m.addOption(Option(65000, b"x"))
    m.addOption(Option(2048, b"yy"))
    m.addOption(Option(252, b"e" * 8))  # Echo (registered, elective)
    assert rig.one(m)[1].payload == b"ok", rig.net.log


def test_known_critical_option_with_bad_length_is_4_02():
    rig = Rig()
    rig.srv.add("r", Resource(get=const_handler(CONTENT, b"ok")))
    for opt in (Option(17, b"\x00\x00\x01"),  # Accept: 0-2 bytes
                Option(5, b"\x01"),  # If-None-Match: empty
                Option(23, b"\x01\x02\x03\x04"),  # Block2: 0-3 bytes
                Option(3, b""),  # Uri-Host: 1-255 bytes
                Option(1, b"123456789")):  # If-Match: 0-8 bytes
        m = req(GET, "r")
        m.addOption(opt)
        tid, a = rig.one(m)
        assert a.code == BAD_OPTION and a.payload == b"option %d" % opt.number, (opt, a)


def test_known_elective_option_with_bad_length_is_ignored():
    rig = Rig()
    got = []
    rig.srv.add("r", Resource(post=lambda r: got.append(r.content_format) or (CHANGED, b"")))
    data = raw(POST, [Option(6, b"\x00\x00\x00\x01"), Option(11, "r"), Option(12, b"\x00\x00\x32")],
               payload=b"p")
    assert rig.one(data)[1].code == CHANGED, rig.net.log
    assert got == [None], got  # the malformed Content-Format counts as absent


def test_supernumerary_critical_option_is_4_02():
    # RFC 7252 §5.4.5: each extra occurrence of a non-repeatable option is
    # treated like an unrecognized option, so a critical one fails.
    rig = Rig()
    rig.srv.add("r", Resource(get=const_handler(CONTENT, b"ok")))
    for opts in ([Option(3, "a"), Option(3, "b"), Option(11, "r")],  # Uri-Host twice
                 [Option(11, "r"), Option(17, 0), Option(17, 50)]):  # Accept twice
        tid, a = rig.one(raw(GET, opts))
        assert a.code == BAD_OPTION, (opts, a)


def test_supernumerary_elective_option_is_ignored():
    rig = Rig()
    got = []
    rig.srv.add("r", Resource(put=lambda r: got.append(r.content_format) or (CHANGED, b"")))
    data = raw(PUT, [Option(11, "r"), Option(12, 50), Option(12, 0)], payload=b"{}")
    assert rig.one(data)[1].code == CHANGED, rig.net.log
    assert got == [50], got  # the first one counts


def test_path_or_query_not_utf8_is_4_00():
    rig = Rig()
    rig.srv.add("r", Resource(get=const_handler(CONTENT, b"ok"), subtree=True))
    for opts in ([Option(11, b"\xff\xfe")],
                 [Option(11, "r"), Option(11, b"caf\xe9")],  # below a subtree
                 [Option(11, "r"), Option(15, b"q=\xc3")]):
        tid, a = rig.one(raw(GET, opts))
        assert (a.code, a.token) == (BAD_REQUEST, b"tk"), (opts, a)


def test_proxy_options_are_5_05():
    rig = Rig()
    rig.srv.add("r", Resource(get=const_handler(CONTENT)))
    for opt in (Option(35, "coap://elsewhere/x"), Option(39, "coap")):
        tid, a = rig.one(raw(GET, [Option(11, "r"), opt]))
        assert a.code == PROXYING_NOT_SUPPORTED, (opt, a)


def test_oscore_is_not_supported_so_4_02():
    rig = Rig()
    rig.srv.add("r", Resource(post=const_handler(CHANGED)))
    tid, a = rig.one(raw(POST, [Option(9, b"\x09\x00"), Option(11, "r")], payload=b"\x00"))
    assert a.code == BAD_OPTION, a


def test_observe_and_block_options_are_accepted_and_ignored_for_now():
    rig = Rig()
    rig.srv.add("r", Resource(get=const_handler(CONTENT, b"ok")))
    m = req(GET, "r", observe=0, block2=(0, False, 2))
    tid, a = rig.one(m)
    assert (a.code, a.payload) == (CONTENT, b"ok"), a
    assert a.get_uint(6) is None and a.get_uint(23) is None, a


# -- Content-Format and Accept (RFC 7252 §5.10.3, §5.10.4) -------------------

def test_accept_the_resource_cannot_produce_is_4_06():
    rig = Rig()
    rig.srv.add("t", Resource(get=const_handler(CONTENT, b"21"), ct=(0, 50)))
    assert rig.one(req(GET, "t", accept=60))[1].code == NOT_ACCEPTABLE, rig.net.log
    m = rig.one(req(GET, "t", accept=50))[1]
    assert (m.code, m.get_uint(12)) == (CONTENT, 50), m  # the format asked for
    m = rig.one(req(GET, "t"))[1]
    assert (m.code, m.get_uint(12)) == (CONTENT, None), m  # two formats: the handler says


def test_single_ct_is_the_default_content_format():
    rig = Rig()
    rig.srv.add("t", Resource(get=const_handler(CONTENT, b"21"), ct=0))
    rig.srv.add("e", Resource(get=const_handler(CHANGED), ct=0))
    rig.srv.add("o", Resource(get=const_handler(CONTENT, b"{}", 50), ct=0))
    assert rig.one(req(GET, "t"))[1].get_uint(12) == 0, rig.net.log
    assert rig.one(req(GET, "e"))[1].get_uint(12) is None, rig.net.log  # no payload
    assert rig.one(req(GET, "o"))[1].get_uint(12) == 50, rig.net.log  # the handler's own
    # Without ct anything may be asked for: the handler decides.
    rig.srv.add("any", Resource(get=lambda r: (CONTENT, b"%d" % r.accept)))
    assert rig.one(req(GET, "any", accept=11542))[1].payload == b"11542", rig.net.log


def test_unsupported_content_format_is_4_15():
    rig = Rig()
    got = []
    rig.srv.add("in", Resource(put=lambda r: got.append(r.payload) or (CHANGED, b""),
                               accepts=(50, 60)))
    assert rig.one(req(PUT, "in", payload=b"x", content_format=0))[1].code == UNSUPPORTED_CF, 0
    assert rig.one(req(PUT, "in", payload=b"x"))[1].code == UNSUPPORTED_CF, "no format"
    assert rig.one(req(PUT, "in", payload=b"{}", content_format=50))[1].code == CHANGED, 50
    assert rig.one(req(PUT, "in", content_format=0))[1].code == CHANGED, "no payload"
    assert got == [b"{}", b""], got
    rig.srv.add("one", Resource(post=const_handler(CHANGED), accepts=42))
    assert rig.one(req(POST, "one", payload=b"x", content_format=42))[1].code == CHANGED, 42


# -- No-Response (RFC 7967) ---------------------------------------------------

def test_no_response_suppresses_the_classes_it_names():
    rig = Rig()
    rig.srv.add("ok", Resource(post=const_handler(CHANGED, b"done")))
    rig.srv.add("err", Resource(post=lambda r: 1 // 0))
    # (bitmap, path, type) -> what comes back
    cases = (
        (2, "ok", CON, [(ACK, 0)]),  # 2.xx suppressed: the CON still gets an empty ACK
        (2, "ok", NON, []),
        (2, "missing", NON, [(NON, NOT_FOUND)]),  # 4.xx not suppressed
        (8, "missing", NON, []),
        (8, "missing", CON, [(ACK, 0)]),
        (8, "ok", NON, [(NON, CHANGED)]),
        (16, "err", NON, []),
        (16, "err", CON, [(ACK, 0)]),
        (26, "ok", NON, []),
        (26, "missing", NON, []),
        (0, "ok", NON, [(NON, CHANGED)]),  # 0: interested in everything
    )
    for bitmap, path, mt, want in cases:
        got = rig.ask(req(POST, path, mt=mt, no_response=bitmap))
        assert [(m.transaction_type, m.code) for t, m in got] == want, (bitmap, path, mt, got)


def test_suppressed_con_is_still_deduplicated():
    net, c, s = pair()
    srv = Server(s)
    runs = []
    srv.add("log", Resource(post=lambda r: runs.append(1) or (CHANGED, b"")))
    net.link(SERVER, CLIENT, drop=[1])  # the empty ACK is lost once
    rec = c.send(req(POST, "log", no_response=2, payload=b"x"), SERVER)
    net.run(20000, lambda ep, rx: srv.handle(rx) if ep is s else None)
    assert runs == [1], runs
    # (The client's record now waits for a separate response that will not
    # come: knowing it asked for none is the client's business.)
    assert rec.response_type == ACK, rec.response_type
    kinds = [(mtype(d), d[1]) for t, d in net.sent(SERVER, CLIENT)]
    assert kinds == [(ACK, 0), (ACK, 0)], kinds


# -- the EndPoint around it ----------------------------------------------------

def test_duplicate_con_is_answered_from_the_cache_not_the_handler():
    net, c, s = pair()
    srv = Server(s)
    runs = []
    srv.add("count", Resource(post=lambda r: runs.append(1) or (CHANGED, b"%d" % len(runs))))
    net.link(SERVER, CLIENT, drop=[1])  # the piggybacked ACK is lost once
    rec = c.send(req(POST, "count"), SERVER)
    net.run(20000, lambda ep, rx: srv.handle(rx) if ep is s else None)
    assert runs == [1], runs
    assert rec.response.message.payload == b"1", rec.response.message


def test_process_returns_what_is_not_a_request():
    # A Client on the server's EndPoint: its responses come out of process().
    net, c, s = pair()
    srv = Server(s)
    srv.add("x", Resource(get=const_handler(CONTENT, b"server")))
    rec = s.send(req(GET, "y", token=b"out"), CLIENT)
    s.process(0)
    rx = c.process(0)
    assert rx is not None and rx.message.code == GET, rx
    rx.ack(Message(ACK, CONTENT, b"from the client"))
    got = srv.process(10)
    assert got is not None and got.message.payload == b"from the client", got
    assert got.pertains_to is rec and not srv.handle(got), got


def test_handle_returns_false_for_a_response_and_true_for_a_request():
    rig = Rig()
    rig.send(Message(NON, GET, token=b"q").encode(1))
    rx = rig.ep.process(0)
    assert rig.srv.handle(rx) is True, rx
    rx.message.code = CONTENT  # pretend it was a response
    assert rig.srv.handle(rx) is False, rx


def test_serve_runs_for_the_given_time_and_answers():
    net, c, s = pair()
    srv = Server(s)
    srv.add("t", Resource(get=const_handler(CONTENT, b"t")))
    rec = c.send(req(GET, "t", mt=NON), SERVER)
    c.process(0)
    srv.serve(2.5)
    assert net.now == 2500, net.now
    rx = c.process(0)
    assert rx is not None and rx.pertains_to is rec and rx.message.payload == b"t", rx


def test_serve_for_a_time_still_ticks_every_tick_ms():
    # serve(seconds, tick, tick_ms): the time limit caps each wait, but the
    # next tick's wait is kept too (it was lost: one tick a second).
    net, c, s = pair()
    srv = Server(s)
    ticks = []
    srv.serve(1.05, tick=lambda: ticks.append(net.now), tick_ms=100)
    assert ticks == [100 * i for i in range(1, 11)], ticks
    assert net.now == 1050, net.now


def test_stop_ends_serve():
    rig = Rig()
    rig.srv.add("stop", Resource(post=lambda r: rig.srv.stop() or (CHANGED, b"")))
    rig.send(req(POST, "stop", mt=NON).encode(7))
    rig.net.now = 0
    rig.srv.serve()  # returns once the handler has called stop()
    assert rig.net.now < 1000, rig.net.now


def test_path_lookup_allocates_nothing_on_micropython():
    rig = Rig()
    rig.srv.add("sensors/livingroom/temp", Resource(get=const_handler(CONTENT, b"1")))
    rig.srv.add("sensors/kitchen/temp", Resource(get=const_handler(CONTENT, b"2")))
    rig.send(req(GET, "sensors/livingroom/temp", observe=0, accept=0, content_format=0).encode(9))
    rx = rig.ep.process(0)
    from coapy_micro.server import Request

    r = Request(rig.srv, rx, False)
    res = rig.srv.route(r)  # warms the option table
    assert isinstance(res, Resource) and r.accept == 0 and r.content_format == 0, (res, r)
    if not support.IS_MICROPYTHON:
        raise support.Skip("allocation is measured in the MicroPython VM")
    support.assert_no_alloc(rig.srv.route, r)


def test_serving_allocates_nothing_per_option():
    # A request of hundreds of options (unknown elective ones, queries, a
    # path that matches nothing) allocates no more than a plain one: options
    # are read in place, strings made only when a handler asks for them.
    sock = HandOver()
    ep = EndPoint(socket_factory=lambda f, t, p: sock, poll_factory=HandOverPoller)
    srv = Server(ep)
    srv.add("x", Resource(get=const_handler(CONTENT, b"ok")))
    kinds = (
        [Option(11, "x")],
        [Option(11, "x")] + [Option(2048 + 2 * i) for i in range(300)],
        [Option(11, "x")] + [Option(15, "q=1")] * 150,
        [Option(11, "s%d" % (i % 10)) for i in range(200)],  # 4.04
    )
    got = []
    for i, opts in enumerate(kinds):
        for j in range(3):  # the last: caches warm, cursor reused
            tid = 0x500 + 8 * i + j
            sock.ready = (raw(GET, opts, tid=tid), ROGUE)
            got.append(support.alloc_bytes(srv.process, 0))
    if not support.IS_MICROPYTHON:
        raise support.Skip("allocation is measured in the MicroPython VM")
    plain = got[2]
    assert max(got[5], got[8], got[11]) <= plain, got


# -- the calls the server's extensions use ----------------------------------------

def test_call_and_render_turn_failures_into_5_00_once():
    rig = Rig()
    res = rig.srv.add("x", Resource(get=const_handler(CONTENT, b"1"), ct=0))
    rig.send(req(GET, "x").encode(0x4001))
    rx = rig.ep.process(0)
    from coapy_micro.server import Request

    request = Request(rig.srv, rx, False)
    assert rig.srv.route(request) is res, "found"
    assert rig.srv.call(request, lambda q: 1 // 0)[0] == INTERNAL, "raised: 5.00"
    assert rig.srv.render(request, res, (CONTENT, b"2")) == [CONTENT, b"2", 0, ()], "ct 0 filled in"
    assert rig.srv.render(request, res, ("2.05", b"x"))[0] == INTERNAL, "not a code"
    assert rig.srv.render(request, res, (1, b"x"))[0] == INTERNAL, "a request code"
    assert rig.srv.render(request, res, None)[0] == INTERNAL, "None without defer()"
    kinds = [type(e).__name__ for r_, e in rig.errors]
    assert kinds[0] == "ZeroDivisionError" and kinds[-1] == "TypeError" and len(kinds) == 4, kinds
    assert rig.srv.errors == 4, rig.srv.errors


def test_answer_sends_once_and_hooks_load_by_name():
    rig = Rig()
    rig.srv.add("x", Resource(get=lambda r: r.server.answer(r, CHANGED, b"by hand") or (CONTENT, b"late")))
    tid, m = rig.one(req(GET, "x"))
    assert (m.code, m.payload) == (CHANGED, b"by hand"), m  # the handler's own return came second
    support.raises(KeyError, rig.srv.hook, "no such extension")
    mine = object()
    rig.srv.set_hook("group", mine)
    assert rig.srv.hook("group") is mine, "the application's own"
