# CoRE Link Format (RFC 6690): serialize, parse, discovery filtering (§4.1).
# Portable: CPython and the MicroPython VM. Module-level `def test_*()` only,
# plain asserts with a message.
#
# The /.well-known/core strings are written by hand in the shape libcoap's
# and aiocoap's servers answer with, and from the examples of RFC 6690 §5.
import support
from coapy_micro.link import (Link, LinkFormatError, serialize, parse, matches,
                              filter_links)

# libcoap's coap-server: quoted rt/if/title, bare ct, valueless obs.
LIBCOAP = ('</>;title="General Info";ct=0,'
           '</time>;if="clock";rt="ticks";title="Internal Clock";ct=0;obs,'
           '</async>;ct=0,'
           '</example_data>;title="Example Data";ct=0;obs')
# aiocoap's server: bare ct, links with no attributes at all.
AIOCOAP = ('</.well-known/core>;ct=40,</time>;obs,</other/block>,'
           '</other/separate>,</whoami>')
# RFC 6690 §5 (examples 1 to 3, joined): anchor and rel on links that are
# not resources of this server, ct lists per RFC 7252 §7.2.1.
RFC6690 = ('</sensors>;ct=40;title="Sensor Index",'
           '</sensors/temp>;rt="temperature-c";if="sensor",'
           '</sensors/light>;rt="light-lux";if="sensor",'
           '<http://www.example.com/sensors/t123>;anchor="/sensors/temp";rel="describedby",'
           '</t>;anchor="/sensors/temp";rel="alternate"')
SENSORS = ('</sensors/temp>;rt="temperature-c sensor";if="sensor";ct="0 50";obs,'
           '</sensors/light>;rt="light-lux";if="sensor actuator";ct=0,'
           '</firmware/v2>;rt="firmware";sz=262144;title="Firmware v2",'
           '</time>;ct=0')


def test_parse_libcoap_well_known_core():
    got = parse(LIBCOAP)
    want = [
        Link("/", [("title", "General Info"), ("ct", "0")]),
        Link("/time", [("if", "clock"), ("rt", "ticks"),
                       ("title", "Internal Clock"), ("ct", "0"), ("obs", None)]),
        Link("/async", [("ct", "0")]),
        Link("/example_data", [("title", "Example Data"), ("ct", "0"), ("obs", None)]),
    ]
    assert got == want, got
    t = got[1]
    assert t.target == "/time", t
    assert t.get("title") == "Internal Clock", t.get("title")
    assert t.get("obs") == "", t.get("obs")
    assert t.get("sz") is None, t.get("sz")


def test_parse_aiocoap_well_known_core():
    got = parse(AIOCOAP)
    want = [Link("/.well-known/core", [("ct", "40")]), Link("/time", [("obs", None)]),
            Link("/other/block"), Link("/other/separate"), Link("/whoami")]
    assert got == want, got
    assert got[2].attrs == [], got[2].attrs


def test_parse_rfc6690_examples_anchor_rel():
    got = parse(RFC6690)
    assert len(got) == 5, got
    assert got[0] == Link("/sensors", [("ct", "40"), ("title", "Sensor Index")]), got[0]
    assert got[3].target == "http://www.example.com/sensors/t123", got[3]
    assert got[3].get("anchor") == "/sensors/temp", got[3]
    assert got[3].get("rel") == "describedby", got[3]
    assert got[4].attrs == [("anchor", "/sensors/temp"), ("rel", "alternate")], got[4]


def test_quoted_values_with_escapes_commas_and_semicolons():
    got = parse('</a>;title="x, y; \\"z\\" \\\\ w";rt=t,</b>;title=","')
    assert len(got) == 2, got
    assert got[0].get("title") == 'x, y; "z" \\ w', got[0].get("title")
    assert got[0].get("rt") == "t", got[0]
    assert got[1].get("title") == ",", got[1]
    got = parse('</a>;title="",</b>;title="\\a"')
    assert got[0].get("title") == "", got[0]
    assert got[1].get("title") == "a", got[1]  # a quoted-pair stands for its character


def test_several_values_for_one_attribute():
    got = parse('</s>;rt="a b";rt=c;if="x"')[0]
    assert got.get("rt") == "a b", got
    assert got.get_all("rt") == ["a b", "c"], got.get_all("rt")
    assert got.values("rt") == ["a", "b", "c"], got.values("rt")
    assert got.get_all("sz") == [], got.get_all("sz")
    assert got.values("sz") == [], got.values("sz")
    got = parse('</s>;obs;obs')[0]
    assert got.get_all("obs") == ["", ""], got.get_all("obs")


