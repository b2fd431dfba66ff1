"""Pain point 1: modems hang after hours or days; only a replug or power cycle helps.

The simulated modem stops answering entirely; the worker climbs the ladder (CFUN 0/1 and
CFUN 1,1 get no answer, no sysfs device to re-authorize) and the GPIO power cut through
gpiozero's MockFactory brings it back. Parts it held go back to the queue.
"""

from __future__ import annotations

from test_modem_kit import Sink, part, rig, network, mock_factory, wait_until  # noqa: F401

POWER_PIN = 26


def test_hung_modem_recovers_only_through_gpio_power_cycle(rig, network, mock_factory,
                                                          tmp_path):
    sim = network.add_modem("slot1", "+36201111111", power_pin=POWER_PIN,
                            pin_factory=mock_factory)
    sink, alerts = Sink(), []
    worker = rig.ready(rig.worker(sim, sink, config=dict(power_pin=POWER_PIN),
                                  pin_factory=mock_factory, sysfs_root=str(tmp_path),
                                  on_alert=lambda slot, text: alerts.append((slot, text))))
    sim.inject_fault("hang")
    wait_until(lambda: worker.state == "recovering", what="recovery to start")
    worker.submit(part(1))           # arrives while it is down: handed back, not lost
    wait_until(lambda: sink.failed, what="part handed back")
    assert sink.failed[0][0] == 1 and sink.failed[0][4] is True

    rig.ready(worker, timeout=20)
    assert worker.recoveries["power_cycle"] == 1
    assert worker.recoveries["cfun_radio"] == 1 and worker.recoveries["cfun_reset"] == 1
    assert "usb_reauthorize" not in worker.recoveries      # nothing to re-authorize here
    pin_states = [state.state for state in mock_factory.pin(POWER_PIN).states]
    assert pin_states[-2:] == [True, False]                 # cut, then restored
    assert alerts == []

    worker.submit(part(2))
    wait_until(lambda: sink.submitted and sink.reports, what="send after recovery")
    assert sink.submitted[0][0] == 2


def test_modem_without_power_pin_ends_failed_with_an_alert(rig, network, tmp_path):
    sim = network.add_modem("slot1", "+36201111111")
    alerts = []
    worker = rig.ready(rig.worker(sim, sysfs_root=str(tmp_path),
                                  on_alert=lambda slot, text: alerts.append((slot, text))))
    sim.inject_fault("hang")
    wait_until(lambda: worker.state == "failed", timeout=20, what="failed state")
    assert alerts and alerts[0][0] == "slot1" and "failed" in alerts[0][1]
    assert worker.free_slots() == 0
    assert worker.status()["last_error"].startswith("every recovery step failed")
