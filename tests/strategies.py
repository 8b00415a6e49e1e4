"""Hypothesis strategies for CoAP options, shared by the codec property
tests (test_codec_properties.py) and the aiocoap cross-check
(test_codec_aiocoap.py). CPython only.

- REGISTERED: the option classes of every registered number we know;
- option_value(cls): valid Python values of a registered option class;
- unknown_number(), unknown_value(): numbers nobody registered, and opaque
  values for them, with the RFC 7252 §3.1 boundaries (13/14, 268/269/270)
  turning up often.
"""
from hypothesis import HealthCheck, strategies as st

from coapy_micro import options
from coapy_micro.options import EMPTY, STRING, UINT

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])

REGISTERED = [options.option_class(n) for n in
              (1, 3, 4, 5, 6, 7, 8, 9, 11, 12, 14, 15, 16, 17, 20, 23, 27, 28,
               35, 39, 60, 252, 258, 292)]
REGISTERED_NUMBERS = {c.number for c in REGISTERED}
BY_NUMBER = {c.number: c for c in REGISTERED}

# Text whose characters all encode to UTF-8 (no lone surrogates).
CHARS = st.characters(exclude_categories=("Cs",))


def utf8_text(lo, hi, max_chars=80):
    """Text of `lo` to `hi` UTF-8 bytes (at most max_chars characters drawn):
    draw characters, then keep the longest prefix that fits (a character is
    1-4 bytes)."""
    def fit(s):
        out = ""
        for ch in s:
            if len((out + ch).encode()) > hi:
                break
            out += ch
        return out

    return (st.text(CHARS, min_size=lo, max_size=min(hi, max_chars)).map(fit)
            .filter(lambda s: len(s.encode()) >= lo))


def option_value(cls, max_chars=80):
    """Valid Python values of a registered option class."""
    lo, hi = cls.min_len, cls.max_len
    if cls.number in (23, 27):
        return st.tuples(st.integers(0, (1 << 20) - 1), st.booleans(), st.integers(0, 7))
    if cls.format == EMPTY:
        return st.just(b"")
    if cls.format == UINT:
        low = 0 if lo == 0 else 1 << (8 * (lo - 1))
        return st.integers(low, (1 << (8 * hi)) - 1)
    if cls.format == STRING:
        return utf8_text(lo, hi, max_chars)
    return st.binary(min_size=lo, max_size=hi)


# Numbers and lengths at the RFC 7252 §3.1 boundaries (12/13, 268/269/270)
# turn up often, not by luck: a first option's delta is its number.
BOUNDARY_NUMBERS = (13, 14, 268, 269, 270, 271, 282, 283, 537, 538, 539, 65534, 65535)
BOUNDARY_LENGTHS = (12, 13, 14, 267, 268, 269, 270, 271)


def unknown_number():
    """Option numbers nobody registered (as far as we know)."""
    return st.one_of(st.integers(0, 65535), st.sampled_from(BOUNDARY_NUMBERS)).filter(
        lambda n: n not in REGISTERED_NUMBERS)


def unknown_value(short=20, long=(260, 700)):
    """Opaque values: short ones, long ones (crossing the 269 length
    boundary) and ones of exactly a boundary length."""
    return st.one_of(
        st.binary(max_size=short),
        st.binary(min_size=long[0], max_size=long[1]),
        st.sampled_from(BOUNDARY_LENGTHS).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    )
