"""The simulator on its own: standalone ptys for any AT client, demo wiring, vendor profiles."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from appliance.modem.at import open_port
from appliance.sim.demo import demo_modems
from test_modem_kit import Sink, mock_factory, network, rig, wait_until  # noqa: F401


def test_standalone_prints_paths_serves_at_and_stops_on_sigterm():
    process = subprocess.Popen([sys.executable, "-c",
                                "from appliance.sim.standalone import main; raise SystemExit(main(2))"],
                               stdout=subprocess.PIPE, text=True)
    try:
        lines = [process.stdout.readline() for _ in range(2)]
        paths = [line.split()[2] for line in lines]
        port = open_port(paths[1])
        assert port.command("AT", 2) == []
        assert port.command("AT+CGMM", 2) == ["EC25"]
        port.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0


def test_demo_modems_are_wired_to_their_power_pins(network, mock_factory):
    configs = demo_modems(network, 2, mock_factory)
    assert [c.name for c in configs] == ["GSMModem0", "GSMModem1"]
    assert [c.slot for c in configs] == ["slot1", "slot2"]
    assert len({c.power_pin for c in configs}) == 2
    sim = network.modem("slot1")
    assert sim.path == configs[0].modemorport and network.modem("slot9") is None
    assert network.modem("2") is network.modem("slot2") is not None    # as a user types it
    sim.inject_fault("hang")
    port = open_port(sim.path)
    with pytest.raises(Exception):
        port.command("AT", 0.3)                           # hung: no answer
    port.close()
    pin = mock_factory.pin(configs[0].power_pin)
    pin.drive_high()                                      # power cut ...
    time.sleep(0.1)
    pin.drive_low()                                       # ... and back: it boots
    wait_until(lambda: sim.tty_path and "hang" not in sim.faults, what="reboot")
    port = wait_until(lambda: _try_open(sim.path), what="port back")
    assert port.command("AT", 2) == []
    port.close()


def _try_open(path):
    try:
        return open_port(path)
    except Exception:
        return None


@pytest.mark.parametrize("profile,expected", [
    ("quectel", 'AT+QURCCFG="urcport","usbat"'),
    ("simcom", 'AT+CSCS="GSM"'),
    ("huawei", "AT^CURC=0"),
    ("telit", "AT#SMSMODE=0"),
])
def test_vendor_quirks_are_sent_at_init(rig, network, profile, expected):
    sim = network.add_modem("slot1", "+36201111111", profile=profile)
    worker = rig.ready(rig.worker(sim))
    assert expected in sim.commands
    assert worker.session.caps.quirks.vendor == profile


def test_an_unrecorded_network_keeps_no_history_per_message():
    """`make run` and `sms-appliance sim` run for days: every AT line and every SMS the
    simulator saw was kept in lists only tests read (found by a soak: RSS grew with them)."""
    from appliance import gsm
    from appliance.sim.network import SimNetwork
    network = SimNetwork(send_seconds=0.01, report_seconds=0.01, record=False)
    try:
        sim = network.add_modem("slot1", "+36200000001")
        port = open_port(sim.path)
        port.command("AT+CMGF=0", 2)
        [pdu] = gsm.encode_submit("+36201234567", "hello")
        lines = port.command_with_prompt(f"AT+CMGS={gsm.tpdu_length(pdu)}", pdu, 5)
        assert lines and lines[0].startswith("+CMGS:")
        port.close()
        assert sim.commands == [] and sim.command_log == []
        assert network.submits == [] and network.outside == []
    finally:
        network.close()
    recorded = SimNetwork()
    try:
        assert recorded.add_modem("slot1", "+36200000001").commands == []
        recorded.submits.append({"kept": True})
        assert recorded.submits == [{"kept": True}]      # tests and benches still read them
    finally:
        recorded.close()


def test_swapped_ports_are_swapped_however_soon_a_modem_takes_its_move(monkeypatch):
    """The second modem was sent to the path the first had already taken when the first
    modem's thread took its move before swap_ports read that path (CI, a busy machine:
    both ended on one link, the other link never came back)."""
    from appliance.sim.modem import SimModem
    from appliance.sim.network import SimNetwork
    network = SimNetwork()
    try:
        first = network.add_modem("slot1", "+36201111111")
        second = network.add_modem("slot2", "+36202222222")
        path_a, path_b = first.path, second.path
        posted = SimModem.move_to

        def move_then_lose_the_cpu(modem, path):
            posted(modem, path)
            wait_until(lambda: modem.path == path, timeout=5, what="the move taken")
        monkeypatch.setattr(SimModem, "move_to", move_then_lose_the_cpu)
        network.swap_ports("slot1", "slot2")
        assert (first.path, second.path) == (path_b, path_a)
    finally:
        network.close()
