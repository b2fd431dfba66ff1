"""Ozeki 10 JSON (§12), Ozeki Phone System (§13) and bulksms (§14) through a real socket,
and the callbacks they ask for (SMSDeliveryReport, IncomingSMS, bulksms DLR)."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from appliance.model import InboundFragment, Report, ReportStatus
from conftest import ADMIN_PASSWORD, Api, xml_values


def basic(user: str = "admin", password: str = ADMIN_PASSWORD) -> dict:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


def post_json(api: Api, action: str, body, headers=None) -> tuple[int, dict]:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    status, text = api.post(f"/api?action={action}", data, headers or basic())
    return status, json.loads(text)


def port_of(api: Api) -> int:
    return int(api.base.rsplit(":", 1)[1])


# --- Ozeki 10 JSON ---------------------------------------------------------------------------


def test_json_sendmsg_receivemsg_markmsg_deletemsg(appliance):
    daemon, api = appliance
    status, reply = post_json(api, "sendmsg", {"messages": [
        {"message_id": "my-id-1", "to_address": "+36201234567", "text": "Hello",
         "tags": [{"name": "k", "value": "v"}]},
        {"to_address": "not a number", "text": "x"},
        {"id": "php-style-id", "to_address": "+36201234568", "text": "PHP client"}]})
    assert status == 200 and reply["http_code"] == 200 and reply["response_code"] == "SUCCESS"
    data = reply["data"]
    assert (data["total_count"], data["success_count"], data["failed_count"]) == (3, 2, 1)
    first, bad, php = data["messages"]
    assert first["status"] == "SUCCESS" and first["message_id"] == "my-id-1"
    assert first["tags"] == [{"name": "k", "value": "v"}]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", first["create_date"])
    assert bad["status"] != "SUCCESS"
    assert php["message_id"] == "php-style-id"
    assert daemon.journal.get_message("my-id-1")["state"] == "queued"
    # the same id again is refused for that message only
    _, again = post_json(api, "sendmsg", {"messages": [{"message_id": "my-id-1",
                                                        "to_address": "+36201234567",
                                                        "text": "x"}]})
    assert again["data"]["failed_count"] == 1

    daemon.journal.inbound(InboundFragment(connection="GSMModem0", sender="+36301234567",
                                           recipient="+36209999999", encoding="gsm7",
                                           text="incoming"))
    status, text = api.get("/api", action="receivemsg", folder="inbox")
    assert status == 401                                   # Basic auth is required
    status, text = api._open(__import__("urllib.request").request.Request(
        f"{api.base}/api?action=receivemsg&folder=inbox", headers=basic()))
    inbox = json.loads(text)["data"]
    assert inbox["folder"] == "inbox" and inbox["limit"] == "1000"
    (message,) = inbox["data"]
    assert message["text"] == "incoming" and message["from_address"] == "+36301234567"
    _, marked = post_json(api, "markmsg", {"folder": "inbox",
                                           "message_ids": [message["message_id"], "nope"]})
    assert marked["data"] == {"folder": "inbox", "message_ids": [message["message_id"]]}
    _, deleted = post_json(api, "deletemsg", {"folder": "outbox", "message_ids": ["my-id-1"]})
    assert deleted["data"]["message_ids"] == ["my-id-1"]
    assert daemon.journal.get_message("my-id-1")["deleted"] == 1


@pytest.mark.parametrize("body,status", [
    (b"{not json", 400), (b"[]", 400), (json.dumps({"messages": []}), 400),
    (json.dumps({"messages": "x"}), 400), (b"[" * 100_000 + b"]" * 100_000, 400)])
def test_json_bad_bodies(appliance, body, status):
    _, api = appliance
    got, reply = post_json(api, "sendmsg", body)
    assert got == status and reply["http_code"] == status and reply["response_code"] != "SUCCESS"


def test_json_bad_credentials(appliance):
    _, api = appliance
    status, reply = post_json(api, "sendmsg", {"messages": []}, basic("admin", "wrong"))
    assert status == 401 and reply["response_code"] == "INVALID_CREDENTIALS"


def test_json_texts_are_never_read_as_form_fields(appliance):
    """Found by a helper: the JSON body was also parsed as a form. A text with
    `&action=confirm` switched the request to another action (and dialect), and a batch
    over 64 KiB with an `=` anywhere was refused whole as one oversized "parameter"."""
    daemon, api = appliance
    link = "Confirm: https://shop.example/index.php?id=42&action=confirm&_charset_=x"
    status, reply = post_json(api, "sendmsg", {"messages": [
        {"to_address": "+36201234567", "text": link}]})
    assert status == 200 and reply["data"]["success_count"] == 1, reply
    message_id = reply["data"]["messages"][0]["message_id"]
    assert daemon.journal.get_message(message_id)["body"] == link
    batch = {"messages": [{"to_address": f"+3620{i:07d}", "text": f"1+1=2 is easy {i}"}
                          for i in range(1500)]}
    assert len(json.dumps(batch)) > 64 * 1024
    status, reply = post_json(api, "sendmsg", batch)
    assert status == 200 and reply["data"]["success_count"] == 1500


@pytest.mark.parametrize("body", [b'{"messages":[{"to_address":"+36201234567","text":NaN}]}',
                                  b'{"messages":[{"to_address":"+36201234567","text":"x",'
                                  b'"tags":[1e999]}]}'])
def test_json_nan_and_infinity_are_refused(appliance, body):
    """They were taken (the SMS said "nan") and echoed as invalid JSON, so a strict client
    could not read a reply for messages that had been sent, and sent them again."""
    daemon, api = appliance
    status, reply = post_json(api, "sendmsg", body)
    assert status == 400 and reply["response_code"] == "INVALID_REQUEST"
    assert daemon.journal.query("SELECT count(*) FROM messages")[0][0] == 0


def test_json_login_refusal_says_how_and_folders_come_from_the_body_too(appliance):
    daemon, api = appliance
    status, headers, _ = api.call("POST", "/api?action=receivemsg", b"{}",
                                  {"Content-Type": "application/json"})
    assert status == 401 and headers["www-authenticate"].startswith("Basic")
    _, sent = post_json(api, "sendmsg", {"messages": [{"to_address": "+36201234567",
                                                       "text": "out"}]})
    status, reply = post_json(api, "receivemsg", {"folder": "outbox", "limit": 5})
    assert reply["data"]["folder"] == "outbox" and reply["data"]["limit"] == "5"
    assert [m["text"] for m in reply["data"]["data"]] == ["out"]


def test_json_mark_and_delete_answer_only_what_they_changed_of_ones_own(appliance):
    daemon, api = appliance
    api.action("createuser", name="bob", userpassword="bob-pass-1")
    bob = api.as_user("bob", "bob-pass-1")
    _, reply = post_json(bob, "sendmsg", {"messages": [{"message_id": "bob-1",
                                                        "to_address": "+36201234567",
                                                        "text": "bob's"}]},
                         basic("bob", "bob-pass-1"))
    _, deleted = post_json(api, "deletemsg", {"folder": "outbox", "message_ids": ["bob-1"]})
    assert deleted["data"]["message_ids"] == []            # not the admin's to change
    assert daemon.journal.get_message("bob-1")["deleted"] == 0
    daemon.journal.inbound(InboundFragment(connection="GSMModem0", sender="+36301234567",
                                           recipient="+36209999999", encoding="gsm7",
                                           text="in"))
    [inbound] = [r["id"] for r in daemon.journal.query(
        "SELECT id FROM messages WHERE direction='in'")]
    _, marked = post_json(api, "markmsg", {"folder": "inbox",
                                           "message_ids": [inbound, "nope", inbound]})
    assert marked["data"]["message_ids"] == [inbound]
    _, again = post_json(api, "markmsg", {"folder": "inbox", "message_ids": [inbound]})
    assert again["data"]["message_ids"] == []              # already read: nothing changed


# --- Ozeki Phone System --------------------------------------------------------------------


def test_phonesystem_sendsms_on_root_and_api(appliance):
    daemon, api = appliance
    for path in ("/", "/api"):
        status, body = api.get(path, command="SendSms", ApiExtension="9994",
                               Sender="+061554669", Recipient="+062554670",
                               Message="Hello world", Username="admin",
                               Password=ADMIN_PASSWORD)
        assert status == 200
        assert xml_values(body, "Code") == ["200"]
        assert xml_values(body, "Message") == ["Command successfully executed"]
        sms_id = xml_values(body, "SmsId")[0]
        assert daemon.journal.get_message(sms_id)["originator"] == "+061554669"


@pytest.mark.parametrize("params,code", [
    ({"command": "Call"}, 301),
    ({"command": "SendSms", "Recipient": "+3620", "Message": "x"}, 302),     # no ApiExtension
    ({"command": "SendSms", "ApiExtension": "1", "Message": "x"}, 302),
    ({"command": "SendSms", "ApiExtension": "1", "Recipient": "abc", "Message": "x"}, 302),
    ({"command": "SendSms", "ApiExtension": "1", "Recipient": "+36201234567"}, 302),
])
def test_phonesystem_codes(appliance, params, code):
    _, api = appliance
    status, body = api.get("/", Username="admin", Password=ADMIN_PASSWORD, **params)
    assert status == 200 and xml_values(body, "Code") == [str(code)], body
    assert "<SmsId>" not in body


def test_phonesystem_authentication_codes(appliance):
    _, api = appliance
    base = {"command": "SendSms", "ApiExtension": "1", "Recipient": "+36201234567",
            "Message": "x"}
    assert xml_values(api.get("/", **base)[1], "Code") == ["304"]
    assert xml_values(api.get("/", Username="admin", Password="bad", **base)[1],
                      "Code") == ["305"]
    status, body = api.get("/", Username="admin", Password=ADMIN_PASSWORD,
                           **{**base, "Recipient": "+36201234567", "Message": "<&>"})
    assert xml_values(body, "Code") == ["200"]


# --- bulksms ------------------------------------------------------------------------------


def bulk(api: Api, path: str = "/bulksms/bulksms", **params) -> str:
    base = {"username": "admin", "password": ADMIN_PASSWORD, "type": "0", "dlr": "0",
            "destination": "+36201234567", "source": "ACME", "message": "Hello"}
    status, body = api.get(path, **{**base, **params})
    assert status == 200
    return body


def test_bulksms_success_lines_per_destination(appliance):
    daemon, api = appliance
    body = bulk(api, destination="+36201234567,36201234568,abc")
    lines = [line.split("|") for line in body.split("\n")]
    assert [l[0] for l in lines] == ["1701", "1701", "1706"]
    assert [l[1] for l in lines] == ["+36201234567", "36201234568", "abc"]
    assert lines[2][2] == ""
    assert daemon.journal.get_message(lines[0][2])["originator"] == "ACME"


@pytest.mark.parametrize("btype,messagetype,msg_class", [
    ("0", "SMS:TEXT:GSM7BIT", None), ("1", "SMS:TEXT:GSM7BIT:CLASS0", 0),
    ("2", "SMS:TEXT:UCS2", None), ("5", "SMS:TEXT", None), ("6", "SMS:TEXT:UCS2:CLASS0", 0),
    ("7", "SMS:TEXT:CLASS0", 0)])
def test_bulksms_types(appliance, btype, messagetype, msg_class):
    daemon, api = appliance
    body = bulk(api, type=btype)
    message = daemon.journal.get_message(body.split("|")[2])
    assert (message["messagetype"], message["msg_class"]) == (messagetype, msg_class)


def test_bulksms_wap_push(appliance):
    daemon, api = appliance
    body = bulk(api, type="4", message="See this", url="http://example.com/offer")
    message = daemon.journal.get_message(body.split("|")[2])
    assert message["messagetype"] == "SMS:WAPPUSH" and message["encoding"] == "8bit"
    assert 'href="http://example.com/offer"' in message["body"]
    assert bulk(api, type="4", message="no url") == "1705|+36201234567|"
    # found by a helper: links no phone can open were charged and sent
    for url in ("not a url", "ftp://example.com", "javascript:alert(1)"):
        assert bulk(api, type="4", message="Read", url=url) == "1705|+36201234567|", url


@pytest.mark.parametrize("params,code", [
    ({"message": ""}, "1702"), ({"destination": ""}, "1702"), ({"type": ""}, "1702"),
    ({"password": "wrong"}, "1703"), ({"type": "3"}, "1704"), ({"type": "9"}, "1704"),
    ({"dlr": "2"}, "1708"), ({"source": "TwelveLetter"}, "1707"),
    ({"source": "+1234567890123456789"}, "1707"), ({"date": "13/45/2030", "time": "03:45 am"},
                                                   "1702"),
])
def test_bulksms_request_codes(appliance, params, code):
    _, api = appliance
    destination = params.get("destination", "+36201234567")
    assert bulk(api, **params) == f"{code}|{destination}|"


def test_bulksms_sender_limits(appliance):
    _, api = appliance
    assert bulk(api, source="ElevenChars").startswith("1701|")
    assert bulk(api, source="+123456789012345678").startswith("1701|")     # 18 digits
    assert bulk(api, type="0", message="日本").startswith("1705|")          # not GSM 03.38


def test_bulksms_scheduling_on_both_paths(appliance):
    daemon, api = appliance
    when = datetime.now(timezone(timedelta(hours=1, minutes=30))) + timedelta(days=2)
    date, clock = when.strftime("%m/%d/%Y"), when.strftime("%I:%M %p").lower()
    for path in ("/bulksms/schedulemsg", "/bulksms/bulksms"):
        body = bulk(api, path, date=date, time=clock, gmt="GMT +1:30")
        message = daemon.journal.get_message(body.split("|")[2])
        assert message["state"] == "scheduled"
        assert abs(message["send_at"] - when.replace(second=0, microsecond=0).timestamp()) < 1
    assert bulk(api, "/bulksms/schedulemsg") == "1702|+36201234567|"    # date/time required
    assert bulk(api, date=date, time=clock, gmt="+25:00") == "1702|+36201234567|"


def test_bulksms_credit_duplicate_dnd_and_ip_rules(appliance):
    daemon, api = appliance
    api.action("createuser", name="bulk", userpassword="bulk-pass-1", dedupewindow="60",
               credits="1")
    user = {"username": "bulk", "password": "bulk-pass-1"}
    assert bulk(api, **user, message="one").startswith("1701|")
    assert bulk(api, **user, message="two").startswith("1725|")           # no credit left
    api.action("configuser", name="bulk", unlimited="on")
    assert bulk(api, **user, message="one").startswith("1041|")           # duplicate
    assert bulk(api, **user, message="one", destination="+36209876543").startswith("1701|")
    api.action("adddnd", number="+36201111111")
    api.action("adddnd", number="+3670*")
    assert bulk(api, **user, destination="+36201111111").startswith("1042|")
    assert bulk(api, **user, destination="+36701234567").startswith("1732|")
    api.action("configuser", name="bulk", ipdeny="127.0.0.1")
    assert bulk(api, **user) == "16|+36201234567|"
    api.action("configuser", name="bulk", ipdeny="", ipallow="192.168.0.0/16")
    assert bulk(api, **user) == "18|+36201234567|"
    api.action("stopuser", name="bulk")
    assert bulk(api, **user) == "1709|+36201234567|"


# --- callbacks -----------------------------------------------------------------------------


class Receiver:
    """A LAN web server that records what the appliance tells it."""

    def __init__(self):
        calls = self.calls = []

        class Handler(BaseHTTPRequestHandler):
            def _record(self):
                length = int(self.headers.get("Content-Length") or 0)
                calls.append((self.command, self.path, self.rfile.read(length).decode()))
                self.send_response(200)
                self.end_headers()

            do_GET = do_POST = _record

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 15.0) -> list:
        deadline = time.monotonic() + timeout
        while len(self.calls) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.calls

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _play_modem(daemon, message_id: str, status: ReportStatus, reference: str = "77"):
    """What a modem worker would report: claimed, submitted, then a delivery report."""
    journal = daemon.journal
    part_id = journal.query("SELECT id FROM parts WHERE message_id=?", (message_id,))[0]["id"]
    assert journal.claim([(part_id, "GSMModem0")]) == [part_id]
    journal.part_submitted(part_id, "GSMModem0", reference)
    journal.report(Report(connection="GSMModem0", reference=reference, status=status))


def test_phonesystem_delivery_report_without_sender_names_the_modems_number(
        make_config, run_daemon, receiver):
    """Seed 002: Sender "Defaultly it is the phone number set in the SMS modem installation",
    so the SMSDeliveryReport of a SendSms without one says the number the phone saw."""
    from web_kit import demo_daemon_on_simulated_modems
    from wsgi_client import WsgiApi
    with demo_daemon_on_simulated_modems(make_config, run_daemon, modems=1) as (daemon, _):
        api = WsgiApi(daemon.app)
        _, body = api.get("/", command="SendSms", ApiExtension="9994",
                          Recipient="+36201234567", Message="Hi", Username="admin",
                          Password=ADMIN_PASSWORD, DeliveryReportURL=receiver.url + "/dr")
        assert xml_values(body, "SmsId")
        fields = dict(urllib.parse.parse_qsl(receiver.wait(1, timeout=30)[0][2]))
    assert fields["DeliveryStatus"] == "Delivered"
    assert fields["Sender"] == daemon.channels.configs["GSMModem0"].phonenumber != ""


def test_phonesystem_delivery_report_and_incoming_sms(appliance, receiver):
    daemon, api = appliance
    status, body = api.get("/", command="SendSms", ApiExtension="9994", Recipient="+36201234567",
                           Message="Hi", Username="admin", Password=ADMIN_PASSWORD,
                           DeliveryReportURL=receiver.url + "/delivery_received.php")
    sms_id = xml_values(body, "SmsId")[0]
    _play_modem(daemon, sms_id, ReportStatus.DELIVERED)
    method, path, form = receiver.wait(1)[0]
    fields = dict(urllib.parse.parse_qsl(form))
    assert (method, path) == ("POST", "/delivery_received.php")
    assert fields["NotificationName"] == "SMSDeliveryReport"
    assert fields["SmsId"] == sms_id and fields["DeliveryStatus"] == "Delivered"
    assert fields["ApiExtension"] == "9994"

    daemon.accounts.update("admin", inbound_url=receiver.url + "/incoming",
                           settings={"inbound_format": "phonesystem"})
    daemon.journal.inbound(InboundFragment(connection="GSMModem0", sender="+36301234567",
                                           recipient="+36209999999", encoding="gsm7",
                                           text="ping"))
    method, path, form = receiver.wait(2)[1]
    fields = dict(urllib.parse.parse_qsl(form))
    assert (method, path) == ("POST", "/incoming")
    assert fields["NotificationName"] == "IncomingSMS" and fields["Message"] == "ping"


def test_bulksms_dlr_and_ozeki_reporturl(appliance, receiver):
    daemon, api = appliance
    api.action("createuser", name="bulk", userpassword="bulk-pass-1",
               reporturl=receiver.url + "/dlr")
    body = bulk(api, username="bulk", password="bulk-pass-1", dlr="1")
    message_id = body.split("|")[2]
    _play_modem(daemon, message_id, ReportStatus.FAILED, reference="5")
    method, path, _ = receiver.wait(1)[0]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))
    assert method == "GET" and query["msgid"] == message_id and query["status"] == "UNDELIV"

    ozeki_id = api.send("+36201234567", "x",
                        reporturl=receiver.url + "/r?id=$messageid&s=$status")
    _play_modem(daemon, ozeki_id, ReportStatus.DELIVERED, reference="6")
    paths = [p for _, p, _ in receiver.wait(3)[1:]]
    assert paths == [f"/r?id={ozeki_id}&s=deliveredtonetwork",
                     f"/r?id={ozeki_id}&s=deliveredtohandset"]


@pytest.mark.parametrize("reporturl, expected", [
    # a `$` that is none of ours: the fields are appended, the URL's own part kept
    ("/dolr?token=ab$cd", lambda mid: {"token": "ab$cd", "msgid": mid}),
    # another dialect's keywords (an Ozeki-style reporturl shared by the user)
    ("/ozk?id=$messageid&s=$statusmessage",
     lambda mid: {"id": "$messageid", "s": "$statusmessage", "msgid": mid}),
    # a fragment: the fields go before it (after it they were never sent)
    ("/frag#top", lambda mid: {"msgid": mid, "status": "UNDELIV"}),
    ("/tpl?m=$msgid&st=$status", lambda mid: {"m": mid, "st": "UNDELIV"}),
])
def test_bulksms_dlr_url_forms(appliance, receiver, reporturl, expected):
    """Found by a helper: any `$` in the URL stopped the fields from being appended, so the
    report could not be matched; `$status` was replaced inside `$statusmessage`; and the
    fields went after a #fragment, which no client sends."""
    daemon, api = appliance
    api.action("createuser", name="bulk", userpassword="bulk-pass-1",
               reporturl=receiver.url + reporturl)
    body = bulk(api, username="bulk", password="bulk-pass-1", dlr="1")
    message_id = body.split("|")[2]
    _play_modem(daemon, message_id, ReportStatus.FAILED, reference="5")
    _, path, _ = receiver.wait(1)[0]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))
    assert expected(message_id).items() <= query.items(), path


