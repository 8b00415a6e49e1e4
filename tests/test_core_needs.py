"""What the Resource Directory side needs from the core, as tests that fail
until the core has it (strict: once it does, these fail as XPASS, to say
that coapy_micro.rd should switch to it).

- Server.link_format(query=None): the resource tree in link-format (RFC
  6690), as /.well-known/core serves it, filtered by a discovery query.
  The registration payload (RFC 9176 §5) is exactly that without the query;
  until it exists, coapy_micro.rd.links_payload() builds it from
  Server.resources() and link.serialize().
"""
import pytest

from coapy_micro.connection import EndPoint
from coapy_micro.rd import links_payload
from coapy_micro.server import Resource, Server


@pytest.mark.xfail(not hasattr(Server, "link_format"), strict=True,
                   reason="Server.link_format() is being added to the core")
def test_server_link_format_gives_the_registration_payload():
    ep = EndPoint()
    try:
        srv = Server(ep)
        srv.add("sensors/temp", Resource(get=lambda r: (69, b"1"), rt="temperature-c", ct=0,
                                         obs=True))
        srv.add("a b", Resource(get=lambda r: (69, b"1")))
        assert srv.link_format() == links_payload(srv)
        assert srv.link_format(["rt=temp*"]) == '</sensors/temp>;rt="temperature-c";ct=0;obs'
    finally:
        ep.close()
