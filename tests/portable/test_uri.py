# coap:// and coaps:// URIs <-> request options (RFC 7252 §6, Appendix B).
# Portable: CPython and the MicroPython VM. Module-level `def test_*()` only,
# plain asserts with a message.
#
# Every expected value below is written by hand from the RFC text, not from
# what the code returns.
import support
from coapy_micro import uri
from coapy_micro.uri import UriError, split, to_options, compose, is_ip_literal
from coapy_micro.options import UriHost, UriPort, UriPath, UriQuery, Option, make
from coapy_micro.message import Message

# U+3053 U+3093 U+306B U+3061 U+306F, and its UTF-8 form as RFC 7252
# Appendix B example 4 gives it (E38193 E38293 E381AB E381A1 E381AF).
KONNICHIWA = "\u3053\u3093\u306b\u3061\u306f"
KONNICHIWA_UTF8 = b"\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf"


# RFC 7252 Appendix B ("URI Examples") lists Uri options plus a destination
# address and port, and the URI composed from them (§6.5). Each example is
# checked in that direction, then decomposed again (§6.4) from the URI.

def test_appendix_b_example_1_ip_literal_destination():
    # Destination [2001:db8::2:1]:5683, no options -> coap://[2001:db8::2:1]/
    got = compose([], "2001:db8::2:1", 5683)
    assert got == "coap://[2001:db8::2:1]/", got
    r = to_options("coap://[2001:db8::2:1]/")
    assert r == ("2001:db8::2:1", 5683, []), r


def test_appendix_b_example_2_uri_host():
    opts = [UriHost("example.net")]
    got = compose(opts, "2001:db8::2:1", 5683)
    assert got == "coap://example.net/", got
    r = to_options("coap://example.net/")
    assert r == ("example.net", 5683, opts), r


def test_appendix_b_example_3_well_known_core():
    opts = [UriHost("example.net"), UriPath(".well-known"), UriPath("core")]
    got = compose(opts, "2001:db8::2:1", 5683)
    assert got == "coap://example.net/.well-known/core", got
    r = to_options("coap://example.net/.well-known/core")
    assert r == ("example.net", 5683, opts), r


def test_appendix_b_example_4_non_ascii_path():
    u = "coap://xn--18j4d.example/%E3%81%93%E3%82%93%E3%81%AB%E3%81%A1%E3%81%AF"
    opts = [UriHost("xn--18j4d.example"), UriPath(KONNICHIWA)]
    assert opts[1].raw == KONNICHIWA_UTF8, opts[1].raw
    got = compose(opts, "2001:db8::2:1", 5683)
    assert got == u, got
    host, port, got_opts = to_options(u)
    assert (host, port) == ("xn--18j4d.example", 5683), (host, port)
    assert got_opts == opts, got_opts
    assert got_opts[1].raw == KONNICHIWA_UTF8, got_opts[1].raw


def test_appendix_b_example_5_empty_segments_and_escaped_query():
    u = "coap://198.51.100.1:61616//%2F//?%2F%2F&?%26"
    opts = [UriPath(""), UriPath("/"), UriPath(""), UriPath(""),
            UriQuery("//"), UriQuery("?&")]
    got = compose(opts, "198.51.100.1", 61616)
    assert got == u, got
    r = split(u)
    assert r == ("coap", "198.51.100.1", 61616, ["", "/", "", ""], ["//", "?&"]), r
    # The RFC's destination port is 61616 itself, so its option list has no
    # Uri-Port; to_options sends Uri-Port for any non-default port (as
    # libcoap's client does), which a server reads as the same port.
    host, port, got_opts = to_options(u)
    assert (host, port) == ("198.51.100.1", 61616), (host, port)
    assert got_opts == [UriPort(61616)] + opts, got_opts
    # With that Uri-Port the composed URI is the same.
    got = compose(got_opts, "198.51.100.1", 61616)
    assert got == u, got


def test_compose_from_message():
    m = Message(Message.CON, 1)
    m.addOption(UriQuery("a=1"))
    m.addOption(UriPath("sensors"))
    m.addOption(UriHost("example.net"))
    m.addOption(UriPath("temp"))
    got = compose(m, "192.0.2.1", 5683)
    assert got == "coap://example.net/sensors/temp?a=1", got
    m = Message(Message.CON, 1, uri_path="a/b", uri_query="x=1&y=2")
    got = compose(m, "192.0.2.1", 5683)
    assert got == "coap://192.0.2.1/a/b?x=1&y=2", got