def test_bulksms_destinations_are_international_with_or_without_the_plus(appliance):
    """Seed 004: the destination "may or may not include a plus [+] sign". Without it the
    number went out as a national one, and 1041 took it for another handset."""
    daemon, api = appliance
    api.action("createuser", name="dup", userpassword="dup-pass-1", dedupewindow="60")
    user = {"username": "dup", "password": "dup-pass-1", "message": "dupcheck"}
    first = bulk(api, **user, destination="36204459999")
    assert first.startswith("1701|36204459999|")
    assert daemon.journal.get_message(first.split("|")[2])["recipient"] == "+36204459999"
    assert bulk(api, **user, destination="+36204459999").startswith("1041|")


def test_bulksms_more_destinations_than_a_request_takes_is_a_request_error(appliance):
    """1706 "Invalid destination" for each of 1,001 valid numbers told a client that follows
    the seed ("do NOT retry") to drop them all; the limit is now a batch's 20,000, and more
    is the request's error (1702)."""
    daemon, api = appliance
    numbers = ",".join(f"+3620{i:07d}" for i in range(1001))
    status, body = api.post("/bulksms/bulksms", urllib.parse.urlencode({
        "username": "admin", "password": ADMIN_PASSWORD, "type": "0", "dlr": "0",
        "destination": numbers, "message": "many"}))
    assert status == 200 and {line.split("|")[0] for line in body.split("\n")} == {"1701"}
    numbers = ",".join(f"+3620{i:07d}" for i in range(20001))
    status, body = api.post("/bulksms/bulksms", urllib.parse.urlencode({
        "username": "admin", "password": ADMIN_PASSWORD, "type": "0", "dlr": "0",
        "destination": numbers, "message": "too many"}))
    assert {line.split("|")[0] for line in body.split("\n")} == {"1702"}


