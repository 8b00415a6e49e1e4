"""Resource Directory interop on loopback with peers nobody here wrote.

Our RD (coapy_micro.rd_server, in a thread) with aiocoap's client and
libcoap's coap-client-notls as registrants and lookup clients: they register,
find themselves by endpoint and resource lookup with filters and paging,
update and remove; aiocoap as a server registers by simple registration
(the RD reads its /.well-known/core).

Our node side (coapy_micro.rd) at aiocoap's RD (aiocoap-rd), on CPython in
this process and on the MicroPython unix port: it finds the registration
resource with rt=core.rd*, registers, and stays registered across a restart
of the RD (its update gets 4.04 and it registers again).

Also multicast RD discovery through All-CoAP-Nodes on loopback.
"""
import asyncio
import socket

import pytest

from coapy_micro.client import Client
from coapy_micro.connection import EndPoint
from coapy_micro.multicast import ALL_COAP_NODES_V4, join_group
from coapy_micro.link import parse
from coapy_micro.rd import Registrar
from coapy_micro.rd_server import ResourceDirectory
from coapy_micro.server import Resource, Server
from interop import LOOPBACK, BackgroundLoop, coap_client, free_udp_port, need_aiocoap
from rdpeers import aiocoap_rd, micropython, start_aiocoap_rd, start_node, wait_until

LINKS = '</sensors/temp>;rt="temperature-c";obs,</sensors/hum>;rt="humidity";obs,</led>;if="actuator"'


class RDLoop(BackgroundLoop):
    """Our RD on 127.0.0.1 (an ephemeral port) in a thread."""

    def __init__(self, **kw):
        self.ep = EndPoint(max_in_flight=64, dedup_size=256, max_message_size=4096)
        self.ep.bind((LOOPBACK, 0))
        self.port = self.ep.socket.getsockname()[1]
        self.uri = "coap://%s:%d" % (LOOPBACK, self.port)
        self.srv = Server(self.ep)
        self.rd = ResourceDirectory(self.srv, **kw)
        self.start()

    def loop(self, stopped):
        while not stopped():
            self.rd.process(20)


@pytest.fixture
def rd():
    loop = RDLoop(max_registrations=32, max_per_source=8)
    yield loop
    loop.stop()


def _aio(coro_fn):
    aiocoap = need_aiocoap()

    async def run():
        ctx = await aiocoap.Context.create_client_context()
        try:
            return await asyncio.wait_for(coro_fn(aiocoap, ctx), 60)
        finally:
            await ctx.shutdown()

    return asyncio.run(run())


def test_aiocoap_registers_and_finds_itself(rd):
    async def scenario(aiocoap, ctx):
        async def req(code, uri, payload=b"", cf=None):
            m = aiocoap.Message(code=code, uri=uri, payload=payload)
            if cf is not None:
                m.opt.content_format = cf
            return await ctx.request(m).response

        out = {}
        r = await req(aiocoap.POST, rd.uri + "/rd?ep=aionode&lt=300&et=aio-sensor",
                      LINKS.encode(), 40)
        out["register"] = (r.code, tuple(r.opt.location_path))
        loc = "/" + "/".join(r.opt.location_path)
        for name, q in (("ep", "/rd-lookup/ep?ep=aionode"),
                        ("ep_et", "/rd-lookup/ep?et=aio-*"),
                        ("ep_by_link", "/rd-lookup/ep?rt=humidity"),
                        ("res_rt", "/rd-lookup/res?ep=aionode&rt=temp*"),
                        ("res_all", "/rd-lookup/res?ep=aionode"),
                        ("res_page", "/rd-lookup/res?ep=aionode&page=1&count=2"),
                        ("res_count", "/rd-lookup/res?ep=aionode&count=1"),
                        ("bad_page", "/rd-lookup/res?page=1")):
            r = await req(aiocoap.GET, rd.uri + q)
            out[name] = (r.code, r.payload.decode(), r.opt.content_format)
        r = await req(aiocoap.POST, rd.uri + loc + "?lt=600")
        out["update"] = r.code
        r = await req(aiocoap.DELETE, rd.uri + loc)
        out["delete"] = r.code
        r = await req(aiocoap.GET, rd.uri + "/rd-lookup/ep?ep=aionode")
        out["after"] = r.payload.decode()
        return out, aiocoap

    out, aiocoap = _aio(scenario)
    code, location = out["register"]
    assert code == aiocoap.CREATED and location[0] == "rd" and len(location) == 2, out
    # aiocoap's own link-format parser reads our lookup results.
    from aiocoap.util.linkformat import parse as aio_parse

    code, text, cf = out["ep"]
    assert code == aiocoap.CONTENT and cf == 40, out["ep"]
    (link,) = aio_parse(text).links
    assert link.href == "/rd/" + location[1], link
    attrs = dict(link.attr_pairs)
    assert attrs["ep"] == "aionode" and attrs["lt"] == "300" and attrs["et"] == "aio-sensor"
    base = attrs["base"]
    assert base.startswith("coap://127.0.0.1:"), base  # aiocoap's own address (§5)
    assert "aionode" in out["ep_et"][1] and "aionode" in out["ep_by_link"][1], out
    assert out["res_rt"][1] == '<%s/sensors/temp>;rt="temperature-c";obs' % base, out["res_rt"]
    every = [lk.href for lk in aio_parse(out["res_all"][1]).links]
    assert every == [base + "/sensors/temp", base + "/sensors/hum", base + "/led"], every
    assert [lk.href for lk in aio_parse(out["res_page"][1]).links] == every[2:], out["res_page"]
    assert [lk.href for lk in aio_parse(out["res_count"][1]).links] == every[:1]
    assert out["bad_page"][0] == aiocoap.BAD_REQUEST, out["bad_page"]
    assert out["update"] == aiocoap.CHANGED and out["delete"] == aiocoap.DELETED, out
    assert out["after"] == "", out["after"]


