"""Outbound routes through the Ozeki API (listroutes, setroutes, resetroutes) on a running
daemon with two SMPP uplinks (two smpp34 servers), and API drivers' operator aliases."""

from __future__ import annotations

import dataclasses

import pytest

from appliance import config as cfg
from appliance.daemon import Daemon
from conftest import ADMIN_PASSWORD, Api, xml_values
from wsgi_client import WsgiApi
from fakes.smsc import Smsc
from test_smpp import wait_until


@pytest.fixture
def smscs():
    servers = [Smsc().start(), Smsc().start()]
    yield servers
    for server in servers:
        server.stop()


def uplink(name: str, smsc: Smsc) -> cfg.SMPPConfig:
    return cfg.SMPPConfig(name=name, host="127.0.0.1", port=smsc.port, username="esme",
                          password="secret", reconnectdelay=0.05)


@pytest.fixture
def start(make_config, smscs):
    running: list[Daemon] = []
    a, b = smscs

    def start(routes=(cfg.RouteConfig(connections=("SMPP0",), prefix="+36"),)) -> Daemon:
        config = make_config(connections=(uplink("SMPP0", a), uplink("SMPP1", b)),
                             routes=tuple(routes))
        daemon = Daemon(config, admin_password=ADMIN_PASSWORD)
        daemon.start()
        running.append(daemon)
        for channel in daemon.channels.running.values():
            wait_until(lambda c=channel: c.state == "bound", what="bind")
        return daemon

    def stop(daemon: Daemon) -> None:
        running.remove(daemon)
        daemon.stop()
    start.stop = stop
    yield start
    for daemon in running:
        daemon.stop()


def sent_to(api: Api, smsc: Smsc, recipient: str) -> None:
    before = len(smsc.proxy.wire)
    api.wait_state(api.send(recipient, "routed"), 13, timeout=10)
    wait_until(lambda: len(smsc.proxy.wire) == before + 1, what="submit_sm at that SMSC")
    assert smsc.proxy.wire[-1].destination_addr == recipient.lstrip("+")


def test_setroutes_applies_at_once_persists_and_yields_to_a_changed_file(start, smscs):
    a, b = smscs
    daemon = start()
    api = WsgiApi(daemon.app)
    assert xml_values(api.action("listroutes"), "owner") == ["file"]
    sent_to(api, a, "+36201111111")                           # the file's rule: SMPP0

    body = api.action("setroutes", routecount="2", connections0="SMPP1", prefix0="+36",
                      connections1="SMPP1,SMPP0", mode1="balance")
    assert xml_values(body, "owner") == ["api"]
    assert xml_values(body, "connections") == ["SMPP1", "SMPP1,SMPP0"]
    assert xml_values(body, "mode") == ["failover", "balance"]
    sent_to(api, b, "+36202222222")                           # no restart needed

    start.stop(daemon)                                        # same file: the API table stays
    daemon = start()
    api = WsgiApi(daemon.app)
    assert xml_values(api.action("listroutes"), "owner") == ["api"]
    sent_to(api, b, "+36203333333")

    start.stop(daemon)                                        # the file's routes changed
    daemon = start(routes=(cfg.RouteConfig(connections=("SMPP0",), prefix="+3620"),))
    api = WsgiApi(daemon.app)
    body = api.action("listroutes")
    assert xml_values(body, "owner") == ["file"] and xml_values(body, "prefix") == ["+3620"]
    sent_to(api, a, "+36204444444")


def test_setroutes_is_validated_like_the_config_and_admin_only(start, smscs):
    daemon = start()
    api = WsgiApi(daemon.app)
    body = api.action("setroutes", routecount="1", connections0="SMPP0,NOPE")
    assert xml_values(body, "errorcode") == ["3"]
    assert "no connection named 'NOPE'" in xml_values(body, "errormessage")[0]
    body = api.action("setroutes", routecount="1", connections0="SMPP0", mode0="random")
    assert xml_values(body, "errorcode") == ["3"] and "mode" in body
    body = api.action("setroutes", routecount="1", prefix0="+36")
    assert xml_values(body, "errorcode") == ["2"] and "connections0" in body
    body = api.action("setroutes")
    assert xml_values(body, "errorcode") == ["2"] and "routecount" in body
    assert xml_values(api.action("listroutes"), "owner") == ["file"]   # nothing changed

    api.action("createuser", name="bob", userpassword="bob-secret-1")
    bob = WsgiApi(daemon.app, "bob", "bob-secret-1")
    for name in ("listroutes", "setroutes", "resetroutes"):
        assert xml_values(bob.action(name, routecount="0"), "errorcode") == ["5"]

    api.action("setroutes", routecount="1", connections0="SMPP1")
    body = api.action("resetroutes")
    assert xml_values(body, "owner") == ["file"] and xml_values(body, "connections") == ["SMPP0"]
    sent_to(api, smscs[0], "+36205555555")


