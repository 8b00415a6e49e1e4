# upy-ok-file: the gateway runs on the host only (CPython: sqlite3, paho-mqtt, processes)
"""The gateway (host only, CPython): `coapy gateway`.

A Resource Directory (coapy_micro.rd_server) that nodes register with; every
registered resource marked `obs` is observed, readings become SenML JSON
(coapy_micro.senml), are kept in SQLite (store.py) and, with --mqtt, published
to an MQTT broker by a separate process (publisher.py, paho-mqtt). gateway.py
ties them together; command.py is the command line.

Never copied to a board: tools/build_board.py compiles coapy_micro/*.py only.
This file imports nothing.
"""
