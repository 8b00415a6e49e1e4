"""Names of CoAP codes and Content-Formats, for display and for parsing
what people type: the functions coapy_micro.codes offers by name
(`codes.name(69)`), kept apart from its constants so that a node which only
uses the constants does not load these tables.
"""

# The code constants' names, and each name's number in the same order (one
# string and one bytes: a table of pairs would cost an object per pair on a
# board). They are the names and numbers of coapy_micro.codes' constants;
# tests/portable/test_codes.py checks both against the registry.
_CODE_NAMES = (
    "EMPTY GET POST PUT DELETE FETCH PATCH IPATCH CREATED DELETED VALID CHANGED"
    " CONTENT CONTINUE BAD_REQUEST UNAUTHORIZED BAD_OPTION FORBIDDEN NOT_FOUND"
    " METHOD_NOT_ALLOWED NOT_ACCEPTABLE REQUEST_ENTITY_INCOMPLETE CONFLICT"
    " PRECONDITION_FAILED REQUEST_ENTITY_TOO_LARGE UNSUPPORTED_CONTENT_FORMAT"
    " UNPROCESSABLE_ENTITY TOO_MANY_REQUESTS INTERNAL_SERVER_ERROR NOT_IMPLEMENTED"
    " BAD_GATEWAY SERVICE_UNAVAILABLE GATEWAY_TIMEOUT PROXYING_NOT_SUPPORTED"
    " HOP_LIMIT_REACHED"
)
_CODE_NUMBERS = (
    b"\x00\x01\x02\x03\x04\x05\x06\x07"  # 0.00-0.07
    b"\x41\x42\x43\x44\x45\x5f"  # 2.01-2.05, 2.31
    b"\x80\x81\x82\x83\x84\x85\x86"  # 4.00-4.06
    b"\x88\x89\x8c\x8d\x8f\x96\x9d"  # 4.08, 4.09, 4.12, 4.13, 4.15, 4.22, 4.29
    b"\xa0\xa1\xa2\xa3\xa4\xa5\xa8"  # 5.00-5.05, 5.08
)


def is_request(code):
    return 1 <= code <= 31


def is_response(code):
    return 64 <= code <= 191


def is_success(code):
    return code >> 5 == 2


def dotted(code):
    """69 -> '2.05'."""
    d = code & 31
    return "%d.%s%d" % (code >> 5, "0" if d < 10 else "", d)


def name(code):
    """69 -> 'CONTENT'; an unregistered code gives its dotted form."""
    for i in range(len(_CODE_NUMBERS)):
        if _CODE_NUMBERS[i] == code:
            return _CODE_NAMES.split()[i]
    return dotted(code)


def parse(text):
    """'2.05', 'CONTENT', 'content', 'get' or '69' -> 69. ValueError otherwise."""
    t = text.strip().upper().replace("-", "_").replace(" ", "_")
    names = _CODE_NAMES.split()
    if t in names:
        return _CODE_NUMBERS[names.index(t)]
    dot = t.find(".")
    if dot > 0:
        cls, det = t[:dot], t[dot + 1:]
        if cls.isdigit() and det.isdigit() and len(det) == 2:
            c, d = int(cls), int(det)
            if c < 8 and d < 32:
                return c << 5 | d
    elif t.isdigit() and int(t) < 256:
        return int(t)
    raise ValueError("unknown CoAP code %r" % text)


# Content-Format number and media type, a line each (one string, as above).
_FORMATS = """0 text/plain;charset=utf-8
16 application/cose;cose-type="cose-encrypt0"
17 application/cose;cose-type="cose-mac0"
18 application/cose;cose-type="cose-sign1"
40 application/link-format
41 application/xml
42 application/octet-stream
47 application/exi
50 application/json
51 application/json-patch+json
52 application/merge-patch+json
60 application/cbor
61 application/cwt
62 application/multipart-core
63 application/cbor-seq
110 application/senml+json
111 application/sensml+json
112 application/senml+cbor
113 application/sensml+cbor
114 application/senml-exi
115 application/sensml-exi
256 application/coap-group+json
310 application/senml+xml
311 application/sensml+xml
10000 application/vnd.ocf+cbor
11542 application/vnd.oma.lwm2m+tlv
11543 application/vnd.oma.lwm2m+json"""


def _formats():
    # (number, media type) for each line of _FORMATS.
    for line in _FORMATS.split("\n"):
        sp = line.find(" ")
        yield int(line[:sp]), line[sp + 1:]


def media_type(number):
    """40 -> 'application/link-format'; None for an unregistered number."""
    for n, t in _formats():
        if n == number:
            return t
    return None


def content_format(text):
    """'application/json', 'json', 'text/plain' or '50' -> 50. ValueError otherwise.

    A bare subtype ('json', 'link-format', 'senml+cbor') and 'text/plain' without
    its charset are accepted because that is what people type on a command line.
    """
    t = text.strip().lower().replace(" ", "")
    if t.isdigit():
        n = int(t)
        if n < 65536:
            return n
    if t == "text/plain" or t == "text":
        return 0
    for n, m in _formats():
        if m == t or m[m.find("/") + 1:] == t:
            return n
    raise ValueError("unknown Content-Format %r" % text)