def test_ct_list_sz_and_obs():
    got = parse('</l>;ct="0 40 50";sz=2048;obs')[0]
    assert got.get("ct") == "0 40 50", got
    assert got.values("ct") == ["0", "40", "50"], got.values("ct")
    assert got.get("sz") == "2048", got
    assert ("obs", None) in got.attrs, got.attrs


def test_whitespace_around_separators():
    text = ' </a> ; rt = "x y" ;obs , \r\n\t</b>;ct=0 ,</c> '
    got = parse(text)
    want = [Link("/a", [("rt", "x y"), ("obs", None)]), Link("/b", [("ct", "0")]),
            Link("/c")]
    assert got == want, got


def test_empty_bytes_and_case():
    assert parse("") == [], parse("")
    assert parse(" \n ") == [], parse(" \n ")
    got = parse(b'</t\xc3\xa9>;title="caf\xc3\xa9"')
    assert got == [Link("/t\u00e9", [("title", "caf\u00e9")])], got
    got = parse(bytearray(b"</a>;ct=0"))
    assert got == [Link("/a", [("ct", "0")])], got
    # Attribute names are case-insensitive: read as lower case; values as written.
    got = parse('</a>;RT="Temp";Obs')
    assert got[0].attrs == [("rt", "Temp"), ("obs", None)], got[0].attrs
    # A trailing ',' is tolerated.
    got = parse("</a>,</b>,")
    assert got == [Link("/a"), Link("/b")], got


def test_serialize_quoting_rules():
    links = [
        Link("/time", [("if", "clock"), ("rt", "ticks"), ("title", "Internal Clock"),
                       ("ct", "0"), ("obs", None)]),
        Link("/async", [("ct", "0")]),
    ]
    got = serialize(links)
    want = ('</time>;if="clock";rt="ticks";title="Internal Clock";ct=0;obs,'
            '</async>;ct=0')
    assert got == want, got
    cases = (
        (("rt", "temp"), ';rt="temp"'),
        (("if", "sensor"), ';if="sensor"'),
        (("title", "T"), ';title="T"'),
        (("anchor", "/a"), ';anchor="/a"'),
        (("rel", "alternate"), ';rel="alternate"'),
        (("ct", "40"), ";ct=40"),
        (("ct", "0 40"), ';ct="0 40"'),
        (("sz", "1024"), ";sz=1024"),
        (("obs", None), ";obs"),
        (("foo", "bar-1.2"), ";foo=bar-1.2"),
        (("foo", "a b"), ';foo="a b"'),
        (("foo", "a,b"), ';foo="a,b"'),
        (("foo", "a;b"), ';foo="a;b"'),
        (("foo", "/x"), ';foo="/x"'),
        (("foo", ""), ';foo=""'),
        (("rt", ""), ';rt=""'),
        (("title", 'say "hi" \\o/'), ';title="say \\"hi\\" \\\\o/"'),
    )
    for attr, tail in cases:
        got = serialize([Link("/r", [attr])])
        assert got == "</r>" + tail, (attr, got)
    assert serialize([]) == "", serialize([])


def test_attribute_values_given_as_python_values():
    link = Link("/r", [("ct", 0), ("ct", (0, 40)), ("sz", 2048), ("obs", True),
                       ("gone", False), ("rt", ["a", "b"])])
    assert link.attrs == [("ct", "0"), ("ct", "0 40"), ("sz", "2048"),
                          ("obs", None), ("rt", "a b")], link.attrs
    got = serialize([link])
    assert got == '</r>;ct=0;ct="0 40";sz=2048;obs;rt="a b"', got
    # Values put in attrs directly are converted when serialized.
    link = Link("/r")
    link.attrs.append(("ct", 41))
    link.attrs.append(("obs", False))
    got = serialize([link])
    assert got == "</r>;ct=41", got
    assert str(link) == got, str(link)


def test_round_trips():
    for text in (LIBCOAP, AIOCOAP, RFC6690, SENSORS,
                 '</a>;title="x, y; \\"z\\" \\\\ w";rt="a b";rt="c";ct="0 40";obs'):
        links = parse(text)
        again = serialize(links)
        assert again == text, (text, again)
        assert parse(again) == links, again
    links = [Link("/a%20b", [("title", "\u00e9\u00e9"), ("x", 'q"q'), ("y", None)]),
             Link("coap://[::1]/x", [("anchor", "coap://[::1]/")])]
    assert parse(serialize(links)) == links, serialize(links)