def test_an_api_driver_operator_alias_reaches_the_router(start, smscs):
    daemon = start()
    api = WsgiApi(daemon.app)
    body = api.action("createdriver", type="SMPP", name="Cheap0", host="127.0.0.1",
                      port=str(smscs[1].port), systemid="cheap", smpppassword="secret",
                      operator="CheapNet", reconnectdelay="0.05")
    assert xml_values(body, "name") == ["Cheap0"], body
    api.action("startdriver", name="Cheap0")
    wait_until(lambda: "Cheap0" in daemon.channels.running
               and daemon.channels.running["Cheap0"].state == "bound", what="Cheap0 bound")
    message_id = api.send("+36206666666", "by alias", serviceprovider="CheapNet")
    api.wait_state(message_id, 13, timeout=10)
    assert daemon.journal.get_parts(message_id)[0]["connection"] == "Cheap0"
    assert smscs[1].binds == ["esme", "cheap"]
    assert dataclasses.asdict(daemon.router.routes()[0])["connections"] == ("SMPP0",)


def test_a_serviceprovider_that_names_a_route_is_routed_by_it(start, smscs):
    """A rule's `serviceprovider` key matches the messages that ask for that name: they
    leave through the rule's connections (they waited for a connection called "bulk"
    until their validity ended); a name no connection or rule has is refused."""
    daemon = start(routes=(cfg.RouteConfig(connections=("SMPP1",), serviceprovider="bulk"),
                           cfg.RouteConfig(connections=("SMPP0",))))
    api = WsgiApi(daemon.app)
    before = len(smscs[1].proxy.wire)
    api.wait_state(api.send("+36207777777", "bulk run", serviceprovider="bulk"), 13,
                   timeout=10)
    wait_until(lambda: len(smscs[1].proxy.wire) == before + 1, what="submit_sm at SMPP1")
    body = api.action("sendmessage", recipient="+36207777777", messagedata="x",
                      serviceprovider="bluk")
    assert xml_values(body, "errorcode") == ["3"] and "'bluk'" in body


def test_a_drivers_operator_alias_never_takes_over_another_connections_name(
        make_config, run_daemon):
    """Found by a helper: seed 000's GSM table gives `OPERATOR` the default `GSMModem0`, the
    name of our first modem. A second modem set up from that table (here not even running)
    took every message meant for GSMModem0: they waited, queued, until it was deleted."""
    from web_kit import demo_daemon_on_simulated_modems
    with demo_daemon_on_simulated_modems(make_config, run_daemon, modems=1) as (daemon, _):
        api = Api(daemon.port, "admin", ADMIN_PASSWORD)
        first = next(iter(daemon.channels.running))
        body = api.action("createdriver", type="GSMModem", name="spare",
                          MODEMORPORT="/dev/ttyUSB9", AUTOCONNECT="off", OPERATOR=first)
        assert "<action>error</action>" not in body, body
        message = api.send("+36201234567", "pinned", serviceprovider=first)
        api.wait_state(message, 10, timeout=30)
        assert xml_values(api.action("getmessagebyid", msgID=message),
                          "operatorname") == [first]


def test_failover_does_not_spill_a_burst_onto_the_backup(make_config, run_daemon):
    """Found by a helper: with a failover rule and both ways out ready, a burst went mostly
    through the backup (whoever had a free slot; a modem has one): a flat-rate SIM's burst
    was paid for on the aggregator. The backup takes over only while the first cannot send."""
    from web_kit import demo_daemon_on_simulated_modems
    with demo_daemon_on_simulated_modems(make_config, run_daemon, modems=2,
                                         step_seconds=0.05) as (daemon, _):
        api = Api(daemon.port)
        body = api.action("setroutes", routecount="1", connections0="GSMModem0,GSMModem1",
                          mode0="failover")
        assert "<action>error</action>" not in body, body
        fields = {f"recipient{i}": f"+3620555{i:04d}" for i in range(8)}
        fields.update({f"messagedata{i}": f"burst {i}" for i in range(8)})
        body = api.action("sendmessage", messagecount="8", **fields)
        ids = [xml_values(body, f"messageid{i}")[0] for i in range(8)]
        for message_id in ids:
            api.wait_state(message_id, 10, timeout=30)
        assert {daemon.journal.get_message(i)["connection"] for i in ids} == {"GSMModem0"}
        api.action("stopdriver", name="GSMModem0")           # the first cannot send now
        message = api.send("+36205559999", "while GSMModem0 is stopped")
        api.wait_state(message, 10, timeout=30)
        assert daemon.journal.get_message(message)["connection"] == "GSMModem1"


def test_a_rule_naming_a_deleted_driver_is_skipped_and_the_table_survives_a_restart(
        start, smscs):
    """Found by a helper: after `deletedriver`, a rule naming it held its messages queued
    for their whole validity, and at the next start the whole API route table (every other
    rule with it) was dropped for the file's."""
    a, b = smscs
    daemon = start()
    api = WsgiApi(daemon.app)
    for body in (api.action("createdriver", type="SMPP", name="SMPP9", host="127.0.0.1",
                            port=str(b.port), SYSTEMID="esme", SMPPPASSWORD="secret"),
                 api.action("setroutes", routecount="2", connections0="SMPP9",
                            prefix0="+3632", connections1="SMPP1"),
                 api.action("deletedriver", name="SMPP9")):
        assert "<action>error</action>" not in body, body
    message = api.send("+36321234599", "its rule's connection is gone")
    api.wait_state(message, 13, timeout=20)
    assert daemon.journal.get_message(message)["connection"] == "SMPP1"
    start.stop(daemon)
    daemon = start()
    api = WsgiApi(daemon.app)
    assert xml_values(api.action("listroutes"), "owner") == ["api"]
    sent_to(api, b, "+36203333333")                     # the other rule still applies
