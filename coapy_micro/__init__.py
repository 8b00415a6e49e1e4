"""coapy_micro: a CoAP stack (RFC 7252 and companions) for sensor nodes and
gateways, in the Python subset that CPython and MicroPython share.

Import what you use (`from coapy_micro.connection import Message, EndPoint`);
this package file imports nothing so a board pays only for the modules it uses.
"""

__version__ = "0.1.0"
