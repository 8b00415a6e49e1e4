"""Cross-check of the codec against aiocoap 0.4.17 (a test dependency).

For random valid messages our encode(mid) equals aiocoap's Message.encode()
byte for byte, and we decode what aiocoap encodes to the same options and
values (aiocoap's decoder reading the same bytes is the reference).

What the generated messages are restricted to, and why:
- At most one of each non-repeatable registered option. Our addOption
  replaces a non-repeatable option; aiocoap's Options.add_option appends any
  number of them. With one each the two models agree.
- Registered options carry values valid for their format and length, given to
  aiocoap as typed values (str, int, ContentFormat, Block tuple) through
  OptionNumber.create_option, so aiocoap's own value encoding is compared with
  ours. Unknown numbers go to aiocoap as OpaqueOption, and numbers aiocoap
  gives a format of its own though we do not register them (13
  Uri-Path-Abbrev is a uint there) are left out: aiocoap's decoder would
  normalise their values (b"\x00" -> 0 -> b""), so they are not comparable.
- Code 0.00 only with no token, options or payload: we refuse to encode
  anything else (RFC 7252 §4.1); aiocoap would encode it.
- Value lengths stay well below 65804: aiocoap's encoder rejects length 65804
  (`value < 65804` in _write_extended_field_value) though RFC 7252 §3.1 allows it.
- Messages are built with attributes (mtype, mid, token) instead of the
  deprecated constructor keywords, so aiocoap emits no DeprecationWarning.
"""
import warnings

import pytest
from hypothesis import given, settings, strategies as st

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import aiocoap
    from aiocoap import optiontypes
    from aiocoap.numbers.codes import Code
    from aiocoap.numbers.optionnumbers import OptionNumber
    from aiocoap.numbers.types import Type

from coapy_micro.message import Message
from coapy_micro.options import Option
from strategies import BY_NUMBER, REGISTERED, SETTINGS, option_value, unknown_number, unknown_value

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# Options as (number, value, is_registered), for ours() and theirs().
registered = st.sampled_from(REGISTERED).flatmap(
    lambda cls: option_value(cls, max_chars=60).map(lambda v: (cls.number, v, True)))


def _opaque_in_aiocoap(number):
    # aiocoap types a few numbers we do not register (13 Uri-Path-Abbrev is a
    # uint there): its decoder would re-encode their values its own way.
    return OptionNumber(number).format is optiontypes.OpaqueOption


unknown = st.tuples(unknown_number().filter(_opaque_in_aiocoap),
                    unknown_value(short=16, long=(265, 600)), st.just(False))


def _one_each_non_repeatable(items):
    seen = set()
    out = []
    for number, value, reg in items:
        if reg and not BY_NUMBER[number].repeatable:
            if number in seen:
                continue
            seen.add(number)
        out.append((number, value, reg))
    return out


@st.composite
def specs(draw):
    mtype = draw(st.integers(0, 3))
    mid = draw(st.integers(0, 0xFFFF))
    if draw(st.integers(0, 15)) == 0:
        return dict(mtype=mtype, mid=mid, code=0, token=b"", payload=b"", opts=[])
    return dict(
        mtype=mtype, mid=mid,
        code=draw(st.integers(1, 255)),
        token=draw(st.binary(max_size=8)),
        payload=draw(st.binary(max_size=600)),
        opts=_one_each_non_repeatable(
            draw(st.lists(st.one_of(registered, unknown), max_size=10))),
    )


def ours(spec):
    m = Message(spec["mtype"], spec["code"], spec["payload"], spec["token"])
    for number, value, reg in spec["opts"]:
        m.addOption(BY_NUMBER[number](value) if reg else Option(number, value))
    return m


def theirs(spec):
    m = aiocoap.Message(code=Code(spec["code"]), payload=spec["payload"])
    m.mtype = Type(spec["mtype"])
    m.mid = spec["mid"]
    m.token = spec["token"]
    for number, value, reg in spec["opts"]:
        if reg:
            opt = OptionNumber(number).create_option(value=value)
        else:
            opt = optiontypes.OpaqueOption(OptionNumber(number), value)
        m.opt.add_option(opt)
    return m


