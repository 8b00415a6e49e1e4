"""SenML (RFC 8428) records from CoAP payloads, in JSON.

    recs = records(b"21.5", 0, "node-7/", "sensors/temp", 1716200000.25)
    # [{"bn": "node-7/", "n": "sensors/temp", "bt": 1716200000.25, "v": 21.5}]
    dumps(recs)

One CoAP representation (a notification, a response) becomes one SenML
pack. By Content-Format:
- text/plain (0) or none: a number becomes "v", true/false "vb", any other
  text "vs";
- JSON (50): a number, boolean or string likewise; anything else "vs" with
  the JSON text;
- SenML JSON (110): the node's own records, resolved (§4.6: base name,
  time, unit, value and sum applied), times relative to now (below 2**28,
  §4.5.3) made absolute with `now`; a record without a name gets
  base + name; a pack that is not valid SenML is kept as "vd";
- anything else (CBOR, octet-stream...): "vd", the bytes in base64url
  without padding (§5).

Names: bn + n must use only A-Z a-z 0-9 - : . / _ and start with a letter
or digit (§4.5.1); clean_name() replaces anything else with '_'.

Portable (the json module is on every MicroPython port); host gateways use it
for every reading, so the common case (a number in text) is short.
"""
import json

__all__ = ("records", "dumps", "clean_name", "number", "SenMLError")

_REL_LIMIT = 268435456  # 2**28: smaller times are relative to now (§4.5.3)


class SenMLError(ValueError):
    """A SenML JSON pack that breaks RFC 8428."""


def clean_name(text):
    """text with every character SenML names do not allow replaced by '_',
    and a leading '_' first if it does not start with a letter or digit."""
    out = []
    for c in text:
        if "a" <= c <= "z" or "A" <= c <= "Z" or "0" <= c <= "9" or c in "-:./_":
            out.append(c)
        else:
            out.append("_")
    s = "".join(out)
    if not s or not ("a" <= s[0] <= "z" or "A" <= s[0] <= "Z" or "0" <= s[0] <= "9"):
        s = "x" + s
    return s


def number(text):
    """The int or float a text value stands for (surrounding white space
    allowed), or None: not a number, or not a finite one (JSON has no NaN
    or infinity)."""
    t = text.strip()
    if t:
        c = t[0]
        if "0" <= c <= "9" or c == "-" or c == "+" or c == ".":
            try:
                return int(t)
            except ValueError:
                pass
            try:
                v = float(t)
            except ValueError:
                return None
            if v == v and v not in (float("inf"), float("-inf")):
                return v
    return None


def _value(text, rec):
    # Put the value of a text or JSON scalar into rec; True if done.
    t = text.strip()
    if t == "true" or t == "false":
        rec["vb"] = t == "true"
        return True
    v = number(t)
    if v is not None:
        rec["v"] = v
        return True
    return False


def _b64url(data):
    try:
        import binascii

        s = binascii.b2a_base64(data)
    except ImportError:  # pragma: no cover - every port has binascii
        import ubinascii

        s = ubinascii.b2a_base64(data)
    s = str(s, "ascii").strip().rstrip("=")
    return s.replace("+", "-").replace("/", "_")


# What decoding a node's JSON may raise, besides a result that is not
# SenML: bad JSON (ValueError), JSON nested past the decoder's depth (a
# payload of a few thousand '[': RecursionError on CPython, RuntimeError on
# MicroPython, one catches both) or past a board's heap (MemoryError), a
# float base plus an integer of hundreds of digits (OverflowError on
# CPython). A representation that raises one is kept as data ("vd"), never
# let out to the caller's loop.
_REFUSED = (ValueError, RuntimeError, MemoryError, OverflowError, SenMLError)


