"""The dashboard over HTTP without a browser: routing of `/`, login, sessions, CSRF, the
login throttle, who may see what, and the admin actions. (test_web_browser.py drives the
same pages in a real Chromium.)"""

from __future__ import annotations

import http.cookiejar
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from appliance import config as cfg
from conftest import ADMIN_PASSWORD, xml_values
from web_kit import (HeldRead, demo_daemon_on_simulated_modems, query_plan,
                     recorded_journal_queries)


class Browser:
    """A cookie jar and no redirect following, so each answer can be looked at."""

    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  _NoRedirect())

    def open(self, path: str, data: dict | None = None) -> tuple[int, str, object]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(self.base + path, data=body, timeout=30) as answer:
                return answer.status, answer.read().decode(), answer.headers
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace"), exc.headers

    def login(self, user: str = "admin", password: str = ADMIN_PASSWORD) -> int:
        return self.open("/login", self.login_form(user, password))[0]

    def login_form(self, user: str, password: str) -> dict:
        token = re.search(r'name="login_token" value="([^"]+)"', self.open("/login")[1]).group(1)
        return {"username": user, "password": password, "login_token": token}

    def csrf(self, path: str = "/ui/send") -> str:
        return re.search(r'name="csrf" value="([^"]+)"', self.open(path)[1]).group(1)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_root_is_the_dashboard_only_without_a_query(appliance):
    daemon, api = appliance
    status, _, headers = Browser(daemon.port).open("/")
    assert status == 303 and headers["Location"].endswith("/login")
    status, body = api.get("/", command="SendSms", Username="admin", Password=ADMIN_PASSWORD,
                           ApiExtension="1", Recipient="+36201234567", Message="hi")
    assert xml_values(body, "Code") == ["200"]
    assert xml_values(api.get("/", Username="admin")[1], "Code") == ["302"]   # no command
    status, body = api.post("/", "command=SendSms")
    assert xml_values(body, "Code") == ["304"]


def test_login_sets_an_httponly_strict_cookie_and_logout_ends_the_session(appliance):
    daemon, _ = appliance
    browser = Browser(daemon.port)
    status, body, _ = browser.open("/login", {"username": "admin", "password": ADMIN_PASSWORD})
    assert status == 403 and "expired" in body       # no login token: login CSRF refused
    status, body, headers = browser.open("/login", browser.login_form("admin", ADMIN_PASSWORD))
    assert status == 303
    cookie = next(c for c in headers.get_all("Set-Cookie") if c.startswith("sms_session="))
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    status, body, _ = browser.open("/")
    assert status == 200 and "Overview" in body and "Queue" in body
    token = browser.csrf("/")
    assert browser.open("/logout", {"csrf": "wrong"})[0] == 403
    assert browser.open("/logout", {"csrf": token})[0] == 303
    assert browser.open("/")[0] == 303            # the old cookie no longer works


def test_wrong_password_is_refused_and_the_throttle_applies(make_config, run_daemon):
    config = make_config(http=cfg.HttpConfig(host="127.0.0.1", port=0,
                                             login_failures_per_minute=3))
    daemon = run_daemon(config)
    browser = Browser(daemon.port)
    for _ in range(3):
        status, body, _ = browser.open("/login", browser.login_form("admin", "nope"))
        assert status == 401 and "Wrong user or password" in body
    status, body, _ = browser.open("/login", browser.login_form("admin", ADMIN_PASSWORD))
    assert status == 429 and "Too many failed logins" in body


def test_send_form_needs_the_csrf_token_and_uses_the_api_intake(appliance):
    daemon, api = appliance
    browser = Browser(daemon.port)
    browser.login()
    form = {"recipient": "+36201234567", "text": "from the form", "sender": ""}
    assert browser.open("/ui/send", form)[0] == 403
    assert daemon.journal.stats()["waiting"] == 0
    status, _, headers = browser.open("/ui/send", {**form, "csrf": browser.csrf()})
    assert status == 303
    message_id = headers["Location"].split("/ui/messages/")[1].split("?")[0]
    message = daemon.journal.get_message(message_id)
    assert message["body"] == "from the form" and message["dialect"] == "web"
    # the same validation as the APIs: a bad number is refused in the form, nothing stored
    status, body, _ = browser.open("/ui/send", {**form, "recipient": "abc",
                                                "csrf": browser.csrf()})
    assert status == 200 and 'class="error"' in body
    assert daemon.journal.stats()["waiting"] == 1
    # the message page and the search find it
    assert "from the form" in browser.open(f"/ui/messages/{message_id}")[1]
    assert message_id in browser.open("/ui/messages?q=%2B3620123")[1]
    assert message_id not in browser.open("/ui/messages?q=%2B3630")[1]
    assert message_id in browser.open("/ui/messages?state=queued")[1]
    assert "use YYYY-MM-DD" in browser.open("/ui/messages?since=yesterday")[1]


