# The RD's lookup budget: a lookup (RFC 9176 §6) is charged the links it
# examined, against a token bucket per source host and one all hosts share;
# beyond it a lookup is answered 5.03 with Max-Age (RFC 7252 §5.9.3.4). One
# host flooding whole-table lookups must not take the CPU from the others,
# nor may many source addresses, and a normal client never notices it.
# Time is the fake network's: the RD reads its clock.
# Portable: CPython (pytest) and the MicroPython VM.
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
import support  # noqa: F401
from rd_rig import Rig
from coapy_micro.link import parse

CREATED, CONTENT, UNAVAILABLE = 65, 69, 163


def _fill(rig, n=16, links=32):
    # n registrations of `links` links each, 4 per host (max_per_source):
    # the whole table, with the defaults.
    for i in range(n):
        src = rig.net.endpoint(("10.0.1.%d" % (i // 4 + 1), 6000 + i))
        body = ",".join("</s/%02d>;rt=t%d;if=s;obs" % (k, i) for k in range(links))
        r = rig.register("n%02d" % i, body.encode(), [], src)
        assert r.code == CREATED, (i, r)


def _whole(rig, src=None, page=0):
    # A lookup that examines every link and answers one (not kept): the
    # costliest kind. `page` varies the query.
    r = rig.request("get", "/rd-lookup/res", query=["count=1", "page=%d" % (511 - page)],
                    src=src)
    return r


def _max_age(r):
    return r.message.get_uint(14)


def test_a_flooding_host_is_refused_while_another_is_answered():
    rig = Rig()  # 16 x 32 links: a host's bucket is one whole-table lookup
    _fill(rig)
    rd = rig.rd
    codes = []
    for i in range(6):
        # One host, each request from a port of its own: the budget is the host's.
        src = rig.net.endpoint(("10.0.0.66", 7000 + i))
        r = _whole(rig, src, i)
        codes.append(r.code)
        if r.code == UNAVAILABLE:
            # The time until the bucket holds a link again: at most one
            # lookup in debt, 513 links at 513 per 4 s.
            assert 1 <= _max_age(r) <= 4, _max_age(r)
    # The first lookup empties the bucket; what it gained in the 50 ms the
    # request took (6 links) lets one more in, which leaves it in debt.
    assert codes[:2] == [CONTENT] * 2 and codes[2:] == [UNAVAILABLE] * 4, codes
    assert rd.lookup_capacity == 16 * 32 + 1, rd.lookup_capacity
    assert rd.lookups_refused == 4 and rd.rejected == 4, (rd.lookups_refused, rd.rejected)
    # Another host is answered, the lookup client's (10.0.0.9) and another.
    r = _whole(rig)
    assert r.code == CONTENT and len(parse(r.payload)) == 1, r
    r = _whole(rig, rig.net.endpoint(("10.0.0.67", 5683)))
    assert r.code == CONTENT, r
    assert rd.lookups_refused == 4, rd.lookups_refused


def test_a_lookup_may_leave_debt_and_max_age_says_when_it_is_paid():
    # A bucket smaller than one lookup: the lookup is served (a large one is
    # never refused for ever) and leaves the host 413 links in debt.
    rig = Rig(lookup_capacity=100, lookup_refill_ms=4000, lookup_global=None)
    _fill(rig)
    src = rig.net.endpoint(("10.0.0.66", 5683))
    assert _whole(rig, src).code == CONTENT
    r = _whole(rig, src, 1)
    # 414 links at 100 per 4 s: 16.56 s, less the few ms the requests took.
    assert r.code == UNAVAILABLE and _max_age(r) == 17, (r, _max_age(r))
    rig.run(15000)
    r = _whole(rig, src, 2)
    assert r.code == UNAVAILABLE and _max_age(r) in (1, 2), (r, _max_age(r))
    rig.run(2000)
    assert _whole(rig, src, 3).code == CONTENT
    # In debt again, by 513 less the 12 links 17 s gave beyond the debt: a
    # cheap lookup (ep=: 1 a registration and the links of one) waits
    # 502 x 40 ms.
    r = rig.request("get", "/rd-lookup/res", query=["ep=n03"], src=src)
    assert r.code == UNAVAILABLE and _max_age(r) == 20, (r, _max_age(r))
    # Refills with time: after Max-Age, answered again.
    rig.run(_max_age(r) * 1000)
    r = rig.request("get", "/rd-lookup/res", query=["ep=n03"], src=src)
    assert r.code == CONTENT and len(parse(r.payload)) == 32, r


def test_cycling_source_addresses_cannot_exceed_the_global_budget():
    rig = Rig()  # the global bucket: 4 x 513 links, refilled in 4 s
    _fill(rig)
    rd = rig.rd
    start = rig.net.now
    served = 0
    most = 0
    for i in range(40):
        r = _whole(rig, rig.net.endpoint(("10.0.2.%d" % (i + 1), 5683)), i)
        assert r.code in (CONTENT, UNAVAILABLE), r
        if r.code == CONTENT:
            served += 1
        else:
            assert 1 <= _max_age(r) <= 4, _max_age(r)
        most = max(most, len(getattr(rd, "_buckets", ())))
    elapsed = rig.net.now - start
    # Each served lookup cost 513 links: the global bucket's 2052, what it
    # gained in the time taken, and one lookup in debt at most.
    bound = (4 * 513 + 4 * 513 * elapsed // 4000) // 513 + 1
    assert 4 <= served <= bound and served < 40, (served, bound, elapsed)
    assert rd.lookups_refused == 40 - served, rd.lookups_refused
    # The hosts' table stayed within lookup_hosts.
    assert most <= rd.lookup_hosts == 16, most
    # A new host is no better off: it gets what the global bucket holds.
    r = _whole(rig, rig.net.endpoint(("10.0.3.1", 5683)))
    assert r.code == UNAVAILABLE, r
    # Refilled with time.
    rig.run(4000)
    assert _whole(rig, rig.net.endpoint(("10.0.3.1", 5683))).code == CONTENT


def test_the_hosts_table_stays_bounded_and_full_buckets_go():
    rig = Rig(lookup_hosts=3, lookup_global=None)
    _fill(rig, 4)  # 4 x 32 links
    rd = rig.rd
    for i in range(10):
        src = rig.net.endpoint(("10.0.2.%d" % (i + 1), 5683))
        r = rig.request("get", "/rd-lookup/res", query=["count=1", "page=%d" % (100 + i)],
                        src=src)
        assert r.code == CONTENT, (i, r)
        assert len(rd._buckets) <= 3, rd._buckets
    assert len(rd._buckets) == 3, rd._buckets
    # Filled up again, a bucket says nothing a new one would not: tick()
    # drops it.
    rig.run(4000)
    assert rd._buckets == [], rd._buckets


def test_a_normal_client_never_sees_503():
    rig = Rig()
    _fill(rig)
    rd = rig.rd
    # Resource and endpoint lookups with filters and paging, one of them
    # (href) examining every link of the table: a lookup a second.
    queries = (("res", ["rt=t3"]), ("ep", ["ep=n05"]), ("res", ["if=s", "count=10", "page=0"]),
               ("res", ["if=s", "count=10", "page=1"]), ("res", ["if=s", "count=10", "page=2"]),
               ("ep", ["et=none"]), ("res", ["href=/s/07"]), ("res", ["count=5"]),
               ("ep", ["rt=t1*", "count=4"]), ("ep", ["if=s", "count=3", "page=1"]))
    for _ in range(3):  # a few rounds
        for kind, q in queries:
            r = rig.request("get", "/rd-lookup/" + kind, query=q)
            assert r.code == CONTENT, (q, r)
            rig.run(1000)
    assert rd.lookups_refused == 0 and rd.rejected == 0, (rd.lookups_refused, rd.rejected)


def test_block2_continuations_of_a_kept_answer_are_not_refused():
    # The first block costs the whole lookup and leaves the host in debt;
    # the blocks after it come from the kept answer, at ~1 each.
    rig = Rig(lookup_capacity=50, lookup_global=None)
    _fill(rig, 4)  # 4 x 32 links: about 4 KB of answer
    rd = rig.rd
    r = rig.request("get", "/rd-lookup/res")
    assert r.code == CONTENT and len(parse(r.payload)) == 128, r
    assert len(r.payload) > 3 * 1024, len(r.payload)
    assert rd.lookups_refused == 0, rd.lookups_refused
    # The host is in debt: another lookup is refused, the kept one is read
    # again (from its first block).
    r2 = rig.request("get", "/rd-lookup/res", query=["rt=t1"])
    assert r2.code == UNAVAILABLE and _max_age(r2) >= 6, (r2, _max_age(r2))
    r3 = rig.request("get", "/rd-lookup/res")
    assert r3.code == CONTENT and r3.payload == r.payload, r3
    assert rd.lookups_refused == 1, rd.lookups_refused


def test_no_budget_when_the_rate_is_none():
    rig = Rig(lookup_refill_ms=None)
    _fill(rig)
    for i in range(8):
        assert _whole(rig, rig.net.endpoint(("10.0.0.66", 5683)), i).code == CONTENT
    assert rig.rd.lookups_refused == 0
