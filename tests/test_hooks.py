"""Webhook receivers through a real socket: Alertmanager's and Grafana's documented payloads,
a generic JSON hook, auth (Basic, token, IP allow list), grouping, dedupe, rate limit, and
the messages they create in the real journal."""

from __future__ import annotations

import base64
import json
import re

import pytest

from appliance import config as cfg
from appliance.clock import FakeClock
from appliance.errors import ConfigError
from appliance.integrations import settings
from conftest import ADMIN_PASSWORD, Api
from wsgi_client import WsgiApi

ONCALL = "+36201234567"
DB_TEAM = "+36207654321"

# Alertmanager webhook_config payload (version 4), as in its documentation.
ALERTMANAGER = {
    "version": "4", "groupKey": "{}:{alertname=\"HighCPU\"}", "truncatedAlerts": 0,
    "status": "firing", "receiver": "team-db",
    "groupLabels": {"alertname": "HighCPU"},
    "commonLabels": {"alertname": "HighCPU", "severity": "critical"},
    "commonAnnotations": {"summary": "CPU above 95% for 10 minutes"},
    "externalURL": "http://alertmanager.lan:9093",
    "alerts": [
        {"status": "firing", "labels": {"alertname": "HighCPU", "severity": "critical",
                                         "instance": f"db{i}.lan:9100"},
         "annotations": {"summary": "CPU above 95% for 10 minutes"},
         "startsAt": "2026-11-30T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "http://prometheus.lan/graph", "fingerprint": f"f{i:03d}"}
        for i in range(200)],
}

GRAFANA_UNIFIED = {
    "receiver": "sms", "status": "firing", "orgId": 1, "version": "1",
    "groupKey": "{}/{}:{alertname=\"DiskFull\"}", "truncatedAlerts": 0,
    "title": "[FIRING:1] DiskFull", "state": "alerting", "message": "Disk / is 97% full",
    "groupLabels": {"alertname": "DiskFull"}, "commonLabels": {"alertname": "DiskFull"},
    "commonAnnotations": {"summary": "Disk / is 97% full on nas"},
    "externalURL": "http://grafana.lan:3000/",
    "alerts": [{"status": "firing", "labels": {"alertname": "DiskFull", "instance": "nas"},
                "annotations": {"summary": "Disk / is 97% full on nas"},
                "startsAt": "2026-11-30T10:00:00Z", "fingerprint": "abc",
                "valueString": "[ var='A' value=97 ]"}],
}

GRAFANA_LEGACY = {"title": "[Alerting] UPS on battery", "ruleId": 7, "ruleName": "UPS on battery",
                  "state": "alerting", "message": "The UPS switched to battery",
                  "evalMatches": [{"metric": "ups1", "value": 1}], "tags": {"site": "hq"}}


def hook_config(make_config, **hooks_toml):
    data = {"hooks": hooks_toml}
    return make_config(integrations=settings.parse(data))


def post(api: Api, path: str, payload, auth=("admin", ADMIN_PASSWORD), query=""):
    headers = {"Content-Type": "application/json"}
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    status, text = api.post(path + (f"?{query}" if query else ""), body, headers)
    return status, json.loads(text) if text.startswith("{") else text


def stored(daemon, message_id: str) -> dict:
    return daemon.journal.get_message(message_id)


@pytest.fixture
def hooked(make_config, run_daemon):
    def start(**hooks):
        daemon = run_daemon(hook_config(make_config, **hooks))
        return daemon, WsgiApi(daemon.app)
    return start


def test_alertmanager_storm_of_200_alerts_is_one_sms_per_recipient(hooked):
    daemon, api = hooked(alertmanager={"to": [ONCALL], "receivers": {"team-db": [DB_TEAM]}})
    status, answer = post(api, "/hooks/alertmanager", ALERTMANAGER)
    assert status == 200, answer
    assert answer["messages"] == 1                    # the receiver's recipients, not `to`
    message = stored(daemon, answer["ids"][0])
    assert message["recipient"] == DB_TEAM
    assert message["body"].startswith("[FIRING:200] HighCPU (critical): CPU above 95%")
    assert "db0.lan:9100, db1.lan:9100, db2.lan:9100 +197" in message["body"]
    assert message["priority"] == 0                   # alerts leave before bulk


def test_alertmanager_resolved_and_to_parameter(hooked):
    daemon, api = hooked(alertmanager={"to": [ONCALL]})
    resolved = dict(ALERTMANAGER, status="resolved", alerts=[
        dict(ALERTMANAGER["alerts"][0], status="resolved")])
    status, answer = post(api, "/hooks/alertmanager", resolved, query=f"to={DB_TEAM},{ONCALL}")
    assert status == 200 and answer["messages"] == 2
    bodies = {stored(daemon, i)["recipient"]: stored(daemon, i)["body"] for i in answer["ids"]}
    assert set(bodies) == {DB_TEAM, ONCALL}
    assert bodies[ONCALL] == "[RESOLVED] HighCPU (critical): CPU above 95% for 10 minutes on db0.lan:9100"


def test_repeated_notification_is_deduplicated_and_storm_is_rate_limited(hooked):
    daemon, api = hooked(alertmanager={"to": [ONCALL], "dedupe_seconds": 600,
                                       "rate_limit_per_minute": 2})
    clock = daemon.control.hook_gate.clock = FakeClock()   # the hooks' time only
    assert post(api, "/hooks/alertmanager", ALERTMANAGER)[1]["status"] == "accepted"
    assert post(api, "/hooks/alertmanager", ALERTMANAGER)[1]["status"] == "duplicate"
    groups = [dict(ALERTMANAGER, groupKey=f"group-{i}") for i in range(5)]
    verdicts = [post(api, "/hooks/alertmanager", g)[1]["status"] for g in groups]
    assert verdicts == ["accepted", "rate_limited", "rate_limited", "rate_limited",
                        "rate_limited"]
    clock.advance(61)
    status, answer = post(api, "/hooks/alertmanager", dict(ALERTMANAGER, groupKey="later"))
    assert answer["status"] == "accepted"
    assert stored(daemon, answer["ids"][0])["body"].endswith("(+4 held back by the rate limit)")
    clock.advance(601)                                   # past the dedupe window: again
    assert post(api, "/hooks/alertmanager", ALERTMANAGER)[1]["status"] == "accepted"


def test_a_notification_refused_for_every_recipient_keeps_the_held_back_count(hooked):
    daemon, api = hooked(alertmanager={"to": [ONCALL], "dedupe_seconds": 600,
                                       "rate_limit_per_minute": 1})
    clock = daemon.control.hook_gate.clock = FakeClock()
    verdicts = [post(api, "/hooks/alertmanager", dict(ALERTMANAGER, groupKey=f"g{i}"))[1]
                ["status"] for i in range(3)]
    assert verdicts == ["accepted", "rate_limited", "rate_limited"]
    clock.advance(61)
    daemon.control.dnd.add(ONCALL)                      # the on-call phone, for a while
    refused = dict(ALERTMANAGER, groupKey="refused")
    assert post(api, "/hooks/alertmanager", refused)[0] == 422
    daemon.control.dnd.remove(ONCALL)
    status, answer = post(api, "/hooks/alertmanager", refused)    # sent again: no duplicate
    assert status == 200, answer
    assert stored(daemon, answer["ids"][0])["body"].endswith("(+2 held back by the rate limit)")


@pytest.mark.parametrize("payload, expected", [
    (GRAFANA_UNIFIED, "[FIRING] DiskFull: Disk / is 97% full on nas on nas"),
    # summaries that differ: Grafana's title ("[FIRING:2] DiskFull") is not the summary
    (dict(GRAFANA_UNIFIED, title="[FIRING:2] DiskFull", commonAnnotations={}, alerts=[
        dict(GRAFANA_UNIFIED["alerts"][0], fingerprint=f"f{i}",
             labels={"alertname": "DiskFull", "instance": f"nas{i}"},
             annotations={"summary": f"Disk / is 9{i}% full"}) for i in range(2)]),
     "[FIRING:2] DiskFull on nas0, nas1"),
    (GRAFANA_LEGACY, "[FIRING] UPS on battery: The UPS switched to battery on ups1"),
])
def test_grafana_payloads(hooked, payload, expected):
    daemon, api = hooked(grafana={"to": [ONCALL]})
    status, answer = post(api, "/hooks/grafana", payload)
    assert status == 200, answer
    assert stored(daemon, answer["ids"][0])["body"] == expected


def test_generic_json_hook_takes_recipients_and_text_from_templates(hooked):
    daemon, api = hooked(json={"backup": {
        "template": "Backup {{job}} {{#ok}}done{{/ok}}{{^ok}}FAILED: {{error}}{{/ok}}",
        "to_template": "{{contact.phone}}", "token": "t0ken", "user": "admin"}})
    payload = {"job": "nightly", "ok": False, "error": "disk full",
               "contact": {"phone": ONCALL}}
    status, answer = post(api, "/hooks/json/backup", payload, auth=None, query="token=t0ken")
    assert status == 200, answer
    message = stored(daemon, answer["ids"][0])
    assert (message["recipient"], message["body"]) == (ONCALL, "Backup nightly FAILED: disk full")
    assert post(api, "/hooks/json/backup", payload, auth=None, query="token=nope")[0] == 401
    assert post(api, "/hooks/json/nosuch", payload)[0] == 404


def test_groups_from_the_address_book(hooked):
    daemon, api = hooked(alertmanager={})
    api.action("addcontact", contactname="Anna", phonenumber=ONCALL, groups="oncall,db")
    api.action("addcontact", contactname="Bela", phonenumber=DB_TEAM, groups="oncall")
    status, answer = post(api, "/hooks/alertmanager", ALERTMANAGER, query="to=oncall")
    assert status == 200 and answer["messages"] == 2
    status, answer = post(api, "/hooks/alertmanager", dict(ALERTMANAGER, groupKey="x"),
                          query="to=nobody")
    assert status == 400 and "address-book group" in answer["error"]


def test_an_empty_group_among_the_recipients_does_not_keep_the_alert_from_the_others(hooked):
    """Found by a helper: a group whose last contact was removed made the whole notification
    a 400, which Alertmanager does not retry: the on-call number got nothing."""
    daemon, api = hooked(alertmanager={"receivers": {"team-db": [DB_TEAM, "dba"]}})
    status, answer = post(api, "/hooks/alertmanager", ALERTMANAGER)
    assert status == 200 and answer["messages"] == 1, answer
    assert stored(daemon, answer["ids"][0])["recipient"] == DB_TEAM
    assert [r["recipient"] for r in answer["refused"]] == ["dba"]


def flap(status: str, *states: str) -> dict:
    """A notification of group "flap" with one alert per state, as Alertmanager posts it."""
    alerts = [dict(ALERTMANAGER["alerts"][i], status=state) for i, state in enumerate(states)]
    return dict(ALERTMANAGER, groupKey="flap", status=status, alerts=alerts)


def test_only_a_true_repeat_is_a_duplicate(hooked):
    """Found by a helper: within the dedupe window a group that resolved and fired again,
    one of two alerts resolving, and the same notification for other recipients (two
    webhook_configs in one receiver) were all answered 200 "duplicate": SMS lost, and the
    last one the on-call phone had said RESOLVED while the alert was firing."""
    daemon, api = hooked(alertmanager={"to": [ONCALL], "dedupe_seconds": 300})
    statuses = [post(api, "/hooks/alertmanager", payload)[1]["status"] for payload in (
        flap("firing", "firing"), flap("resolved", "resolved"), flap("firing", "firing"),
        flap("firing", "firing"))]
    assert statuses == ["accepted", "accepted", "accepted", "duplicate"]
    both = flap("firing", "firing", "firing")
    assert post(api, "/hooks/alertmanager", both)[1]["status"] == "accepted"
    status, answer = post(api, "/hooks/alertmanager", flap("firing", "firing", "resolved"))
    assert answer["status"] == "accepted"
    assert post(api, "/hooks/alertmanager", both, query=f"to={DB_TEAM}")[1]["status"] \
        == "accepted"
    assert post(api, "/hooks/alertmanager", both, query=f"to={DB_TEAM}")[1]["status"] \
        == "duplicate"


def test_a_json_hook_compares_the_whole_payload(hooked):
    """The dedupe key was the payload's first 2,048 characters: behind a long log, `ok`
    turning true was a duplicate and "Backup weekly done" was never sent."""
    daemon, api = hooked(json={"backup": {
        "template": "Backup {{job}} {{#ok}}done{{/ok}}{{^ok}}FAILED{{/ok}}",
        "to_template": "{{contact.phone}}", "token": "t0ken", "user": "admin"}})
    failed = {"contact": {"phone": ONCALL}, "job": "weekly",
              "log": "sending incremental file list\n" * 100, "ok": False}
    for payload, expected in ((failed, "FAILED"), (dict(failed, ok=True), "done")):
        status, answer = post(api, "/hooks/json/backup", payload, auth=None,
                              query="token=t0ken")
        assert answer["status"] == "accepted", answer
        assert stored(daemon, answer["ids"][0])["body"] == f"Backup weekly {expected}"


def test_the_count_is_of_firing_alerts_and_of_those_max_alerts_left_out(hooked):
    """Like Alertmanager's own title: a firing notification that also lists a resolved
    alert counts the firing ones; `truncatedAlerts` (max_alerts) counts too."""
    daemon, api = hooked(alertmanager={"to": [ONCALL]})
    mixed = flap("firing", "firing", "resolved")
    body = stored(daemon, post(api, "/hooks/alertmanager", mixed)[1]["ids"][0])["body"]
    assert body == "[FIRING] HighCPU (critical): CPU above 95% for 10 minutes on db0.lan:9100"
    cut = dict(ALERTMANAGER, groupKey="cut", alerts=ALERTMANAGER["alerts"][:10],
               truncatedAlerts=190)
    body = stored(daemon, post(api, "/hooks/alertmanager", cut)[1]["ids"][0])["body"]
    assert body.startswith("[FIRING:200] HighCPU")


@pytest.mark.parametrize("auth, query, status", [
    (None, "", 401), (("admin", "wrong-password"), "", 401), (None, "token=anything", 401)])
def test_unauthenticated_requests_are_refused(hooked, auth, query, status):
    daemon, api = hooked(alertmanager={"to": [ONCALL]})
    got, answer = post(api, "/hooks/alertmanager", ALERTMANAGER, auth=auth, query=query)
    assert got == status and answer["status"] == "error"
    assert daemon.journal.stats()["waiting"] == 0


def test_ip_allow_list(hooked):
    daemon, api = hooked(alertmanager={"to": [ONCALL], "ip_allow": ["10.9.9.0/24"]})
    assert post(api, "/hooks/alertmanager", ALERTMANAGER)[0] == 403


@pytest.mark.parametrize("body, status", [
    (b"{not json", 400), (b"\xff\xfe", 400), (json.dumps({"alerts": "x"}).encode(), 400),
    (json.dumps([1, 2]).encode(), 400), (b"x" * (1024 * 1024 + 10), 413)])
def test_bad_bodies_get_a_json_error_and_the_daemon_keeps_serving(hooked, body, status):
    daemon, api = hooked(alertmanager={"to": [ONCALL]})
    got, answer = post(api, "/hooks/alertmanager", body)
    assert got == status, answer
    assert post(api, "/hooks/alertmanager", ALERTMANAGER)[0] == 200


def _alert(labels, **extra) -> dict:
    return dict({"status": "firing", "alerts": [{"status": "firing", "labels": labels}]}, **extra)


@pytest.mark.parametrize("path, body", [
    ("alertmanager", _alert({"alertname": "X", "instance": ["a", "b"]})),
    ("alertmanager", _alert({"alertname": {"nested": 1}})),
    ("alertmanager", _alert({"alertname": "Y"}, commonAnnotations={"summary": [1]})),
    ("grafana", _alert({"alertname": "S2", "instance": ["a"]})),
    ("alertmanager", ("[" * 100_000 + "]" * 100_000).encode()),
])
def test_payloads_of_the_wrong_shape_are_400_not_a_traceback(hooked, path, body, caplog):
    daemon, api = hooked(alertmanager={"to": [ONCALL]}, grafana={"to": [ONCALL]})
    got, answer = post(api, f"/hooks/{path}", body)
    assert got == 400, answer
    assert not [r for r in caplog.records if r.exc_info]
    assert post(api, "/hooks/alertmanager", ALERTMANAGER)[0] == 200


def test_an_alert_without_a_status_fires_and_alerts_that_are_no_objects_are_refused(hooked):
    """Found by posting hand-made notifications: alerts without `status` reached the on-call
    phone as `[RESOLVED] ...`, and `{"alerts": [null, 1]}` or `{"alerts": []}` as an SMS that
    said only `[RESOLVED]`. Alertmanager always sends a status; a script or a curl may not."""
    daemon, api = hooked(alertmanager={"to": [ONCALL]}, grafana={"to": [ONCALL]})
    bare = {"alerts": [{"labels": {"alertname": "DiskFull", "instance": "nas"}}]}
    status, answer = post(api, "/hooks/alertmanager", bare)
    assert status == 200, answer
    assert stored(daemon, answer["ids"][0])["body"] == "[FIRING] DiskFull on nas"
    mixed = {"alerts": [dict(bare["alerts"][0], status="resolved"),
                        {"labels": {"alertname": "DiskFull", "instance": "nas2"}}]}
    status, answer = post(api, "/hooks/grafana", mixed)
    assert stored(daemon, answer["ids"][0])["body"] == "[FIRING] DiskFull on nas2"
    odd = {"alerts": [dict(bare["alerts"][0], status="Pending", labels={"alertname": "Odd"})]}
    status, answer = post(api, "/hooks/alertmanager", odd)       # not "resolved": it fires
    assert stored(daemon, answer["ids"][0])["body"] == "[FIRING] Odd"
    for body, error in (({"alerts": []}, "the notification has no alerts"),
                        ({"alerts": [None, 1]}, "alerts[0] must be an object, not NoneType"),
                        ({"alerts": [bare["alerts"][0], "x"]}, "alerts[1] must be an object"),
                        (dict(bare, status=["firing"]), "status must be text, not list")):
        status, answer = post(api, "/hooks/alertmanager", body)
        assert status == 400 and answer["error"].startswith(error), (body, answer)
    assert daemon.journal.stats()["waiting"] == 3


def test_scalar_labels_and_a_list_receiver_are_read_as_text(hooked):
    """Labels are strings in the format; a sender's number or null is taken as its text (or
    nothing), and a `receiver` that is no name falls back to `to`."""
    daemon, api = hooked(alertmanager={"to": [ONCALL], "receivers": {"team-db": [DB_TEAM]}},
                         grafana={"to": [ONCALL]})
    status, answer = post(api, "/hooks/alertmanager", _alert(
        {"alertname": 5, "severity": 3, "instance": None}, receiver=["team-db"]))
    assert status == 200, answer
    message = stored(daemon, answer["ids"][0])
    assert message["recipient"] == ONCALL and message["body"] == "[FIRING] 5"
    legacy = dict(GRAFANA_LEGACY, evalMatches=[{"metric": None}, {"metric": 5}])
    status, answer = post(api, "/hooks/grafana", legacy)
    assert status == 200 and "None" not in stored(daemon, answer["ids"][0])["body"]


def test_store_that_cannot_accept_answers_503_so_the_sender_retries(hooked, monkeypatch):
    from appliance.errors import StoreError
    daemon, api = hooked(alertmanager={"to": [ONCALL], "dedupe_seconds": 600})

    def broken(messages):
        raise StoreError("disk full")
    monkeypatch.setattr(daemon.journal, "accept", broken)
    status, answer = post(api, "/hooks/alertmanager", ALERTMANAGER)
    assert status == 503 and "retry" in answer["error"]
    monkeypatch.undo()
    status, answer = post(api, "/hooks/alertmanager", ALERTMANAGER)   # not a "duplicate"
    assert status == 200 and answer["status"] == "accepted"


@pytest.mark.parametrize("hooks, message", [
    ({"json": {"x": {"to": [ONCALL]}}}, "needs a template"),
    ({"json": {"x": {"template": "{{#a}}open", "to": [ONCALL]}}}, "never closed"),
    ({"alertmanager": {"template": "{{/a}}"}}, "not open"),
    ({"alertmanager": {"tokn": "x"}}, "unknown key"),
    ({"pagerduty": {}}, "unknown hook kind"),
    ({"grafana": {"ip_allow": ["lan"]}}, "not an address"),
])
def test_config_errors_name_the_key(hooks, message):
    with pytest.raises(ConfigError, match=message):
        cfg.from_dict({"hooks": hooks})


def test_a_long_alert_is_cut_within_two_gsm7_parts(hooked):
    """max_chars = 306 is two GSM-7 parts: the cut ends in "..." (an ellipsis character
    would need UCS-2 and make it five parts)."""
    daemon, api = hooked(alertmanager={"to": [ONCALL]})
    long = dict(ALERTMANAGER, groupKey="long", commonAnnotations={
        "summary": "Replication lag on every database node. " * 20})
    status, answer = post(api, "/hooks/alertmanager", long)
    assert status == 200, answer
    message = stored(daemon, answer["ids"][0])
    # the summary is cut, not the hosts the SMS is about (found by a helper)
    hosts = " on db0.lan:9100, db1.lan:9100, db2.lan:9100 +197"
    assert message["body"].endswith("..." + hosts) and 300 <= len(message["body"]) <= 306
    assert (message["encoding"], message["parts_total"]) == ("gsm7", 2)
