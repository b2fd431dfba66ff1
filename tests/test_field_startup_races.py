"""Pain point 13: start-up races: SIM PIN, SIM busy (CME 14), no SMSC yet (CMS 330), not
registered yet. The worker waits and retries instead of failing; a wrong PIN is tried once
only (a second try could lock the SIM), and the PIN never reaches the log."""

from __future__ import annotations

import logging
import time

import pytest

from test_modem_kit import Sink, part, rig, network, wait_until  # noqa: F401


def test_pin_sim_busy_no_smsc_and_late_registration_are_waited_out(rig, network, caplog):
    caplog.set_level(logging.DEBUG)
    sim = network.add_modem("slot1", "+36201111111", pin="4321")
    sim.inject_fault("simbusy")     # CME 14 three times, CMS 330 and no registration ~1.5 s
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink, config=dict(pincode="4321")), timeout=15)
    assert sim.pin_ok and sim.pin_attempts == 3
    assert sum(1 for c in sim.commands if c == "AT+CPIN?") >= 4
    worker.submit(part(1))
    wait_until(lambda: sink.submitted, what="send after the races")
    assert "4321" not in caplog.text


def test_send_racing_the_smsc_is_retried_in_place(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink))
    sim._ready_at = network.clock.monotonic() + 0.5     # the SMSC is "not known" for 0.5 s
    worker.submit(part(1))
    wait_until(lambda: sink.submitted or sink.failed, what="outcome")
    assert sink.submitted and not sink.failed


def test_wrong_pin_is_tried_once_then_failed_with_alert(rig, network, caplog):
    sim = network.add_modem("slot1", "+36201111111", pin="4321")
    alerts = []
    worker = rig.worker(sim, config=dict(pincode="1111"),
                        on_alert=lambda slot, text: alerts.append(text))
    wait_until(lambda: worker.state == "failed", what="failed on wrong PIN")
    assert sim.pin_attempts == 2                     # one attempt used, two left
    assert "wrong PIN" in alerts[0]
    assert "1111" not in caplog.text


@pytest.mark.parametrize("style", ["plain", "verbose"])
def test_wrong_pin_answered_without_code_16_is_still_tried_once(rig, network, style):
    """Found by a helper: a modem without numeric error codes answers a wrong PIN with plain
    ERROR (or, with AT+CMEE=2, "+CME ERROR: incorrect password"); that was taken for an init
    failure, the recovery ladder ran init again twice, and the SIM asked for its PUK within
    a second."""
    import dataclasses
    from test_modem_kit import FAST
    sim = network.add_modem("slot1", "+36201111111", pin="4321")
    sim.cme_style = style
    quick = dataclasses.replace(FAST, failed_retry=0.2)
    worker = rig.worker(sim, config=dict(pincode="1111"), timings=quick)
    wait_until(lambda: worker.state == "failed", what="failed on wrong PIN")
    time.sleep(0.6)                                   # three failed_retry periods
    assert sim.pin_attempts == 2 and worker.state == "failed"
    assert "wrong PIN" in worker.status()["last_error"]


def test_a_refused_pin_is_never_sent_again_until_it_is_changed(rig, network):
    """Found by a helper: the failed modem was probed again every 15 minutes and each time
    sent the same wrong PIN (the SIM asks for its PUK after three); a driver stopped and
    started through the API spent one more."""
    import dataclasses
    import time
    from test_modem_kit import FAST
    sim = network.add_modem("slot1", "+36201111111", pin="4321")
    quick = dataclasses.replace(FAST, failed_retry=0.2)
    worker = rig.worker(sim, config=dict(pincode="1111", name="GSM0"), timings=quick)
    wait_until(lambda: worker.state == "failed", what="failed on wrong PIN")
    assert sim.pin_attempts == 2
    time.sleep(1.0)                                   # five failed_retry periods
    assert worker.state == "failed" and sim.pin_attempts == 2
    worker.stop()
    again = rig.worker(sim, config=dict(pincode="1111", name="GSM0"), timings=quick)  # restart
    wait_until(lambda: again.state == "failed", what="failed without trying")
    assert sim.pin_attempts == 2 and "before" in again.status()["last_error"]
    again.stop()
    fixed = rig.ready(rig.worker(sim, config=dict(pincode="4321", name="GSM0"), timings=quick),
                      timeout=15)
    assert sim.pin_ok and fixed.state == "ready"


def test_a_refused_pin_is_not_sent_again_after_a_restart_but_to_a_swapped_sim(
        rig, network, tmp_path):
    """A wrong `pincode` and a few reboots or power cuts: each start sent it once more, and
    the third locked the SIM (PUK). The refusal is kept in the state directory's documents,
    by the SIM's ICCID: after a restart the same SIM is not tried, a SIM swapped in is."""
    from appliance.modem.pins import REFUSED_PINS
    from appliance.store.documents import Documents
    sim = network.add_modem("slot1", "+36201111111", pin="4321")
    REFUSED_PINS.keep_in(Documents(tmp_path))
    worker = rig.worker(sim, config=dict(pincode="1111", name="GSM0"))
    wait_until(lambda: worker.state == "failed", what="failed on wrong PIN")
    assert sim.pin_attempts == 2
    worker.stop()
    REFUSED_PINS.clear()                        # a new process: only the state directory
    REFUSED_PINS.keep_in(Documents(tmp_path))
    again = rig.worker(sim, config=dict(pincode="1111", name="GSM0"))
    wait_until(lambda: again.state == "failed", what="failed without trying")
    assert sim.pin_attempts == 2 and "before" in again.status()["last_error"]
    again.stop()
    assert "1111" not in (tmp_path / "documents.json").read_text()
    swapped = network.add_modem("slot2", "+36202222222", pin="1111")   # another ICCID
    rig.ready(rig.worker(swapped, config=dict(pincode="1111", name="GSM0")), timeout=15)
    assert swapped.pin_ok


def test_missing_pincode_fails_clearly(rig, network):
    sim = network.add_modem("slot1", "+36201111111", pin="4321")
    worker = rig.worker(sim)
    wait_until(lambda: worker.state == "failed", what="failed without pincode")
    assert "pincode" in worker.status()["last_error"]
