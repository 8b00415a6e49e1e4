"""`coapy gateway` end to end, on loopback, with real peers: MicroPython unix
port nodes (tests/rd_node.py under `micropython`), mosquitto as the broker
(ours, on an ephemeral port) and mosquitto_sub as the subscriber.

- 20 nodes register; the subscriber receives every reading as SenML, the
  store holds them, every endpoint is online; a reading published to a /set
  topic reaches the node as a PUT and the outcome comes back;
- the broker is stopped for 5 s while the nodes keep reading: nothing is
  lost, the readings arrive after the reconnect;
- the gateway restarts: the store keeps what it had, the registrations are
  still known (nobody registers again) and the observations resume;
- two gateways on one broker, the nodes split between them: every reading
  arrives once, and each node's state comes from the gateway it registered
  with.

Every wait polls for a condition up to a generous deadline (a busy 2-core
machine is slow, not wrong).
"""
import json
import sqlite3

import pytest

from interop import LOOPBACK, coap_client, free_udp_port
from coapy_micro.link import parse
from rdpeers import Subscriber, micropython, publish, start_gateway, start_node, wait_until

COUNT = 20  # readings per node after the first (0)


def _temps(messages, ep):
    # The values of ep's /sensors/temp readings, in arrival order.
    out = []
    for topic, payload in messages:
        if topic == "coap/%s/sensors/temp" % ep:
            (rec,) = json.loads(payload)
            assert rec["bn"] == ep + "/" and rec["n"] == "sensors/temp", rec
            assert isinstance(rec["bt"], float) and rec["bt"] > 1.6e9, rec
            out.append(rec["v"])
    return out


