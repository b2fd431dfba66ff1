"""Issue 12 (4, 5): deleting users leaves nothing to inherit; per-user inbound URLs fire for
the user owning the receiving number or route; configuser works for the admin account."""

from __future__ import annotations

import dataclasses
import time
import urllib.parse

import pytest

from appliance import config as cfg
from appliance import demo
from conftest import Api, xml_values
from test_api_dialects import receiver  # noqa: F401 (fixture)
from test_smpp import wait_until


def test_deleted_user_leaves_nothing_to_a_new_user_of_the_same_name(appliance):
    daemon, api = appliance
    api.action("createuser", name="bob", userpassword="bob-pass-11", credits="100")
    bob = Api(daemon.port, "bob", "bob-pass-11")
    old = bob.send("+36701234567", "queued before bob was deleted")
    bob.action("addcontact", contactname="bobs-mum", phonenumber="+36701112222")
    assert xml_values(bob.action("getcredits"), "balance") == ["99"]
    body = api.action("deleteuser", name="bob")
    assert "<deleted>yes</deleted>" in body
    # the old queue does not leave any more
    assert daemon.journal.get_parts(old)[0]["state"] == "deleted"
    assert daemon.journal.due_parts() == []
    api.action("createuser", name="bob", userpassword="bob-pass-22")
    new_bob = Api(daemon.port, "bob", "bob-pass-22")
    assert xml_values(new_bob.action("getcredits"), "balance") == ["1000"]   # a new user's start
    for folder in ("outbox", "sent", "notsent", "deleted", "inbox"):
        listing = new_bob.action("querymessagelist", folder=folder)
        assert xml_values(listing, "count") == ["0"], folder
    status, body = new_bob.get("/api", action="getmessagebyid", username="bob",
                               password="bob-pass-22", msgID=old)
    assert "No message with id" in body
    assert "bobs-mum" not in new_bob.action("getaddressbook")
    ledger = daemon.journal.query("SELECT message_id FROM ledger WHERE user='bob'")
    assert [row["message_id"] for row in ledger if row["message_id"]] == []   # old debits gone
    archived = daemon.journal.query("SELECT DISTINCT user FROM messages WHERE id=?", (old,))
    assert archived[0]["user"].startswith("bob#deleted-")


def test_configuser_changes_the_admin_when_no_file_owns_it(appliance, receiver):
    daemon, api = appliance
    body = api.action("configuser", name="admin", inboundurl=receiver.url + "/in?from=$originator")
    assert "<statuscode>" not in body or "11" not in xml_values(body, "statuscode")
    assert daemon.accounts.get("admin").inbound_url.startswith(receiver.url)
    status, body = api.get("/api", action="configuser", username="admin",
                           password="admin-secret-1", name="admin", admin="off")
    assert daemon.accounts.get("admin").admin


def test_configuser_refuses_the_admin_password_the_file_sets(make_config, run_daemon):
    config = make_config(admin=cfg.AdminConfig(password="file-pass-123"))
    daemon = run_daemon(config, admin_password="")
    api = Api(daemon.port, password="file-pass-123")
    status, body = api.get("/api", action="configuser", username="admin",
                           password="file-pass-123", name="admin", newpassword="other-pass-1")
    assert "configuration file" in body
    assert "configuration file" not in api.action("configuser", name="admin",
                                                  reporturl="http://127.0.0.1:1/r")


@pytest.fixture
def demo_daemon(make_config, run_daemon):
    base = make_config(demo=cfg.DemoConfig(enabled=False, modems=2, send_seconds=0.05,
                                           report_seconds=0.05))
    config, network, pin_factory = demo.start(base)
    config = dataclasses.replace(config, routes=(
        cfg.RouteConfig(connections=("GSMModem1",), user="carol"),))
    try:
        daemon = run_daemon(config, pin_factory=pin_factory)
        for name in ("GSMModem0", "GSMModem1"):
            modem = daemon.channels.running[name]
            wait_until(lambda: modem.free_slots() > 0, timeout=30, what=f"{name} ready")
        yield daemon, network
    finally:
        network.close()


