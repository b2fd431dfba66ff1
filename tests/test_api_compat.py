"""Compatibility: the seeds' and the reference's example requests, replayed as written, with
the answers checked element by element against the documented shapes."""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

import pytest

from conftest import ADMIN_PASSWORD, Api


def children(xml: str, path: str = "data") -> list[str]:
    body = re.sub(r"<!DOCTYPE[^>]*>", "", xml)
    return [c.tag for c in ET.fromstring(body.encode()).find(path)]


def test_ng_sendmessage_get_example(appliance):
    """owpn=413: GET /api?action=sendmessage&...&messagetype=SMS:TEXT&messagedata=Hello+World"""
    _, api = appliance
    status, body = api._open(urllib.request.Request(
        f"{api.base}/api?action=sendmessage&username=admin&password={ADMIN_PASSWORD}"
        "&recipient=06203105366&messagetype=SMS:TEXT&messagedata=Hello+World"))
    assert status == 200
    assert body.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE smsapi PUBLIC '
                           '"-//OZEKI//DTD XML 1.0//EN" "http://www.ozekisms.com/DTD/smsapi.xml">')
    root = ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", body).encode())
    assert [c.tag for c in root] == ["action", "data"]
    assert root.findtext("action") == "sendmessage"
    (report,) = list(root.find("data"))
    assert report.tag == "acceptreport"
    assert [c.tag for c in report][:4] == ["statuscode", "statusmessage", "messageid",
                                           "originator"]
    assert report.findtext("statuscode") == "0"
    assert report.findtext("statusmessage") == "Message accepted for delivery"
    assert report.findtext("recipient") == "06203105366"
    assert report.findtext("messagedata") == "Hello World"


def test_ozeki10_batch_post_seed(appliance):
    """Seed 001: the raw POST body, byte for byte, and the indexed answer."""
    _, api = appliance
    raw = ("action=sendmessage&messagecount=2&username=admin&password=" + ADMIN_PASSWORD +
           "&recipient0=06203105366&\nmessagetype0=SMS%3ATEXT&messagedata0=Hello+World"
           "&recipient1=06202222222&messagetype1=SMS%3ATEXT&messagedata1=Second+Message")
    raw = raw.replace("&\n", "&")
    status, body = api.post("/api", raw)
    assert status == 200
    data = ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", body).encode()).find("data")
    for i, (recipient, text) in enumerate([("06203105366", "Hello World"),
                                           ("06202222222", "Second Message")]):
        report = data.find(f"acceptreport{i}")
        assert [c.tag for c in report] == [f"statuscode{i}", f"statusmessage{i}",
                                           f"messageid{i}", f"originator{i}", "recipient",
                                           f"messagetype{i}", f"messagedata{i}",
                                           f"serviceprovider{i}"]
        assert report.findtext(f"statuscode{i}") == "0"
        assert report.findtext("recipient") == recipient
        assert report.findtext(f"messagetype{i}") == "SMS:TEXT"
        assert report.findtext(f"messagedata{i}") == text


def test_html_example_owpn_2430(appliance):
    _, api = appliance
    status, body = api._open(urllib.request.Request(
        f"{api.base}/api?action=sendmessage&username=admin&password={ADMIN_PASSWORD}"
        "&recipient=%2B4412345678,06203105366&messagetype=SMS:TEXT&messagedata=Hello"
        "&responseformat=html"))
    lines = [l for l in body.splitlines() if l]
    assert lines[0].startswith("<HTML><HEAD><TITLE>SMS</TITLE>")
    assert lines[1:5] == ["Status code: 0<br>", "Status message: Message accepted for delivery<br>",
                          lines[3], "Recipient: +4412345678<br>"]
    assert re.fullmatch(r"Message ID: [0-9a-f-]{36}<br>", lines[3])


def test_setcredits_seed_003(appliance):
    """Seed 003: ...action=setcredits&username=admin&password=abc123&useraccount=admin&newbalance=500"""
    _, api = appliance
    status, body = api._open(urllib.request.Request(
        f"{api.base}/api?action=setcredits&username=admin&password={ADMIN_PASSWORD}"
        "&useraccount=admin&newbalance=500"))
    assert body.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE smsapi')
    root = ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", body).encode())
    assert root.findtext("action") == "setcredits"
    assert children(body) == ["account"]
    assert [c.tag for c in root.find("data/account")] == ["username", "balance"]
    assert root.findtext("data/account/username") == "admin"
    assert root.findtext("data/account/balance") == "500"