# --- seed 004 as real clients send it ------------------------------------------------------


@pytest.mark.parametrize("message,href,shown", [
    ("http://example.com/offer", "http://example.com/offer", "http://example.com/offer"),
    ("See this https://example.com/a?b=1 now", "https://example.com/a?b=1", "See this  now"),
    ("www.example.com/x", "http://www.example.com/x", "www.example.com/x"),
    # a link that closes a sentence or a bracket leaves its punctuation in the text
    ("See (http://example.com/x).", "http://example.com/x", "See ()."),
])
def test_bulksms_wap_push_from_message_alone(appliance, message, href, shown):
    daemon, api = appliance
    body = bulk(api, type="4", message=message)
    assert body.startswith("1701|"), body
    stored = daemon.journal.get_message(body.split("|")[2])["body"]
    assert f'href="{href.replace("&", "&amp;")}"' in stored
    assert f">{shown}<" in stored


def test_bulksms_gmt_with_an_unencoded_plus(appliance):
    daemon, api = appliance
    zone = timezone(timedelta(hours=5, minutes=30))
    when = datetime.now(zone) + timedelta(days=2)
    date, clock = when.strftime("%m/%d/%Y"), when.strftime("%I:%M %p").lower()
    # written by hand as a client does: "+" not encoded, so the server reads a space
    query = urllib.parse.urlencode({"username": "admin", "password": ADMIN_PASSWORD,
                                    "type": "0", "dlr": "0", "destination": "+36201234567",
                                    "source": "ACME", "message": "Hi", "date": date,
                                    "time": clock})
    status, body = api._open(urllib.request.Request(
        f"{api.base}/bulksms/schedulemsg?{query}&gmt=+05:30"))
    message = daemon.journal.get_message(body.split("|")[2])
    assert abs(message["send_at"] - when.replace(second=0, microsecond=0).timestamp()) < 1
    status, body = api._open(urllib.request.Request(
        f"{api.base}/bulksms/schedulemsg?{query}&gmt=GMT+05:30"))
    message = daemon.journal.get_message(body.split("|")[2])
    assert abs(message["send_at"] - when.replace(second=0, microsecond=0).timestamp()) < 1


