"""Bad input is answered in its dialect's format and logged once (web/refusals.py): the first
refusal of a kind is one WARNING line naming the dialect, the sender and the reason; the same
again within the quiet time is only counted, and the next line says how many were held back.
Refusals logged where they happen (a wrong password) are counted, not said again.

The log side of the dialects runs against a daemon's WSGI app in process (a real SQLite
file); the quiet time against a fake clock."""

from __future__ import annotations

import base64
import json
import logging
import urllib.parse

import pytest

from appliance.clock import FakeClock
from appliance.web.refusals import Refusals, who
from conftest import ADMIN_PASSWORD

LOGGER = "appliance.web"


def _refusal_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == LOGGER and r.levelno == logging.WARNING and ": refused " in r.getMessage()]


# --- the counter and its quiet time -----------------------------------------------------

def test_the_first_of_a_kind_is_said_the_rest_counted_until_the_quiet_time_ends(caplog):
    clock = FakeClock()
    refusals = Refusals(clock, quiet_seconds=600)
    with caplog.at_level("WARNING", logger=LOGGER):
        for _ in range(5):
            refusals.note("ozeki", who("ups", "10.0.0.5"), "invalid recipient number: 'x'",
                          kind="bad_recipient")
        clock.advance(599)
        refusals.note("ozeki", who("ups", "10.0.0.5"), "invalid recipient number: 'y'",
                      kind="bad_recipient")
        assert len(_refusal_lines(caplog)) == 1
        clock.advance(2)
        refusals.note("ozeki", who("ups", "10.0.0.5"), "invalid recipient number: 'z'",
                      kind="bad_recipient")
    lines = _refusal_lines(caplog)
    assert lines == [
        "ozeki: refused user 'ups' from 10.0.0.5: invalid recipient number: 'x'",
        "ozeki: refused user 'ups' from 10.0.0.5: invalid recipient number: 'z'"
        " (5 more like it since the last line about it)"]
    assert refusals.since_last() == 7
    assert refusals.since_last() == 0


def test_another_sender_or_reason_is_a_kind_of_its_own_and_logged_ones_are_only_counted(caplog):
    refusals = Refusals(FakeClock())
    with caplog.at_level("WARNING", logger=LOGGER):
        refusals.note("ozeki", "10.0.0.5", "Unknown action: x")
        refusals.note("ozeki", "10.0.0.6", "Unknown action: x")
        refusals.note("ozeki_json", "10.0.0.5", "Unknown action: x")
        refusals.note("ozeki", "10.0.0.5", "wrong password", logged=True)
    assert len(_refusal_lines(caplog)) == 3
    assert refusals.since_last() == 4


def test_kinds_are_bounded_and_the_oldest_is_forgotten(caplog):
    refusals = Refusals(FakeClock(), max_kinds=3)
    with caplog.at_level("WARNING", logger=LOGGER):
        for n in range(4):
            refusals.note("ozeki", f"10.0.0.{n}", "bad")
        refusals.note("ozeki", "10.0.0.3", "bad")       # still remembered: quiet
        refusals.note("ozeki", "10.0.0.0", "bad")       # forgotten: said again
    assert len(_refusal_lines(caplog)) == 5
    assert len(refusals._said) == 3


def test_a_reason_cannot_break_the_log_line_or_show_a_urls_password(caplog):
    refusals = Refusals(FakeClock())
    with caplog.at_level("WARNING", logger=LOGGER):
        refusals.note("ozeki", "10.0.0.5", "bad\nFAKE LINE\r\x1b[31m")
        refusals.note("ozeki", "10.0.0.5",
                      "reporturl is not http(s): 'ftp://anna:s3cret@nas.lan/x'")
    first, second = _refusal_lines(caplog)
    assert "\n" not in first and "\r" not in first and "\x1b" not in first
    assert "s3cret" not in second and "anna" not in second and "//…@nas.lan" in second


# --- through the dialects ---------------------------------------------------------------

