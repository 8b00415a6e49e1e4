# Who may use an endpoint name at the RD (RFC 9176 §7 leaves it to the RD;
# §7.5): first come, first remembered while alive. The host (address without
# port) that registered a live ep+d owns it: another host's registration of
# that name, update or removal of its registration resource is refused 4.03;
# the owner on any port still replaces, updates and removes it; once it
# expires or is removed the name is free. ResourceDirectory(allow_takeover=
# True) lets any host do it, and what a host takes over counts against its
# max_per_source.
# Portable: CPython (pytest) and the MicroPython VM.
# Rules: module-level `def test_*()` only, asserts show their values, no pytest.
import support  # noqa: F401
from rd_rig import Rig, location
from coapy_micro.link import parse

CREATED, DELETED, CHANGED, CONTENT = 65, 66, 68, 69
FORBIDDEN, NOT_FOUND, UNAVAILABLE = 131, 132, 163


def _victim(rig):
    src = rig.net.endpoint(("10.0.0.5", 40000))
    r = rig.register("victim", b"</sensors/temp>;obs", ["lt=60"], src)
    assert r.code == CREATED, r
    return src, location(r)


def test_another_host_cannot_take_a_live_endpoint_name():
    rig = Rig()
    src, loc = _victim(rig)
    (reg,) = rig.rd.registrations()
    events = list(rig.events)
    other = rig.net.endpoint(("10.0.0.66", 40000))  # another host, even on the same port
    r = rig.register("victim", b"</evil>;obs", [], other)
    assert r.code == FORBIDDEN and b"another host" in r.payload, (r, r.payload)
    assert rig.rd.forbidden == 1 and rig.rd.rejected == 1, (rig.rd.forbidden, rig.rd.rejected)
    assert rig.rd.registrations() == [reg] and rig.events == events, rig.events
    assert reg.base == "coap://10.0.0.5:40000" and reg.text == "</sensors/temp>;obs", reg
    # Its own sector is another name: that one is the other host's to take.
    assert rig.register("victim", b"</x>", ["d=elsewhere"], other).code == CREATED
    # A simple registration (§5.1) of the name is refused the same way.
    r = rig.request("post", "/.well-known/rd", query=["ep=victim"], src=other)
    assert r.code == FORBIDDEN, r
    # The owner, restarted on another port, replaces it in place.
    again = rig.net.endpoint(("10.0.0.5", 40001))
    r = rig.register("victim", b"</sensors/temp>;obs,</led>", [], again)
    assert r.code == CREATED and location(r) == loc, (r, location(r), loc)
    assert reg.base == "coap://10.0.0.5:40001", reg.base
    # Remembered while alive only: once removed, the name is free.
    assert rig.request("delete", loc, src=src).code == DELETED
    assert rig.register("victim", b"</evil>", [], other).code == CREATED


def test_the_name_is_free_once_its_registration_expires():
    rig = Rig()
    _victim(rig)
    other = rig.net.endpoint(("10.0.0.66", 40000))
    assert rig.register("victim", b"</evil>", [], other).code == FORBIDDEN
    rig.run(61000)  # lt=60
    assert ("expire", "victim") in rig.events, rig.events
    assert rig.register("victim", b"</evil>", [], other).code == CREATED


def test_another_host_cannot_update_or_remove_a_registration_it_looked_up():
    rig = Rig()
    src, loc = _victim(rig)
    (reg,) = rig.rd.registrations()
    # The location is no secret: endpoint lookup gives it to anyone.
    code, text = rig.lookup("ep", "ep=victim")
    (link,) = parse(text)
    assert link.target == loc, (link, loc)
    other = rig.net.endpoint(("10.0.0.66", 40000))
    r = rig.request("post", loc, query=["base=coap://10.0.0.66:5683"], src=other)
    assert r.code == FORBIDDEN, r
    r = rig.request("post", loc, src=other)  # a plain update would move the base too (§5.3.1)
    assert r.code == FORBIDDEN, r
    assert rig.request("delete", loc, src=other).code == FORBIDDEN
    assert reg.base == "coap://10.0.0.5:40000" and rig.rd.registrations() == [reg], reg
    assert rig.rd.forbidden == 3, rig.rd.forbidden
    # Reading it is not refused: lookups tell the same.
    assert rig.request("get", loc, src=other).code == CONTENT
    # The owner on another port updates (the base follows, §5.3.1) and removes it.
    again = rig.net.endpoint(("10.0.0.5", 40001))
    assert rig.request("post", loc, src=again).code == CHANGED
    assert reg.base == "coap://10.0.0.5:40001", reg.base
    assert rig.request("delete", loc, src=src).code == DELETED
    assert rig.rd.registrations() == []


def test_allow_takeover_lets_any_host_but_counts_against_its_quota():
    rig = Rig(allow_takeover=True, max_per_source=1)
    src, loc = _victim(rig)
    (reg,) = rig.rd.registrations()
    # A host at its max_per_source cannot add a name by taking one over.
    busy = rig.net.endpoint(("10.0.0.66", 40000))
    assert rig.register("mine", b"</a>", [], busy).code == CREATED
    r = rig.register("victim", b"</evil>", [], busy)
    assert r.code == UNAVAILABLE and r.message.get_uint(14) is not None, r
    assert rig.request("post", loc, src=busy).code == UNAVAILABLE  # nor by an update
    assert reg.host == "10.0.0.5" and reg.base == "coap://10.0.0.5:40000", reg.base
    # A host with room takes it over: the same registration, now its own.
    other = rig.net.endpoint(("10.0.0.77", 40000))
    r = rig.register("victim", b"</new>", [], other)
    assert r.code == CREATED and location(r) == loc, r
    assert reg.host == "10.0.0.77" and reg.base == "coap://10.0.0.77:40000", reg
    assert rig.rd.forbidden == 0, rig.rd.forbidden
    # The first owner is now the other host, and may do the same (it holds none).
    assert rig.request("post", loc, src=src).code == CHANGED
    assert reg.host == "10.0.0.5", reg.host
    assert rig.request("delete", loc, src=busy).code == DELETED


def test_a_registration_restored_without_its_source_goes_to_the_first_that_asks():
    rig = Rig()
    reg = rig.rd.restore("0000aaaa", "old", None, "coap://10.0.0.8", False, 600, 600000, "</a>")
    assert reg.host is None
    first = rig.net.endpoint(("10.0.0.8", 41000))
    assert rig.register("old", b"</b>", [], first).code == CREATED
    assert reg.host == "10.0.0.8", reg.host
    other = rig.net.endpoint(("10.0.0.66", 40000))
    assert rig.register("old", b"</evil>", [], other).code == FORBIDDEN
    # Restored with its source, it is that host's.
    reg2 = rig.rd.restore("0000bbbb", "kept", None, "coap://10.0.0.9", False, 600, 600000,
                          "</a>", source=("10.0.0.9", 5683))
    assert reg2.host == "10.0.0.9", reg2.host
    assert rig.register("kept", b"</evil>", [], other).code == FORBIDDEN
