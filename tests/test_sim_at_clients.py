"""The simulator speaks to real AT clients: python-gsmmodem (PyPI, installed by `make test`
through the test extras) and gammu (Debian, `make test-deps-sim`) drive `sms-appliance sim`
over its ptys, send an SMS in PDU mode and read it on the other modem; the start-up commands
ModemManager's probe and Kannel's `at` driver send are answered as an EC25/SIM7600 does.
The worker's seed keys GSMMODEMINIT, USSDMETHOD and SUBMITTIMEOUTACTION run on the sim too."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest
import serial

from test_modem_kit import Sink, part, rig, network, wait_until  # noqa: F401 (fixtures)

gsmmodem = pytest.importorskip("gsmmodem.modem")


@pytest.fixture
def sim_cli():
    """`sms-appliance sim --modems 2` as a user starts it: slot -> (number, path)."""
    process = subprocess.Popen([sys.executable, "-m", "appliance", "sim", "--modems", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    slots = {}
    try:
        for line in process.stdout:
            fields = line.split()
            if fields and fields[0].startswith("slot"):
                slots[fields[0]] = (fields[1], fields[2])
            if len(slots) == 2:
                break
        assert len(slots) == 2, "the simulator did not list its modems"
        yield slots
    finally:
        process.terminate()
        process.wait(10)


def _connect(path: str):
    modem = gsmmodem.GsmModem(path, 115200)
    modem.smsTextMode = False           # PDU mode, as the simulator speaks it
    modem.connect()
    return modem


def test_python_gsmmodem_sends_and_reads_sms_through_the_simulator(sim_cli):
    (sender_number, sender_path), (receiver_number, receiver_path) = \
        sim_cli["slot1"], sim_cli["slot2"]
    receiver = _connect(receiver_path)        # first: it chooses the memory new SMS go to
    sender = _connect(sender_path)
    try:
        assert (sender.manufacturer, sender.model) == ("Quectel", "EC25")
        assert sender.imei.isdigit() and sender.imsi.startswith("21670")
        assert sender.signalStrength == 21 and sender.networkName == "SimTel"
        assert sender.smsc.startswith("+")
        text = "Hello from python-gsmmodem, ça va?"
        sms = sender.sendSms(receiver_number, text)
        assert sms.reference is not None

        def arrived():
            return [m for m in receiver.listStoredSms() if m.text == text]
        received = wait_until(arrived, 20, interval=0.3, what="the SMS on the other modem")
        assert received[0].number == sender_number
    finally:
        sender.close()
        receiver.close()


def _gammu(tmp_path, name: str, device: str, *args: str) -> str:
    rc = tmp_path / f"{name}.gammurc"
    rc.write_text(f"[gammu]\ndevice = {device}\nconnection = at\n")
    done = subprocess.run(["gammu", "-c", str(rc), *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


@pytest.mark.skipif(shutil.which("gammu") is None, reason="gammu missing: make test-deps-sim")
def test_gammu_identifies_sends_and_reads_through_the_simulator(sim_cli, tmp_path):
    (sender_number, sender_path), (receiver_number, receiver_path) = \
        sim_cli["slot1"], sim_cli["slot2"]
    identity = _gammu(tmp_path, "a", sender_path, "identify")
    assert "Quectel" in identity and "EC25" in identity and "216706" in identity
    sent = _gammu(tmp_path, "a", sender_path, "sendsms", "TEXT", receiver_number, "-text",
                  "Hello from gammu")
    assert "message reference" in sent

    def arrived():
        listing = _gammu(tmp_path, "b", receiver_path, "getallsms")
        return "Hello from gammu" in listing and listing
    listing = wait_until(arrived, 30, interval=0.5, what="the SMS read by gammu")
    assert f'"{sender_number}"' in listing


# --- start-up commands of other clients, on the in-process simulator ------------------------


class RawAt:
    """A plain serial client: one command, the lines up to the final result."""

    def __init__(self, path: str):
        self.port = serial.Serial(path, 115200, timeout=0.1)

    def command(self, line: str, timeout: float = 5.0) -> list[str]:
        self.port.write(line.encode() + b"\r")
        buffer, deadline = b"", time.monotonic() + timeout
        while time.monotonic() < deadline:
            buffer += self.port.read(256)
            lines = [l.strip() for l in buffer.decode(errors="replace").split("\r\n")
                     if l.strip()]
            if lines and (lines[-1] in ("OK", "ERROR") or "ERROR:" in lines[-1]):
                return [l for l in lines if l != line]      # echo, if still on
        raise AssertionError(f"no final result for {line}: {buffer!r}")

    def close(self):
        self.port.close()


# (command, a line the answer must have) -- as Quectel EC25 / SIMCom SIM7600 answer them
STARTUP = [
    ("ATZ", None), ("AT&F", None), ("ATE0", None), ("ATV1", None), ("AT+CMEE=1", None),
    ("ATI", "Revision:"), ("ATI1", "Revision:"), ("AT+GCAP", "+GCAP:"), ("AT+CGMI", None), ("AT+CGMM", None),
    ("AT+CGMR", None), ("AT+CGSN", None), ("AT+CIMI", "21670"), ("AT+CPIN?", "+CPIN: READY"),
    ("AT+CFUN?", "+CFUN: 1"), ("AT+CFUN=?", "+CFUN: (0,1,4)"),
    ("AT+CSCS=?", '+CSCS: ("GSM","IRA","UCS2")'), ('AT+CSCS="UCS2"', None),
    ("AT+CSCS?", '+CSCS: "UCS2"'), ('AT+CSCS="GSM"', None), ("AT+CMGF=?", "+CMGF: (0,1)"),
    ("AT+CMGF=0", None), ("AT+CMGF?", "+CMGF: 0"), ("AT+CPMS=?", "+CPMS: ("),
    ("AT+CPMS?", '+CPMS: "SM"'), ("AT+CNMI=?", "+CNMI: (0-2)"), ("AT+CSCA?", "+CSCA: \"+"),
    ("AT+CSMS=?", "+CSMS: (0,1)"), ("AT+CSMP?", "+CSMP: 17,167,0,0"),
    ("AT+CREG=?", "+CREG: (0-2)"), ("AT+CREG?", "+CREG: 0,1"), ("AT+CSQ", "+CSQ: 21,99"),
    ("AT+COPS=3,2;+COPS?", '+COPS: 0,0,"SimTel",7'), ("AT+IFC=2,2", None),
    ("AT+CLCK=?", "+CLCK: ("), ("AT+CIND=?", "+CIND: ("), ("AT+WS46=?", "+WS46: ("),
    ("AT+CGDCONT?", '+CGDCONT: 1,"IP"'), ("AT+CGDCONT=?", "+CGDCONT: (1-24)"),
    ("AT+CUSD=?", "+CUSD: (0-2)"), ("AT+CNUM", "+CNUM:"), ("AT+CMGL=?", "+CMGL: (0-4)"),
    ("AT+CSDH=1", None), ("AT+CLAC", "AT+CMGS"), ("AT+CMGL=4", None),
]


@pytest.mark.parametrize("profile", ["quectel", "simcom"])
def test_start_up_commands_of_gammu_modemmanager_and_kannel(network, profile):
    sim = network.add_modem("slot1", "+36201111111", profile=profile)
    client = RawAt(sim.path)
    try:
        for command, expected in STARTUP:
            lines = client.command(command)
            assert lines[-1] == "OK", (command, lines)
            if expected:
                assert any(expected in line for line in lines), (command, lines)
        assert client.command("AT+CMGF=1")[-1] == "OK"          # text mode: reported...
        assert client.command("AT+CMGF?")[:-1] == ["+CMGF: 1"]
        assert client.command('AT+CMGL="ALL"')[-1] == "+CMS ERROR: 302"   # ...not simulated
        assert client.command('AT+CSCS="KLINGON"')[-1] == "+CME ERROR: 4"
    finally:
        client.close()


# --- seed 000 GSM modem keys on the worker ------------------------------------------------


def test_init_strings_are_sent_after_the_appliance_own_init(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    rig.ready(rig.worker(sim, config=dict(gsmmodeminit="AT", gsmmodeminit2="AT+CSCB=1",
                                          gsmmodeminit3='AT+CGDCONT=1,"IP","apn.lan"')))
    assert "AT+CSCB=1" in sim.commands and 'AT+CGDCONT=1,"IP","apn.lan"' in sim.commands
    assert sim.commands.index("AT+CSCB=1") > sim.commands.index("AT+CMEE=1")
    assert sim.commands.count("AT") >= 1          # "AT" (the seed default) adds nothing


def test_ussd_method_atd(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    worker = rig.ready(rig.worker(sim, config=dict(ussdmethod="ATD")))
    assert worker.run_ussd("*100#", timeout=5).startswith("Balance: 12.50")
    assert "ATD*100#;" in sim.commands
    assert not any(c.startswith("AT+CUSD=1") for c in sim.commands)


@pytest.mark.parametrize("action", ["SubmitSuccess", "SubmitFailed"])
def test_submit_timeout_action_on_a_modem(rig, network, action):
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink, config=dict(submittimeout=1.0,
                                                        submittimeoutaction=action)))
    # Hang on the submit itself: a modem hung before it (inject_fault) may be found by a
    # storage poll first, and the part then fails as "modem down", not as a submit timeout.
    sim.hang_after_submits(0)
    worker.submit(part(1))
    wait_until(lambda: sink.submitted or sink.failed, 20, what="the submit timed out")
    if action == "SubmitSuccess":
        assert sink.submitted == [(1, worker.name, "")] and not sink.failed
    else:
        assert sink.failed[0][0] == 1 and sink.failed[0][2] == "AT timeout"
        assert not sink.submitted


@pytest.mark.parametrize("keepalive", [True, False])
def test_keepalive_request_switch_on_a_modem(rig, network, keepalive):
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink, config=dict(keepaliveperiod=0.01,
                                                        keepaliverequest=keepalive)))
    polls_at_ready = sim.commands.count("AT+CSQ")
    for part_id in (1, 2, 3):        # each send takes the simulated network's send time
        worker.submit(part(part_id))
        wait_until(lambda: len(sink.submitted) == part_id, what=f"part {part_id}")
        rig.ready(worker)
    if keepalive:
        wait_until(lambda: sim.commands.count("AT+CSQ") > polls_at_ready, what="a health poll")
    else:
        assert sim.commands.count("AT+CSQ") == polls_at_ready