def test_link_equality_and_repr():
    a = Link("/a", [("rt", "x")])
    assert a == Link("/a", (("rt", "x"),)), a
    assert a != Link("/a", [("rt", "y")]), a
    assert a != Link("/b", [("rt", "x")]), a
    assert a != Link("/a", [("rt", "x"), ("obs", None)]), a
    assert not (a == "/a"), a
    assert a != "/a", a
    r = repr(a)
    assert "/a" in r and "rt" in r and "x" in r, r
    assert Link("/a").attrs == [], Link("/a").attrs


def test_malformed_link_format_raises_link_format_error():
    for bad in (
        "/a;rt=x",              # missing '<'
        "</a",                  # unterminated '<'
        '</a>;rt="x',           # unterminated quote
        '</a>;rt="x\\"',        # the closing quote is escaped
        '</a>;rt="x\\',         # escape at the very end
        "</a>;",                # ';' with no name
        "</a>;=x",              # no name
        "</a>;rt=",             # '=' with no value
        "</a>;rt=;ct=0",
        "</a>;rt=a b",          # a bare value with a space in it
        '</a>;rt=a"b',
        "</a> x",               # garbage after the target
        "</a>;rt=x garbage",
        "</a>,,</b>",           # an empty link
        ",</a>",
        "</a>;ti\u00e9=1",      # a non-token name
        "</a>;t=\u00e9",        # a non-token bare value
        "<a b>",                # space in the target
        "<<a>",
        "hello",
        ";;;",
        "\x00",
        b"</a>;title=\"\xff\"",  # not UTF-8
        None,
        42,
    ):
        e = support.raises(LinkFormatError, parse, bad)
        assert str(e), bad
    e = support.raises(ValueError, parse, "</a")
    assert isinstance(e, LinkFormatError), e


def test_damaged_input_only_ever_raises_link_format_error():
    # Every truncation, and every position overwritten by each delimiter,
    # of a string that exercises the whole grammar: parsed, or refused with
    # LinkFormatError, never another exception.
    good = '</a>;rt="x \\"y\\", z";ct=0;obs,<b>;t=v'
    n = len(good)
    for i in range(n + 1):
        _parse_or_refuse(good[:i])
        _parse_or_refuse(good[i:])
        for c in '<>;,="\\ ':
            _parse_or_refuse(good[:i] + c + good[i + 1:])


def _parse_or_refuse(text):
    try:
        parse(text)
    except LinkFormatError:
        pass


# Filtering (RFC 6690 §4.1): ?href=..., ?rt=..., ?ct=..., any attribute,
# a '*' at the end of the value as a prefix match.

def _targets(links):
    return [l.target for l in links]


def test_filter_no_query_gives_every_link():
    links = parse(SENSORS)
    for q in (None, "", [], ()):
        got = _targets(filter_links(links, q))
        assert got == ["/sensors/temp", "/sensors/light", "/firmware/v2", "/time"], (q, got)
    assert filter_links(links, None) is not links, "a new list"


def test_filter_href_exact_and_prefix():
    links = parse(SENSORS)
    cases = (
        ("href=/time", ["/time"]),
        ("href=/sensors", []),
        ("href=/sensors*", ["/sensors/temp", "/sensors/light"]),
        ("href=/sensors/*", ["/sensors/temp", "/sensors/light"]),
        ("href=/sensors/t*", ["/sensors/temp"]),
        ("href=*", ["/sensors/temp", "/sensors/light", "/firmware/v2", "/time"]),
        ("href=/nothing*", []),
        ("HREF=/time", ["/time"]),
    )
    for q, want in cases:
        got = _targets(filter_links(links, q))
        assert got == want, (q, got, want)


def test_filter_rt_and_if_space_separated():
    links = parse(SENSORS)
    cases = (
        ("rt=temperature-c", ["/sensors/temp"]),
        ("rt=sensor", ["/sensors/temp"]),          # second item of rt="temperature-c sensor"
        ("rt=temperature", []),                   # not a whole item
        ("rt=temp*", ["/sensors/temp"]),
        ("rt=*-lux", []),                         # '*' only works at the end
        ("rt=light*", ["/sensors/light"]),
        ("rt=*", ["/sensors/temp", "/sensors/light", "/firmware/v2"]),
        ("if=sensor", ["/sensors/temp", "/sensors/light"]),
        ("if=actuator", ["/sensors/light"]),
        ("if=act*", ["/sensors/light"]),
        ("if=sensor actuator", []),               # a query value is one item
    )
    for q, want in cases:
        got = _targets(filter_links(links, q))
        assert got == want, (q, got, want)


def test_filter_ct():
    links = parse(SENSORS)
    cases = (
        ("ct=0", ["/sensors/temp", "/sensors/light", "/time"]),
        ("ct=50", ["/sensors/temp"]),             # one of ct="0 50"
        ("ct=5", []),
        ("ct=5*", ["/sensors/temp"]),
        ("ct=40", []),
    )
    for q, want in cases:
        got = _targets(filter_links(links, q))
        assert got == want, (q, got, want)


