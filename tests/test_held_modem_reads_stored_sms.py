"""A modem held by the hourly reset cap (no network, so it may not be reset again yet) still
answers AT commands: SMS already stored on its SIM are read into the store while it waits,
not up to an hour later when the cap lifts. Pty modem simulator, real worker."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

from appliance import gsm
from test_modem_kit import FAST, Sink, rig, network, wait_until  # noqa: F401

QUICK = dataclasses.replace(FAST, command=0.4, keepalive=0.2, cfun=0.4)


def test_sms_on_the_sim_of_a_held_modem_are_read(rig, network, tmp_path):
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink, timings=QUICK, sysfs_root=str(tmp_path),
                                  config=dict(max_resets_per_hour=1, keepaliveperiod=0.3)))
    sim.inject_fault("deregister")
    wait_until(lambda: worker.recoveries.get("cfun_radio") == 1 and worker.state == "ready",
               timeout=15, what="the first reset, which the cap allows")
    sim.inject_fault("deregister")             # the network is gone again: no second reset
    wait_until(lambda: worker.state == "held", timeout=15, what="held by the reset cap")
    pdu = gsm.encode_deliver("+36309998877", "stored while the network was gone",
                             encoding="gsm7", scts=datetime.now(timezone.utc))
    sim.post(lambda: sim._store(sim.cpms[2], 0, pdu))     # on the SIM, its URC lost
    wait_until(lambda: sink.fragments, timeout=10, what="the stored SMS read while held")
    assert worker.state == "held"
    assert sink.fragments[0].text == "stored while the network was gone"
    wait_until(lambda: not sim.memory[sim.cpms[2]], timeout=5, what="deleted from the SIM")
