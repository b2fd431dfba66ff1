"""One login (web/login.py), each dialect's own refusals: wrong password, unknown user,
missing credentials, a stopped user, an address outside the user's list, too many failures.
Through a real socket against a running daemon, so the table, the routes and the answers
are the ones a client meets."""

from __future__ import annotations

import base64
import dataclasses
import json
import urllib.parse
import urllib.request

import pytest

from appliance import config as cfg
from appliance.web import admin, bulksms, login, ozeki, ozeki_json, phonesystem
from conftest import ADMIN_PASSWORD, Api, xml_values

PASSWORD = "user-secret-1"
RIGHT, WRONG = "right", "wrong"


def _ozeki(api: Api, name, password) -> str:
    params = {"action": "sendmessage", "recipient": "+36201234567", "messagedata": "hi"}
    if name is not None:
        params.update(username=name, password=password)
    status, body = api.get("/api", **params)
    assert status == 200
    return xml_values(body, "errorcode")[0] if "<errorcode>" in body else "accepted"


def _json(api: Api, name, password) -> str:
    headers = {"Content-Type": "application/json"}
    if name is not None:
        token = base64.b64encode(f"{name}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    body = json.dumps({"messages": [{"to_address": "+36201234567", "text": "hi"}]})
    status, text = api.post("/api?action=sendmsg", body, headers)
    reply = json.loads(text)
    assert reply["http_code"] == status
    return f"{status} {reply['response_code']}"


def _phonesystem(api: Api, name, password) -> str:
    params = {"Command": "SendSms", "ApiExtension": "9994", "Recipient": "+36201234567",
              "Message": "hi"}
    if name is not None:
        params.update(Username=name, Password=password)
    status, body = api.get("/", **params)
    assert status == 200
    return xml_values(body, "Code")[0]


def _bulksms(api: Api, name, password) -> str:
    params = {"type": "0", "dlr": "0", "destination": "+36201234567", "message": "hi"}
    if name is not None:
        params.update(username=name, password=password)
    status, body = api.get("/bulksms/bulksms", **params)
    assert status == 200
    return body.split("|")[0]


def _admin(api: Api, name, password) -> str:
    params = {"fault": "none", "modem": "1"}
    if name is not None:
        params.update(username=name, password=password)
    status, text = api.post("/demo/sim", urllib.parse.urlencode(params))
    return f"{status} {json.loads(text).get('error', '')}"


# dialect: (ask, answers by case). "accepted" ends the login: the request went on to its
# own checks (no simulator for /demo/sim: 404).
DIALECTS = {
    "ozeki": (_ozeki, {"wrong_password": "4", "unknown_user": "4", "missing": "4",
                       "stopped": "10", "fenced": "9", "denied": "9", "throttled": "6",
                       "ok": "accepted"}),
    "ozeki_json": (_json, {"wrong_password": "401 INVALID_CREDENTIALS",
                           "unknown_user": "401 INVALID_CREDENTIALS",
                           "missing": "401 INVALID_CREDENTIALS", "stopped": "403 FORBIDDEN",
                           "fenced": "403 FORBIDDEN", "denied": "403 FORBIDDEN",
                           "throttled": "429 TOO_MANY_REQUESTS", "ok": "200 SUCCESS"}),
    "phonesystem": (_phonesystem, {"wrong_password": "305", "unknown_user": "305",
                                   "missing": "304", "stopped": "306", "fenced": "307",
                                   "denied": "307", "throttled": "307", "ok": "200"}),
    "bulksms": (_bulksms, {"wrong_password": "1703", "unknown_user": "1703", "missing": "1702",
                           "stopped": "1709", "fenced": "18", "denied": "16",
                           "throttled": "1709", "ok": "1701"}),
    "admin": (_admin, {"wrong_password": "403 authentication failed",
                       "unknown_user": "403 authentication failed",
                       "missing": "403 authentication failed",
                       "stopped": "403 authentication failed",
                       "fenced": "403 access from this address is not allowed",
                       "denied": "403 access from this address is not allowed",
                       "throttled": "403 authentication failed",
                       "not_admin": "403 admin only", "ok": "404 not in demo mode"}),
}

CASES = {"wrong_password": ("alice", WRONG), "unknown_user": ("nobody", PASSWORD),
         "missing": (None, None), "stopped": ("stopped", PASSWORD),
         "fenced": ("fenced", PASSWORD), "denied": ("denied", PASSWORD)}


def _start(make_config, run_daemon, failures_per_minute: int = 10):
    config = make_config()
    config = dataclasses.replace(config, http=dataclasses.replace(
        config.http, login_failures_per_minute=failures_per_minute))
    daemon = run_daemon(config)
    accounts = daemon.accounts
    accounts.create("alice", PASSWORD)
    accounts.create("stopped", PASSWORD)
    accounts.update("stopped", enabled=False)
    accounts.create("fenced", PASSWORD, ip_allow=["10.9.9.0/24"])
    accounts.create("denied", PASSWORD, ip_deny=["127.0.0.0/8"])
    for name in ("fenced", "denied"):
        accounts.update(name, admin=True)       # the address, not the role, refuses them
    return daemon, Api(daemon.port)


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_each_dialect_answers_a_refused_login_in_its_own_words(dialect, make_config, run_daemon):
    _, api = _start(make_config, run_daemon)
    ask, answers = DIALECTS[dialect]
    for case, (name, password) in CASES.items():
        assert (case, ask(api, name, password)) == (case, answers[case])
    if "not_admin" in answers:
        assert ask(api, "alice", PASSWORD) == answers["not_admin"]
    assert ask(api, "admin", ADMIN_PASSWORD) == answers["ok"]


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_each_dialect_answers_a_throttled_address_in_its_own_words(dialect, make_config,
                                                                     run_daemon):
    _, api = _start(make_config, run_daemon, failures_per_minute=1)
    ask, answers = DIALECTS[dialect]
    assert ask(api, "alice", WRONG) == answers["wrong_password"]
    assert ask(api, "admin", ADMIN_PASSWORD) == answers["throttled"]   # right, but too late


@pytest.mark.parametrize("module", [ozeki, ozeki_json, phonesystem, bulksms, admin])
def test_every_login_table_answers_every_kind_it_can_meet(module):
    table = module.LOGIN.refusals
    needed = {login.BAD, login.THROTTLED, login.DISABLED, login.DENIED, login.NOT_ALLOWED}
    if module.LOGIN.admin_only:
        needed.add(login.NOT_ADMIN)
    assert needed <= set(table)
    for kind in needed:
        assert isinstance(table[kind](), Exception)
        assert table[kind]() is not table[kind]()        # a fresh exception each time


def test_phonesystem_without_credentials_still_runs_as_its_configured_user(make_config,
                                                                             run_daemon):
    config = make_config(phonesystem=cfg.PhoneSystemConfig(auth_required=False,
                                                           allow=["127.0.0.1"]))
    daemon = run_daemon(config)
    assert _phonesystem(Api(daemon.port), None, None) == "200"


def test_an_address_refusal_is_logged_once_with_the_user_and_the_list(make_config, run_daemon,
                                                                        caplog):
    _, api = _start(make_config, run_daemon)
    with caplog.at_level("WARNING", logger="appliance.web"):
        assert _bulksms(api, "denied", PASSWORD) == "16"
    lines = [r.getMessage() for r in caplog.records if "refused from" in r.getMessage()]
    assert lines == ["bulksms: user 'denied' refused from 127.0.0.1 (its deny list)"]