def records(payload, content_format, base_name, name, now):
    """The SenML pack (a list of dicts) for one representation: `payload`
    (bytes) in `content_format` (int or None), named base_name + name,
    measured at `now` (seconds since 1970, float)."""
    rec = {"bn": base_name, "n": name, "bt": now}
    cf = content_format
    if cf == 110:
        try:
            return resolve(json.loads(payload), base_name + name, now)
        except _REFUSED:
            pass  # kept as data below
    elif cf is None or cf == 0 or cf == 50:
        try:
            text = str(payload, "utf-8")
        except ValueError:
            text = None
        if text is not None:
            if cf == 50:
                try:
                    v = json.loads(text)
                except _REFUSED:
                    v = text
                if isinstance(v, bool):
                    rec["vb"] = v
                elif isinstance(v, (int, float)):  # upy-ok: bools were taken just above
                    if v == v and v not in (float("inf"), float("-inf")):
                        rec["v"] = v
                    else:
                        rec["vs"] = text
                elif isinstance(v, str):
                    rec["vs"] = v
                else:
                    rec["vs"] = text
                return [rec]
            if not _value(text, rec):
                rec["vs"] = text
            return [rec]
    rec["vd"] = _b64url(bytes(payload))
    return [rec]


def resolve(pack, fallback_name, now):
    """The resolved records (RFC 8428 §4.6) of a decoded SenML JSON pack:
    every record with its full name, absolute time and value; base values
    and sums applied. A record without a name is named fallback_name.
    Raises SenMLError when the pack is not a list of records."""
    if not isinstance(pack, list):
        raise SenMLError("a SenML pack is a JSON array")
    bn = ""
    bt = 0
    bu = None
    bv = 0
    bs = 0
    out = []
    for r in pack:
        if not isinstance(r, dict):
            raise SenMLError("a SenML record is a JSON object")
        for k in r:
            if k[-1:] == "_":
                # §4.4: a field ending in '_' must be understood; we do not.
                raise SenMLError("unknown must-understand field %r" % k)
        if "bn" in r:
            bn = _text(r["bn"])
        if "bt" in r:
            bt = _num(r["bt"])
        if "bu" in r:
            bu = _text(r["bu"])
        if "bv" in r:
            bv = _num(r["bv"])
        if "bs" in r:
            bs = _num(r["bs"])
        name = bn + _text(r.get("n", ""))
        t = _finite(bt + _num(r.get("t", 0)))
        if t < _REL_LIMIT:
            t = now + t
        res = {"n": name or fallback_name, "t": t}
        u = r.get("u", bu)
        if u is not None:
            res["u"] = _text(u)
        n = 0
        if "v" in r:
            res["v"] = _finite(bv + _num(r["v"]))
            n += 1
        elif "bv" in r and "vs" not in r and "vb" not in r and "vd" not in r and "s" not in r:
            res["v"] = bv
            n += 1
        for k in ("vs", "vd"):
            if k in r:
                res[k] = _text(r[k])
                n += 1
        if "vb" in r:
            if not isinstance(r["vb"], bool):
                raise SenMLError("vb must be true or false")
            res["vb"] = r["vb"]
            n += 1
        if "s" in r:
            res["s"] = _finite(bs + _num(r["s"]))
        if n > 1:
            raise SenMLError("a record has one value at most")
        if "ut" in r:
            res["ut"] = _num(r["ut"])
        if n or "s" in res:
            out.append(res)
    return out


def _num(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):  # upy-ok: bool refused first
        raise SenMLError("not a number: %r" % (v,))
    return _finite(v)


def _finite(v):
    # JSON has no infinity or NaN (RFC 8259 §6), so a SenML pack holds
    # none (RFC 8428 §4.3), but a decoder reads 1e999 as infinity, and a
    # base value plus a value can overflow. Either would be written back
    # out as "Infinity", which is not JSON: refused, so the representation
    # is kept as data.
    if v != v or v in (float("inf"), float("-inf")):
        raise SenMLError("not a finite number: %r" % (v,))
    return v


def _text(v):
    if not isinstance(v, str):
        raise SenMLError("not a string: %r" % (v,))
    return v


def dumps(pack):
    """The pack as compact JSON text."""
    try:
        return json.dumps(pack, separators=(",", ":"))
    except TypeError:  # MicroPython's json takes no separators
        return json.dumps(pack)