def test_a_user_sees_only_their_messages_and_no_admin_page(appliance):
    daemon, api = appliance
    admin_id = api.send("+36201234567", "the admin's")
    daemon.accounts.create("alice", "alice-pass-1")
    browser = Browser(daemon.port)
    assert browser.login("alice", "alice-pass-1") == 303
    assert browser.open("/ui/admin")[0] == 403
    assert browser.open("/ui/admin/credits", {"csrf": browser.csrf(), "user": "alice",
                                              "amount": "5"})[0] == 403
    assert admin_id not in browser.open("/ui/messages")[1]
    assert browser.open(f"/ui/messages/{admin_id}")[0] == 404
    assert "Admin" not in browser.open("/")[1].split("<main>")[0]
    api.action("stopuser", name="alice")          # stopped through the Ozeki API
    assert browser.open("/")[0] == 303            # the dashboard session ends with it


def test_admin_sets_credits_and_disables_a_user_who_is_then_logged_out(appliance):
    daemon, _ = appliance
    daemon.accounts.create("bob", "bob-pass-12")
    bob = Browser(daemon.port)
    assert bob.login("bob", "bob-pass-12") == 303
    admin = Browser(daemon.port)
    admin.login()
    token = admin.csrf("/ui/admin")
    assert admin.open("/ui/admin/credits", {"csrf": token, "user": "bob", "amount": "7",
                                            "how": "set"})[0] == 303
    assert daemon.journal.balance("bob") == 7
    assert admin.open("/ui/admin/credits", {"csrf": token, "user": "bob", "amount": "3",
                                            "how": "add"})[0] == 303
    assert daemon.journal.balance("bob") == 10
    assert admin.open("/ui/admin/user", {"csrf": token, "user": "bob", "op": "disable"})[0] == 303
    assert bob.open("/")[0] == 303                 # logged out everywhere
    assert bob.login("bob", "bob-pass-12") == 401  # and cannot log in again
    status, _, headers = admin.open("/ui/admin/user", {"csrf": token, "user": "carol",
                                                       "password": "carol-pass", "op": "create"})
    assert "created" in urllib.parse.unquote_plus(headers["Location"])
    assert daemon.accounts.get("carol") is not None


def _flash(headers) -> str:
    return urllib.parse.unquote_plus(headers["Location"])


def test_the_users_address_lists_hold_for_the_dashboard(appliance):
    """Found by a helper: a user whose ipdeny named the address was refused by every API
    but logged in to the dashboard and sent SMS from its form."""
    daemon, _ = appliance
    daemon.accounts.create("bob", "bob-pass-12")
    bob = Browser(daemon.port)
    assert bob.login("bob", "bob-pass-12") == 303
    daemon.accounts.update("bob", ip_deny=["127.0.0.1/32"])
    assert bob.open("/")[0] == 303                      # the session ends at the next page
    assert bob.login("bob", "bob-pass-12") == 403


