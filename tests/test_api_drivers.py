"""Ozeki §9 driver actions act on the daemon's running Channels and persist in the documents.

The modem and SMPP workers are other engineers' and need hardware or a server; a channel that
never sends stands in for them (`build_channel` is the daemon's one factory), so nothing can
reach a modem here while start/stop/reconfigure run through the real Channels.
"""

from __future__ import annotations

import pytest

from appliance import daemon as daemon_module
from conftest import xml_values
from wsgi_client import WsgiApi


class IdleChannel:
    """Runs, answers status, takes nothing: free_slots() is 0."""

    built: list["IdleChannel"] = []

    def __init__(self, conn):
        self.conn = conn
        self.name = conn.name
        self.running = False
        IdleChannel.built.append(self)

    def start(self):
        self.running = True

    def stop(self, timeout: float = 10.0):
        self.running = False

    def free_slots(self):
        return 0

    def submit(self, part):
        raise AssertionError("nothing may be sent in these tests")

    def alive(self):
        return self.running

    def status(self):
        return {"name": self.name, "state": "ready"}


@pytest.fixture
def idle_channels(monkeypatch):
    IdleChannel.built = []
    monkeypatch.setattr(daemon_module, "build_channel",
                        lambda conn, *args, **kwargs: IdleChannel(conn))
    return IdleChannel.built


def error_code(body: str) -> int:
    assert "<action>error</action>" in body, body
    return int(xml_values(body, "errorcode")[0])


def test_create_configure_start_stop_delete(appliance, idle_channels):
    daemon, api = appliance
    body = api.action("createdriver", type="SMPP", name="SMPP0")
    assert xml_values(body, "state") == ["not configured"]          # no host yet
    body = api.action("configdriver", name="SMPP0", host="127.0.0.1", port="1",
                      windowsize="5", autoconnect="on")
    assert xml_values(body, "state") == ["running"], body
    first = daemon.channels.running["SMPP0"]
    assert first.conn.windowsize == 5 and first.running
    # a change takes effect at once: the running channel is replaced by one with the new value
    api.action("configdriver", name="SMPP0", windowsize="9")
    second = daemon.channels.running["SMPP0"]
    assert second is not first and second.conn.windowsize == 9 and not first.running
    assert daemon.documents.get("connections", "SMPP0")["table"]["windowsize"] == "9"
    api.action("stopdriver", name="SMPP0")
    assert "SMPP0" not in daemon.channels.running and not second.running
    body = api.action("startdriver", name="SMPP0")
    assert xml_values(body, "state") == ["running"]
    api.action("deletedriver", name="SMPP0")
    assert "SMPP0" not in daemon.channels.configs
    assert daemon.documents.get("connections", "SMPP0") is None
    assert error_code(api.action("deletedriver", name="SMPP0")) == 7


def test_every_kind_is_saved_to_wait_for_what_it_lacks_by_the_seeds_names(appliance,
                                                                            idle_channels):
    """api.md 9: a table that only lacks what a connection needs to run is saved and waits;
    a helper found HTTP Client and SMTP drivers refused without TARGETURL or SMTPSERVER,
    and the seed's table titles ("SMPP connection") refused as unknown types."""
    daemon, api = appliance
    body = api.action("createdriver", type="HTTP server connection", name="H1")
    assert xml_values(body, "state") == ["running"], body        # complete with defaults
    for kind, name in (("HTTP Client Connection", "W1"),
                       ("SMTP (E-mail to SMS) Connection", "M1"), ("SMPP connection", "S1"),
                       ("HTTPClient", "W2"), ("SMTP", "M2")):
        body = api.action("createdriver", type=kind, name=name)
        assert xml_values(body, "state") == ["not configured"], (kind, body)
    assert error_code(api.action("createdriver", type="CIMD2 connection")) == 11
    body = api.action("configdriver", name="W2", targeturl="http://127.0.0.1:9/s?to=$recipient",
                      autoconnect="on")
    assert xml_values(body, "state") == ["running"], body


def test_driver_changes_survive_a_restart(make_config, run_daemon, idle_channels):
    config = make_config()
    first = run_daemon(config)
    api = WsgiApi(first.app)
    api.action("createdriver", type="SMPP", name="Up1", host="10.0.0.1", autoconnect="on")
    api.action("configdriver", name="Up1", port="2776")
    first.stop()
    again = run_daemon(config)
    assert again.channels.running["Up1"].conn.port == 2776


