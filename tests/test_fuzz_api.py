"""Random parameters, bytes and lengths at every route: never a 5xx, never a traceback,
always an answer in the route's own dialect, and the daemon keeps serving."""

from __future__ import annotations

import dataclasses
import json
import re
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance import config as cfg
from appliance import daemon as daemon_module
from appliance.daemon import Daemon
from conftest import ADMIN_PASSWORD, Api, xml_values
from test_api_drivers import IdleChannel

ROUTES = ["/api", "/", "/bulksms/bulksms", "/bulksms/schedulemsg"]
ACTIONS = ["sendmessage", "receivemessage", "getmessagebyid", "markmessagebyid",
           "deletemessagebyid", "querymessagelist", "deletemessagelist", "deletefolderitems",
           "getcredits", "setcredits", "addcredits", "createuser", "configuser", "startuser",
           "stopuser", "deleteuser", "listusers", "createdriver", "configdriver", "startdriver",
           "stopdriver", "deletedriver", "listdrivers", "getaddressbook", "addcontact",
           "reporting", "adddnd", "listdnd", "sendmsg", "receivemsg", "markmsg", "deletemsg",
           "bogus", ""]
NAMES = ["action", "command", "recipient", "recepient", "messagedata", "messagetype",
         "originator", "messagecount", "recipient0", "messagedata0", "maxresponse",
         "responseformat", "continueurl", "redirecturl", "reporturl", "serviceprovider", "vp",
         "sendondate", "_charset_", "folder", "limit", "afterdownload", "msgid", "useraccount",
         "newbalance", "add", "name", "type", "userpassword", "host", "windowsize",
         "modemorport", "repdirection", "toexport", "number", "dlr", "destination", "source",
         "message", "date", "time", "gmt", "url", "apiextension", "sender",
         "deliveryreporturl", "esm_class", "contactname", "phonenumber"]
TYPES = ["SMS:TEXT", "SMS:TEXT:UCS2", "SMS:BINARY:XML", "SMS:WAPPUSH", "SMS:WAPPUSH:SL",
         "SMS:VCARD", "0", "1", "2", "4", "SendSms", "SMPP", "GSMModem", "UCP"]

values = st.one_of(st.text(max_size=60), st.sampled_from(TYPES + ACTIONS),
                   st.integers(-10 ** 6, 10 ** 6).map(str),
                   st.text(alphabet="<>&'\"%$\r\n\x00|,;", max_size=20),
                   st.integers(0, 5000).map(lambda n: "x" * n))
params = st.dictionaries(st.one_of(st.sampled_from(NAMES), st.text(max_size=12)), values,
                         max_size=10)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setattr(daemon_module, "build_channel", lambda conn, *a, **k: IdleChannel(conn))
    state = tmp_path_factory.mktemp("fuzz")
    config = cfg.Config(http=cfg.HttpConfig(host="127.0.0.1", port=0, threads=8,
                                            login_failures_per_minute=100000),
                        store=cfg.StoreConfig(state_dir=str(state)))
    daemon = Daemon(config, admin_password=ADMIN_PASSWORD)
    daemon.start()
    yield daemon, Api(daemon.port)
    daemon.stop()
    patch.undo()


def check_dialect(route: str, query: dict, status: int, body: str) -> None:
    assert status < 500, body
    assert "Traceback" not in body and 'File "' not in body, body
    lowered = {str(k).strip().lower(): v for k, v in query.items()}
    action = str(lowered.get("action", "")).strip().lower()
    command = str(lowered.get("command", "")).strip()
    if route == "/" and status == 303 and not query:   # a bare GET / is the web dashboard
        return
    if route.startswith("/bulksms"):
        assert re.fullmatch(r"\d+\|[^\n|]*\|[^\n|]*(\n\d+\|[^\n|]*\|[^\n|]*)*", body), body
    elif route == "/api" and action in ("sendmsg", "receivemsg", "markmsg", "deletemsg"):
        assert set(json.loads(body)) >= {"http_code", "response_code"}
    elif route == "/" or (route == "/api" and command and (command.lower() == "sendsms"
                                                           or not action)):
        assert ET.fromstring(body.encode()).tag == "Response", body
    else:
        fmt = str(lowered.get("responseformat", "")).strip().lower()
        if status == 302:
            return
        if fmt == "html":
            assert body.startswith("<HTML>"), body
        elif fmt == "urlencoded":
            urllib.parse.parse_qs(body, strict_parsing=bool(body))
        else:
            root = ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", body).encode())
            assert root.tag in ("response", "Response"), body


