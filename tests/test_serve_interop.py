"""The real `coapy serve` (python -m coapy_micro serve, in a subprocess, once
for the module) driven by clients no one here wrote: libcoap's
coap-client-notls and aiocoap's client.

Both clients: GET /hello, /time, /sensors/temp and /large (in blocks,
RFC 7959; coap-client also with -b 16); PUT 3 KB to /upload in Block1
blocks (coap-client -b 64; aiocoap 5 KB by itself) and read it back; PUT then GET /upload
(the same bytes back), POST and DELETE /upload; DELETE, POST or PUT on a
resource without that method (4.05); a NON GET (NON response);
/.well-known/core with filters (rt, href, ct, if, title, '*' prefixes),
parsed with coapy_micro.link.parse and compared with the links the demo
node registers; 4.04 for unknown paths; 4.02 for an unrecognized critical
option (and an RST when the request was NON), while an unknown elective
option is ignored.

The server is started on a free port chosen here (--port N), so the test
also checks that it reports the port it was given. CPython only. Peers
missing: skip on a laptop, fail under CI=true (peers.need).
"""
import re

import pytest

from coapy_micro.demo_node import DemoNode
from coapy_micro.link import parse
from interop import aiocoap_request, coap_client, coapy_serve, need_aiocoap

HELLO = b"Hello from coapy_micro!"
TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}"  # time.strftime("%Y-%m-%dT%H:%M:%S%z")
TEMP = r"\d{1,2}\.\d\d"  # a random walk around 21 degrees, two decimals
BLOB = bytes(range(256)) + b"\r\n\x00\xff end"  # PUT and read back, byte for byte

# What /.well-known/core lists: target -> attributes (as link.parse gives
# them), from the resources DemoNode.install registers.
LINKS = {
    "/hello": [("ct", "0"), ("title", "Hello")],
    "/time": [("rt", "time"), ("ct", "0"), ("title", "Current time"), ("obs", None)],
    "/sensors/temp": [("rt", "temperature-c"), ("if", "sensor"), ("ct", "0"),
                      ("title", "Temperature"), ("obs", None)],
    "/large": [("ct", "0"), ("sz", str(len(DemoNode().large_text()))), ("title", "Large text")],
    "/upload": [("title", "Upload")],
}
ALL = tuple(LINKS)

# (query, the targets it selects), RFC 6690 §4.1.
DISCOVERY = [
    ("", ALL),
    ("rt=temperature-c", ("/sensors/temp",)),
    ("rt=temp*", ("/sensors/temp",)),
    ("rt=time", ("/time",)),
    ("if=sensor", ("/sensors/temp",)),
    ("href=/hello", ("/hello",)),
    ("href=/s*", ("/sensors/temp",)),
    ("ct=0", ("/hello", "/time", "/sensors/temp", "/large")),
    ("title=Current*", ("/time",)),
    ("title=*", ALL),
    ("rt=nothing", ()),  # 2.05 with an empty payload
]
DISCOVERY_IDS = [q or "no-filter" for q, _ in DISCOVERY]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """'coap://127.0.0.1:PORT' of `coapy serve --bind 127.0.0.1 --port PORT`
    (PORT free when chosen); its log must show no traceback when it stops."""
    with coapy_serve(tmp_path_factory.mktemp("serve") / "stderr.txt", port=None) as uri:
        yield uri


def wkc(served, query):
    return served + "/.well-known/core" + ("?" + query if query else "")


def check_links(payload, targets):
    """The link-format `payload` lists exactly `targets`, each once, with
    the attributes the demo node gives it."""
    links = parse(payload)
    got = {ln.target: ln.attrs for ln in links}
    assert len(got) == len(links), payload  # no target twice
    assert got == {t: LINKS[t] for t in targets}, payload


# -- libcoap's coap-client ---------------------------------------------------

# A message as coap-client -v 6 dumps it, sent or received:
# v:1 t:ACK c:2.05 i:1a33 {01} [ Content-Format:text/plain ] :: 'Hello'
_DUMP = re.compile(r"^v:1 t:(CON|NON|ACK|RST) c:(\S+) i:[0-9a-f]+ \{[0-9a-f]*\} \[ ?(.*?) ?\]",
                   re.M)


