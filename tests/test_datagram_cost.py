"""What one datagram can make a server do: no request costs more per option
(or per path segment, per query) than a small, fixed amount, whatever the
options are; so no datagram costs more than a small multiple of a plain
request of its size.

Counted, not timed: the lines of coapy_micro that run (sys.settrace), on
CPython. Regression: each unknown option was looked up by walking the
table of registered options, so a GET with 570 unknown elective options
cost 100 times a plain one; a path of many segments that matched nothing
was made into strings only to say 4.04.
"""
from fakenet import ROGUE, SERVER, Net
from linecount import counted
from coapy_micro.connection import Message
from coapy_micro.message import encode_options
from coapy_micro.options import Option
from coapy_micro.server import Resource, Server

GET, CONTENT, NOT_FOUND = 1, 69, 132
# Lines of the stack's code one more option may cost, at most: two walks of
# the option cursor (decode's check and the server's reading) and what the
# server does with the option. A walk of the 24 registered options for each
# unknown one, as before, cost 100.
PER_OPTION = 64


class Rig:
    def __init__(self):
        self.net = Net()
        self.ep = self.net.endpoint(SERVER)
        self.srv = Server(self.ep)
        self.srv.add("x", Resource(get=lambda r: (CONTENT, b"ok")))
        self.rogue = self.net.socket(ROGUE)
        self.tid = 0x100

    def cost(self, options):
        """Lines run to serve one CON GET with these options, and its answer."""
        self.tid += 1
        head = bytes((0x41, GET, self.tid >> 8, self.tid & 255, 0x55))
        data = head + encode_options(options)
        assert len(data) <= 1152, len(data)
        n = len(self.net.log)
        self.rogue.sendto(data, SERVER)
        _, k = counted(self.srv.process, 0)
        (sent,) = [e[3] for e in self.net.log[n:] if e[1] == SERVER]
        return k, Message.decode(sent)[1].code


def test_unknown_elective_options_cost_a_small_fixed_amount_each():
    rig = Rig()
    rig.cost([Option(11, "x")])  # warm: caches made
    plain, code = rig.cost([Option(11, "x")])
    assert code == CONTENT, code
    # 570 options numbered 2048, 2050, ...: even (elective), registered nowhere.
    junk = [Option(11, "x")] + [Option(2048 + 2 * i) for i in range(570)]
    heavy, code = rig.cost(junk)
    assert code == CONTENT, code  # ignored, as RFC 7252 §5.4.1 says
    assert heavy - plain <= 570 * PER_OPTION, (plain, heavy, (heavy - plain) / 570)


def test_repeated_registered_options_cost_a_small_fixed_amount_each():
    rig = Rig()
    rig.cost([Option(11, "x")])
    plain, _ = rig.cost([Option(11, "x")])
    # ETag: registered, elective, repeatable.
    heavy, code = rig.cost([Option(4, b"e")] * 300 + [Option(11, "x")])
    assert code == CONTENT, code
    assert heavy - plain <= 300 * PER_OPTION, (plain, heavy, (heavy - plain) / 300)


def test_a_long_unknown_path_costs_a_small_fixed_amount_per_segment():
    rig = Rig()
    rig.cost([Option(11, "nothing")])
    plain, code = rig.cost([Option(11, "nothing")])
    assert code == NOT_FOUND, code
    heavy, code = rig.cost([Option(11, "s%d" % (i % 10)) for i in range(350)])
    assert code == NOT_FOUND, code
    assert heavy - plain <= 350 * PER_OPTION, (plain, heavy, (heavy - plain) / 350)


def test_many_queries_cost_a_small_fixed_amount_each():
    rig = Rig()
    rig.cost([Option(11, "x"), Option(15, "a=1")])
    plain, _ = rig.cost([Option(11, "x"), Option(15, "a=1")])
    heavy, code = rig.cost([Option(11, "x")] + [Option(15, "q=%d" % (i % 10)) for i in range(250)])
    assert code == CONTENT, code
    assert heavy - plain <= 250 * PER_OPTION, (plain, heavy, (heavy - plain) / 250)