def test_credits_and_the_admin_account_from_the_admin_page(appliance):
    """Found by a helper: the page called -1 "unlimited" (it is a balance that cannot send;
    unlimited is a setting), a balance beyond 32 bits was a 500, and a second admin could
    disable the built-in admin, which the API refuses."""
    daemon, _ = appliance
    daemon.accounts.create("bob", "bob-pass-12")
    daemon.accounts.create("root2", "root2-pass-1", admin=True)
    admin = Browser(daemon.port)
    admin.login()
    token = admin.csrf("/ui/admin")
    _, _, headers = admin.open("/ui/admin/credits", {"csrf": token, "user": "bob",
                                                     "amount": "-1", "how": "set"})
    assert _flash(headers).endswith("bob: balance -1") and not daemon.journal.unlimited("bob")
    status, _, headers = admin.open("/ui/admin/credits", {"csrf": token, "user": "bob",
                                                          "amount": "99999999999",
                                                          "how": "set"})
    assert status == 303 and "between" in _flash(headers)
    admin.open("/ui/admin/credits", {"csrf": token, "user": "bob", "how": "unlimited"})
    assert daemon.journal.unlimited("bob")
    assert re.search(r"<td>bob</td>.*?<td>unlimited</td>", admin.open("/ui/admin")[1], re.S)
    root2 = Browser(daemon.port)
    root2.login("root2", "root2-pass-1")
    _, _, headers = root2.open("/ui/admin/user", {"csrf": root2.csrf("/ui/admin"),
                                                  "user": "admin", "op": "disable"})
    assert "cannot be disabled" in _flash(headers) and daemon.accounts.get("admin").enabled


@pytest.fixture
def with_modems(make_config, run_daemon):
    with demo_daemon_on_simulated_modems(make_config, run_daemon) as (daemon, _network):
        yield daemon