def test_filter_any_attribute():
    links = parse(SENSORS)
    cases = (
        ("sz=262144", ["/firmware/v2"]),
        ("sz=26*", ["/firmware/v2"]),
        ("sz=2621440", []),
        ("title=Firmware v2", ["/firmware/v2"]),   # title is one value, not a list
        ("title=Firmware", []),
        ("title=Firm*", ["/firmware/v2"]),
        ("obs", ["/sensors/temp"]),                # no '=': the attribute is present
        ("obs=*", ["/sensors/temp"]),
        ("obs=", ["/sensors/temp"]),              # a valueless attribute's value is ''
        ("nosuch=x", []),                         # an attribute no link has
        ("nosuch=*", []),
        ("nosuch", []),
    )
    for q, want in cases:
        got = _targets(filter_links(links, q))
        assert got == want, (q, got, want)


def test_filter_several_queries_all_must_match():
    links = parse(SENSORS)
    got = _targets(filter_links(links, ["if=sensor", "ct=0"]))
    assert got == ["/sensors/temp", "/sensors/light"], got
    got = _targets(filter_links(links, ["if=sensor", "rt=light*"]))
    assert got == ["/sensors/light"], got
    got = _targets(filter_links(links, ["", "href=/time"]))
    assert got == ["/time"], got


def test_matches():
    link = Link("/s/t", [("rt", "a b"), ("ct", "0"), ("title", "x y"), ("obs", None)])
    for name, value, want in (
        ("href", "/s/t", True), ("href", "/s/*", True), ("href", "/s", False),
        ("href", None, True),
        ("rt", "a", True), ("rt", "b", True), ("rt", "a b", False), ("rt", "c", False),
        ("rt", "b*", True), ("rt", "*", True), ("rt", None, True),
        ("ct", "0", True), ("ct", "1", False), ("title", "x y", True),
        ("title", "x", False), ("title", "x*", True), ("obs", "", True),
        ("obs", None, True), ("if", "a", False), ("if", "*", False), ("if", None, False),
    ):
        got = matches(link, name, value)
        assert got == want, (name, value, got)


def test_path_target_percent_encodes_as_a_uri_path():
    from coapy_micro.link import path_target

    assert path_target("") == "/", path_target("")
    assert path_target("sensors/temp") == "/sensors/temp"
    assert path_target("a b/c%d/caf\u00e9") == "/a%20b/c%25d/caf%C3%A9"
    assert path_target("a/./../b") == "/a/%2E/%2E%2E/b"  # not resolved away
    assert path_target("fw.bin/a..b/.x") == "/fw.bin/a..b/.x"  # dots inside a segment stay
    assert path_target("x:y@z/!$&'()*+,;=") == "/x:y@z/!$&'()*+,;="  # pchar, bare
    assert path_target("a//b/") == "/a//b/"  # empty segments kept


def test_resource_links_lists_filters_and_serializes():
    from coapy_micro.link import resource_links

    res = [("t", [("rt", "temp"), ("ct", 0), ("obs", True)]), ("h", [("title", "Hi")])]
    assert resource_links(res) == '</t>;rt="temp";ct=0;obs,</h>;title="Hi"', resource_links(res)
    assert resource_links(res, "rt=te*") == '</t>;rt="temp";ct=0;obs'
    assert resource_links(res, "href=/h") == '</h>;title="Hi"'
    assert resource_links([]) == ""


def test_parse_stops_at_the_callers_bounds():
    # A caller that keeps what a peer sent bounds links and attributes (a
    # link of 510 valueless attributes holds 20 times its bytes parsed).
    from coapy_micro.link import LinkLimitError

    text = "</a>;x;y,</b>;z"
    assert len(parse(text)) == 2 and len(parse(text, 2, 3)) == 2
    for kw, what in (({"max_links": 1}, "links"), ({"max_attrs": 2}, "attributes")):
        try:
            parse(text, **kw)
        except LinkLimitError as e:
            assert e.what == what and isinstance(e, LinkFormatError), (kw, e.what)
            assert ("more than %d %s" % (list(kw.values())[0], what)) == str(e), str(e)
        else:
            raise AssertionError("parse(%r, %r) passed its bound" % (text, kw))
    # It stops at the bound: what follows is not read (here, malformed).
    try:
        parse("</a>;x;y;" + "!" * 10, max_attrs=2)
    except LinkLimitError:
        pass
    assert len(parse("</a>" + ";a" * 510)[0].attrs) == 510  # no bound: as before
    assert parse("", 0, 0) == []