def build_request(api: Api, route: str, method: str, query: dict, creds: bool):
    if creds:
        query = {"username": "admin", "password": ADMIN_PASSWORD, **query}
    encoded = urllib.parse.urlencode(query)
    if method == "GET":
        return query, urllib.request.Request(f"{api.base}{route}?{encoded}")
    return query, urllib.request.Request(
        f"{api.base}{route}", data=encoded.encode(), method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"})


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(route=st.sampled_from(ROUTES), method=st.sampled_from(["GET", "POST"]), query=params,
       creds=st.booleans())
def test_random_parameters_on_every_route(served, route, method, query, creds):
    _, api = served
    opener = urllib.request.build_opener(NoRedirect)
    query, request = build_request(api, route, method, query, creds)
    try:
        with opener.open(request, timeout=30) as answer:
            status, body = answer.status, answer.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read().decode("utf-8", "replace")
    check_dialect(route, query, status, body)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES + ["/api?action=sendmsg", "/api?action=markmsg"]),
       body=st.one_of(st.binary(max_size=3000),
                      st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30),
                                   lambda kids: st.lists(kids, max_size=4)
                                   | st.dictionaries(st.sampled_from(
                                       ["messages", "to_address", "text", "message_id",
                                        "folder", "message_ids", "valid_until",
                                        "time_to_send", "tags"]), kids, max_size=5),
                                   max_leaves=20).map(lambda v: json.dumps(v).encode())),
       content_type=st.sampled_from(["application/x-www-form-urlencoded", "application/json",
                                     "text/plain", "multipart/form-data; boundary=x"]))
def test_random_bodies(served, route, body, content_type):
    _, api = served
    import base64
    headers = {"Content-Type": content_type,
               "Authorization": "Basic " + base64.b64encode(
                   f"admin:{ADMIN_PASSWORD}".encode()).decode()}
    status, text = api.post(route, body, headers)
    assert status < 500, text
    assert "Traceback" not in text


def test_daemon_still_serves_after_the_fuzz(served):
    daemon, api = served
    assert daemon.healthy() or daemon.http.alive()
    message_id = api.send("+36201234567", "still here")
    assert api.state(message_id) in (0, 17)


def test_a_bad_charset_in_a_posted_phone_system_command_is_answered_in_its_dialect(served):
    # found by the fuzz test: the dialect was picked from the query string only
    _, api = served
    status, body = api.post("/api", "command=0&_charset_=0")
    assert status == 200 and ET.fromstring(body.encode()).tag == "Response", body


@pytest.mark.parametrize("charset", ["idna", "punycode", "utf-16", "utf-7", "uu_codec", "zlib",
                                     "unicode_escape"])
def test_a_charset_no_form_is_sent_in_is_refused_in_each_dialect(served, charset):
    """Found by a helper: these codecs failed bulksms and SendSms with a 500 (utf-7 after
    the message was accepted, so the client had no id and sent it again)."""
    daemon, api = served
    before = daemon.journal.accepted
    status, body = api.get("/bulksms/bulksms", username="admin", password=ADMIN_PASSWORD,
                           type="0", dlr="0", source="Test", message="hi",
                           destination="36201144003,3620+2D0-", _charset_=charset)
    assert status == 200 and body.startswith("1702|36201144003|"), body
    status, body = api.get("/", command="SendSms", ApiExtension="9994", Username="admin",
                           Password=ADMIN_PASSWORD, Recipient="+36201144002", Message="hi",
                           _charset_=charset)
    assert status == 200 and ET.fromstring(body.encode()).tag == "Response", body
    status, body = api.get("/api", action="sendmessage", username="admin",
                           password=ADMIN_PASSWORD, recipient="+36201144002",
                           messagedata="hi", _charset_=charset)
    assert status == 200 and xml_values(body, "errorcode"), body
    assert daemon.journal.accepted == before


def test_form_charsets_are_still_read(served):
    daemon, api = served
    for charset, raw, text in [("windows-1250", "%F5r", "őr"), ("shift_jis", "%82%A0", "あ"),
                               ("koi8-r", "%C1", "а")]:
        status, body = api.get("/bulksms/bulksms", username="admin", password=ADMIN_PASSWORD,
                               type="0", dlr="0", source="Test", destination="36201144004",
                               message="x", _charset_=charset)
        assert body.startswith("1701|"), (charset, body)
