"""Bytes that are not UTF-8 in a message text are refused in every dialect with its
invalid-message code, never stored as U+FFFD; nothing is queued for them."""

from __future__ import annotations

import urllib.request

from conftest import ADMIN_PASSWORD, xml_values
from test_api_dialects import post_json

BAD = "Hello%FF%FEworld"          # 0xFF 0xFE: never valid UTF-8
GOOD = "Hello%C3%A9"              # "Helloé"


def _get(api, path_and_query: str) -> str:
    return api._open(urllib.request.Request(f"{api.base}{path_and_query}"))[1]


def _queued(daemon) -> int:
    return daemon.journal.query("SELECT count(*) AS n FROM messages")[0]["n"]


def test_ozeki_sendmessage(appliance):
    daemon, api = appliance
    login = f"username=admin&password={ADMIN_PASSWORD}"
    body = _get(api, f"/api?action=sendmessage&{login}&recipient=%2B36201234567"
                     f"&messagedata={BAD}")
    assert xml_values(body, "statuscode") == ["3"] and "not valid UTF-8" in body, body
    assert _queued(daemon) == 0
    status, body = api.post("/api", f"action=sendmessage&{login}&recipient=%2B36201234567"
                                    f"&messagedata={BAD}")
    assert xml_values(body, "statuscode") == ["3"], body
    body = _get(api, f"/api?action=sendmessage&{login}&recipient=%2B36201234567"
                     f"&messagedata={GOOD}")
    message = daemon.journal.get_message(xml_values(body, "messageid")[0])
    assert message["body"] == "Helloé"


def test_bulksms(appliance):
    daemon, api = appliance
    body = _get(api, f"/bulksms/bulksms?username=admin&password={ADMIN_PASSWORD}&type=5&dlr=0"
                     f"&destination=%2B36201234567,%2B36201234568&source=ACME&message={BAD}")
    assert body == "1705|+36201234567|\n1705|+36201234568|"
    assert _queued(daemon) == 0


def test_phone_system(appliance):
    daemon, api = appliance
    body = _get(api, f"/?command=SendSms&ApiExtension=9994&Recipient=%2B36201234567"
                     f"&Message={BAD}&Username=admin&Password={ADMIN_PASSWORD}")
    assert xml_values(body, "Code") == ["302"] and "Message" in body, body
    assert _queued(daemon) == 0


def test_ozeki_json(appliance):
    daemon, api = appliance
    # a lone surrogate written as a JSON escape is not text either
    status, reply = post_json(api, "sendmsg", '{"messages": [{"to_address": "+36201234567",'
                                              ' "text": "bad \\udcff"}]}')
    assert status == 200 and reply["data"]["failed_count"] == 1
    assert "not valid UTF-8" in reply["data"]["messages"][0]["status"]
    status, reply = post_json(api, "sendmsg", b'{"messages": [{"to_address": "+36201234567",'
                                              b' "text": "bad \xff"}]}')
    assert status == 400 and reply["response_code"] == "INVALID_REQUEST"
    assert _queued(daemon) == 0
