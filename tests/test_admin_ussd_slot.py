"""/admin/ussd names a modem as users do: the dashboard shows `slot1`, the README and the
drivers API say `GSMModem0`, the demo fault endpoint and the simulator take a bare `1`.
`slot=1` used to be a 404 although slot1 ran. Demo modems on the pty simulator; the daemon
over a real socket."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from appliance import cli
from conftest import ADMIN_PASSWORD
from web_kit import demo_daemon_on_simulated_modems


def _ussd(port: int, **params) -> tuple[int, dict]:
    query = urllib.parse.urlencode({"code": "*100#", "username": "admin",
                                    "password": ADMIN_PASSWORD, **params})
    status, body = cli._get(f"http://127.0.0.1:{port}/admin/ussd?{query}", timeout=60)
    return status, json.loads(body)


def test_a_modem_is_named_by_number_slot_or_connection_name_in_any_case(make_config,
                                                                       run_daemon):
    with demo_daemon_on_simulated_modems(make_config, run_daemon) as (daemon, network):
        for wanted in ("1", "slot1", "SLOT1", "GSMModem0", "gsmmodem0", " 1 "):
            status, body = _ussd(daemon.port, slot=wanted)
            assert status == 200 and body["reply"].startswith("Balance: 12.50"), (wanted, body)
        for wanted, sim in (("2", "slot2"), ("GSMModem1", "slot2")):
            before = len(network.modem(sim).commands)
            assert _ussd(daemon.port, slot=wanted)[0] == 200
            assert any("CUSD" in c for c in network.modem(sim).commands[before:]), wanted

        status, body = _ussd(daemon.port, slot="9")
        assert status == 404 and "no running modem" in body["error"] and "'9'" in body["error"]
        assert "slot1 (GSMModem0)" in body["error"] and "slot2 (GSMModem1)" in body["error"]
        status, body = _ussd(daemon.port, slot="")
        assert status == 400 and "slot is required" in body["error"]


def test_the_demo_fault_endpoint_takes_the_same_names(make_config, run_daemon):
    with demo_daemon_on_simulated_modems(make_config, run_daemon) as (daemon, network):
        def fault(modem, key="modem"):
            query = urllib.parse.urlencode({key: modem, "fault": "none",
                                            "username": "admin", "password": ADMIN_PASSWORD})
            request = urllib.request.Request(
                f"http://127.0.0.1:{daemon.port}/demo/sim?{query}", method="POST")
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    return answer.status, json.loads(answer.read())
            except urllib.error.HTTPError as exc:
                return exc.code, json.loads(exc.read())

        for modem in ("slot2", "2", "GSMModem1", "gsmmodem1"):
            assert fault(modem) == (200, {"modem": modem, "fault": "none"}), modem
        status, body = fault("GSMModem7")
        assert status == 404 and "'GSMModem7'" in body["error"]
        # `slot=` as /admin/ussd names it (it was refused: "no simulated modem: ''")
        assert fault("slot1", key="slot") == (200, {"slot": "slot1", "fault": "none"})
        status, body = fault("", key="slot")
        assert status == 400 and "modem is required" in body["error"]