def test_refusals(appliance, idle_channels):
    _, api = appliance
    for kind in ("CIMD2", "UCP", "EAIF", "MM7", "VoIP"):
        body = api.action("createdriver", type=kind)
        assert error_code(body) == 11 and "not supported" in body
    assert error_code(api.action("createdriver", type="Telepathy")) == 3
    api.action("createdriver", type="SMPP", name="S1")
    assert error_code(api.action("configdriver", name="S1", warpdrive="on")) == 3
    assert error_code(api.action("configdriver", name="S1", windowsize="many")) == 3
    assert error_code(api.action("configdriver", name="ghost", host="x")) == 7
    # values run cannot use: refused, not saved and shown running (found by a helper)
    for key, value in (("PORT", "99999"), ("PORT", "-1"), ("PROTOCOLVERSION", "99"),
                       ("SUBMITTIMEOUT", "0")):
        body = api.action("configdriver", name="S1", host="127.0.0.1", **{key: value})
        assert error_code(body) == 3 and key.lower() in body, (key, value, body)
    # a TON/NPI that does not fit its octet failed every bind with a traceback, forever
    for key, value, field in (("SOURCETON", "999", "sourceaddrton"),
                              ("SOURCENPI", "300", "sourceaddrnpi"),
                              ("DESTNPI", "-1", "destaddrnpi"), ("BINDTON", "7", "bindton")):
        body = api.action("configdriver", name="S1", host="127.0.0.1", **{key: value})
        assert error_code(body) == 3 and field in body, (key, value, body)
    # an incomplete driver's bad value is named, not the HOST it still lacks
    body = api.action("createdriver", type="SMPP", name="S2", PORT="70000")
    assert error_code(body) == 3 and "port" in body and "host" not in body, body
    body = api.action("configdriver", name="S1", host="127.0.0.1", PROTOCOLVERSION="34")
    assert "<action>configdriver</action>" in body and "saved and applied" in body, body
    body = api.action("configdriver", name="S1", host="h", databits="8")
    assert xml_values(body, "ignoredkey") == ["databits"]
    john = api.action("createuser", name="john", userpassword="john-pass-1")
    assert "john" in john
    user = api.as_user("john", "john-pass-1")
    for action in ("createdriver", "deletedriver", "startdriver", "stopdriver", "configdriver"):
        assert error_code(user.action(action, name="S1", type="SMPP")) == 5


def test_file_connections_take_overrides_but_cannot_be_deleted(make_config, run_daemon,
                                                               idle_channels):
    from appliance.config import SMPPConfig
    config = make_config(connections=(SMPPConfig(name="Aggregator", host="10.0.0.2"),))
    daemon = run_daemon(config)
    api = WsgiApi(daemon.app)
    assert daemon.channels.running["Aggregator"].conn.windowsize == 20         # seed 000 default
    api.action("configdriver", name="Aggregator", windowsize="3")
    assert daemon.channels.running["Aggregator"].conn.windowsize == 3
    assert error_code(api.action("deletedriver", name="Aggregator")) == 11
    daemon.stop()
    again = run_daemon(config)
    assert again.channels.running["Aggregator"].conn.windowsize == 3


def test_resend_after_a_timeout_is_a_choice_for_web_and_mail_providers_only(appliance,
                                                                           idle_channels):
    """Found by a helper: SUBMITTIMEOUTACTION=Resend, valid for HTTP Client and SMTP in the
    config file and docs/api.md §8, was refused through createdriver/configdriver."""
    daemon, api = appliance
    for kind, name in (("HTTPClient", "W9"), ("SMTP", "M9")):
        api.action("createdriver", type=kind, name=name)
        body = api.action("configdriver", name=name, SUBMITTIMEOUTACTION="Resend")
        assert "<action>configdriver</action>" in body and "submittimeoutaction" not in \
            body.lower(), body
    api.action("createdriver", type="SMPP", name="S9")
    body = api.action("configdriver", name="S9", host="h", SUBMITTIMEOUTACTION="Resend")
    assert error_code(body) == 3 and "SubmitFailed or SubmitSuccess" in body


def test_a_deleted_http_client_takes_its_report_token_with_it(appliance, idle_channels):
    """Found by a helper: the token the appliance made for an HTTP Client's reports was kept
    by name after deletedriver, so a new connection of that name (maybe another provider)
    took reports from whoever held the old URL. Deleting it drops the token."""
    daemon, api = appliance
    template = "http://127.0.0.1:9/send?to=$recipient"
    api.action("createdriver", type="HTTPClient", name="Prov1", targeturl=template)
    old = daemon.control.report_tokens.token(daemon.channels.configs["Prov1"])
    report = "http://127.0.0.1/connections/Prov1/report?messageid=x&status=DELIVRD&token="
    assert api.call("GET", report + old)[0] == 200
    api.action("deletedriver", name="Prov1")
    api.action("createdriver", type="HTTPClient", name="Prov1", targeturl=template)
    status, _, body = api.call("GET", report + old)
    assert status == 403, body
    new = daemon.control.report_tokens.token(daemon.channels.configs["Prov1"])
    assert new != old and api.call("GET", report + new)[0] == 200


def test_drivers_created_and_deleted_at_once_leave_no_ghost(appliance_socket, monkeypatch):
    """Six clients creating and deleting one driver at once, over a real socket, with a
    real HTTP Client channel: a createdriver's start that ended after a deletedriver's stop
    left a connection without its document, run and listed until a restart, which
    deletedriver then called unknown ('No driver named'). Starts are made slow here (a modem
    probe or an SMPP bind takes seconds), so the two overlap. Changes now run one at a time."""
    import random
    import threading
    import time
    daemon, api = appliance_socket
    start = daemon_module.Channels.start

    def slow_start(channels, conn):
        time.sleep(0.03)
        start(channels, conn)

    monkeypatch.setattr(daemon_module.Channels, "start", slow_start)
    ROUNDS = 40
    target = "http://127.0.0.1:9/send?to=$recipient&text=$messagedata"    # nobody listens

    def churn(seed: int) -> None:
        rnd = random.Random(seed)
        for _ in range(ROUNDS):
            if rnd.random() < 0.5:
                api.action("createdriver", name="race0", type="HTTPClient", targeturl=target)
            else:
                api.action("deletedriver", name="race0")

    clients = [threading.Thread(target=churn, args=(seed,)) for seed in range(6)]
    for client in clients:
        client.start()
    for client in clients:
        client.join(120)
    api.action("deletedriver", name="race0")             # gone, whatever the last one did
    assert "race0" not in api.action("listdrivers")
    assert "race0" not in daemon.channels.configs and "race0" not in daemon.channels.running
