"""Issue 12 (6, 8): priority and validity the same in every dialect, JSON folder defaults,
masked numbers in web logs, inbound UDH and message class kept."""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from datetime import datetime

from appliance import gsm
from appliance.model import Priority
from appliance.store.journal import Journal
from conftest import ADMIN_PASSWORD, Api, xml_values
from test_api_dialects import basic, bulk, post_json
from test_modem_kit import network, rig, wait_until  # noqa: F401 (fixtures)


def _priority(daemon, message_id: str) -> int:
    return daemon.journal.get_message(message_id)["priority"]


def test_user_priority_applies_in_every_dialect(appliance):
    daemon, api = appliance
    api.action("createuser", name="alarm", userpassword="alarm-pass-1", priority="alert")
    alarm = Api(daemon.port, "alarm", "alarm-pass-1")
    ids = [alarm.send("+36201234567", "ozeki action")]
    _, reply = post_json(alarm, "sendmsg", {"messages": [
        {"to_address": "+36201234567", "text": "ozeki json"}]}, basic("alarm", "alarm-pass-1"))
    ids.append(reply["data"]["messages"][0]["message_id"])
    _, body = alarm.get("/", command="SendSms", ApiExtension="9994", Recipient="+36201234567",
                        Message="phone system", Username="alarm", Password="alarm-pass-1")
    ids.append(xml_values(body, "SmsId")[0])
    line = bulk(alarm, username="alarm", password="alarm-pass-1", message="bulksms")
    ids.append(line.split("|")[2])
    assert [_priority(daemon, i) for i in ids] == [Priority.ALERT] * 4


def test_request_priority_overrides_the_users_in_every_dialect(appliance):
    daemon, api = appliance
    ids = [api.send("+36201234567", "ozeki action", priority="bulk")]
    _, reply = post_json(api, "sendmsg", {"messages": [
        {"to_address": "+36201234567", "text": "ozeki json", "priority": "bulk"}]})
    ids.append(reply["data"]["messages"][0]["message_id"])
    _, body = api.get("/", command="SendSms", ApiExtension="9994", Recipient="+36201234567",
                      Message="phone system", Username="admin", Password=ADMIN_PASSWORD,
                      Priority="bulk")
    ids.append(xml_values(body, "SmsId")[0])
    ids.append(bulk(api, message="bulksms", priority="bulk").split("|")[2])
    assert [_priority(daemon, i) for i in ids] == [Priority.BULK] * 4
    # a priority nobody knows is refused, in the dialect's own format
    assert bulk(api, priority="urgent") == "1702|+36201234567|"   # code|destination|id
    _, reply = post_json(api, "sendmsg", {"messages": [
        {"to_address": "+36201234567", "text": "x", "priority": "urgent"}]})
    assert reply["data"]["failed_count"] == 1
    status, body = api.get("/api", action="sendmessage", username="admin",
                           password=ADMIN_PASSWORD, recipient="+36201234567",
                           messagedata="x", priority="urgent")
    assert "priority" in body and not xml_values(body, "messageid")


def test_json_refuses_a_validity_already_over_like_the_ozeki_dialect(appliance):
    daemon, api = appliance
    past = datetime.fromtimestamp(time.time() - 3600).strftime("%Y-%m-%d %H:%M:%S")
    _, reply = post_json(api, "sendmsg", {"messages": [
        {"to_address": "+36201234567", "text": "too late", "valid_until": past}]})
    assert reply["data"]["failed_count"] == 1
    assert "validity" in reply["data"]["messages"][0]["status"]
    assert daemon.journal.due_parts() == []


def _json_get(api: Api, query: str) -> dict:
    request = urllib.request.Request(f"{api.base}/api?{query}", headers=basic())
    status, text = api._open(request)
    assert status == 200, text
    return json.loads(text)


def test_json_folder_defaults_to_inbox(appliance):
    daemon, api = appliance
    from appliance.model import InboundFragment
    daemon.journal.inbound(InboundFragment(connection="GSMModem0", sender="+36301234567",
                                           recipient="+36209999999", encoding="gsm7",
                                           text="incoming"))
    inbox = _json_get(api, "action=receivemsg")["data"]
    assert inbox["folder"] == "inbox" and len(inbox["data"]) == 1
    message_id = inbox["data"][0]["message_id"]
    status, marked = post_json(api, "markmsg", {"message_ids": [message_id]})
    assert status == 200 and marked["data"]["message_ids"] == [message_id]
    status, deleted = post_json(api, "deletemsg", {"message_ids": [message_id]})
    assert status == 200 and deleted["data"]["message_ids"] == [message_id]


def test_web_logs_mask_numbers_like_the_modem_layer(appliance, caplog):
    _, api = appliance
    with caplog.at_level(logging.DEBUG, logger="appliance"):
        api.send("+36201234567", "ozeki")
        api.get("/", command="SendSms", ApiExtension="9994", Recipient="+36207654321",
                Message="phone system", Username="admin", Password=ADMIN_PASSWORD)
    assert "+36201234567" not in caplog.text and "+36207654321" not in caplog.text
    assert "+362…567" in caplog.text


def test_inbound_binary_keeps_its_udh_and_flash_stays_flash(rig, network, tmp_path):
    journal = Journal.open(tmp_path)
    try:
        sim = network.add_modem("slot1", "+36201111111")
        rig.ready(rig.worker(sim, journal))
        ports = bytes.fromhex("0504") + (2948).to_bytes(2, "big") + (9200).to_bytes(2, "big")
        binary = gsm.encode_deliver("+36705550001", data=b"\x01\x02\xff", udh=ports,
                                    scts=datetime.now().astimezone())
        flash = gsm.encode_deliver("+36705550002", "look at me", msg_class=0,
                                   scts=datetime.now().astimezone())
        sim.post(lambda: sim.receive_deliver(binary))
        sim.post(lambda: sim.receive_deliver(flash))
        rows = wait_until(lambda: len(journal.folder(None, "inbox")) == 2
                          and journal.folder(None, "inbox"), what="two inbound")
        by_sender = {r["originator"]: r for r in rows}
        assert by_sender["+36705550001"]["messagetype"] == "SMS:BINARY"
        assert by_sender["+36705550001"]["body"] == "060504" + "0B84" + "23F0" + "0102FF"
        assert json.loads(by_sender["+36705550001"]["extra"]) == {"udh": "05040B8423F0"}
        assert by_sender["+36705550002"]["messagetype"] == "SMS:TEXT:CLASS0"
        assert by_sender["+36705550002"]["body"] == "look at me"
        assert by_sender["+36705550002"]["msg_class"] == 0
    finally:
        journal.close()