def test_inbound_url_fires_for_the_user_owning_the_number_or_route(demo_daemon, receiver):
    daemon, network = demo_daemon
    api = Api(daemon.port)
    number0 = daemon.channels.configs["GSMModem0"].phonenumber
    api.action("createuser", name="dave", userpassword="dave-pass-1", phonenumber=number0,
               inboundurl=receiver.url + "/dave?text=$messagedata")
    api.action("createuser", name="carol", userpassword="carol-pass-1",
               inboundurl=receiver.url + "/carol?text=$messagedata")
    network.modem("slot1").deliver_inbound("+36705550001", "to dave's number")
    network.modem("slot2").deliver_inbound("+36705550002", "through carol's route")
    calls = receiver.wait(2, timeout=30)
    paths = sorted(urllib.parse.unquote_plus(path) for _, path, _ in calls)
    assert paths == ["/carol?text=through carol's route", "/dave?text=to dave's number"]
    dave = Api(daemon.port, "dave", "dave-pass-1")
    assert xml_values(dave.action("receivemessage"), "messagedata") == ["to dave's number"]
    assert xml_values(api.action("receivemessage"), "messagedata") == []


def test_a_users_number_written_with_spaces_still_owns_its_inbound_sms(demo_daemon):
    """Found by a helper: phonenumber "+36 20 000 0002" sent fine but the SMS to that
    number were filed under admin: ownership compared the digits with the spaces."""
    daemon, network = demo_daemon
    api = Api(daemon.port)
    number0 = daemon.channels.configs["GSMModem0"].phonenumber          # +3620xxxxxxx
    spaced = f"{number0[:3]} {number0[3:5]} {number0[5:8]} {number0[8:]}"
    api.action("createuser", name="erin", userpassword="erin-pass-1", phonenumber=spaced)
    network.modem("slot1").deliver_inbound("+36705550003", "to erin's number")
    erin = Api(daemon.port, "erin", "erin-pass-1")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not xml_values(erin.action("receivemessage"),
                                                         "messagedata"):
        time.sleep(0.1)
    assert xml_values(erin.action("receivemessage"), "messagedata") == ["to erin's number"]


def test_one_name_created_at_once_by_several_clients_is_made_once(appliance_socket):
    """createuser checked for the name, then hashed the password (scrypt, offloaded: other
    requests run meanwhile), then stored: six clients creating one name at once all got
    statuscode 0 and the last one's password won. Over a real socket, six at once."""
    import threading
    daemon, api = appliance_socket
    answers = {}

    def create(n: int) -> None:
        answers[n] = api.action("createuser", name="racer", userpassword=f"racer-pass-{n}0")

    clients = [threading.Thread(target=create, args=(n,)) for n in range(6)]
    for client in clients:
        client.start()
    for client in clients:
        client.join(60)
    made = [n for n, body in answers.items() if "<action>createuser</action>" in body]
    assert len(made) == 1, answers
    refused = [body for n, body in answers.items() if n not in made]
    assert all(xml_values(body, "errorcode") == ["3"] and "already exists" in body
               for body in refused), refused
    assert [u.name for u in daemon.accounts.all()].count("racer") == 1
    racer = Api(daemon.port, "racer", f"racer-pass-{made[0]}0")     # the one made keeps its password
    assert "<action>getcredits</action>" in racer.action("getcredits")


def test_a_user_deleted_while_its_creation_waits_for_the_store_is_not_a_500(appliance,
                                                                             monkeypatch):
    """createuser answers with the user it made; a deleteuser that ran while it waited for
    the journal (its credits) left nothing to answer with: an AttributeError, a 500."""
    daemon, api = appliance
    accounts = daemon.accounts
    create = accounts.create

    def create_then_deleted(name, password, **values):
        made = create(name, password, **values)
        accounts.delete(name)              # as a concurrent deleteuser would
        return made

    monkeypatch.setattr(accounts, "create", create_then_deleted)
    status, body = api.get("/api", action="createuser", username="admin",
                           password=api.password, name="ghost", userpassword="ghost-pass-1")
    assert status == 200 and xml_values(body, "errorcode") == ["7"], body
    assert "No user named ghost" in body