def test_libcoap_registers_and_finds_itself(rd):
    port = free_udp_port()  # coap-client's own port: the base it registers with
    base = "coap://127.0.0.1:%d" % port
    got = coap_client("-m", "post", "-t", "40", "-p", str(port), "-e", LINKS,
                      rd.uri + "/rd?ep=libnode&lt=120&d=lab")
    assert got == "", got  # 2.01 with no payload: coap-client prints nothing
    got = coap_client(rd.uri + "/rd-lookup/ep?ep=libnode")
    (link,) = parse(got)
    assert link.get("ep") == "libnode" and link.get("d") == "lab", got
    assert link.get("base") == base and link.get("lt") == "120", got
    assert coap_client(rd.uri + "/rd-lookup/res?ep=libnode&rt=temp*") == (
        '<%s/sensors/temp>;rt="temperature-c";obs' % base)
    assert coap_client(rd.uri + "/rd-lookup/res?d=lab&if=actuator") == (
        '<%s/led>;if="actuator"' % base)
    assert coap_client(rd.uri + "/rd-lookup/res?ep=libnode&obs&page=1&count=1") == (
        '<%s/sensors/hum>;rt="humidity";obs' % base)
    assert coap_client(rd.uri + "/rd-lookup/res?ep=libnode&count=0") == ""
    # Bad requests: libcoap prints the code on stderr.
    assert coap_client("-m", "post", "-t", "40", "-e", "</x>", rd.uri + "/rd?lt=60") \
        .startswith("4.00"), "no ep"
    assert coap_client(rd.uri + "/rd-lookup/ep?page=2").startswith("4.00")
    assert coap_client(rd.uri + "/rd/00000000").startswith("4.04")
    # Removal by the location the lookup gave.
    assert coap_client("-m", "delete", rd.uri + link.target) == ""
    assert coap_client(rd.uri + "/rd-lookup/ep?ep=libnode") == ""


def test_aiocoap_server_uses_simple_registration(rd):
    aiocoap = need_aiocoap()
    import aiocoap.resource as resource

    port = free_udp_port()

    class Temp(resource.Resource):
        rt = "temperature-c"

        async def render_get(self, request):
            return aiocoap.Message(payload=b"21.5")

    async def run():
        site = resource.Site()
        site.add_resource([".well-known", "core"],
                          resource.WKCResource(site.get_resources_as_linkheader))
        site.add_resource(["sensors", "temp"], Temp())
        ctx = await aiocoap.Context.create_server_context(site, bind=(LOOPBACK, port))
        try:
            req = aiocoap.Message(code=aiocoap.POST,
                                  uri=rd.uri + "/.well-known/rd?ep=aiosimple&lt=300")
            r = await asyncio.wait_for(ctx.request(req).response, 30)
            return r.code
        finally:
            await ctx.shutdown()

    code = asyncio.run(run())
    assert code == aiocoap.CHANGED, code  # 2.04 once the RD read the links (§5.1)
    got = coap_client(rd.uri + "/rd-lookup/res?ep=aiosimple")
    targets = [lk.target for lk in parse(got)]
    assert "coap://127.0.0.1:%d/sensors/temp" % port in targets, got


def _lookup_ep(rd_port, ep):
    # aiocoap-rd's endpoint lookup (found with rt=core.rd-lookup-ep), with
    # our client: the links of registrations named ep.
    c = Client()
    try:
        base = "coap://%s:%d" % (LOOPBACK, rd_port)
        r = c.request("get", base + "/.well-known/core?rt=core.rd-lookup-ep", timeout_ms=10000)
        (link,) = parse(r.payload)
        r = c.request("get", base + link.target + "?ep=" + ep, timeout_ms=10000)
        return parse(r.payload)
    finally:
        c.close()


