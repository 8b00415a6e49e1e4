# SenML (RFC 8428) from CoAP payloads: text, JSON, SenML JSON resolution
# (the RFC's own examples), opaque data, names. Portable: CPython (pytest)
# and the MicroPython VM.
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
import json

import support  # noqa: F401
from coapy_micro.senml import SenMLError, clean_name, dumps, records, resolve

NOW = 1700000000.5


def _one(payload, cf):
    (r,) = records(payload, cf, "node-1/", "sensors/temp", NOW)
    assert r["bn"] == "node-1/" and r["n"] == "sensors/temp" and r["bt"] == NOW, r
    return r


def test_text_numbers_booleans_and_strings():
    assert _one(b"21.5", 0)["v"] == 21.5
    assert _one(b" -3 \n", 0)["v"] == -3
    assert _one(b"1e3", None)["v"] == 1000.0
    assert _one(b"true", 0)["vb"] is True
    assert _one(b"false", 0)["vb"] is False
    assert _one(b"open", 0)["vs"] == "open"
    assert _one(b"", 0)["vs"] == ""
    assert _one(b"nan", 0)["vs"] == "nan"  # JSON has no NaN
    assert _one(b"1.2.3", 0)["vs"] == "1.2.3"
    assert _one("24 °C".encode("utf-8"), 0)["vs"] == "24 °C"


def test_json_payloads():
    assert _one(b"21.5", 50)["v"] == 21.5
    assert _one(b"true", 50)["vb"] is True
    assert _one(b'"hello"', 50)["vs"] == "hello"
    assert _one(b'{"a": 1}', 50)["vs"] == '{"a": 1}'
    assert _one(b"not json", 50)["vs"] == "not json"


def test_other_formats_are_base64url_data():
    assert _one(b"\xfb\xff\x00", 42)["vd"] == "-_8A"  # no padding, URL alphabet (§5)
    assert _one(b"\xa1\x00\x01", 60)["vd"] == "oQAB"
    assert _one(b"\xff\xfe", 0)["vd"] == "__4"  # not UTF-8 text


def test_senml_json_multiple_datapoints_rfc8428_5_1_2():
    pack = (b'[{"bn":"urn:dev:ow:10e2073a01080063:","n":"voltage","u":"V","v":120.1},'
            b'{"n":"current","u":"A","v":1.2}]')
    got = records(pack, 110, "node-1/", "power", NOW)
    assert got == [{"n": "urn:dev:ow:10e2073a01080063:voltage", "t": NOW, "u": "V", "v": 120.1},
                   {"n": "urn:dev:ow:10e2073a01080063:current", "t": NOW, "u": "A", "v": 1.2}], got


def test_senml_json_base_time_and_unit_rfc8428_5_1_3():
    pack = (b'[{"bn":"urn:dev:ow:10e2073a01080063","bt":1.320067464e+09,"bu":"%RH","v":20},'
            b'{"u":"lon","v":24.30621},{"u":"lat","v":60.07965},'
            b'{"t":60,"v":20.3},{"u":"lon","t":60,"v":24.30622}]')
    got = records(pack, 110, "node-1/", "x", NOW)
    names = [r["n"] for r in got]
    assert names == ["urn:dev:ow:10e2073a01080063"] * 5, names
    assert [r["u"] for r in got] == ["%RH", "lon", "lat", "%RH", "lon"], got
    times = [r["t"] - 1320067464 for r in got]
    assert [int(x + 0.5) for x in times] == [0, 0, 0, 60, 60], times
    assert [r["v"] for r in got] == [20, 24.30621, 60.07965, 20.3, 24.30622], got


def test_senml_json_relative_times_base_values_and_nameless_records():
    pack = b'[{"bv":10,"bs":5,"v":1,"s":2,"t":-5},{"vb":true}]'
    got = records(pack, 110, "node-1/", "meter", NOW)
    assert got == [{"n": "node-1/meter", "t": NOW - 5, "v": 11, "s": 7},
                   {"n": "node-1/meter", "t": NOW, "vb": True}], got


def test_bad_senml_packs_are_kept_as_data():
    for bad in (b'{"v": 1}', b'[1, 2]', b'[{"v": "x"}]', b'[{"v": 1, "vs": "a"}]',
                b'[{"v": 1, "new_": 2}]', b'[{"vb": 1}]', b"[", b'[{"n": 5, "v": 1}]'):
        (r,) = records(bad, 110, "n/", "x", NOW)
        assert "vd" in r, (bad, r)
    support.raises(SenMLError, resolve, {"v": 1}, "x", NOW)


def test_json_nested_past_the_decoder_is_kept_as_data():
    # A few thousand '[' take a recursive decoder past its depth
    # (RecursionError on CPython): one such notification once ended a
    # gateway's loop. Kept as data, as any representation that is no SenML.
    deep = b"[" * 3000 + b"]" * 3000
    for payload in (deep, b"[" * 3000):
        (r,) = records(payload, 110, "n/", "x", NOW)
        assert "vd" in r and "v" not in r, sorted(r)
        (r,) = records(payload, 50, "n/", "x", NOW)
        assert r["vs"] == str(payload, "ascii"), sorted(r)


def test_non_finite_numbers_are_refused():
    # JSON has no infinity (RFC 8259 §6), so neither has SenML (RFC 8428
    # §4.3); a decoder reads 1e999 as one, and base + value can overflow.
    # Either would be written out as "Infinity", which is no JSON.
    for bad in (b'[{"v": 1e999}]', b'[{"v": -1e999}]', b'[{"bv": 1e308, "v": 1e308}]',
                b'[{"bt": 1e308, "t": 1e308, "v": 1}]', b'[{"bs": 1e308, "s": 1e308}]',
                b'[{"v": 1, "ut": 1e999}]', b'[{"bv": 1.5, "v": 1' + b"0" * 400 + b'}]',
                b'[{"bt": 1.5, "t": 1' + b"0" * 400 + b', "v": 1}]'):
        (r,) = records(bad, 110, "n/", "x", NOW)
        assert "vd" in r, (bad, r)
        text = dumps([r])
        assert "Infinity" not in text and "NaN" not in text, text
    for bad in (b"1e999", b"-1e999"):
        (r,) = records(bad, 50, "n/", "x", NOW)
        assert "v" not in r and r["vs"] == str(bad, "ascii"), r
    support.raises(SenMLError, resolve, [{"v": 1e308}, {"bv": 1e308, "v": 1e308}], "x", NOW)


def test_names_are_cleaned():
    assert clean_name("node-1/sensors/temp") == "node-1/sensors/temp"
    assert clean_name("a b%c") == "a_b_c"
    assert clean_name("_x") == "x_x"
    assert clean_name("") == "x"
    assert clean_name("büro") == "b_ro"


def test_dumps_is_json():
    text = dumps(records(b"21.5", 0, "n/", "t", NOW))
    assert json.loads(text) == [{"bn": "n/", "n": "t", "bt": NOW, "v": 21.5}], text
