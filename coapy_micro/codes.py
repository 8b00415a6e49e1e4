"""CoAP method and response codes (RFC 7252 §12.1, RFC 8132, 7959, 8516, 8768)
and Content-Format numbers (RFC 7252 §12.3 and the IANA registry).

A code is one byte: class in the top 3 bits, detail in the low 5, written
"c.dd" (2.05 is 0x45 = 69). Names are plain constants so `codes.CONTENT` costs
nothing at run time; the module itself holds about 1.3 KB of a board's heap
(its 48 names), which a node that names two codes can spare by writing them
as numbers (ports/common/node_app.py does).

name(), parse(), dotted(), is_request(), is_response(), is_success(),
media_type() and content_format() are here too (`codes.name(69)`), but live
with their tables in code_names.py, loaded the first time one is named: a
node that only answers with these constants does not hold them (about
2.4 KB of heap on a board).
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


def __getattr__(name):
    # Called only for names not defined above (PEP 562; MicroPython's module
    # __getattr__ too): the functions of code_names.py.
    from . import code_names

    return getattr(code_names, name)
