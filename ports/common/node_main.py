"""What a board's main.py does with the node: join the network, serve,
and reset the board rather than sit at the REPL when something fails.

    import node_main
    node_main.start(config, read_c, join=..., reset=machine.reset)

config is the user's config.py (COAP_PORT, WATCHDOG_MS, RD_URI, RD_EP,
RD_LT_S, ...; see config.example.py): with RD_URI the node registers with
that Resource Directory. Ctrl-C at the REPL (KeyboardInterrupt) stops the node
and leaves you at the prompt; anything else that ends the node resets the
board after restart_delay_ms, so a node in a cupboard comes back by itself.
"""
import sys
import time

import node_app


def _sleep_ms(ms):
    time.sleep(ms / 1000)


def _print_exception(e):
    pe = getattr(sys, "print_exception", None)  # MicroPython
    if pe is not None:
        pe(e)


def start(config, read_c=None, join=None, reset=None, watchdog=None, log=print,
          host="0.0.0.0", restart_delay_ms=5000, sleep_ms=_sleep_ms):
    """Serve the node on (join() or `host`, config.COAP_PORT) until
    interrupted.

    join: joins the network and returns the address to serve on (raises
    OSError when it cannot). reset: resets the board (machine.reset); None
    (the unix port) re-raises instead. watchdog: a factory taking a timeout
    in ms (machine.WDT-like: an object with feed()), started once the
    network is up when config.WATCHDOG_MS is set, and fed by the loop.
    """
    port = getattr(config, "COAP_PORT", 5683)
    try:
        if join is not None:
            host = join()
        wdt_ms = getattr(config, "WATCHDOG_MS", 0)
        feed = None
        if wdt_ms and watchdog is not None:
            feed = watchdog(wdt_ms).feed
        node_app.run((host, port), read_c, log, feed=feed,
                     rd=getattr(config, "RD_URI", None), ep_name=getattr(config, "RD_EP", None),
                     lt_s=getattr(config, "RD_LT_S", None))
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 (a node must come back, whatever it was)
        log("main: the node stopped: %r" % (e,))
        _print_exception(e)
        if reset is None:
            raise
        log("main: resetting in %d ms" % restart_delay_ms)
        sleep_ms(restart_delay_ms)
        reset()