def _aio_value(opt):
    """aiocoap's typed value of an option, in our value's terms."""
    v = opt.value
    if isinstance(opt, optiontypes.BlockOption):
        return (v.block_number, bool(v.more), v.size_exponent)
    if isinstance(v, int):
        return int(v)
    return v


def check_same_decode(wire, aio_msg):
    """Our decode of `wire` against aiocoap's decode of the same bytes."""
    tid, m = Message.decode(wire)
    ref = aiocoap.Message.decode(wire)
    assert tid == ref.mid
    assert m.transaction_type == int(ref.mtype)
    assert m.code == int(ref.code)
    assert m.token == ref.token
    assert m.payload == ref.payload
    ref_opts = list(ref.opt.option_list())
    assert [(o.number, o.raw) for o in m.options] == \
        [(int(o.number), o.encode()) for o in ref_opts]
    for o, r in zip(m.options, ref_opts):
        if int(r.number) in BY_NUMBER and not isinstance(r, optiontypes.OpaqueOption):
            assert o.value == _aio_value(r), int(r.number)
    return m


@settings(max_examples=300, **SETTINGS)
@given(specs())
def test_our_bytes_equal_aiocoaps(spec):
    assert ours(spec).encode(spec["mid"]) == theirs(spec).encode()


@settings(max_examples=300, **SETTINGS)
@given(specs())
def test_we_decode_what_aiocoap_encodes(spec):
    wire = theirs(spec).encode()
    m = check_same_decode(wire, None)
    assert m.encode(spec["mid"]) == wire


# -- fixed cases --------------------------------------------------------------

def test_rfc7252_figure16_request_matches_aiocoap():
    spec = dict(mtype=0, mid=0x7D34, code=1, token=b"", payload=b"",
                opts=[(11, "temperature", True)])
    wire = theirs(spec).encode()
    assert wire == b"\x40\x01\x7d\x34\xbbtemperature"
    assert ours(spec).encode(0x7D34) == wire


def test_typical_request_matches_aiocoap():
    m = aiocoap.Message(code=Code.GET)
    m.mtype = Type.CON
    m.mid = 0x1234
    m.token = b"\x01\x02\x03\x04"
    m.opt.uri_path = ("sensors", "livingroom", "temp")
    m.opt.uri_query = ("unit=C",)
    wire = m.encode()
    mine = Message(Message.CON, 1, token=b"\x01\x02\x03\x04",
                   uri_path="sensors/livingroom/temp", uri_query="unit=C")
    assert mine.encode(0x1234) == wire
    check_same_decode(wire, m)


def test_typical_response_matches_aiocoap():
    payload = b"0123456789" * 10
    m = aiocoap.Message(code=Code.CONTENT, payload=payload)
    m.mtype = Type.ACK
    m.mid = 0x1234
    m.token = b"\x01\x02\x03\x04"
    m.opt.content_format = 50
    wire = m.encode()
    mine = Message(Message.ACK, 69, payload, b"\x01\x02\x03\x04", content_format=50)
    assert mine.encode(0x1234) == wire
    check_same_decode(wire, m)


def test_every_keyword_matches_aiocoap_property():
    # Our keyword and aiocoap's Options property of the same name, same value.
    cases = dict(
        if_match=[b"\x01"], uri_host="h.example", etag=b"\x01\x02",
        if_none_match=True, observe=5, uri_port=61616, location_path="a/b",
        oscore=b"\x09", uri_path="x/y/z", content_format=60, max_age=86400,
        uri_query="a=1&b=2", hop_limit=3, accept=50, location_query="q",
        block2=(7, True, 4), block1=(2, False, 6), size2=123456,
        proxy_uri="coap://p.example/r", proxy_scheme="coap", size1=99,
        echo=b"\xee" * 5, no_response=2, request_tag=[b"\x01"],
    )
    for key, value in cases.items():
        m = aiocoap.Message(code=Code.GET)
        m.mtype = Type.CON
        m.mid = 1
        aio_value = value
        if key in ("uri_path", "location_path"):
            aio_value = tuple(value.split("/"))
        elif key in ("uri_query", "location_query"):
            aio_value = tuple(value.split("&"))
        setattr(m.opt, key, aio_value)
        our_value = value[0] if isinstance(value, list) else value
        mine = Message(Message.CON, 1, **{key: our_value})
        assert mine.encode(1) == m.encode(), key
