# coapy_micro.connection on a MicroPython without `socket`. Portable: CPython
# (pytest) and the MicroPython VM. This file must NOT import fakenet, which
# installs a stand-in socket module.
#
# Regression: the module once imported `socket` unconditionally and used its
# constants as default arguments, so it failed to import without one.


def test_connection_imports_without_a_socket_module():
    import coapy_micro.connection as connection

    assert connection.EndPoint is not None