def test_compose_options_override_destination():
    got = compose([UriPort(1234)], "h", 5683)
    assert got == "coap://h:1234/", got
    got = compose([UriHost("a.example"), UriPort(5683)], "192.0.2.1", 9999)
    assert got == "coap://a.example/", got
    got = compose([], "h", 5684, "coaps")
    assert got == "coaps://h/", got
    got = compose([], "h", 5683, "coaps")
    assert got == "coaps://h:5683/", got
    got = compose([], "h")  # no port at all: the default
    assert got == "coap://h/", got


def test_section_6_3_equivalent_uris():
    # RFC 7252 §6.3: these three are equivalent; they give the same options.
    want = ("example.com", 5683,
            [UriHost("example.com"), UriPath("~sensors"), UriPath("temp.xml")])
    for u in ("coap://example.com:5683/~sensors/temp.xml",
              "coap://EXAMPLE.com/%7Esensors/temp.xml",
              "coap://EXAMPLE.com:/%7esensors/temp.xml"):
        r = to_options(u)
        assert r == want, (u, r)
    got = compose(want[2])
    assert got == "coap://example.com/~sensors/temp.xml", got


def test_ipv6_literals():
    r = to_options("coap://[::1]/hello")
    assert r == ("::1", 5683, [UriPath("hello")]), r
    r = to_options("coap://[::1]:61616/")
    assert r == ("::1", 61616, [UriPort(61616)]), r
    r = to_options("coaps://[2001:DB8::1]:5684")
    assert r == ("2001:db8::1", 5684, []), r
    r = split("coap://[::ffff:192.0.2.1]:1/")
    assert r == ("coap", "::ffff:192.0.2.1", 1, [], []), r
    # RFC 6874 zone: '%25' in the URI, '%' in the host; its case is kept.
    r = split("coap://[fe80::1%25Eth0]/x")
    assert r == ("coap", "fe80::1%Eth0", 5683, ["x"], []), r
    got = compose([UriPath("x")], "fe80::1%Eth0", 5683)
    assert got == "coap://[fe80::1%25Eth0]/x", got
    got = compose([], "::1", 61616)
    assert got == "coap://[::1]:61616/", got
    got = compose([], "[::1]", 5683)  # already bracketed
    assert got == "coap://[::1]/", got


def test_is_ip_literal():
    for h in ("192.0.2.1", "0.0.0.0", "255.255.255.255", "::", "::1",
              "2001:db8::2:1", "1:2:3:4:5:6:7:8", "1::", "::ffff:192.0.2.1",
              "1:2:3:4:5:6:1.2.3.4", "fe80::1%eth0", "FE80::A"):
        assert is_ip_literal(h), h
    for h in ("", "example.net", "localhost", "192.0.2", "192.0.2.1.5",
              "256.1.1.1", "01.2.3.4", "1.2.3.x", ":", ":::", "1:::2",
              "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::8",
              "12345::", "g::1", "1.2.3.4::", "::1.2.3", "fe80::1%",
              "1:2:3:4:5:6:7", "[::1]", "xn--18j4d.example"):
        assert not is_ip_literal(h), h


def test_percent_decoding():
    r = split("coap://h/a%20b/%C3%A9/%2f?x%3D1=%26&%3F")
    assert r[3] == ["a b", "\u00e9", "/"], r
    assert r[4] == ["x=1=&", "?"], r
    r = split("coap://ex%41mple.net/")  # lower-cased first, then decoded
    assert r[1] == "exAmple.net", r
    r = split("coap://h/a\u00e9")  # a non-ASCII character taken as it is
    assert r[3] == ["a\u00e9"], r