class NodeLoop(BackgroundLoop):
    """A CPython node with a Registrar, its loop in a thread."""

    def __init__(self, rd_uri, ep, multicast_if=None, **kw):
        self.ep = EndPoint()
        self.ep.bind((LOOPBACK, 0))
        if multicast_if is not None:  # send group requests out of this interface
            self.ep.socket.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                      socket.inet_aton(multicast_if))
        self.port = self.ep.socket.getsockname()[1]
        self.srv = Server(self.ep)
        self.srv.add("sensors/temp", Resource(get=lambda r: (69, b"20"), rt="temperature-c",
                                              obs=True, ct=0))
        self.events = []
        self.reg = Registrar(self.srv, ep, rd=rd_uri,
                             on_event=lambda r, e, d: self.events.append((e, d)), **kw)
        self.start()

    def loop(self, stopped):
        while not stopped():
            self.reg.process(20)


def test_our_node_registers_at_aiocoap_rd_and_survives_its_restart(tmp_path):
    need_aiocoap()
    with aiocoap_rd(tmp_path / "rd.log") as (port, proc):
        node = NodeLoop("coap://%s:%d" % (LOOPBACK, port), "coapy-node", lt_s=4,
                        timeout_ms=2000, retry_ms=500, max_retry_ms=2000)
        try:
            wait_until(lambda: node.reg.registered, 30, what="the first registration")
            assert node.events[0] == ("discovered", "coap://127.0.0.1:%d/resourcedirectory/"
                                      % port), node.events
            (link,) = wait_until(lambda: _lookup_ep(port, "coapy-node"), 20)
            assert link.get("base") == "coap://127.0.0.1:%d" % node.port, link
            wait_until(lambda: node.reg.updates >= 1, 30, what="an update before lt ran out")
            proc.kill()  # the RD restarts, and forgets everything
            again = None
            for _ in range(3):
                again = start_aiocoap_rd(port, tmp_path / "rd2.log")
                if again is not None:
                    break
            assert again is not None, "aiocoap-rd did not restart on its port"
            try:
                wait_until(lambda: node.reg.registrations >= 2, 40,
                           what="a registration at the restarted RD")
                assert ("lost", "update answered 4.04") in node.events, node.events
                (link,) = wait_until(lambda: _lookup_ep(port, "coapy-node"), 20)
                assert link.get("base") == "coap://127.0.0.1:%d" % node.port, link
            finally:
                again.kill()
        finally:
            node.stop()


def test_micropython_node_registers_at_aiocoap_rd_and_survives_its_restart(tmp_path):
    need_aiocoap()
    micropython()
    with aiocoap_rd(tmp_path / "rd.log") as (port, proc):
        nport = free_udp_port()
        node = start_node(tmp_path / "node.log", port, "upy-node", port=nport, lt=4,
                          timeout_ms=2000, seconds=120, count=0)
        try:
            wait_until(lambda: "event registered" in node.text(), 30,
                       what="the unix port node's registration:\n" + node.text())
            (link,) = wait_until(lambda: _lookup_ep(port, "upy-node"), 20)
            assert link.get("base") == "coap://127.0.0.1:%d" % nport, link
            proc.kill()
            again = None
            for _ in range(3):
                again = start_aiocoap_rd(port, tmp_path / "rd2.log")
                if again is not None:
                    break
            assert again is not None, "aiocoap-rd did not restart on its port"
            try:
                wait_until(lambda: node.text().count("event registered") >= 2, 40,
                           what="a second registration:\n" + node.text())
                assert "event lost update answered 4.04" in node.text(), node.text()
                (link,) = wait_until(lambda: _lookup_ep(port, "upy-node"), 20)
                assert link.get("base") == "coap://127.0.0.1:%d" % nport, link
            finally:
                again.kill()
        finally:
            node.kill()


def test_node_finds_the_rd_through_all_coap_nodes_on_loopback():
    # The RD listens on the group as well as its own address; the node asks
    # the group (on the RD's port: a test cannot take 5683) and registers
    # where the answer came from.
    loop = RDLoop()
    group = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    group.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    group.bind((ALL_COAP_NODES_V4, loop.port))
    join_group(group, ALL_COAP_NODES_V4, LOOPBACK)
    loop.ep.register(group)
    loop.srv.leisure_ms = 200
    node = None
    try:
        node = NodeLoop(None, "mc-node", group="coap://%s:%d" % (ALL_COAP_NODES_V4, loop.port),
                        timeout_ms=5000, multicast_if=LOOPBACK)
        wait_until(lambda: node.reg.registered, 30, what="registration through the group")
        assert node.events[0] == ("discovered", "%s/rd" % loop.uri), node.events
    finally:
        if node is not None:
            node.stop()
        loop.stop()
