"""Field-notes §4.2: back off and cap resets per hour, so a dead SIM or a network outage
does not become a reset storm. Past `max_resets_per_hour` the worker holds (state `held`,
counted in status) instead of cycling again, also when a failed modem is probed again;
a modem that comes back by itself while held is used again without a reset."""

from __future__ import annotations

import dataclasses
import time

from appliance.clock import FakeClock
from appliance.modem.ladder import ResetBudget
from test_modem_kit import FAST, Sink, part, rig, network, wait_until  # noqa: F401

QUICK = dataclasses.replace(FAST, command=0.4, keepalive=0.2, cfun=0.4)   # a hang costs less


def _resets(worker) -> int:
    return sum(count for step, count in worker.recoveries.items() if step != "reopen")


def test_reset_cap_holds_the_ladder_and_a_modem_back_by_itself_needs_no_reset(rig, network,
                                                                               tmp_path):
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink, timings=QUICK, sysfs_root=str(tmp_path),
                                  config=dict(max_resets_per_hour=1)))
    sim.inject_fault("hang")
    wait_until(lambda: worker.state == "held", timeout=10, what="held by the reset cap")
    status = worker.status()
    assert status["recoveries"] == {"cfun_radio": 1}            # one reset, not a second
    assert status["resets_last_hour"] == 1 and status["reset_cap_waits"] == 1
    assert status["reset_wait_seconds"] > 3500 and "max 1" in status["step"]
    worker.submit(part(1))                     # not sent while held: handed back
    wait_until(lambda: sink.failed, what="part handed back")
    sim.inject_fault("none")                   # the hang ends on its own
    rig.ready(worker, timeout=10)
    assert _resets(worker) == 1 and worker.status()["reset_cap_waits"] == 1


def test_failed_modem_probed_again_respects_the_reset_cap(rig, network, tmp_path):
    sim = network.add_modem("slot1", "+36201111111")
    alerts = []
    timings = dataclasses.replace(QUICK, failed_retry=0.3)
    worker = rig.ready(rig.worker(sim, timings=timings, sysfs_root=str(tmp_path),
                                  config=dict(max_resets_per_hour=2),
                                  on_alert=lambda slot, text: alerts.append(text)))
    sim.inject_fault("hang")                   # CFUN 0/1 and CFUN 1,1 run, then failed
    wait_until(lambda: worker.state == "failed" or worker.state == "held", timeout=10,
               what="ladder exhausted")
    wait_until(lambda: worker.state == "held", timeout=15, what="re-probe held by the cap")
    assert worker.recoveries == {"cfun_radio": 1, "cfun_reset": 1}
    assert worker.status()["reset_cap_waits"] == 1
    assert len(alerts) == 1 and "failed" in alerts[0]
    time.sleep(1.0)                            # held: no further probe cycles a reset
    assert worker.state == "held" and _resets(worker) == 2


def test_reset_budget_slides_over_one_hour():
    clock = FakeClock()
    budget = ResetBudget(clock, 2)
    budget.record()
    clock.advance(600)
    budget.record()
    assert budget.exhausted() and budget.seconds_until_free() == 3000
    clock.advance(3000)
    assert not budget.exhausted() and budget.recent() == 1
    assert not ResetBudget(clock, 0).exhausted()           # 0: no cap


def test_held_modem_that_reenumerates_is_reopened_without_a_reset(rig, network, tmp_path):
    """Held by the cap, the modem then drops off USB and comes back on a new tty behind the
    same path (it rebooted by itself, a hub glitch): the worker reopens the path, which is
    no reset, instead of reading EIO from the dead descriptor until the cap lifts."""
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink, timings=QUICK, sysfs_root=str(tmp_path),
                                  config=dict(max_resets_per_hour=1, keepaliveperiod=0.3)))
    sim.inject_fault("hang")
    wait_until(lambda: worker.state == "held", timeout=10, what="held by the reset cap")
    old_port = sim._port
    sim.inject_fault("unplug")                 # back on a new pty after replug_seconds
    wait_until(lambda: sim._port not in (None, old_port), timeout=10, what="replugged")
    sim.inject_fault("none")
    rig.ready(worker, timeout=15)
    assert _resets(worker) == 1
    sim.deliver_inbound("+36309998877", "after the replug")
    wait_until(lambda: sink.fragments, timeout=10, what="an SMS on the reopened port")