def test_bulksms_every_code_is_a_destination_line(appliance):
    _, api = appliance
    assert bulk(api, password="wrong", destination="+3620111,+3620222") == \
        "1703|+3620111|\n1703|+3620222|"
    assert bulk(api, destination="") == "1702||"


def test_json_every_date_in_a_reply_reads_as_ozekis_clients_read_it(appliance):
    """ozekilibsrest strptimes create_date, valid_until and time_to_send of every message in
    a send reply and an inbox with this format: an empty date (no schedule, no validity, an
    inbound message) or an ISO date echoed from a refused message failed the whole call."""
    daemon, api = appliance

    def read(message):
        return {key: datetime.strptime(message[key], "%Y-%m-%d %H:%M:%S")
                for key in ("create_date", "valid_until", "time_to_send")}

    _, reply = post_json(api, "sendmsg", {"messages": [
        {"to_address": "+36201234567", "text": "now"},
        {"to_address": "+36201234567", "text": "later", "time_to_send": "2099-01-02T03:04:05",
         "valid_until": "2099-01-09T03:04:05"},
        {"to_address": "not a number", "text": "x", "create_date": "2026-12-03T00:25:30",
         "valid_until": "2026-12-10T00:25:30", "time_to_send": "2026-12-03T00:25:30"},
        {"to_address": "+36201234567", "text": "x", "time_to_send": "soon"}]})
    now, later, refused, garbled = reply["data"]["messages"]
    assert [m["status"] == "SUCCESS" for m in (now, later, refused, garbled)] == \
        [True, True, False, False]
    dates = [read(m) for m in (now, later, refused, garbled)]
    assert dates[0]["time_to_send"] == dates[0]["create_date"]
    assert dates[1]["time_to_send"] == datetime(2099, 1, 2, 3, 4, 5)
    assert dates[1]["valid_until"] == datetime(2099, 1, 9, 3, 4, 5)
    assert dates[2]["create_date"] == datetime(2026, 12, 3, 0, 25, 30)
    assert dates[2]["valid_until"] == datetime(2026, 12, 10, 0, 25, 30)
    assert dates[3]["time_to_send"] == dates[3]["create_date"]
    _, far = post_json(api, "sendmsg", {"messages": [{
        "to_address": "+36201234567", "text": "far", "time_to_send": "9999-12-31T23:59:59"}]})
    assert read(far["data"]["messages"][0])["valid_until"] == datetime(9999, 12, 31, 23, 59, 59)
    _, past = post_json(api, "sendmsg", {"messages": [{         # sent at once (a helper saw
        "to_address": "+36201234567", "text": "past", "time_to_send": "2020-01-01T00:00:00"}]})
    past_dates = read(past["data"]["messages"][0])              # time_to_send before creation)
    assert past_dates["time_to_send"] == past_dates["create_date"]

    daemon.journal.inbound(InboundFragment(connection="GSMModem0", sender="+36301234567",
                                           recipient="+36209999999", encoding="gsm7",
                                           text="incoming"))
    for folder in ("inbox", "outbox"):
        _, text = api._open(urllib.request.Request(
            f"{api.base}/api?action=receivemsg&folder={folder}", headers=basic()))
        messages = json.loads(text)["data"]["data"]
        assert messages and all(read(m) for m in messages)
    (inbound,) = json.loads(api._open(urllib.request.Request(
        f"{api.base}/api?action=receivemsg&folder=inbox", headers=basic()))[1])["data"]["data"]
    assert read(inbound)["valid_until"] == datetime(9999, 12, 31, 23, 59, 59)