def test_percent_encoding_when_composing():
    # Path: unreserved, sub-delims, ':' and '@' stay; the rest is encoded.
    seg = "a-._~!$&'()*+,;=:@"
    got = compose([UriPath(seg)], "h")
    assert got == "coap://h/" + seg, got
    got = compose([UriPath("a b/c?d#e%f[g]\"\u00e9")], "h")
    assert got == "coap://h/a%20b%2Fc%3Fd%23e%25f%5Bg%5D%22%C3%A9", got
    # Query: '&' separates parameters so it is encoded; '?' stays; '/' is
    # encoded as Appendix B example 5 shows.
    got = compose([UriQuery("k=v&w"), UriQuery("?:@!$'()*+,;=/ ")], "h")
    assert got == "coap://h/?k=v%26w&?:@!$'()*+,;=%2F%20", got
    # A value that is not UTF-8 (kept as bytes by the option) is encoded bytewise.
    got = compose([make(11, b"\xff"), make(15, b"a\x00")], "h")
    assert got == "coap://h/%FF?a%00", got
    # A host name outside reg-name characters is encoded too (§6.5 step 2).
    got = compose([UriHost("b\u00fccher.example")], "192.0.2.1")
    assert got == "coap://b%C3%BCcher.example/", got


def test_round_trip():
    for u in ("coap://example.net/", "coap://example.net:1234/a/b?c=d&e",
              "coaps://[2001:db8::1]:5683//x//", "coap://192.0.2.1/%20%2F%25",
              "coap://h/?a&&b", "coap://h/a&b?q%26=1", "coaps://h/"):
        host, port, opts = to_options(u)
        back = compose(opts, host, port, split(u)[0])
        assert back == u, (u, back)


def test_empty_segments_kept():
    r = split("coap://h//a/")
    assert r[3] == ["", "a", ""], r
    r = to_options("coap://h//a/")
    assert r[2] == [UriHost("h"), UriPath(""), UriPath("a"), UriPath("")], r
    r = split("coap://h/a//b")
    assert r[3] == ["a", "", "b"], r
    r = split("coap://h//")
    assert r[3] == ["", ""], r
    # '' and '/' are no path at all (§6.4 step 8).
    for u in ("coap://h", "coap://h/", "coap://h?x", "coap://h/?x"):
        r = split(u)
        assert r[3] == [], (u, r)


def test_dot_segments_removed():
    # §6.4 step 2 resolves the URI (RFC 3986 §5.2.4 removes dot segments).
    for u, want in (("coap://h/a/./b", ["a", "b"]), ("coap://h/a/../b", ["b"]),
                    ("coap://h/a/b/..", ["a", ""]), ("coap://h/a/.", ["a", ""]),
                    ("coap://h/..", []), ("coap://h/./", []),
                    ("coap://h/../../a", ["a"]), ("coap://h/%2E%2E/a", ["..", "a"]),
                    ("coap://h/.well-known/core", [".well-known", "core"])):
        r = split(u)
        assert r[3] == want, (u, r[3], want)
    # A Uri-Path that is '.' or '..' is composed encoded, so it survives.
    opts = [UriPath(".."), UriPath("."), UriPath("a")]
    got = compose(opts, "h")
    assert got == "coap://h/%2E%2E/%2E/a", got
    r = to_options(got)
    assert r[2] == [UriHost("h")] + opts, r


def test_query_split():
    r = split("coap://h/p?a=1&b=2&&c")
    assert r[4] == ["a=1", "b=2", "", "c"], r
    r = split("coap://h/p?")  # '?' with nothing after it: no Uri-Query
    assert r[4] == [], r
    r = split("coap://h/p?&")
    assert r[4] == ["", ""], r
    r = split("coap://h?x=/y?z")  # '/' and '?' inside a query are data
    assert r[3:] == ([], ["x=/y?z"]), r
    r = to_options("coap://h/p?a=1&b")
    assert r[2] == [UriHost("h"), UriPath("p"), UriQuery("a=1"), UriQuery("b")], r


def test_scheme_and_ports():
    r = split("COAP://h")
    assert r == ("coap", "h", 5683, [], []), r
    r = split("CoAPs://h")
    assert r == ("coaps", "h", 5684, [], []), r
    r = to_options("coaps://h:5683/")
    assert r == ("h", 5683, [UriHost("h"), UriPort(5683)]), r
    r = to_options("coap://h:5684/")
    assert r == ("h", 5684, [UriHost("h"), UriPort(5684)]), r
    r = to_options("coap://h:5683/")
    assert r == ("h", 5683, [UriHost("h")]), r
    r = split("coap://h:65535")
    assert r[2] == 65535, r
    assert uri.default_port("COAPS") == 5684, uri.default_port("COAPS")