def _basic(user: str = "admin", password: str = ADMIN_PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_an_ozeki_send_to_a_bad_number_is_logged_once_with_user_and_reason(appliance, caplog):
    daemon, api = appliance
    daemon.services.refusals.since_last()
    with caplog.at_level("WARNING", logger=LOGGER):
        for _ in range(3):
            body = api.action("sendmessage", recipient="not-a-number", messagedata="hi")
            assert "<statuscode>" in body and "invalid recipient" in body
    assert _refusal_lines(caplog) == [
        "ozeki: refused user 'admin': invalid recipient number: 'not-a-number'"]
    assert daemon.services.refusals.since_last() == 3


def test_request_level_errors_name_the_client_in_each_dialect(appliance, caplog):
    daemon, api = appliance
    with caplog.at_level("WARNING", logger=LOGGER):
        assert "Unknown action" in api.action("nosuchaction")
        status, text = api.post("/api?action=sendmsg", "{not json",
                                {"Content-Type": "application/json", "Authorization": _basic()})
        assert status == 400 and json.loads(text)["response_code"] == "INVALID_REQUEST"
        status, text = api.get("/bulksms/bulksms", username="admin", password=ADMIN_PASSWORD,
                               type="9", dlr="0", destination="+36201234567", message="hi")
        assert text.startswith("1704|")
        status, text = api.post("/hooks/alertmanager", b"{broken",
                                {"Content-Type": "application/json", "Authorization": _basic()})
        assert status == 400
    lines = _refusal_lines(caplog)
    assert len(lines) == 4, lines
    ozeki, ozeki_json, bulksms, hook = lines
    # the action is read before the login: the address alone names the sender
    assert ozeki == "ozeki: refused 127.0.0.1: Unknown action: nosuchaction"
    assert ozeki_json.startswith("ozeki_json: refused user 'admin' from 127.0.0.1: the body is")
    assert bulksms == "bulksms: refused user 'admin' from 127.0.0.1: 1704 invalid type"
    assert hook.startswith("hook alertmanager: refused 127.0.0.1: 400 the body is not JSON")


def test_a_phone_system_refusal_is_logged_once_not_by_intake_and_handler_both(appliance,
                                                                               caplog):
    daemon, api = appliance
    daemon.services.refusals.since_last()
    with caplog.at_level("WARNING", logger=LOGGER):
        status, body = api.get("/", Command="SendSms", ApiExtension="9994", Username="admin",
                               Password=ADMIN_PASSWORD, Recipient="abc", Message="hi")
        assert "<Code>302</Code>" in body
    lines = _refusal_lines(caplog)
    assert lines == ["phonesystem: refused user 'admin': invalid recipient number: 'abc'"]
    assert daemon.services.refusals.since_last() == 1


def test_a_wrong_password_is_counted_but_logged_only_by_the_login(appliance, caplog):
    daemon, api = appliance
    daemon.services.refusals.since_last()
    with caplog.at_level("WARNING"):
        body = api.as_user("admin", "wrong").action("sendmessage", recipient="+36201234567",
                                                   messagedata="hi")
        assert "<errorcode>" in body
    assert _refusal_lines(caplog) == []
    assert any("failed login" in r.getMessage() for r in caplog.records)
    assert daemon.services.refusals.since_last() == 1


@pytest.mark.parametrize("count", [1, 2])
def test_accepted_messages_are_not_refusals(appliance, count):
    daemon, api = appliance
    daemon.services.refusals.since_last()
    for n in range(count):
        api.send("+36201234567", f"hello {n}")
    assert daemon.services.refusals.since_last() == 0


def test_refusals_are_counted_per_source_in_metrics(appliance):
    daemon, api = appliance
    for _ in range(2):
        api.action("sendmessage", recipient="abc", messagedata="hi")
    api.post("/hooks/json/nosuchhook", b"{}", {"Content-Type": "application/json",
                                               "Authorization": _basic()})
    status, text = api.get("/metrics")
    assert status == 200, text
    assert 'sms_refused_total{source="ozeki"} 2.0' in text
    assert 'sms_refused_total{source="hook"} 1.0' in text


def test_the_admin_endpoints_answer_bad_input_in_json_and_log_it_once(appliance, caplog):
    """/admin/ussd and /demo/sim: a bad `_charset_` or an unreadable body was a 500 with a
    traceback in the log (found by sending each route garbage); now a 400 in their JSON, one
    line per kind like every dialect's refusal, and a wrong password only counted."""
    daemon, api = appliance
    daemon.services.refusals.since_last()
    auth = {"username": "admin", "password": ADMIN_PASSWORD}
    with caplog.at_level("WARNING"):
        status, text = api.get("/admin/ussd", _charset_="bogus", slot="1", **auth)
        assert status == 400 and "unknown _charset_" in json.loads(text)["error"]
        status, text = api.post("/demo/sim?username=admin&password=" + ADMIN_PASSWORD,
                                b"--zz\r\ngarbage",
                                {"Content-Type": "multipart/form-data; boundary=zz"})
        assert status == 400 and "cannot be read" in json.loads(text)["error"]
        for _ in range(2):
            status, text = api.get("/admin/ussd", **auth)
            assert status == 400 and "slot is required" in json.loads(text)["error"]
        status, text = api.post("/demo/sim", urllib.parse.urlencode(
            {**auth, "modem": "1", "fault": "hang"}),
            {"Content-Type": "application/x-www-form-urlencoded"})
        assert (status, json.loads(text)) == (404, {"error": "not in demo mode"})
        status, text = api.get("/admin/ussd", username="admin", password="wrong", slot="1")
        assert (status, json.loads(text)) == (403, {"error": "authentication failed"})
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    lines = _refusal_lines(caplog)
    assert lines == [
        "admin: refused 127.0.0.1: 400 unknown _charset_: 'bogus'",
        "admin: refused 127.0.0.1: 400 the request body cannot be read: "
        + lines[1].split("cannot be read: ", 1)[-1],
        "admin: refused user 'admin' from 127.0.0.1: 400 slot is required: a modem's slot,"
        " its number or its connection name (slot1, 1, GSMModem0)",
        "admin: refused user 'admin' from 127.0.0.1: 404 not in demo mode"], lines
    assert daemon.services.refusals.since_last() == 6
    assert daemon.services.refusals.by_source()["admin"] == 6
