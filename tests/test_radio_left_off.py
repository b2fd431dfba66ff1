"""A modem whose radio is off (AT+CFUN=0 went through, then the modem hung before our
AT+CFUN=1; or a previous owner left it in flight mode) is switched back on when it is
initialised, also while the hourly reset cap holds the ladder back. Before, a held modem
stayed off the network for up to an hour with its radio off by our own hand, and the SMS
the network held for it waited all that time (seen as a soak that never settled).
Pty modem simulator, real worker."""

from __future__ import annotations

import dataclasses

from test_modem_kit import FAST, Sink, rig, network, wait_until  # noqa: F401

QUICK = dataclasses.replace(FAST, command=0.4, keepalive=0.2, cfun=0.4)


def _capped_modem(rig, network, tmp_path):
    """A ready modem allowed one reset an hour."""
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink, timings=QUICK, sysfs_root=str(tmp_path),
                                  config=dict(max_resets_per_hour=1, keepaliveperiod=0.3,
                                              deregistered_timeout=1.0)))
    return sim, sink, worker


def test_radio_left_off_by_a_cut_short_radio_cycle_comes_back_while_held(rig, network, tmp_path):
    sim, sink, worker = _capped_modem(rig, network, tmp_path)
    sim.inject_fault("hang")
    wait_until(lambda: worker.state == "held", timeout=10, what="held by the reset cap")
    sim.post(lambda: setattr(sim, "cfun", 0))  # the CFUN=0 went through before the hang
    sim.inject_fault("none")                   # the hang ends by itself; no reset allowed
    sim.deliver_inbound("+36309998877", "waiting at the SMSC")
    wait_until(lambda: sink.fragments, timeout=15, what="the SMS the network held")
    assert sim.cfun == 1
    assert sink.fragments[0].text == "waiting at the SMSC"
    assert worker.status()["resets_last_hour"] == 1          # no reset was spent on it


def test_modem_found_in_flight_mode_is_switched_on_at_start(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    sim.cfun = 4                               # flight mode, left by another program
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink, timings=QUICK))
    assert sim.cfun == 1
    assert worker.recoveries == {}             # init did it; no recovery rung was needed
    assert any(line == "AT+CFUN=1" for line in sim.commands)


def test_radio_off_while_held_for_no_network_is_switched_on(rig, network, tmp_path):
    sim, sink, worker = _capped_modem(rig, network, tmp_path)
    sim.inject_fault("deregister")
    wait_until(lambda: worker.recoveries.get("cfun_radio") == 1 and worker.state == "ready",
               timeout=15, what="the first reset, which the cap allows")
    sim.inject_fault("deregister")
    wait_until(lambda: worker.state == "held", timeout=15, what="held for want of a network")
    sim.post(lambda: setattr(sim, "cfun", 0))  # and the radio went off meanwhile
    sim.inject_fault("none")                   # the network is back
    sim.deliver_inbound("+36309998877", "waiting at the SMSC")
    wait_until(lambda: sink.fragments, timeout=15, what="the SMS the network held")
    assert sim.cfun == 1 and worker.status()["resets_last_hour"] == 1