def exchange(*args):
    """[(type, code, options)] of every message a coap-client-notls run
    sent and received, in order (options as libcoap prints them)."""
    return [m.groups() for m in _DUMP.finditer(coap_client("-v", "6", *args))]


def test_libcoap_get_hello_as_text(served):
    assert coap_client(served + "/hello") == HELLO.decode()
    assert exchange(served + "/hello")[1] == ("ACK", "2.05", "Content-Format:text/plain")


def test_libcoap_get_time_and_temperature(served):
    assert re.fullmatch(TIME, coap_client(served + "/time"))
    temp = coap_client(served + "/sensors/temp")
    assert re.fullmatch(TEMP, temp) and 0 < float(temp) < 50, temp


def test_libcoap_get_large(served):
    # Block2 (RFC 7959): 1024-byte blocks, coap-client asks for the next ones.
    assert coap_client("-B", "5", served + "/large") == DemoNode().large_text().decode().strip()
    first = [m[2] for m in exchange("-B", "5", served + "/large") if m[0] == "ACK"][0]
    assert "Block2:0/M/1024, Size2:%d" % len(DemoNode().large_text()) in first, first
    assert "ETag:0x" in first, first


def test_libcoap_get_large_in_16_byte_blocks(served):
    # Early negotiation: coap-client -b 16 asks for SZX 0 in its first request.
    text = DemoNode().large_text().decode().strip()
    assert coap_client("-B", "10", "-b", "16", served + "/large") == text
    first = [m[2] for m in exchange("-B", "10", "-b", "16", served + "/large") if m[0] == "ACK"][0]
    assert "Block2:0/M/16" in first, first


def test_libcoap_put_then_get_upload(served, tmp_path):
    blob = tmp_path / "blob.bin"
    blob.write_bytes(BLOB)
    sent, answer = exchange("-m", "put", "-t", "42", "-f", str(blob), served + "/upload")
    assert sent[:2] == ("CON", "PUT")
    assert answer[:2] in (("ACK", "2.01"), ("ACK", "2.04")), answer  # Created the first time
    out = tmp_path / "out.bin"
    sent, answer = exchange("-o", str(out), served + "/upload")
    assert answer == ("ACK", "2.05", "Content-Format:application/octet-stream")
    assert out.read_bytes() == BLOB


