# Method / response codes and Content-Format numbers (RFC 7252 §5.8, §5.9,
# §12.1, §12.3; RFC 8132 FETCH/PATCH/iPATCH; RFC 7959 2.31 and 4.08;
# RFC 8516 4.29; RFC 8768 5.08; the IANA Content-Formats registry).
# Portable: CPython and the MicroPython VM.
import support
from coapy_micro import codes

# Name, dotted form as registered. The number is class << 5 | detail.
CODES = (
    ("EMPTY", "0.00"),
    ("GET", "0.01"), ("POST", "0.02"), ("PUT", "0.03"), ("DELETE", "0.04"),
    ("FETCH", "0.05"), ("PATCH", "0.06"), ("IPATCH", "0.07"),
    ("CREATED", "2.01"), ("DELETED", "2.02"), ("VALID", "2.03"),
    ("CHANGED", "2.04"), ("CONTENT", "2.05"), ("CONTINUE", "2.31"),
    ("BAD_REQUEST", "4.00"), ("UNAUTHORIZED", "4.01"), ("BAD_OPTION", "4.02"),
    ("FORBIDDEN", "4.03"), ("NOT_FOUND", "4.04"),
    ("METHOD_NOT_ALLOWED", "4.05"), ("NOT_ACCEPTABLE", "4.06"),
    ("REQUEST_ENTITY_INCOMPLETE", "4.08"), ("CONFLICT", "4.09"),
    ("PRECONDITION_FAILED", "4.12"), ("REQUEST_ENTITY_TOO_LARGE", "4.13"),
    ("UNSUPPORTED_CONTENT_FORMAT", "4.15"), ("UNPROCESSABLE_ENTITY", "4.22"),
    ("TOO_MANY_REQUESTS", "4.29"),
    ("INTERNAL_SERVER_ERROR", "5.00"), ("NOT_IMPLEMENTED", "5.01"),
    ("BAD_GATEWAY", "5.02"), ("SERVICE_UNAVAILABLE", "5.03"),
    ("GATEWAY_TIMEOUT", "5.04"), ("PROXYING_NOT_SUPPORTED", "5.05"),
    ("HOP_LIMIT_REACHED", "5.08"),
)


def _number(dotted):
    return (int(dotted[0]) << 5) | int(dotted[2:])


def test_well_known_numbers():
    assert codes.GET == 1
    assert codes.CONTENT == 69
    assert codes.NOT_FOUND == 132
    assert codes.INTERNAL_SERVER_ERROR == 160


def test_code_constants_match_registry():
    for name, dotted in CODES:
        assert getattr(codes, name) == _number(dotted), name


def test_dotted():
    assert codes.dotted(69) == "2.05"
    assert codes.dotted(0) == "0.00"
    assert codes.dotted(1) == "0.01"
    assert codes.dotted(95) == "2.31"
    assert codes.dotted(132) == "4.04"
    assert codes.dotted(255) == "7.31"
    for name, dotted in CODES:
        assert codes.dotted(_number(dotted)) == dotted, name


def test_parse_dotted():
    assert codes.parse("2.05") == 69
    assert codes.parse("0.01") == 1
    assert codes.parse("4.04") == 132
    assert codes.parse("7.31") == 255
    assert codes.parse("2.06") == 70  # unregistered but well-formed
    for name, dotted in CODES:
        assert codes.parse(dotted) == _number(dotted), dotted


def test_parse_names():
    assert codes.parse("content") == 69
    assert codes.parse("CONTENT") == 69
    assert codes.parse("get") == 1
    assert codes.parse("not_found") == 132
    assert codes.parse("Not Found") == 132
    assert codes.parse("not-found") == 132
    assert codes.parse(" ipatch ") == 7
    for name, dotted in CODES:
        assert codes.parse(name) == _number(dotted), name


def test_parse_decimal():
    assert codes.parse("69") == 69
    assert codes.parse("0") == 0


def test_parse_bad_strings_raise_value_error():
    for text in ("", "2.5", "2.005", "8.00", "2.32", "x.05", "2.xx", "2.",
                 ".05", "256", "-1", "CONTENTS", "2-05", "2,05"):
        support.raises(ValueError, codes.parse, text)


def test_name():
    assert codes.name(69) == "CONTENT"
    assert codes.name(1) == "GET"
    assert codes.name(70) == "2.06"
    for name, dotted in CODES:
        assert codes.name(_number(dotted)) == name


def test_request_response_classes():
    assert codes.is_request(codes.GET)
    assert codes.is_request(codes.IPATCH)
    assert not codes.is_request(codes.EMPTY)
    assert not codes.is_request(codes.CONTENT)
    assert codes.is_response(codes.CONTENT)
    assert codes.is_response(codes.NOT_FOUND)
    assert codes.is_response(codes.HOP_LIMIT_REACHED)
    assert not codes.is_response(codes.GET)
    assert not codes.is_response(codes.EMPTY)
    assert codes.is_success(codes.CHANGED)
    assert not codes.is_success(codes.NOT_FOUND)


# -- Content-Format -----------------------------------------------------------

FORMATS = (
    (0, "text/plain;charset=utf-8"),
    (40, "application/link-format"),
    (41, "application/xml"),
    (42, "application/octet-stream"),
    (47, "application/exi"),
    (50, "application/json"),
    (60, "application/cbor"),
    (110, "application/senml+json"),
    (112, "application/senml+cbor"),
)


def test_content_format_constants():
    assert codes.TEXT_PLAIN == 0
    assert codes.LINK_FORMAT == 40
    assert codes.XML == 41
    assert codes.OCTET_STREAM == 42
    assert codes.EXI == 47
    assert codes.JSON == 50
    assert codes.CBOR == 60
    assert codes.SENML_JSON == 110
    assert codes.SENML_CBOR == 112


def test_media_type_by_number():
    for number, media in FORMATS:
        assert codes.media_type(number) == media, number
    assert codes.media_type(9999) is None


def test_content_format_by_media_type():
    for number, media in FORMATS:
        assert codes.content_format(media) == number, media


def test_content_format_short_forms():
    assert codes.content_format("json") == 50
    assert codes.content_format("link-format") == 40
    assert codes.content_format("senml+cbor") == 112
    assert codes.content_format("text/plain") == 0
    assert codes.content_format("text") == 0
    assert codes.content_format("Application/JSON") == 50
    assert codes.content_format("60") == 60
    assert codes.content_format("65535") == 65535


def test_content_format_unknown_raises_value_error():
    for text in ("", "application/nope", "65536", "text/html"):
        support.raises(ValueError, codes.content_format, text)
