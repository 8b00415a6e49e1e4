# coapy_micro.connection on a MicroPython without `socket`. Portable: CPython
# (pytest) and the MicroPython VM. This file must NOT import fakenet, which
# installs a stand-in socket module.
#
# Regression: the module once imported `socket` unconditionally and used its
# constants as default arguments, so it failed to import without one.


def test_connection_imports_without_a_socket_module():
    import coapy_micro.connection as connection

    assert connection.EndPoint is not None


def test_the_transmission_side_is_still_importable_from_connection():
    # TransmissionRecord, CapacityError and is_multicast live in
    # transactions.py (loaded at an EndPoint's first send); coapy's
    # connection module exported them, and still does, through its
    # module __getattr__.
    from coapy_micro import transactions
    from coapy_micro.connection import CapacityError, TransmissionRecord, is_multicast

    assert TransmissionRecord is transactions.TransmissionRecord
    assert CapacityError is transactions.CapacityError
    assert is_multicast(("224.0.1.187", 5683)) and not is_multicast(("10.0.0.1", 5683))
    try:
        from coapy_micro.connection import NoSuchName  # noqa: F401
    except (ImportError, AttributeError):
        # (CPython turns the module __getattr__'s AttributeError into an
        # ImportError; MicroPython lets it through as it is.)
        pass
    else:
        raise AssertionError("a name connection does not have was imported")
