# A Resource Directory and nodes on the fake network, shared by the RD tests.
# Portable: CPython (pytest) and the MicroPython VM (run.mjs copies it to /lib).
from fakenet import Net
from coapy_micro.client import Client
from coapy_micro.options import Option
from coapy_micro.rd import Registrar
from coapy_micro.rd_server import ResourceDirectory
from coapy_micro.server import Resource, Server

RD = ("10.0.0.1", 5683)
RD_URI = "coap://10.0.0.1"


class Rig:
    """An RD at 10.0.0.1:5683 (rd_kw: ResourceDirectory arguments), nodes
    made by node(), and a lookup client at 10.0.0.9."""

    def __init__(self, seed=1, **rd_kw):
        self.net = Net(seed)
        self.gw_ep = self.net.endpoint(RD)
        self.gw = Server(self.gw_ep)
        self.events = []
        if "on_change" not in rd_kw:
            rd_kw["on_change"] = self._changed
        self.rd = ResourceDirectory(self.gw, **rd_kw)
        self.nodes = []  # [EndPoint, Server, Registrar or None]
        self.cep = self.net.endpoint(("10.0.0.9", 5683))
        self.client = Client(self.cep)

    def _changed(self, event, reg):
        self.events.append((event, reg.ep))

    def node(self, addr, resources=(("sensors/temp", True),), **reg_kw):
        """A node at addr serving the given (path, observable) resources;
        with reg_kw, a Registrar with those arguments too (ep required)."""
        ep = self.net.endpoint(addr)
        srv = Server(ep)
        for path, obs in resources:
            srv.add(path, Resource(get=lambda r: (69, b"1"), rt="temperature-c" if obs else None,
                                   obs=obs, ct=0))
        reg = Registrar(srv, **reg_kw) if reg_kw else None
        self.nodes.append([ep, srv, reg])
        return srv, reg

    def on_rx(self, ep, rx):
        if ep is self.gw_ep:
            self.rd.handle(rx)
            return
        if ep is self.cep:
            self.client.handle(rx)
            return
        for n in self.nodes:
            if n[0] is ep:
                if n[2] is None or not n[2].handle(rx):
                    n[1].handle(rx)
                return

    def run(self, ms, step=100):
        """Run the network for ms, ticking the RD and the registrars."""
        end = self.net.now + ms
        while self.net.now < end:
            self.net.run(min(step, end - self.net.now), self.on_rx)
            self.rd.tick()
            for n in self.nodes:
                if n[2] is not None:
                    n[2].tick()
            self.client.process(0)

    def request(self, method, path, payload=b"", query=(), content_format=None, src=None,
                max_ms=60000, block_size=None):
        """One request to the RD (from the lookup client, or from the node
        EndPoint `src`): its Response (or None on timeout)."""
        client = self.client
        if src is not None:
            client = Client(src)
            self._extra = client
        opts = [Option(15, q) for q in query]
        h = client.start(method, RD_URI + path, payload, content_format, options=opts,
                         timeout_ms=max_ms, block_size=block_size)
        end = self.net.now + max_ms + 1000

        def on_rx(ep, rx):
            if client.handle(rx):
                return
            self.on_rx(ep, rx)

        while not h.done and self.net.now < end:
            self.net.run(50, on_rx)
            client.process(0)
            self.rd.tick()
        return h.response

    def register(self, ep_name, links=b"</t>;rt=temperature", query=(), src=None, cf=40):
        """POST /rd?ep=NAME&query... from src (a node EndPoint; default: a
        fresh one per name)."""
        if src is None:
            src = self.net.endpoint(("10.0.1.%d" % (len(self.net.pairs) % 250 + 1), 5683))
        q = list(query)
        if ep_name is not None:
            q.insert(0, "ep=" + ep_name)
        return self.request("post", "/rd", links, q, cf if links else None, src)

    def lookup(self, kind, *query):
        r = self.request("get", "/rd-lookup/" + kind, b"", query)
        return r.code, str(r.payload, "utf-8")


def location(resp):
    return "/" + "/".join(o.value for o in resp.message.findOptions(8))