def test_json_to_connection_must_name_a_connection(appliance):
    daemon, api = appliance                     # admin may choose; no connection is configured
    _, reply = post_json(api, "sendmsg", {"messages": [
        {"to_address": "+36201234567", "text": "x", "to_connection": "GSMModem9"},
        {"to_address": "+36201234567", "text": "y"}]})
    typo, plain = reply["data"]["messages"]
    assert typo["status"] == "to_connection: no connection or route named 'GSMModem9'"
    assert plain["status"] == "SUCCESS" and reply["data"]["success_count"] == 1


def test_bulksms_same_text_for_another_day_or_after_a_cancel_is_not_a_duplicate(appliance):
    """Found by a helper: with a dedupe window, tomorrow's reminder (the same text for
    another send time) and a message replacing a cancelled one were refused 1041, which
    tells the client not to retry: the reminder was lost."""
    daemon, api = appliance
    api.action("createuser", name="rem", userpassword="rem-pass-1", dedupewindow="600")
    user = {"username": "rem", "password": "rem-pass-1", "message": "Reminder B"}
    day = datetime.now() + timedelta(days=2)

    def schedule(when: datetime) -> str:
        return bulk(api, "/bulksms/schedulemsg", **user, date=when.strftime("%m/%d/%Y"),
                    time="08:00 am")
    first = schedule(day)
    assert first.startswith("1701|")
    assert schedule(day + timedelta(days=1)).startswith("1701|")     # another day
    assert schedule(day).startswith("1041|")                         # the same one again
    api.as_user("rem", "rem-pass-1").action("deletemessagebyid", messageid=first.split("|")[2])
    assert schedule(day).startswith("1701|")                         # replaces the cancelled


