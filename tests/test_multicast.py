"""All-CoAP-Nodes groups on real sockets (RFC 7252 §12.8): joining them with
the multicast module's helpers and receiving through a registered socket.

IPv4 multicast works over loopback here; Linux's loopback interface carries
no IPv6 multicast, so for ff02::fd / ff05::fd the join itself is checked.
"""
import socket

from coapy_micro.connection import EndPoint, Message
from coapy_micro.multicast import (ALL_COAP_NODES_V4, ALL_COAP_NODES_V6, ipv6_bytes, join_group,
                                   join_group_v6)
from interop import free_udp_port as free_port


def _group_socket(family, group, port):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((group, port))
    return s


def test_ipv4_group_joined_and_received_through_the_registered_socket():
    port = free_port()
    ep = EndPoint()
    ep.bind(("127.0.0.1", port))
    group = _group_socket(socket.AF_INET, ALL_COAP_NODES_V4, port)
    join_group(group, ALL_COAP_NODES_V4, "127.0.0.1")
    ep.register(group)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    try:
        sender.sendto(Message(Message.NON, 1, token=b"mc", uri_path="hello").encode(7),
                      (ALL_COAP_NODES_V4, port))
        rx = ep.process(2000)
        assert rx is not None, "nothing arrived through the group"
        assert rx.sock is group and rx.sock is not ep.socket
        assert [o.value for o in rx.message.findOptions(11)] == ["hello"]
        # Answers leave from the primary socket (coapy's API), to the sender.
        ep.send(Message(Message.NON, 69, b"hi", rx.message.token), rx.remote)
        ep.process(0)
        sender.settimeout(2)
        data, src = sender.recvfrom(1500)
        assert src == ("127.0.0.1", port)
        assert Message.decode(data)[1].payload == b"hi"
    finally:
        sender.close()
        ep.close()


def test_ipv6_all_coap_nodes_groups_can_be_joined():
    assert ALL_COAP_NODES_V6 == ("ff02::fd", "ff05::fd")
    s = _group_socket(socket.AF_INET6, "::", free_port())
    try:
        for g in ALL_COAP_NODES_V6:
            join_group_v6(s, g, socket.if_nametoindex("lo"))
    finally:
        s.close()


def test_ipv6_group_address_bytes():
    assert ipv6_bytes("ff02::fd") == socket.inet_pton(socket.AF_INET6, "ff02::fd")
    assert ipv6_bytes("ff05::fd") == socket.inet_pton(socket.AF_INET6, "ff05::fd")
    assert ipv6_bytes("2001:db8::2:1") == socket.inet_pton(socket.AF_INET6, "2001:db8::2:1")
