"""Pain point 3: unstable device names (ttyUSB0 becomes ttyUSB1). The worker opens a stable
link (/dev/sms-appliance/<slot> in production, the simulator's link here); when the modem
vanishes and re-enumerates under a new pty, the worker reopens the same name and carries on.
The udev rules that make those links are tested in test_udev_rules.py."""

from __future__ import annotations

import os

import pytest

from test_modem_kit import Sink, part, rig, network, wait_until  # noqa: F401


def test_unplugged_modem_comes_back_under_its_stable_name(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    sim.replug_seconds = 3600              # the test plugs it back, not a timer
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink))
    first_tty = sim.tty_path
    sim.inject_fault("unplug")
    wait_until(lambda: worker.step == "reopen", what="port loss noticed, reopening")
    sim.inject_fault("none")               # re-enumerated behind the same link
    rig.ready(worker, timeout=15)
    assert os.path.realpath(sim.path) == sim.tty_path   # the link follows the new pty
    assert first_tty                                   # (the kernel may reuse the pts number)
    assert set(worker.recoveries) == {"reopen"}         # no AT reset on a port that was gone
    worker.submit(part(1))
    wait_until(lambda: sink.reports, what="delivered after replug")


def test_port_lost_while_probing_is_reopened_not_reset(rig, network):
    """The port vanishes before init finishes (unplugged at start, or re-enumerating): the
    worker reopens it when it is back instead of climbing the CFUN ladder on nothing."""
    sim = network.add_modem("slot1", "+36201111111")
    sim.replug_seconds = 3600
    sim.inject_fault("unplug")
    wait_until(lambda: not os.path.lexists(sim.path), what="link gone")
    sink = Sink()
    worker = rig.worker(sim, sink)
    wait_until(lambda: worker.step == "reopen", what="probe failed with the port gone")
    assert worker.state == "recovering"
    sim.inject_fault("none")
    rig.ready(worker, timeout=15)
    assert set(worker.recoveries) == {"reopen"}
    worker.submit(part(1))
    wait_until(lambda: sink.reports, what="delivered after the port came back")


def test_ports_swapped_after_reenumeration_are_refused_by_imei(rig, network, caplog):
    """Two identical modems come back under each other's link (field-notes §2 point 3,
    §3.2: verify identity after opening). With `imei` configured each worker refuses the
    other's modem: nothing is sent on it, its PIN is never tried on the other SIM, status
    and an alert say so; once the links are right again both work."""
    import dataclasses
    import logging
    from test_modem_kit import FAST
    caplog.set_level(logging.INFO)
    sim_a = network.add_modem("slot1", "+36201111111", pin="1111")
    sim_b = network.add_modem("slot2", "+36202222222", pin="2222")
    sim_a.replug_seconds = sim_b.replug_seconds = 0.3
    timings = dataclasses.replace(FAST, identity_retry=0.5)
    alerts, sinks = [], (Sink(), Sink())
    workers = [rig.ready(rig.worker(sim, sink, timings=timings, on_alert=lambda s, t: alerts.append((s, t)),
                                    config=dict(imei=sim.imei, iccid=sim.iccid, pincode=sim.pin)))
               for sim, sink in zip((sim_a, sim_b), sinks)]
    assert workers[0].status()["iccid"] == sim_a.iccid

    network.swap_ports("slot1", "slot2")
    for worker in workers:
        wait_until(lambda w=worker: w.state == "wrong_modem", timeout=10, what="refused")
    status = workers[0].status()
    assert status["imei"] == sim_b.imei and status["expected_imei"] == sim_a.imei
    assert sim_b.imei in status["identity_error"]
    assert {slot for slot, _ in alerts} == {"slot1", "slot2"}
    assert "slot1: refusing to use" in caplog.text and "1111" not in caplog.text
    assert sim_a.pin_attempts == 3 and sim_b.pin_attempts == 3     # no PIN on the wrong SIM
    workers[0].submit(part(1))
    wait_until(lambda: sinks[0].failed, what="part handed back")
    assert network.submits == [] and workers[0].free_slots() == 0

    network.swap_ports("slot1", "slot2")                            # the links are right again
    for worker in workers:
        rig.ready(worker, timeout=10)
    assert workers[0].status()["identity_error"] == ""
    workers[0].submit(part(2))
    wait_until(lambda: network.submits, what="sent on the right modem")
    assert network.submits[0]["from"] == "slot1"


@pytest.mark.parametrize("profile", ["quectel", "simcom", "huawei", "telit", "sim800"])
def test_iccid_is_read_with_the_vendor_command(rig, network, profile):
    sim = network.add_modem("slot1", "+36201111111", profile=profile)
    worker = rig.ready(rig.worker(sim))
    assert worker.status()["iccid"] == sim.iccid and sim.iccid.startswith("89")


def test_iccid_answers_are_parsed():
    from appliance.modem.probe import parse_iccid
    assert parse_iccid(['+CCID: "89367031234567890123"']) == "89367031234567890123"
    assert parse_iccid(["+QCCID: 8936703123456789012F"]) == "8936703123456789012"
    assert parse_iccid(["^ICCID: 98630713325476981021"]) == "89367031234567890112"
    assert parse_iccid(["89367031234567890123"]) == "89367031234567890123"
    assert parse_iccid(["ERROR"]) == ""
