"""CoAP method and response codes (RFC 7252 §12.1, RFC 8132, 7959, 8516, 8768)
and Content-Format numbers (RFC 7252 §12.3 and the IANA registry).

A code is one byte: class in the top 3 bits, detail in the low 5, written
"c.dd" (2.05 is 0x45 = 69). Names are plain constants so `codes.CONTENT` costs
nothing at run time; the name tables are only walked for display and parsing.
"""
from ._compat import const

EMPTY = const(0)

# Methods (class 0)
GET = const(1)
POST = const(2)
PUT = const(3)
DELETE = const(4)
FETCH = const(5)
PATCH = const(6)
IPATCH = const(7)

# Success (class 2)
CREATED = const(65)
DELETED = const(66)
VALID = const(67)
CHANGED = const(68)
CONTENT = const(69)
CONTINUE = const(95)

# Client errors (class 4)
BAD_REQUEST = const(128)
UNAUTHORIZED = const(129)
BAD_OPTION = const(130)
FORBIDDEN = const(131)
NOT_FOUND = const(132)
METHOD_NOT_ALLOWED = const(133)
NOT_ACCEPTABLE = const(134)
REQUEST_ENTITY_INCOMPLETE = const(136)
CONFLICT = const(137)
PRECONDITION_FAILED = const(140)
REQUEST_ENTITY_TOO_LARGE = const(141)
UNSUPPORTED_CONTENT_FORMAT = const(143)
UNPROCESSABLE_ENTITY = const(150)
TOO_MANY_REQUESTS = const(157)

# Server errors (class 5)
INTERNAL_SERVER_ERROR = const(160)
NOT_IMPLEMENTED = const(161)
BAD_GATEWAY = const(162)
SERVICE_UNAVAILABLE = const(163)
GATEWAY_TIMEOUT = const(164)
PROXYING_NOT_SUPPORTED = const(165)
HOP_LIMIT_REACHED = const(168)

# The names above, for display and for parsing names typed by people: one
# string (a table of pairs would cost an object per pair on a board); each
# name's number is its constant in this module.
_CODE_NAMES = (
    "EMPTY GET POST PUT DELETE FETCH PATCH IPATCH CREATED DELETED VALID CHANGED"
    " CONTENT CONTINUE BAD_REQUEST UNAUTHORIZED BAD_OPTION FORBIDDEN NOT_FOUND"
    " METHOD_NOT_ALLOWED NOT_ACCEPTABLE REQUEST_ENTITY_INCOMPLETE CONFLICT"
    " PRECONDITION_FAILED REQUEST_ENTITY_TOO_LARGE UNSUPPORTED_CONTENT_FORMAT"
    " UNPROCESSABLE_ENTITY TOO_MANY_REQUESTS INTERNAL_SERVER_ERROR NOT_IMPLEMENTED"
    " BAD_GATEWAY SERVICE_UNAVAILABLE GATEWAY_TIMEOUT PROXYING_NOT_SUPPORTED"
    " HOP_LIMIT_REACHED"
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
    g = globals()
    for n in _CODE_NAMES.split():
        if g[n] == code:
            return n
    return dotted(code)


def parse(text):
    """'2.05', 'CONTENT', 'content', 'get' or '69' -> 69. ValueError otherwise."""
    t = text.strip().upper().replace("-", "_").replace(" ", "_")
    if t in _CODE_NAMES.split():
        return globals()[t]
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


# Content-Format numbers (media type with parameters -> number).
TEXT_PLAIN = const(0)
LINK_FORMAT = const(40)
XML = const(41)
OCTET_STREAM = const(42)
EXI = const(47)
JSON = const(50)
CBOR = const(60)
SENML_JSON = const(110)
SENML_CBOR = const(112)

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
