"""Block-wise transfer (RFC 7959): what the server's half (server_block.py)
and the client's half (client_block.py) share.

A block option's value is (num, more, szx): block number `num` of
2 ** (szx + 4) bytes, `more` True when further blocks follow (§2.2). SZX 7
is reserved.
"""
from .options import Option


def szx_of(size):
    """The SZX for a block size (16 .. 1024, rounded down to a power of two)."""
    if size < 16:
        raise ValueError("block size below 16: %r" % (size,))
    szx = 0
    while szx < 6 and (32 << szx) <= size:
        szx += 1
    return szx


def block_option(number, num, more, szx):
    """A Block1 (27) or Block2 (23) Option holding (num, more, szx)."""
    return Option(number, (num << 4) | (8 if more else 0) | szx)
