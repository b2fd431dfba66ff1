"""Values that go inside an AT command are checked before they reach a modem.

A USSD code is checked before it reaches a modem. It goes inside an AT command
(`AT+CUSD=1,"<code>",15` or `ATD<code>;`): before this check a code with a quote and a CR
ran `AT+CFUN=0` on the modem (radio off), and with the ATD method a bare number would have
dialled a voice call. The admin API answers 400 with why, the CLI prints the daemon's own
answer, the config refuses a bad balance code. A SIM PIN (`AT+CPIN="<pin>"`) and an SMSC
address (`AT+CSCA="<address>"`), which the drivers API sets as well, are checked the same
way. Modems on the pty simulator; the daemon and
the CLI over a real socket."""

from __future__ import annotations

import urllib.parse
import urllib.request

import pytest

from appliance import cli
from appliance import config as cfg
from appliance.errors import ConfigError
from appliance.gsm import ussd_code_problem
from appliance.modem.worker import UssdCodeError
from conftest import ADMIN_PASSWORD
from test_modem_kit import rig, network  # noqa: F401 (fixtures)
from test_web_dashboard import Browser
from web_kit import demo_daemon_on_simulated_modems

INJECTION = '*100#",15\rAT+CFUN=0\rAT+CUSD=1,"*100#'


@pytest.mark.parametrize("code", ["*100#", "#123#", "*101*1#", "*#06#", "*100*+3620#"])
def test_service_codes_are_ussd(code):
    assert ussd_code_problem(code) == ""


@pytest.mark.parametrize("code", ["", "abc", "100", "*100", "+36201234567", "*10 0#",
                                  INJECTION, "*100#;", "*" + "1" * 40 + "#"])
def test_anything_else_is_refused_with_why(code):
    problem = ussd_code_problem(code)
    assert problem.startswith("not a USSD code") and "e.g. *100#" in problem
    assert "\r" not in problem          # shown escaped: one log or error line
    if code == INJECTION:               # escaped once, as Python writes it: \r, not \\r
        assert "'*100#\",15\\rAT+CFUN=0" in problem and "\\\\r" not in problem


@pytest.mark.parametrize("method", ["AT+CUSD", "ATD"])
def test_a_bad_code_never_reaches_the_modem(rig, network, method):
    sim = network.add_modem("slot1", "+36201111111")
    worker = rig.ready(rig.worker(sim, config=dict(ussdmethod=method)))
    sent = len(sim.commands)
    for code in (INJECTION, "0036201234567"):       # a command injection; a voice call by ATD
        with pytest.raises(UssdCodeError):
            worker.run_ussd(code, timeout=5)
    # (health polls may run meanwhile: only USSD, dialling and the injected command count)
    assert not [c for c in sim.commands[sent:]
                if "CUSD" in c or c.startswith("ATD") or "CFUN=0" in c]
    assert worker.state == "ready"
    assert worker.run_ussd("*100#", timeout=5).startswith("Balance: 12.50")


def test_the_config_refuses_a_balance_code_that_is_not_ussd(tmp_path):
    path = tmp_path / "config.toml"
    modem = '[connections.GSM0]\ntype = "GSMModem"\nmodemorport = "/dev/ttyUSB2"\n'
    path.write_text(modem + 'ussd_balance = "100"\n')
    with pytest.raises(ConfigError, match=r"ussd_balance: not a USSD code"):
        cfg.load(path)
    path.write_text(modem + 'ussd_balance = "*100#"\n')
    assert cfg.load(path).connections[0].ussd_balance == "*100#"


def test_the_api_and_the_cli_say_what_was_wrong(make_config, run_daemon, capsys):
    with demo_daemon_on_simulated_modems(make_config, run_daemon) as (daemon, network):
        url = f"http://127.0.0.1:{daemon.port}"
        base = ["ussd", "--url", url, "--password", ADMIN_PASSWORD]

        assert cli.main(base + ["slot1", INJECTION]) == 1
        err = capsys.readouterr().err
        assert "failed (400)" in err and "not a USSD code" in err
        assert "cannot reach" not in err
        assert not any("CFUN=0" in c for c in network.modem("slot1").commands)

        assert cli.main(base + ["slot9", "*100#"]) == 1
        err = capsys.readouterr().err
        assert "failed (404)" in err and "no running modem" in err

        assert cli.main(base + ["slot1", "*100#"]) == 0
        assert "Balance: 12.50" in capsys.readouterr().out
        assert daemon.channels.running["GSMModem0"].status()["state"] == "ready"


@pytest.mark.parametrize("line,key", [
    ('pincode = "12\\"\\rAT+CFUN=0"', "pincode"), ('pincode = "12"', "pincode"),
    ('smsservicecenteraddress = "+3620\\r"', "smsservicecenteraddress"),
    ('smsservicecenteraddress = "smsc.example"', "smsservicecenteraddress")])
def test_the_config_refuses_a_pin_or_smsc_address_that_is_not_one(tmp_path, line, key):
    path = tmp_path / "config.toml"
    path.write_text('[connections.GSM0]\ntype = "GSMModem"\nmodemorport = "/dev/ttyUSB2"\n'
                    + line + "\n")
    with pytest.raises(ConfigError, match=rf"GSM0\.{key}: expected"):
        cfg.load(path)


def test_the_drivers_api_refuses_them_in_ozekis_format(make_config, run_daemon):
    with demo_daemon_on_simulated_modems(make_config, run_daemon) as (daemon, network):
        sim = network.modem("slot2")
        sent = len(sim.commands)
        for key, value in (("PINCODE", '12"\rAT+CFUN=0\r'),
                           ("SMSSERVICECENTERADDRESS", '+36"\rAT+CFUN=0')):
            query = urllib.parse.urlencode({"action": "configdriver", "name": "GSMModem1",
                                            "username": "admin", "password": ADMIN_PASSWORD,
                                            key: value})
            url = f"http://127.0.0.1:{daemon.port}/api?{query}"
            body = urllib.request.urlopen(url, timeout=30).read().decode()
            assert "<errorcode>3</errorcode>" in body and f"{key.lower()}: expected" in body
        assert not any("CFUN=0" in c for c in sim.commands[sent:])
        assert daemon.channels.running["GSMModem1"].status()["state"] == "ready"


def test_the_dashboards_ussd_form_shows_why_and_sends_nothing(make_config, run_daemon):
    with demo_daemon_on_simulated_modems(make_config, run_daemon) as (daemon, network):
        admin = Browser(daemon.port)
        admin.login()
        token = admin.csrf("/ui/admin")
        sim = network.modem("slot2")
        sent = len(sim.commands)
        status, body, _ = admin.open("/ui/admin/ussd", {"csrf": token, "slot": "slot2",
                                                        "code": INJECTION})
        assert status == 200 and 'class="error" id="ussd-reply"' in body
        assert "not a USSD code" in body
        assert not [c for c in sim.commands[sent:] if "CUSD" in c or "CFUN=0" in c]