def _db_counts(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        return dict(con.execute("SELECT ep, COUNT(*) FROM readings WHERE path = 'sensors/temp' "
                                "GROUP BY ep").fetchall())
    finally:
        con.close()


def _statuses(messages):
    # The latest $status of each endpoint.
    out = {}
    for topic, payload in messages:
        if topic.endswith("/$status"):
            out[topic.split("/")[1]] = json.loads(payload)
    return out


@pytest.fixture
def procs():
    started = []
    yield started
    for p in started:
        p.kill()


def test_twenty_micropython_nodes_end_to_end(tmp_path, broker, procs):
    micropython()
    sub = Subscriber(broker, "coap/#", tmp_path / "sub.log")
    procs.append(sub.proc)
    db = tmp_path / "gw.db"
    gw = start_gateway(tmp_path / "gw.log", db=db, broker=broker)
    procs.append(gw)
    names = ["node%02d" % i for i in range(20)]
    nodes = {}
    for name in names:
        nodes[name] = start_node(tmp_path / (name + ".log"), gw.port, name, count=COUNT,
                                 every_ms=250, seconds=90, lt=30)
        procs.append(nodes[name])
    want = list(range(COUNT + 1))
    wait_until(lambda: all(sorted(_temps(sub.messages(), n)) == want for n in names), 90,
               what="every reading of every node at the subscriber")
    msgs = sub.messages()
    for n in names:
        assert _temps(msgs, n) == want, (n, _temps(msgs, n))  # once each, in order
    # All registered (the RD's endpoint lookup, asked with libcoap's client).
    eps = parse(coap_client("coap://%s:%d/rd-lookup/ep" % (LOOPBACK, gw.port)))
    assert sorted(lk.get("ep") for lk in eps) == names, eps
    st = _statuses(msgs)
    assert all(st[n]["status"] == "online" for n in names), st
    # The store has every reading too.
    wait_until(lambda: _db_counts(db) == {n: COUNT + 1 for n in names}, 30,
               what="every reading in SQLite")
    # A command: the LED of node07.
    publish(broker, "coap/node07/led/set", "1")
    wait_until(lambda: "led 1" in nodes["node07"].text(), 30, what="the PUT at node07")
    wait_until(lambda: ("coap/node07/led/set/result", '{"code":"2.04"}') in sub.messages(), 30,
               what="the outcome of the PUT")
    wait_until(lambda: any(t == "coap/node07/led" and json.loads(p)[0].get("v") == 1
                           for t, p in sub.messages()), 30, what="the LED's new reading")
    assert all("led 1" not in nodes[n].text() for n in names if n != "node07")
    # The gateway's own state is retained; nothing went wrong inside it.
    assert any(t.startswith("coap/$gateway/coapy-gw-") and p == "online" for t, p in msgs), msgs
    assert gw.terminate() == 0
    assert "Traceback" not in gw.text(), gw.text()


def test_broker_outage_loses_no_reading(tmp_path, broker, procs):
    micropython()
    sub = Subscriber(broker, "coap/+/sensors/temp", tmp_path / "sub.log", "outage-sub")
    procs.append(sub.proc)
    gw = start_gateway(tmp_path / "gw.log", db=tmp_path / "gw.db", broker=broker)
    procs.append(gw)
    names = ["out%d" % i for i in range(6)]
    count = 40  # 10 s of readings, one every 250 ms
    for name in names:
        procs.append(start_node(tmp_path / (name + ".log"), gw.port, name, count=count,
                                every_ms=250, seconds=120, lt=60))
    wait_until(lambda: all(len(_temps(sub.messages(), n)) >= 8 for n in names), 60,
               what="the first readings")
    broker.stop()  # SIGTERM: the broker process ends
    gone = {n: len(_temps(sub.messages(), n)) for n in names}
    wait_until(lambda: "mqtt: disconnected" in gw.text(), 20, what="the gateway noticing")
    import time

    time.sleep(5)  # the outage itself: 5 s without a broker
    assert broker.start(), "the broker did not come back on its port"
    # mosquitto_sub gives up when the broker goes: start it again, same
    # session (its subscription and queued messages are in the broker's store).
    if not sub.proc.alive():
        sub2 = Subscriber(broker, "coap/+/sensors/temp", tmp_path / "sub2.log", "outage-sub")
        procs.append(sub2.proc)
    else:
        sub2 = None

    def every():
        msgs = sub.messages() + (sub2.messages() if sub2 is not None else [])
        return all(sorted(set(_temps(msgs, n))) == list(range(count + 1)) for n in names)

    wait_until(every, 90, what="every reading after the broker came back")
    msgs = sub.messages() + (sub2.messages() if sub2 is not None else [])
    for n in names:
        # Readings taken during the outage came after it, late but complete.
        assert len(_temps(msgs, n)) >= count + 1 > gone[n], (n, gone[n])
    assert "mqtt: connected" in gw.text().split("mqtt: disconnected", 1)[1], gw.text()
    assert gw.terminate() == 0 and "Traceback" not in gw.text(), gw.text()


def test_gateway_restart_keeps_the_store_and_observations_resume(tmp_path, broker, procs):
    micropython()
    sub = Subscriber(broker, "coap/+/sensors/temp", tmp_path / "sub.log", "restart-sub")
    procs.append(sub.proc)
    db = tmp_path / "gw.db"
    port = free_udp_port()
    gw = start_gateway(tmp_path / "gw.log", port=port, db=db, broker=broker)
    procs.append(gw)
    names = ["rs%d" % i for i in range(4)]
    nodes = [start_node(tmp_path / (n + ".log"), port, n, count=400, every_ms=250, seconds=150,
                        lt=10) for n in names]
    procs.extend(nodes)
    wait_until(lambda: all(c >= 6 for c in _db_counts(db).values()) and len(_db_counts(db)) == 4,
               60, what="readings stored before the restart")
    assert gw.terminate() == 0, gw.text()
    before = _db_counts(db)
    updated = [p.text().count("event updated") for p in nodes]
    gw2 = start_gateway(tmp_path / "gw2.log", port=port, db=db, broker=broker)
    procs.append(gw2)
    assert "4 registrations restored" in gw2.text(), gw2.text()
    # Observations resume: new readings land in the same store and on MQTT.
    wait_until(lambda: all(_db_counts(db).get(n, 0) >= before[n] + 8 for n in names), 60,
               what="readings after the restart")
    after = _db_counts(db)
    assert all(after[n] > before[n] for n in names), (before, after)
    # The nodes never had to register again: the restarted RD knew them,
    # and their updates (every 7.5 s) were answered 2.04.
    wait_until(lambda: all(p.text().count("event updated") > u for p, u in zip(nodes, updated)),
               40, what="an update accepted by the restarted gateway")
    for p in nodes:
        assert p.text().count("event registered") == 1, p.text()
        assert "event lost" not in p.text(), p.text()
    assert gw2.terminate() == 0 and "Traceback" not in gw2.text(), gw2.text()


def test_two_gateways_one_broker_every_reading_once_from_its_owner(tmp_path, broker, procs):
    micropython()
    sub = Subscriber(broker, "coap/#", tmp_path / "sub.log", "scale-sub")
    procs.append(sub.proc)
    gws = []
    for i in range(2):
        g = start_gateway(tmp_path / ("gw%d.log" % i), db=tmp_path / ("gw%d.db" % i),
                          broker=broker, extra=["--client-id", "gw%d" % i])
        procs.append(g)
        gws.append(g)
    owner = {}
    for i in range(10):
        name = "so%d" % i
        g = i % 2
        owner[name] = "gw%d" % g
        procs.append(start_node(tmp_path / (name + ".log"), gws[g].port, name, count=COUNT,
                                every_ms=200, seconds=90))
    want = list(range(COUNT + 1))
    wait_until(lambda: all(sorted(_temps(sub.messages(), n)) == want for n in owner), 60,
               what="every reading at the subscriber")
    msgs = sub.messages()
    for n in owner:
        assert _temps(msgs, n) == want, (n, _temps(msgs, n))  # exactly once each
    st = _statuses(msgs)
    assert {n: st[n]["gateway"] for n in owner} == owner, st
    for i, g in enumerate(gws):
        mine = {n for n, o in owner.items() if o == "gw%d" % i}
        wait_until(lambda: _db_counts(tmp_path / ("gw%d.db" % i)) == {n: COUNT + 1 for n in mine},
                   30, what="gw%d's store holding its own nodes' readings only" % i)
    for g in gws:
        assert g.terminate() == 0 and "Traceback" not in g.text(), g.text()
