"""The HTTP Server connection (seed 000): a provider or LAN system delivers SMS and delivery
reports to the appliance at BASEURL with the PARAMNAME* names, through the whole daemon."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from appliance.config import ConfigError, from_dict
from appliance.provider.settings import HTTPClientConfig, HTTPServerConfig
from conftest import Api
from fakes.providers import WebProvider, wait_for


def call(url: str, data: bytes | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, data=data, timeout=10) as answer:
            return answer.status, answer.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")


def raw_request(base: str, data: bytes) -> bytes:
    """The whole answer: read until the server closes (one recv got the head without the
    body when the machine was busy)."""
    import socket
    url = urllib.parse.urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        return answer


@pytest.fixture
def callbacks():
    web = WebProvider().start()
    yield web
    web.stop()


@pytest.fixture
def server(make_config, run_daemon):
    def run(*more, **keys):
        conn = HTTPServerConfig(name="In0", baseurl="http://127.0.0.1:0/sms",
                                phonenumber="+36209999999", **keys)
        daemon = run_daemon(make_config(connections=(conn, *more)))
        channel = daemon.channels.running["In0"]
        wait_for(lambda: channel.state == "listening", what="listening")
        assert channel.port not in (0, 80)     # :0 is a free port (it was 80, a fixed one)
        return daemon, Api(daemon.port), f"http://127.0.0.1:{channel.port}/sms"
    return run


def test_an_inbound_sms_lands_in_the_inbox_and_fires_the_inbound_callback(server, callbacks):
    daemon, api, base = server()
    daemon.accounts.update("admin", inbound_url=callbacks.url + "/in?from=$originator"
                                                                "&text=$messagedata")
    query = urllib.parse.urlencode({"originator": "+36301234567", "msg": "Szia ☺",
                                    "msgid": "p-1", "senttime": "2026-11-30 10:04:00"})
    status, body = call(f"{base}?{query}")
    assert status == 200 and body.startswith("Message was accepted id: ")
    inbox_id = body.rsplit(" ", 1)[1]
    message = daemon.journal.get_message(inbox_id)
    assert (message["originator"], message["recipient"], message["body"]) == \
        ("+36301234567", "+36209999999", "Szia ☺")
    assert message["connection"] == "In0" and message["direction"] == "in"
    listed = api.action("receivemessage", folder="inbox")
    assert "Szia ☺" in listed
    request = wait_for(lambda: callbacks.requests, what="the inbound callback")[0]
    assert request["query"] == {"from": "+36301234567", "text": "Szia ☺"}


def test_post_with_the_configured_parameter_names_and_response_template(server):
    daemon, _, base = server(paramnameoriginator="from", paramnamemessagedata="text",
                             paramnamerecipient="to",
                             responsetemplate="OK $msgid from $originator")
    form = urllib.parse.urlencode({"from": "+36301234567", "to": "+3620111",
                                   "text": "posted"}).encode()
    status, body = call(base, form)
    assert status == 200 and body.startswith("OK ") and body.endswith(" from +36301234567")
    message = daemon.journal.get_message(body.split()[1])
    assert (message["recipient"], message["body"]) == ("+3620111", "posted")


def test_bad_requests_get_a_clear_answer_and_store_nothing(server):
    daemon, _, base = server()
    assert call(f"{base}?msg=no+sender") == (400, "error: missing parameter originator")
    status, body = call(f"{base}?originator=%2B3630&msg=%FF%FE")
    assert status == 400 and "not valid UTF-8" in body
    status, body = call(f"{base}?originator=%2B3630&msg=x&msgtype=SMS:VOICE")
    assert status == 400 and "unsupported message type" in body
    status, body = call(f"{base}?originator=%2B3630&msg=x&senttime=yesterday")
    assert status == 400 and "senttime" in body
    assert call(base.replace("/sms", "/other") + "?originator=1&msg=x")[0] == 404
    assert raw_request(base, b"POST /sms HTTP/1.0\r\nContent-Length: many\r\n\r\n") \
        .startswith(b"HTTP/1.0 400")
    assert daemon.journal.folder(None, "inbox") == []


def test_reports_at_baseurl_settle_parts_sent_through_the_http_client(server):
    provider = WebProvider(lambda request: (200, "ACCEPTED 4711")).start()
    try:
        client = HTTPClientConfig(name="Web0", targeturl=f"{provider.url}/s?to=$recipient",
                                  respsuccess=r"ACCEPTED (\d+)", limittompm=0)
        daemon, api, base = server(client, reportconnection="Web0")
        wait_for(lambda: daemon.channels.running["Web0"].state == "ready", what="ready")
        message_id = api.send("+36201234567", "report me")
        api.wait_state(message_id, 13)
        status, body = call(f"{base}?msgtype=SMS:REPORT&msgid=4711&status=DELIVRD")
        assert (status, body) == (200, "Message was accepted id: 4711")
        api.wait_state(message_id, 10)
    finally:
        provider.stop()


def test_a_port_in_use_is_retried_without_stopping_the_daemon(make_config, run_daemon,
                                                              callbacks):
    taken = urllib.parse.urlsplit(callbacks.url).port
    conn = HTTPServerConfig(name="In0", baseurl=f"http://127.0.0.1:{taken}")
    daemon = run_daemon(make_config(connections=(conn,)))
    channel = daemon.channels.running["In0"]
    wait_for(lambda: channel.state == "down", what="down")
    assert "cannot listen on 127.0.0.1" in channel.status()["last_error"]
    assert Api(daemon.port).get("/status")[0] == 200


def test_receive_only_and_refused_without_a_report_connection(server):
    daemon, _, base = server()
    assert daemon.channels.running["In0"].free_slots() == 0
    status, body = call(f"{base}?msgid=1&status=delivered")
    assert status == 400 and "reportconnection" in body
    with pytest.raises(ConfigError, match="only receives"):
        from_dict({"connections": {"H": {"type": "HTTPServer", "send": True}}})


def test_ipallow_limits_who_may_deliver(server):
    daemon, _, base = server(ipallow=("10.1.0.0/16",))
    status, body = call(f"{base}?originator=%2B3630&msg=intruder")
    assert status == 403 and "ipallow" in body
    assert daemon.journal.folder(None, "inbox") == []
    with pytest.raises(ConfigError, match="ipallow"):
        from_dict({"connections": {"H": {"type": "HTTPServer", "ipallow": ["nope"]}}})


def test_a_listening_http_server_connection_is_healthy_everywhere(server):
    """Found by a helper: /health was 503 for ever with any HTTP Server connection
    ("uplink:In0 fail listening"), sms_uplink_up said 0 and the shipped alert fired: its
    normal state was not one of the states counted as up."""
    daemon, api, _ = server()
    status, body = api.get("/health")
    checks = {c["component"]: c for c in json.loads(body)["checks"]}
    assert checks["uplink:In0"]["status"] == "pass" and status == 200
    metrics = api.get("/metrics")[1]
    assert 'sms_uplink_up{name="In0"} 1.0' in metrics
    assert daemon.status_line().endswith(", 1/1 channels ready")


def test_an_idle_client_does_not_hold_back_others_and_chunked_posts_are_read(server):
    """Found by a helper: one request at a time, so a connection that sent nothing held
    every inbound SMS back by 10 s; a chunked POST (no Content-Length) was read as empty
    ('missing parameter originator')."""
    import socket
    import time
    daemon, _, base = server()
    url = urllib.parse.urlsplit(base)
    idle = socket.create_connection((url.hostname, url.port))
    try:
        started = time.monotonic()
        query = urllib.parse.urlencode({"originator": "+36301234567", "msg": "not held"})
        status, _ = call(f"{base}?{query}")
        assert status == 200 and time.monotonic() - started < 5     # not after the 10 s
    finally:
        idle.close()
    body = urllib.parse.urlencode({"originator": "+36301234568", "msg": "chunked ☺"}).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:10], body[10:])) + b"0\r\n\r\n"
    answer = raw_request(base, b"POST " + url.path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/x-www-form-urlencoded\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
    assert answer.startswith(b"HTTP/1.0 200") or answer.startswith(b"HTTP/1.1 200"), answer
    assert "chunked ☺" in [m["body"] for m in daemon.journal.folder(None, "inbox")]


def test_a_client_gone_before_its_answer_is_one_debug_line_not_a_traceback(server, caplog,
                                                                            capsys):
    """socketserver printed a traceback to stderr (past the log) for each client that hung
    up before its answer. Each client here resets the connection at once; the answer waits
    for the inbound SMS's durable commit, so its write meets the reset (on a busy machine a
    client may be slower than a commit: at least one of five is enough to see the path)."""
    import logging
    import socket
    import struct
    caplog.set_level(logging.DEBUG, logger="appliance.provider")
    daemon, _, base = server()
    url = urllib.parse.urlsplit(base)
    for n in range(5):
        query = urllib.parse.urlencode({"originator": "+36301234567", "msg": f"gone {n}"})
        with socket.create_connection((url.hostname, url.port)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.sendall(f"GET {url.path}?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    wait_for(lambda: [r for r in caplog.records if "went away" in r.getMessage()],
             what="a line for a client gone")
    status, _ = call(f"{base}?" + urllib.parse.urlencode({"originator": "+3630", "msg": "x"}))
    assert status == 200                                 # the listener serves on
    assert "Traceback" not in capsys.readouterr().err
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("request_line, status, says", [
    (b"GET /sms?originator=%2B36301234567&msg=cut", b"400", b"error: the request line has no"
                                                            b" HTTP version"),
    (b"GET /sms?originator=%2B36301234567&msg=x HTTP/1.1 extra", b"400",
     b"error: Bad request version ('extra')"),
    (b"BREW /sms HTTP/1.1", b"501", b"error: Unsupported method ('BREW')"),
])
def test_requests_the_stdlib_refuses_are_answered_in_this_connections_format(
        server, request_line, status, says):
    """No bare HTTP/0.9 body without a status line, no HTML error page."""
    daemon, _, base = server()
    answer = raw_request(base, request_line + b"\r\nHost: x\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 " + status), answer
    assert b"Content-Type: text/plain; charset=utf-8" in head
    assert body == says
    assert daemon.journal.folder(None, "inbox") == []


def test_a_malformed_chunked_body_is_a_clear_400_and_stores_nothing(server):
    """Bad input in this connection's own answer format ("error: ..."), nothing stored."""
    daemon, _, base = server()
    url = urllib.parse.urlsplit(base)
    answer = raw_request(base, b"POST " + url.path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\nzz\r\noriginator=1\r\n0\r\n\r\n")
    assert answer.split(b"\r\n", 1)[0].endswith(b"400 Bad Request")
    assert answer.rstrip().endswith(b"error: bad chunked body")
    assert daemon.journal.folder(None, "inbox") == []


def test_an_sms_delivered_again_is_answered_with_its_first_id_and_stored_once(server):
    """Found by a helper: a provider that lost our answer and sent the SMS again got
    'Message was accepted id: ' (an empty id) or its own msgid instead of the id of the
    first answer, and one that named the SMS by msgid alone had it stored twice."""
    daemon, _, base = server()
    by_time = {"originator": "+36301234567", "msg": "again", "senttime": "2026-11-30 10:04:00"}
    by_id = {"originator": "+36301234568", "msg": "again", "msgid": "p-7"}
    by_both = {**by_time, "originator": "+36301234569", "msgid": "p-8"}
    for params in (by_time, by_id, by_both):
        query = urllib.parse.urlencode(params)
        first = call(f"{base}?{query}")
        assert first[0] == 200 and first[1] != "Message was accepted id: "
        assert call(f"{base}?{query}") == first                       # a GET retried
        assert call(base, query.encode()) == first                    # or POSTed again
    other = urllib.parse.urlencode({**by_id, "msg": "another text"})   # a reused msgid
    assert call(f"{base}?{other}")[1] != call(f"{base}?{urllib.parse.urlencode(by_id)}")[1]
    inbox = sorted((m["originator"], m["body"]) for m in daemon.journal.folder(None, "inbox"))
    assert inbox == [("+36301234567", "again"), ("+36301234568", "again"),
                     ("+36301234568", "another text"), ("+36301234569", "again")]
    assert daemon.channels.running["In0"].counts["inbound"] == 4


def test_a_repeat_with_the_same_msgid_but_another_senttime_is_stored_once(server):
    """Found by a helper: the repeat key held senttime beside the provider's msgid, so a
    repeat that added a senttime the first post lacked, or restamped it, was stored again.
    With a msgid the msgid names the SMS; senttime counts only when there is none."""
    daemon, _, base = server()
    first_post = {"originator": "+36301234570", "msg": "again", "msgid": "p-9"}
    first = call(base, urllib.parse.urlencode(first_post).encode())
    assert first[0] == 200 and first[1] != "Message was accepted id: "
    for senttime in ("2026-11-30 10:04:00", "2026-11-30 10:05:00"):
        repeat = urllib.parse.urlencode({**first_post, "senttime": senttime})
        assert call(base, repeat.encode()) == first
    no_id = {"originator": "+36301234571", "msg": "again"}              # no msgid: by time
    for senttime in ("2026-11-30 10:04:00", "2026-11-30 10:05:00"):
        call(base, urllib.parse.urlencode({**no_id, "senttime": senttime}).encode())
    inbox = sorted((m["originator"], m["body"]) for m in daemon.journal.folder(None, "inbox"))
    assert inbox == [("+36301234570", "again"), ("+36301234571", "again"),
                     ("+36301234571", "again")]


# --- who may deliver: the seed has no credentials for this kind ------------------------------


def test_an_accesstoken_is_required_of_every_inbound_sms_and_report(server):
    """With `accesstoken` set, a request without `token=` (or with a wrong one) is refused
    403 and stores or settles nothing: anyone on the LAN could inject SMS and reports."""
    daemon, _, base = server(accesstoken="s3cret-intake", reportconnection="HC0")
    for query in ("originator=%2B3630&msg=fake", "originator=%2B3630&msg=fake&token=nope",
                  "msgid=ref-1&status=delivered&token=s3cret-intake2"):
        status, body = call(f"{base}?{query}")
        assert (status, body) == (403, "error: wrong or missing token"), query
    assert daemon.journal.folder(None, "inbox") == []
    status, body = call(base, b"originator=%2B3630&msg=real&token=s3cret-intake")
    assert status == 200 and body.startswith("Message was accepted id: ")
    assert daemon.journal.get_message(body.rsplit(" ", 1)[1])["body"] == "real"


@pytest.mark.parametrize("keys,warned", [
    ({"baseurl": "http://0.0.0.0:0/sms"}, True),
    ({"baseurl": "http://127.0.0.1:0/sms"}, False),          # the seed's: local callers only
    ({"baseurl": "http://0.0.0.0:0/sms", "ipallow": ("10.1.0.0/16",)}, False),
    ({"baseurl": "http://0.0.0.0:0/sms", "accesstoken": "t0ken"}, False),
])
def test_an_intake_open_to_the_network_is_logged_once_at_start(make_config, run_daemon,
                                                               caplog, keys, warned):
    conn = HTTPServerConfig(name="In0", **keys)
    with caplog.at_level("WARNING", logger="appliance.provider"):
        daemon = run_daemon(make_config(connections=(conn,)))
        channel = daemon.channels.running["In0"]
        wait_for(lambda: channel.state == "listening", what="listening")
        call(f"http://127.0.0.1:{channel.port}/sms?originator=%2B3630&msg=one")
    lines = [r.getMessage() for r in caplog.records if "may deliver SMS" in r.getMessage()]
    assert lines == (["In0: anyone who reaches 0.0.0.0 may deliver SMS and delivery reports "
                      "here (no ipallow and no accesstoken); set ipallow or accesstoken"]
                     if warned else [])


def test_the_admin_page_shows_each_intake_url_with_its_token_and_an_open_one(make_config,
                                                                            run_daemon):
    """Left undone last time: an `accesstoken` was only in the config file. The admin page
    (behind the admin's login) shows each HTTP Server connection's URL as its provider must
    call it, the token included, a listener on every address named by the address the admin
    reached the box at, and says when an intake is open to anyone."""
    from test_web_dashboard import Browser
    guarded = HTTPServerConfig(name="Guarded", baseurl="http://0.0.0.0:0/sms",
                               accesstoken="s3cret intake&x")
    both = HTTPServerConfig(name="Open", baseurl="http://0.0.0.0:0/in?src=gw")
    daemon = run_daemon(make_config(connections=(guarded, both)))
    browser = Browser(daemon.port)
    browser.login()
    for name in ("Guarded", "Open"):
        wait_for(lambda: daemon.channels.running[name].state == "listening", what=name)
    ports = {name: daemon.channels.running[name].port for name in ("Guarded", "Open")}
    page = browser.open("/ui/admin")[1]
    section = page.split('id="intake-urls"', 1)[1].split("</ul>", 1)[0]
    assert (f"Guarded: <code>http://127.0.0.1:{ports['Guarded']}/sms?token=s3cret%20intake%26x"
            "</code>") in section, section
    assert f"Open: <code>http://127.0.0.1:{ports['Open']}/in?src=gw</code>" in section, section
    assert section.count("Open: anyone who reaches 0.0.0.0 may deliver SMS") == 1, section
    assert "s3cret" not in Api(daemon.port).get("/status")[1]


def test_check_config_warns_of_an_open_intake_and_still_passes(tmp_path, capsys):
    from appliance.cli import main
    path = tmp_path / "config.toml"
    path.write_text('[connections.Open]\ntype = "HTTPServer"\n'
                    'baseurl = "http://0.0.0.0:9400/sms"\n'
                    '[connections.Seed]\ntype = "HTTPServer"\n'
                    'baseurl = "http://127.0.0.1:9401"\n'
                    '[connections.Listed]\ntype = "HTTPServer"\n'
                    'baseurl = "http://0.0.0.0:9402"\nipallow = ["192.168.1.0/24"]\n')
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, out
    assert warnings[0] == (f"warning: {path}:3: connections.Open.baseurl: anyone who reaches "
                           "0.0.0.0 may deliver SMS and delivery reports here (no ipallow and "
                           "no accesstoken); set ipallow or accesstoken")
