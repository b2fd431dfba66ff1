"""A body built to be parsed into millions of objects (`a=&a=&...`, `[],[],...`) is refused
from a count of its separators, in the dialect's own format, before bottle or the JSON
decoder builds anything: one 8 MiB form took the daemon to 629 MiB before any login, and the
32 MiB a batch may be to 2.4 GB (measured). Up to the bound, everything is read as before."""

from __future__ import annotations

import json
import urllib.parse

from appliance.web.ozeki_json import MAX_JSON_VALUES
from appliance.web.params import MAX_FORM_FIELDS
from conftest import ADMIN_PASSWORD
from test_api_dialects import post_json


def one_message_form(filler_fields: int) -> bytes:
    head = urllib.parse.urlencode({"action": "sendmessage", "username": "admin",
                                   "password": ADMIN_PASSWORD, "recipient": "+36201234567",
                                   "messagedata": "flood test"})
    # the request's 5 fields and the filler: x0=&x1=&... (names unlike any parameter)
    return (head + "&" + "&".join(f"x{i}=" for i in range(filler_fields))).encode()


def test_a_form_with_more_fields_than_any_batch_is_refused_before_it_is_parsed(appliance):
    daemon, api = appliance
    status, text = api.post("/api", one_message_form(MAX_FORM_FIELDS - 5 + 1))
    assert status == 200 and "<errorcode>" in text
    assert f"holds {MAX_FORM_FIELDS + 1:,} fields; at most {MAX_FORM_FIELDS:,} are read" in text
    assert daemon.journal.folder("admin", "outbox", 10) == []
    status, text = api.post("/api", one_message_form(MAX_FORM_FIELDS - 5))   # at the bound
    assert status == 200 and "Message accepted for delivery" in text, text[:500]


def test_a_multipart_flood_is_refused_too(appliance):
    _, api = appliance
    boundary = "xYzZy"
    part = (f'--{boundary}\r\nContent-Disposition: form-data; name="a"\r\n\r\n\r\n').encode()
    body = part * (MAX_FORM_FIELDS + 10) + f"--{boundary}--\r\n".encode()
    status, text = api.post("/api?action=sendmessage", body, {
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200 and f"at most {MAX_FORM_FIELDS:,} are read" in text


def test_a_json_body_of_millions_of_values_is_refused_in_the_json_format(appliance):
    daemon, api = appliance
    body = b'{"junk": [' + b"[]," * MAX_JSON_VALUES + b'[]], "messages": []}'
    status, reply = post_json(api, "sendmsg", body)
    assert status == 413 and reply["response_code"] == "INVALID_REQUEST"
    assert f"at most {MAX_JSON_VALUES:,} are read" in reply["response_msg"]
    # a large body under the bound is read as before
    messages = [{"to_address": "+36201234567", "text": f"m{i}"} for i in range(3)]
    padding = [0] * (MAX_JSON_VALUES // 2)
    status, reply = post_json(api, "sendmsg", json.dumps({"messages": messages,
                                                          "padding": padding}))
    assert status == 200 and reply["data"]["success_count"] == 3, reply


def test_the_dashboards_login_form_is_counted_before_it_is_parsed(appliance):
    """POST /login parses its form before anyone has logged in."""
    _, api = appliance
    status, text = api.post("/login", "&".join(f"x{i}=" for i in range(MAX_FORM_FIELDS + 1)))
    assert status == 413 and f"at most {MAX_FORM_FIELDS:,} are read" in text
    status, text = api.post("/login", "username=admin&password=wrong")   # a form as usual
    assert status == 403 and "login form expired" in text