def test_host_name_lower_cased_and_options_ordered():
    host, port, opts = to_options("coap://Node-1.LOCAL:7/x?y")
    assert host == "node-1.local", host
    nums = [o.number for o in opts]
    assert nums == [3, 7, 11, 15], nums
    assert opts[0].value == "node-1.local", opts[0]
    # They are the registered classes, not generic Options.
    assert isinstance(opts[0], UriHost) and isinstance(opts[1], UriPort), opts
    assert isinstance(opts[2], UriPath) and isinstance(opts[3], UriQuery), opts


def test_ip_literal_hosts_send_no_uri_host():
    for u, h in (("coap://192.0.2.1/", "192.0.2.1"), ("coap://[::1]/", "::1")):
        r = to_options(u)
        assert r == (h, 5683, []), (u, r)
    # Not a dotted quad: a name, so Uri-Host goes with it.
    r = to_options("coap://192.0.2/")
    assert r[2] == [UriHost("192.0.2")], r


def test_malformed_uris_raise_uri_error():
    for bad, words in (
        ("example.com/x", "scheme"),
        ("/x", "scheme"),
        (":x", "scheme"),
        ("http://example.com/", "http"),
        ("coap+tcp://h/", "scheme"),
        ("coap://h/a#frag", "fragment"),
        ("coap://h/#", "fragment"),
        ("coap://h:99999/", "port"),
        ("coap://h:0/", "port"),
        ("coap://h:12a/", "port"),
        ("coap://h:-1/", "port"),
        ("coap://h: 1/", "character"),
        ("coap://[::1/", "unterminated"),
        ("coap://[::1", "unterminated"),
        ("coap://[::1]x/", "after"),
        ("coap://[nope]/", "IPv6"),
        ("coap://[192.0.2.1]/", "IPv6"),
        ("coap://::1/", "brackets"),
        ("coap://h]/", "host"),
        ("coap://h/%zz", "percent"),
        ("coap://h/%2", "percent"),
        ("coap://h/a%", "percent"),
        ("coap://h/?q=%g0", "percent"),
        ("coap://h%2/", "percent"),
        ("coap://h/%ff", "UTF-8"),
        ("coap:///path", "host"),
        ("coap://:5683/", "host"),
        ("coap://", "host"),
        ("coap:", "host"),
        ("coap:/h/p", "host"),
        ("coap:h", "host"),
        ("coap://user@h/", "user"),
        ("coap://h/a b", "character"),
        ("coap://h/a\tb", "character"),
        ("coap://h/<x>", "character"),
        ("", "scheme"),
    ):
        e = support.raises(UriError, split, bad)
        assert words in str(e), (bad, str(e))
        support.raises(UriError, to_options, bad)


def test_uri_error_is_a_value_error():
    e = support.raises(ValueError, split, "http://h/")
    assert isinstance(e, UriError), e
    support.raises(UriError, split, None)
    support.raises(UriError, split, b"coap://h/")


def test_too_long_values_raise_uri_error():
    ok = to_options("coap://h/" + "a" * 255)
    assert ok[2][1].value == "a" * 255, len(ok[2][1].value)
    e = support.raises(UriError, to_options, "coap://h/" + "a" * 256)
    assert "long" in str(e), str(e)
    support.raises(UriError, to_options, "coap://h/?" + "%C3%A9" * 128)
    support.raises(UriError, to_options, "coap://" + "h" * 256 + "/")


def test_compose_errors():
    e = support.raises(UriError, compose, [UriPath("a")])
    assert "host" in str(e), str(e)
    support.raises(UriError, compose, [], "h", 5683, "http")
    # Unrelated options are ignored.
    got = compose([Option(12, 0), UriPath("a"), Option(6, 0)], "h")
    assert got == "coap://h/a", got


def test_quote_path_writes_segments_so_that_split_reads_them_back():
    for path, want in (("", ""), ("sensors/temp", "sensors/temp"), ("a b/c%d", "a%20b/c%25d"),
                       ("a/./../b", "a/%2E/%2E%2E/b"), ("fw.bin", "fw.bin"), ("caf\u00e9", "caf%C3%A9"),
                       ("a//b", "a//b")):
        got = uri.quote_path(path)
        assert got == want, (path, got, want)
        segs = uri.split("coap://h/" + got)[3]
        assert segs == (path.split("/") if path else []), (path, segs)
    plain = "sensors/livingroom/temp"
    assert uri.quote_path(plain) is plain  # nothing to encode: the same str
    support.assert_no_alloc(uri.quote_path, plain)
