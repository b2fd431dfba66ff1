"""Pain point 15: messages stuck with no visibility. The worker's status() says what the
modem is doing (state, recovery step, registration, signal, operator, identity, counters,
the last error); alive() goes false if the thread dies, for the systemd watchdog."""

from __future__ import annotations

import json

from test_modem_kit import Sink, part, rig, network, wait_until  # noqa: F401


def test_status_explains_the_modem(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink))
    network.refuse["+36709999999"] = 21
    worker.submit(part(1, "+36709999999"))
    wait_until(lambda: sink.failed, what="refusal")
    status = json.loads(json.dumps(worker.status()))          # JSON-able
    assert status["state"] == "ready" and status["slot"] == "slot1"
    assert status["registered"] is True and status["registration"] == "home"
    assert status["signal"] == {"csq": 21, "dbm": -71}
    assert status["operator"] == "SimTel"
    assert status["imei"] == sim.imei and "EC25" in status["model"]
    assert status["failed"] == 1 and status["last_error"].startswith("CMS 21")
    assert worker.alive()
    worker.stop(5)
    assert not worker.alive() and worker.status()["state"] == "stopped"