def test_receivemessage_example_p2421(appliance):
    from appliance.model import InboundFragment
    daemon, api = appliance
    body = api.action("receivemessage", folder="inbox", limit="2", afterdownload="delete")
    assert '<!DOCTYPE response PUBLIC "-//OZEKI//DTD XML 1.0//EN" ' \
           '"http://www.ozekisms.com/DTD/response.xml">' in body
    assert children(body) == []                                   # empty inbox: <data>
    daemon.journal.inbound(InboundFragment(connection="GSMModem0", sender="06301234567",
                                           recipient="06201112222", encoding="gsm7",
                                           text="Hello world", sent_at=1200474240.0))
    body = api.action("receivemessage", folder="inbox", limit="2", afterdownload="delete")
    root = ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", body).encode())
    (message,) = root.find("data")
    assert [c.tag for c in message] == ["messageid", "originator", "recipient", "messagetype",
                                        "messagedata", "senttime", "receivedtime"]
    assert message.findtext("originator") == "06301234567"
    assert message.findtext("messagedata") == "Hello world"


def test_getmessagebyid_example_owpn_2635(appliance):
    _, api = appliance
    message_id = api.send("10958", "Test message")
    body = api.action("getmessagebyid", msgID=message_id)
    root = ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", body).encode())
    assert root.findtext("action") == "getMsgInfoByID"
    tags = children(body)
    for tag in ("messageid", "originator", "recipient", "folder", "senttime", "receivedtime",
                "creationtime", "callbackid", "state", "operatornames", "routes",
                "messagetype", "messagedata"):
        assert tag in tags
    assert root.findtext("data/messagetype") == "SMS:TEXT"


def test_getcredits_and_addcredits_examples(appliance):
    _, api = appliance
    api.action("createuser", name="john", userpassword="john-pass-1")
    api.action("setcredits", useraccount="john", newbalance="500")
    body = api.action("addcredits", useraccount="john", add="244")
    root = ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", body).encode())
    assert root.findtext("action") == "getcredits"             # as Ozeki's own example
    assert root.findtext("data/account/balance") == "744"


def test_user_and_driver_examples(appliance):
    _, api = appliance
    for action, params in [("createuser", {"type": "Standard", "name": "USERNAME"}),
                           ("configuser", {"name": "USERNAME", "IDOVERRIDE": "off"}),
                           ("stopuser", {"name": "USERNAME"}), ("startuser", {"name": "USERNAME"}),
                           ("deleteuser", {"name": "USERNAME"}),
                           ("createdriver", {"type": "SMPP"})]:
        body = api.action(action, **params)
        root = ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", body).encode())
        assert root.findtext("action") == action, body


def test_reporting_example_p2732(appliance):
    _, api = appliance
    api.send("+36201234567", "x")
    body = api.action("reporting", repDirection="out", toExport="summary")
    root = ET.fromstring(body.encode())
    assert root.findtext("action") == "reporting"
    user = root.find("data/user")
    assert user.findtext("username") == "admin" and user.findtext("messages") == "1"


def test_getaddressbook_capitalised_envelope(appliance):
    _, api = appliance
    body = api.action("getaddressbook")
    root = ET.fromstring(body.encode())
    assert root.tag == "Response" and [c.tag for c in root] == ["Action", "Data"]


def test_phonesystem_seed_002(appliance):
    _, api = appliance
    url = (f"{api.base}/?command=SendSms&ApiExtension=9994&Sender=%2b061554669"
           "&Recipient=%2b062554670&Message=Hello+world"
           "&DeliveryReportURL=http%3a%2f%2fxyz.com%2fdelivery_received.php"
           f"&Username=admin&Password={ADMIN_PASSWORD}")
    status, body = api._open(urllib.request.Request(url))
    root = ET.fromstring(body.encode())
    assert status == 200 and root.tag == "Response"
    assert [c.tag for c in root] == ["Code", "Message", "SmsId"]
    assert root.findtext("Code") == "200"
    assert re.fullmatch(r"[0-9a-f-]{36}", root.findtext("SmsId"))


def test_bulksms_seed_004(appliance):
    _, api = appliance
    status, body = api._open(urllib.request.Request(
        f"{api.base}/bulksms/bulksms?username=admin&password={ADMIN_PASSWORD}&type=0&dlr=1"
        "&destination=%2B36201234567&source=R&message=S&ip=x"))
    assert status == 200
    code, destination, message_id = body.split("|")
    assert (code, destination) == ("1701", "+36201234567")
    assert re.fullmatch(r"[0-9a-f-]{36}", message_id)
    status, body = api._open(urllib.request.Request(
        f"{api.base}/bulksms/schedulemsg?username=admin&password={ADMIN_PASSWORD}&message=X"
        "&type=0&dlr=0&source=X&destination=%2B36201234567&date=03/03/2099&time=03:45%20am"
        "&gmt=GMT%20%2B1:30"))
    assert body.startswith("1701|+36201234567|")


