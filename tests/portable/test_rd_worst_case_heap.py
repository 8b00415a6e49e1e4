# The heap a Resource Directory built with the library defaults
# (ResourceDirectory(server): 16 registrations, 32 links, 1 KB of payload,
# 128 link attributes, 8 endpoint attributes, 4 per host) holds when four
# hosts fill its table with the largest registrations each shape allows: a
# board can be the RD for a few others, and what they send must not take
# the heap its own work needs. docs/micropython.md quotes the figures.
#
# Measured in the MicroPython VM (32-bit, as boards are), where the harness
# collects garbage between test functions: each step is a test, and a
# shape's figure is what removing its 16 registrations gave back (the
# registrants' own EndPoints, which a real RD does not hold, stay out of
# it). CPython runs the same steps (the table must fill as said) and skips
# the figures.
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
import support
from rd_rig import Rig

CREATED = 65
# At most, for 16 registrations of any one shape: 3 KB a registration (the
# largest, `both`, measured 46,320 B; before the RD kept its links as text,
# 32 links alone held 105 KB).
LIMIT = 48 * 1024

S = {"hosts": 0}


def heap():
    h = support.heap_now()
    return None if h is None else h - S["base"]


def links_32(i):
    # max_links links, 4 attributes each (the max_link_attrs budget), in
    # most of max_payload: each parsed link held about 200 B.
    links = ",".join('</s/%02d>;rt=t%d;if=s%d;ct=%d;obs' % (k, i, k, k) for k in range(32))
    return links.encode(), []


def attrs_128(i):
    # One link with max_link_attrs distinct valueless attributes: the most
    # items a registration can hold.
    names = b"".join(b";" + bytes([97 + k % 26, 97 + k // 26]) for k in range(128))
    return b"</a%d>" % i + names, []


def endpoint_attrs(i):
    # max_attrs endpoint attributes with long values, in what a datagram
    # leaves beside a small payload.
    return b"</a>", ["x%d=%s%d" % (k, "v" * 110, i) for k in range(8)]


def both(i):
    # The two together: the links in Block1 blocks (RFC 7959), each block
    # carrying the query.
    return links_32(i)[0], endpoint_attrs(i)[1]


def fill(shape):
    # 16 registrations of `shape`, 4 from each of 4 new hosts (max_per_source).
    rig = S["rig"]
    for h in range(4):
        S["hosts"] += 1
        src = rig.net.endpoint(("10.0.%d.1" % S["hosts"], 5683))
        for j in range(4):
            i = 4 * h + j
            payload, query = shape(i)
            name = "node-%02d-" % i + "n" * 54  # 63 bytes, the most ep may have
            r = rig.request("post", "/rd", payload, ["ep=" + name] + query, 40, src,
                            block_size=64 if shape is both else None)
            assert r is not None and r.code == CREATED, (shape, i, r)
    rd = rig.rd
    assert len(rd.registrations()) == rd.max_registrations == 16, rd.registrations()


def empty():
    rd = S["rig"].rd
    for reg in rd.registrations():
        rd.remove(reg)
    assert rd.registrations() == [], rd.registrations()


def test_0_start():
    S["base"] = support.heap_now()
    S["rig"] = Rig(seed=5)
    # What a lookup loads (link matching, serialize) loaded before any figure.
    assert S["rig"].lookup("res")[0] == 69


def test_1_links():
    fill(links_32)


def test_2_links_removed():
    S["links_full"] = heap()
    assert len(S["rig"].rd.registrations()[0].links) == 32
    empty()


def test_3_attrs():
    S["links_empty"] = heap()
    fill(attrs_128)


def test_4_attrs_removed():
    S["attrs_full"] = heap()
    (link,) = S["rig"].rd.registrations()[0].links
    assert len(link.attrs) == 128, link
    empty()


def test_5_endpoint_attrs():
    S["attrs_empty"] = heap()
    fill(endpoint_attrs)


def test_6_endpoint_attrs_removed():
    S["ep_full"] = heap()
    assert len(S["rig"].rd.registrations()[0].attrs) == 8
    empty()


def test_7_both():
    S["ep_empty"] = heap()
    fill(both)


def test_8_both_removed():
    S["both_full"] = heap()
    reg = S["rig"].rd.registrations()[0]
    assert len(reg.links) == 32 and len(reg.attrs) == 8, reg
    empty()


def test_9_figures():
    S["both_empty"] = heap()
    if not support.IS_MICROPYTHON:
        raise support.Skip("the heap is measured in the MicroPython VM")
    if support.RUNTIME != "webassembly":
        raise support.Skip("figures for a board (32-bit) come from the VM")
    held = [(k, S[k + "_full"] - S[k + "_empty"]) for k in ("links", "attrs", "ep", "both")]
    print("RD worst case, 16 registrations held in bytes (32-bit):",
          " ".join("%s %d" % kv for kv in held))
    for k, n in held:
        assert 0 < n <= LIMIT, held


# The lookup answer the RD keeps for the Block2 requests that read it
# (lookup_cache: 1 answer, with the defaults): a resource lookup of the
# whole table, filled again as in `both`. Measured after the table's
# figures: the lookup client's own copy of the answer stays in the heap
# and would count in them. The figure is what dropping the kept answer,
# and nothing else, gives back.


def _vm_or_cpython():
    # The unix port's small heap, fragmented by the steps before, runs out
    # in the fake network's buffers here; its figures are not the board's.
    if support.IS_MICROPYTHON and support.RUNTIME != "webassembly":
        raise support.Skip("figures for a board (32-bit) come from the VM")


def test_a_lookup_fill():
    _vm_or_cpython()
    fill(both)


def test_b_lookup():
    _vm_or_cpython()
    code, text = S["rig"].lookup("res")
    assert code == 69 and len(text) > 16 * 1024, (code, len(text))
    S["answer_bytes"] = len(text)


def test_c_kept():
    _vm_or_cpython()
    S["kept"] = heap()
    S["rig"].rd.drop_answers()


def test_d_kept_figure():
    if not support.IS_MICROPYTHON:
        raise support.Skip("the heap is measured in the MicroPython VM")
    _vm_or_cpython()
    kept = S["kept"] - heap()
    print("RD worst case, the lookup answer kept for Block2 (32-bit): %d bytes held for a "
          "%d-byte answer" % (kept, S["answer_bytes"]))
    # Its bytes, its ETag and the entry, no more.
    assert 0 < kept <= S["answer_bytes"] + 512, (kept, S["answer_bytes"])
