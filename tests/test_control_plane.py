"""The control plane (control.py): what the web layer may ask of the daemon, and how a
handler answers when there is no daemon behind it. Real SQLite and documents files; the web
answers through the in-process WSGI client."""

from __future__ import annotations

from appliance import config as cfg
from appliance.control import AddressBook, ControlPlane, RouteControl
from appliance.routing import Router
from appliance.store.documents import Documents
from appliance.web.app import make_app
from appliance.web.services import Services
from conftest import xml_values
from wsgi_client import WsgiApi


class Channels:
    def __init__(self, configs, running):
        self.configs, self.running = configs, running


class Modem:
    def run_ussd(self, code, timeout):
        return f"answer to {code}"


def test_a_modem_is_found_by_name_or_slot_and_only_running_modems_run_ussd():
    configs = {"GSM0": cfg.GSMModemConfig(name="GSM0", slot="1"),
               "GSM1": cfg.GSMModemConfig(name="GSM1", slot="2"),
               "SMPP0": cfg.SMPPConfig(name="SMPP0", host="127.0.0.1")}
    modem = Modem()
    plane = ControlPlane(channels=Channels(configs, {"GSM0": modem, "SMPP0": object()}))
    assert plane.modem("1") is modem and plane.modem("GSM0") is modem
    assert plane.ussd_modem("2") is None            # configured, not running
    assert plane.ussd_modem("SMPP0") is None        # running, but no USSD
    assert ControlPlane().ussd_modem("1") is None   # no daemon at all


def test_route_changes_persist_wake_the_dispatcher_and_yield_to_reset(tmp_path):
    documents = Documents(tmp_path)
    file_routes = (cfg.RouteConfig(connections=("A",), prefix="+36"),)
    router = Router(file_routes, ["A", "B"])
    wakes = []
    routes = RouteControl(router, documents, file_routes, lambda: {"A", "B"},
                          lambda: wakes.append(1))
    api_routes = (cfg.RouteConfig(connections=("B",)),)
    routes.set(api_routes)
    assert (routes.owner, router.routes(), len(wakes)) == ("api", api_routes, 1)

    again = RouteControl(Router(file_routes, ["A", "B"]), documents, file_routes,
                         lambda: {"A", "B"}, lambda: None)
    again.apply_stored()                            # a restart keeps the API's table
    assert (again.owner, again.routes()) == ("api", api_routes)

    routes.reset()
    assert (routes.owner, router.routes(), len(wakes)) == ("file", file_routes, 2)
    fresh = RouteControl(Router(file_routes, ["A"]), documents, file_routes,
                         lambda: {"A"}, lambda: None)
    fresh.apply_stored()
    assert fresh.owner == "file"
    documents.close()


def test_a_deleted_users_private_contacts_go_and_shared_ones_stay(tmp_path):
    documents = Documents(tmp_path)
    book = AddressBook(documents)
    book.put({"name": "mine", "phone": "+361", "user": "bob"})
    book.put({"name": "shared", "phone": "+362", "user": ""})
    book.put({"name": "other", "phone": "+363", "user": "eve"})
    assert book.drop_user("bob") == 1
    assert sorted(c["name"] for c in book.all()) == ["other", "shared"]
    assert AddressBook(None).all() == []
    documents.close()


def test_without_a_daemon_the_handlers_answer_not_available_in_their_own_format(appliance):
    daemon, _ = appliance
    bare = Services(config=daemon.config, journal=daemon.journal, accounts=daemon.accounts)
    api = WsgiApi(make_app(bare))
    for action in ("listdrivers", "listroutes", "getaddressbook"):
        status, body = api.get("/api", action=action, username="admin",
                               password=api.password)
        assert status == 200 and xml_values(body, "action") == ["error"], body
        assert "not available" in body
    status, body = api.get("/admin/ussd", slot="1", code="*100#", username="admin",
                           password=api.password)
    assert status == 404 and "no running modem" in body


def test_the_daemons_plane_reaches_its_parts(appliance):
    daemon, api = appliance
    assert daemon.services.control is daemon.control
    assert daemon.control.channels is daemon.channels and daemon.control.monitor is daemon
    api.action("adddnd", number="+3620999")
    assert daemon.control.dnd.entries() == ["+3620999"]
    body = api.action("sendmessage", recipient="+3620999", messagedata="x")
    assert xml_values(body, "statuscode") == ["10"]           # the gate reads the same list
    api.action("addcontact", contactname="Anna", phonenumber="+36201111111")
    assert [c["name"] for c in daemon.control.addressbook.all()] == ["Anna"]