def test_json_shapes_from_the_ozeki_libraries(appliance):
    import json
    from test_api_dialects import post_json
    _, api = appliance
    status, reply = post_json(api, "sendmsg", {"messages": [{
        "message_id": "c4ce4d5e-b2d1-4399-bd2e-83dff97dfb19", "from_connection": "",
        "from_address": "", "from_station": "", "to_connection": "",
        "to_address": "+36201111111", "to_station": "", "text": "Hello world!",
        "create_date": "2024-01-01T10:00:00", "valid_until": "2099-01-08T10:00:00",
        "time_to_send": "2024-01-01T10:00:00", "submit_report_requested": True,
        "delivery_report_requested": True, "view_report_requested": True, "tags": []}]})
    assert set(reply) == {"http_code", "response_code", "response_msg", "data"}
    assert set(reply["data"]) == {"total_count", "success_count", "failed_count", "messages"}
    message = reply["data"]["messages"][0]
    assert message["status"] == "SUCCESS"
    assert json.dumps(message)


def test_https_when_a_certificate_is_configured(https_files, make_config, run_daemon):
    import dataclasses
    import ssl
    cert, key = https_files
    config = make_config()
    config = dataclasses.replace(config, http=dataclasses.replace(
        config.http, tls_cert=str(cert), tls_key=str(key)))
    daemon = run_daemon(config)
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    url = (f"https://127.0.0.1:{daemon.port}/api?action=getcredits&username=admin"
           f"&password={ADMIN_PASSWORD}")
    with urllib.request.urlopen(url, context=context, timeout=10) as answer:
        assert "<balance>0</balance>" in answer.read().decode()
    with pytest.raises(Exception):
        urllib.request.urlopen(url.replace("https", "http"), timeout=5).read()


def test_https_on_a_port_of_its_own_beside_plain_http(https_files, make_config, run_daemon):
    """`tls_port`: HTTPS beside plain HTTP, as Ozeki serves 9508 beside 9501. Before it a
    certificate turned every port to HTTPS, and a UPS or a PLC that cannot do TLS lost its
    URL the day the dashboard got one."""
    import dataclasses
    import socket
    import ssl
    cert, key = https_files
    with socket.socket() as probe:          # a free port: 0 means "no HTTPS port of its own"
        probe.bind(("127.0.0.1", 0))
        tls_port = probe.getsockname()[1]
    config = make_config()
    config = dataclasses.replace(config, http=dataclasses.replace(
        config.http, tls_cert=str(cert), tls_key=str(key), tls_port=tls_port))
    daemon = run_daemon(config)
    assert daemon.http.ports == [daemon.port, tls_port] and daemon.http.tls_ports == [tls_port]
    query = f"/api?action=getcredits&username=admin&password={ADMIN_PASSWORD}"
    with urllib.request.urlopen(f"http://127.0.0.1:{daemon.port}{query}", timeout=10) as answer:
        assert "<balance>0</balance>" in answer.read().decode()
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    with urllib.request.urlopen(f"https://127.0.0.1:{tls_port}{query}", context=context,
                                timeout=10) as answer:
        assert "<balance>0</balance>" in answer.read().decode()
    # the HTTPS port speaks no plain HTTP, and says so (before, the client got an empty reply)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{tls_port}{query}", timeout=5).read()
    assert refused.value.code == 400
    assert f"This port speaks HTTPS: use https://<this box>:{tls_port}/" in \
        refused.value.read().decode()
    # each port's scheme is its own: the dashboard's session cookie is Secure over HTTPS only
    cookies = {}
    for scheme, port, ctx in (("http", daemon.port, None), ("https", tls_port, context)):
        login = urllib.request.urlopen(f"{scheme}://127.0.0.1:{port}/login", context=ctx,
                                       timeout=10)
        cookies[scheme] = ";".join(login.headers.get_all("Set-Cookie") or []).lower()
    assert "secure" in cookies["https"] and "secure" not in cookies["http"]


@pytest.fixture
def budapest_time(monkeypatch):
    """The board's zone set to Europe/Budapest (sms_appliance_timezone, [time] zone)."""
    import time
    monkeypatch.setenv("TZ", "Europe/Budapest")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.skipif(not os.path.exists("/usr/share/zoneinfo/Europe/Budapest"), reason="no tzdata")
def test_json_times_with_z_or_an_offset_count_whatever_the_boards_zone(appliance, budapest_time):
    from datetime import datetime, timezone
    from test_api_dialects import post_json
    daemon, api = appliance
    stamps = {"local": "2099-07-01T18:00:00", "utc": "2099-07-01T18:00:00Z",
              "offset": "2099-07-01T20:00:00+02:00"}
    ids = {}
    for kind, stamp in stamps.items():
        status, reply = post_json(api, "sendmsg", {"messages": [{
            "to_address": "+36201111111", "text": kind, "time_to_send": stamp}]})
        [message] = reply["data"]["messages"]
        assert message["status"] == "SUCCESS", reply
        ids[kind] = message["message_id"]
    send_at = {k: daemon.journal.get_message(i)["send_at"] for k, i in ids.items()}
    utc_18 = datetime(2099, 7, 1, 18, tzinfo=timezone.utc).timestamp()
    assert send_at["utc"] == send_at["offset"] == utc_18
    assert send_at["local"] == utc_18 - 2 * 3600           # 18:00 in Budapest (CEST) is 16:00 UTC