def test_bulksms_gmt_without_date_and_time_sends_now(appliance):
    """Found by a helper: a client that always sends its zone (`gmt=+01:00`, empty date and
    time) got 1702 ("do not retry") for every immediate message."""
    daemon, api = appliance
    body = bulk(api, date="", time="", gmt="+01:00")
    assert body.startswith("1701|")
    assert daemon.journal.get_message(body.split("|")[2])["send_at"] is None
    assert bulk(api, "/bulksms/schedulemsg", gmt="+01:00").startswith("1702|")  # date required


def test_bulksms_a_sent_message_filed_in_deleted_still_counts_as_a_duplicate(appliance):
    """Found by a helper on the change above: a message that was sent and then moved to
    the deleted folder stopped counting, and the same request was sent a second time."""
    daemon, api = appliance
    api.action("createuser", name="dd", userpassword="dd-pass-12", dedupewindow="600")
    user = {"username": "dd", "password": "dd-pass-12", "message": "pay invoice"}
    first = bulk(api, **user, destination="36201230088").split("|")[2]
    part = daemon.journal.get_parts(first)[0]["id"]
    daemon.journal.claim([(part, "GSMModem0")])
    daemon.journal.part_submitted(part, "GSMModem0", "1")
    api.as_user("dd", "dd-pass-12").action("deletemessagebyid", messageid=first)
    assert daemon.journal.get_message(first)["deleted"] == 1
    assert bulk(api, **user, destination="36201230088").startswith("1041|")