def _wait(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_admin_resets_a_modem_stops_a_connection_and_runs_ussd(with_modems):
    daemon = with_modems
    admin = Browser(daemon.port)
    admin.login()
    token = admin.csrf("/ui/admin")
    worker = daemon.channels.running["GSMModem0"]
    assert admin.open("/ui/admin/reset", {"csrf": token, "name": "GSMModem0"})[0] == 303
    assert _wait(lambda: sum(worker.status()["recoveries"].values()) >= 1)
    assert _wait(lambda: worker.status()["state"] == "ready")

    status, body, _ = admin.open("/ui/admin/ussd", {"csrf": token, "slot": "slot2",
                                                    "code": "*100#"})
    assert status == 200 and 'id="ussd-reply"' in body and "slot2 *100#:" in body

    assert admin.open("/ui/admin/connection", {"csrf": token, "name": "GSMModem1",
                                               "to": "stop"})[0] == 303
    assert "GSMModem1" not in daemon.channels.running
    assert admin.open("/ui/admin/connection", {"csrf": token, "name": "GSMModem1",
                                               "to": "start"})[0] == 303
    assert "GSMModem1" in daemon.channels.running
    # a modem's counters count since the start (beside "Today", from the journal): they
    # were labelled "Totals" and read 3 against 7 sent today after a restart
    overview = admin.open("/")[1]
    assert "<dt>Since start</dt>" in overview and "Totals" not in overview


def test_inbox_shows_a_long_inbound_message_once_reassembled(with_modems):
    daemon = with_modems
    network = daemon.control.sim
    text = "A long reply from a customer. " * 12           # three GSM parts
    network.modem("slot1").deliver_inbound("+36301112222", text)
    assert _wait(lambda: daemon.journal.folder(None, "inbox"))
    browser = Browser(daemon.port)
    browser.login()
    body = browser.open("/ui/inbox")[1]
    assert body.count('<article class="sms') == 1
    assert text.strip() in body and "+36301112222" in body


def test_pages_read_by_index_not_by_scanning_the_journal(appliance):
    """The overview refreshes every few seconds: its reads, the lists and a message's
    timeline must not scan or sort the whole journal."""
    import sqlite3
    daemon, api = appliance
    ids = [api.send("+36201234567", f"m{i}") for i in range(5)]
    browser = Browser(daemon.port)
    browser.login()
    journal = daemon.journal
    with recorded_journal_queries(journal) as seen:
        for path in ("/", "/ui/messages", "/ui/inbox", f"/ui/messages/{ids[0]}",
                     "/ui/messages?state=queued"):
            assert browser.open(path)[0] == 200
    conn = sqlite3.connect(journal.path)
    for sql, params in seen:
        plan = query_plan(conn, sql, params)
        # sorting what an index search found (one message's parts) is fine; sorting a scan is not
        assert "TEMP B-TREE" not in plan or "SCAN" not in plan, (sql, plan)
        # newest first by rowid walks the table from its end and stops at the LIMIT
        newest_first = "ORDER BY rowid DESC LIMIT" in sql
        for table in ("parts", "messages", "events"):
            assert f"SCAN {table}" not in plan or f"SCAN {table} USING INDEX" in plan \
                or f"SCAN {table} USING COVERING INDEX" in plan \
                or (newest_first and table == "messages"), (sql, plan)
    conn.close()


def test_a_refused_reset_says_why_in_the_modems_words(make_config, run_daemon, monkeypatch):
    """It said "not ready ...; no reset needed" to an operator looking at a held modem."""
    from appliance import daemon as daemon_module
    from fakes.channels import HeldModem
    monkeypatch.setattr(daemon_module, "build_channel", lambda conn, *a, **k: HeldModem(conn))
    modem = cfg.GSMModemConfig(name="GSMModem0", modemorport="/dev/null")
    daemon = run_daemon(make_config(connections=(modem,)))
    admin = Browser(daemon.port)
    admin.login()
    _, _, headers = admin.open("/ui/admin/reset", {"csrf": admin.csrf("/ui/admin"),
                                                   "name": "GSMModem0"})
    said = urllib.parse.unquote_plus(headers["Location"])
    assert "GSMModem0 is held" in said and "4 resets in the last hour" in said
    assert "no reset needed" not in said


def test_the_overview_counts_refusals_by_source(appliance):
    daemon, api = appliance
    browser = Browser(daemon.port)
    assert browser.login() == 303
    assert 'id="refused"' not in browser.open("/")[1]        # nothing refused yet
    api.action("sendmessage", recipient="not-a-number", messagedata="hi")
    api.action("sendmessage", recipient="+36201234567", messagedata="")
    body = browser.open("/")[1]
    assert re.search(r'id="refused".*?<span class="badge">ozeki 2</span>', body, re.S), body


def test_a_slow_dashboard_search_does_not_hold_up_the_api(appliance, monkeypatch):
    """A search for a rare state or a number that is not there scans the journal: 0.3 s at
    1M messages, during which every API request waited (it ran on the loop's thread)."""
    daemon, _ = appliance
    browser = Browser(daemon.port)
    assert browser.login() == 303
    held = HeldRead()
    journal = daemon.journal
    real_query = journal.query

    def held_query(sql, params=()):
        if "state=?" in sql:                # the search below; other reads pass
            held.hold()
        return real_query(sql, params)

    monkeypatch.setattr(journal, "query", held_query)
    page = held.send_during(daemon.port, lambda: browser.open("/ui/messages?state=failed"))
    assert page[0] == 200 and "Messages" in page[1]


def test_the_demo_login_hint_names_both_places_the_password_comes_from(with_modems):
    """It said the password "was shown once, when the daemon first started", also to a demo
    started with --admin-password (as the tests and most scripts start it)."""
    page = Browser(with_modems.port).open("/login")[1]
    hint = re.search(r'<p class="hint" id="demo-password-hint">(.*?)</p>', page, re.S).group(1)
    assert "<code>--admin-password</code>" in hint and "first started" in hint


def test_a_box_that_is_no_demo_gives_no_password_hint(appliance):
    daemon, _api = appliance
    assert "demo-password-hint" not in Browser(daemon.port).open("/login")[1]


def test_an_admin_change_the_store_cannot_write_is_said_on_the_page(appliance, tmp_path):
    """A full disk made the admin page's user and credit changes a 500; the documents'
    write now fails as a StoreError, which the page says. Here the OS refuses the write
    (the documents' directory is gone), as it does on a full or lost disk."""
    daemon, _ = appliance
    admin = Browser(daemon.port)
    admin.login()
    token = admin.csrf("/ui/admin")
    storage = daemon.documents._db.storage
    kept, storage._path = storage._path, tmp_path / "gone" / "documents.json"
    try:
        status, _, headers = admin.open("/ui/admin/user", {"csrf": token, "user": "dave",
                                                           "password": "dave-pass-1",
                                                           "op": "create"})
    finally:
        storage._path = kept
    assert status == 303, status
    assert "not saved: documents.json cannot be written: No such file or directory" \
        in _flash(headers)
    assert daemon.accounts.get("dave") is None