def test_libcoap_put_3_kb_in_64_byte_blocks(served, tmp_path):
    # Block1 (RFC 7959 §2.5): 47 blocks of 64 bytes, each non-final one
    # answered 2.31; read back (in Block2 blocks) equal.
    blob = tmp_path / "3k.bin"
    data = bytes((i * 7 + i // 251) & 255 for i in range(3072))
    blob.write_bytes(data)
    msgs = exchange("-b", "64", "-m", "put", "-t", "42", "-f", str(blob), served + "/upload")
    assert msgs[0][:2] == ("CON", "PUT") and "Block1:0/M/64" in msgs[0][2], msgs
    assert msgs[-1][:2] in (("ACK", "2.01"), ("ACK", "2.04")), msgs
    assert "Block1:47/_/64" in msgs[-1][2], msgs  # 3072 / 64 = 48 blocks
    out = tmp_path / "out.bin"
    coap_client("-o", str(out), served + "/upload")
    assert out.read_bytes() == data
    out.unlink()
    coap_client("-b", "64", "-o", str(out), served + "/upload")
    assert out.read_bytes() == data


def test_libcoap_post_and_delete_upload(served):
    sent, answer = exchange("-m", "post", "-t", "0", "-e", "posted by libcoap", served + "/upload")
    assert answer == ("ACK", "2.04", "")
    assert coap_client(served + "/upload") == "posted by libcoap"
    sent, answer = exchange("-m", "delete", served + "/upload")
    assert answer == ("ACK", "2.02", "")
    assert coap_client(served + "/upload") == ""


def test_libcoap_method_not_allowed(served):
    assert coap_client("-m", "delete", served + "/hello") == "4.05"
    assert coap_client("-m", "post", "-e", "x", served + "/time") == "4.05"
    assert coap_client("-m", "put", "-e", "x", served + "/sensors/temp") == "4.05"
    assert coap_client(served + "/hello") == HELLO.decode()  # untouched


def test_libcoap_non_get(served):
    assert coap_client("-N", served + "/hello") == HELLO.decode()
    assert exchange("-N", served + "/sensors/temp")[1][:2] == ("NON", "2.05")


@pytest.mark.parametrize("query, targets", DISCOVERY, ids=DISCOVERY_IDS)
def test_libcoap_discovery(served, query, targets):
    check_links(coap_client(wkc(served, query)), targets)


def test_libcoap_discovery_is_link_format(served):
    assert exchange(wkc(served, "rt=temp*"))[1] == (
        "ACK", "2.05", "Content-Format:application/link-format")


def test_libcoap_not_found(served):
    assert coap_client(served + "/no/such/thing") == "4.04"
    assert coap_client(served + "/hello/more") == "4.04"
    assert coap_client(served + "/sensors") == "4.04"  # only /sensors/temp is a resource


def test_libcoap_unknown_critical_option(served):
    assert coap_client("-O", "65001,x", served + "/hello") == "4.02 option 65001"
    # Elective (even) and unknown: ignored.
    assert coap_client("-O", "65000,x", served + "/hello") == HELLO.decode()


def test_libcoap_non_request_with_unknown_critical_option_is_reset(served):
    # RFC 7252 §5.4.1: a NON message with an unrecognized critical option is
    # rejected (RST), not answered. coap-client waits its -B second out.
    out = coap_client("-B", "1", "-v", "6", "-N", "-O", "65001,x", served + "/hello")
    (sent,) = _DUMP.finditer(out)
    # libcoap writes the message ID zero-padded in its dump ("i:0ccc") and
    # without padding where it logs the RST ("mid=0xccc"): compare numbers.
    mid = int(re.search(r" i:([0-9a-f]+) ", sent.group(0)).group(1), 16)
    rst = [int(m, 16) for m in re.findall(r"got RST for mid=0x([0-9a-f]+)", out)]
    assert mid in rst, out


# -- aiocoap's client ------------------------------------------------------------


def aiocoap_options():
    """(OpaqueOption, UintOption, OptionNumber) from aiocoap."""
    need_aiocoap()
    from aiocoap.numbers.optionnumbers import OptionNumber
    from aiocoap.optiontypes import OpaqueOption, UintOption

    return OpaqueOption, UintOption, OptionNumber


def test_aiocoap_get_hello(served):
    resp = aiocoap_request(served + "/hello")
    assert (str(resp.code), resp.payload, resp.opt.content_format) == ("2.05 Content", HELLO, 0)
    assert str(resp.mtype) == "ACK"  # piggybacked


def test_aiocoap_get_time_and_temperature(served):
    resp = aiocoap_request(served + "/time")
    assert (str(resp.code), resp.opt.content_format) == ("2.05 Content", 0)
    assert re.fullmatch(TIME, resp.payload.decode()), resp.payload
    resp = aiocoap_request(served + "/sensors/temp")
    assert (str(resp.code), resp.opt.content_format) == ("2.05 Content", 0)
    assert re.fullmatch(TEMP, resp.payload.decode()) and 0 < float(resp.payload) < 50, resp.payload


def test_aiocoap_get_large(served):
    resp = aiocoap_request(served + "/large")
    assert (str(resp.code), resp.opt.content_format) == ("2.05 Content", 0)
    assert resp.payload == DemoNode().large_text() and len(resp.payload) >= 2048


def test_aiocoap_put_then_get_upload(served):
    OpaqueOption, UintOption, OptionNumber = aiocoap_options()
    cf = UintOption(OptionNumber.CONTENT_FORMAT, 42)
    resp = aiocoap_request(served + "/upload", "PUT", BLOB, options=[cf])
    assert str(resp.code) in ("2.01 Created", "2.04 Changed"), resp.code
    resp = aiocoap_request(served + "/upload")
    assert (str(resp.code), resp.payload, resp.opt.content_format) == ("2.05 Content", BLOB, 42)


def test_aiocoap_put_5_kb_in_blocks(served):
    # aiocoap sends a payload beyond its block size in Block1 blocks by
    # itself; 5000 bytes would not fit the server's 4096-byte datagrams.
    OpaqueOption, UintOption, OptionNumber = aiocoap_options()
    data = bytes((i * 11 + i // 253) & 255 for i in range(5000))
    cf = UintOption(OptionNumber.CONTENT_FORMAT, 42)
    resp = aiocoap_request(served + "/upload", "PUT", data, options=[cf])
    assert str(resp.code) in ("2.01 Created", "2.04 Changed"), resp.code
    resp = aiocoap_request(served + "/upload")
    assert (str(resp.code), resp.payload, resp.opt.content_format) == ("2.05 Content", data, 42)


def test_aiocoap_post_and_delete_upload(served):
    OpaqueOption, UintOption, OptionNumber = aiocoap_options()
    cf = UintOption(OptionNumber.CONTENT_FORMAT, 0)
    resp = aiocoap_request(served + "/upload", "POST", "posted by aiocoap".encode(), options=[cf])
    assert str(resp.code) == "2.04 Changed"
    resp = aiocoap_request(served + "/upload")
    assert (resp.payload, resp.opt.content_format) == (b"posted by aiocoap", 0)
    assert str(aiocoap_request(served + "/upload", "DELETE").code) == "2.02 Deleted"
    resp = aiocoap_request(served + "/upload")
    assert (str(resp.code), resp.payload, resp.opt.content_format) == ("2.05 Content", b"", None)


def test_aiocoap_method_not_allowed(served):
    for method, path in (("DELETE", "/hello"), ("POST", "/time"), ("PUT", "/large")):
        resp = aiocoap_request(served + path, method, b"x" if method != "DELETE" else b"")
        assert str(resp.code) == "4.05 Method Not Allowed", (method, path)


def test_aiocoap_non_get(served):
    resp = aiocoap_request(served + "/hello", non=True)
    assert (str(resp.code), resp.payload, str(resp.mtype)) == ("2.05 Content", HELLO, "NON")


@pytest.mark.parametrize("query, targets", DISCOVERY, ids=DISCOVERY_IDS)
def test_aiocoap_discovery(served, query, targets):
    resp = aiocoap_request(wkc(served, query))
    assert (str(resp.code), resp.opt.content_format) == ("2.05 Content", 40)
    check_links(resp.payload.decode(), targets)


def test_aiocoap_not_found(served):
    assert str(aiocoap_request(served + "/no/such/thing").code) == "4.04 Not Found"
    assert str(aiocoap_request(served + "/hello/more").code) == "4.04 Not Found"


def test_aiocoap_unknown_critical_option(served):
    OpaqueOption, UintOption, OptionNumber = aiocoap_options()
    resp = aiocoap_request(served + "/hello", options=[OpaqueOption(OptionNumber(65001), b"x")])
    assert (str(resp.code), resp.payload) == ("4.02 Bad Option", b"option 65001")
    resp = aiocoap_request(served + "/hello", options=[OpaqueOption(OptionNumber(2049), b"")])
    assert (str(resp.code), resp.payload) == ("4.02 Bad Option", b"option 2049")
    # Elective (even) and unknown: ignored.
    resp = aiocoap_request(served + "/hello", options=[OpaqueOption(OptionNumber(65000), b"x")])
    assert (str(resp.code), resp.payload) == ("2.05 Content", HELLO)


# -- Observe (RFC 7641): other clients observing our /time -----------------------


def test_libcoap_observes_time(served):
    # coap-client -s 3 registers and prints each notification (one a second).
    out = coap_client("-s", "3", served + "/time", stderr=False)
    # coap-client writes the payloads back to back, with no newline between.
    assert len(re.findall(TIME, out)) >= 2 and re.fullmatch("(%s)+" % TIME, out), out


def test_aiocoap_observes_time(served):
    aiocoap = need_aiocoap()
    import asyncio

    async def run():
        ctx = await aiocoap.Context.create_client_context()
        got = []
        try:
            req = ctx.request(aiocoap.Message(code=aiocoap.GET, uri=served + "/time", observe=0))
            first = await asyncio.wait_for(req.response, 10)
            got.append(first)

            async def more():
                async for r in req.observation:
                    got.append(r)
                    if len(got) >= 3:
                        break

            await asyncio.wait_for(more(), 10)
            req.observation.cancel()
        finally:
            await ctx.shutdown()
        return got

    got = asyncio.run(run())
    assert len(got) >= 3, got
    assert all(r.code == aiocoap.CONTENT and re.fullmatch(TIME, r.payload.decode()) for r in got), got
    assert got[0].opt.observe is not None, got[0]
