"""The HTTP Client connection (seed 000): each SMS leaves by a call to a web SMS provider's
URL, through the whole daemon, against a real HTTP server on 127.0.0.1 port 0."""

from __future__ import annotations

import re
import urllib.parse

import pytest

from appliance.provider.settings import HTTPClientConfig
from conftest import Api
from fakes.providers import WebProvider, start, wait_for  # noqa: F401 (start: a fixture)

DELIVERED, FAILED, SUBMITTED, QUEUED = 10, 11, 13, 0


@pytest.fixture
def provider():
    web = WebProvider(lambda request: (200, f"OK id={len(web.requests)}00"))
    yield web
    web.stop()


def client_config(provider_url: str, **keys) -> HTTPClientConfig:
    base = {"targeturl": f"{provider_url}/send.cgi?receiver=$recipient &sender=$originator"
                         "&msg=$messagedata&id=$messageid",
            "limittompm": 0, "reconnectdelay": 0.05, "windowsize": 4}
    return HTTPClientConfig(name="Web0", **{**base, **keys})


def report_token(daemon, name: str = "Web0") -> str:
    """The token the appliance made for the connection's reports (no reporttoken set)."""
    return daemon.control.report_tokens.token(daemon.channels.configs[name])


def test_sent_through_the_url_template_then_delivered_by_the_providers_callback(start,
                                                                               provider):
    provider.start()
    daemon, api = start(client_config(provider.url, respsuccess=r"OK id=(\d+)"))
    wait_for(lambda: daemon.channels.running["Web0"].state == "ready", what="ready")
    message_id = api.send("+36201234567", "Hello & welcome", originator="ACME")
    api.wait_state(message_id, SUBMITTED)
    request = provider.requests[0]
    assert request["method"] == "GET" and request["path"] == "/send.cgi"
    assert request["query"] == {"receiver": "+36201234567", "sender": "ACME",
                                "msg": "Hello & welcome", "id": message_id}
    part = daemon.journal.get_parts(message_id)[0]
    assert (part["connection"], part["reference"]) == ("Web0", "100")

    status, body = api.get("/connections/Web0/report", messageid="100", status="DELIVRD",
                           token=report_token(daemon))
    assert (status, body) == (200, "OK\n")
    api.wait_state(message_id, DELIVERED)


def test_a_message_waits_while_the_provider_is_down_and_leaves_when_it_returns(start,
                                                                               provider):
    provider.start(listen=False)               # the port refuses connections
    daemon, api = start(client_config(provider.url))
    channel = daemon.channels.running["Web0"]
    wait_for(lambda: channel.state == "down", what="down")
    message_id = api.send("+36201234567", "waiting")
    assert api.state(message_id) == QUEUED
    assert daemon.journal.get_parts(message_id)[0]["attempts"] == 0
    assert "unreachable" in channel.status()["last_error"]
    # probed again and still unreachable: failing, so /status is not healthy and names it
    wait_for(lambda: daemon.status()["failing_connections"] == ["Web0"], what="failing")
    assert daemon.status()["healthy"] is False

    provider.listen()
    api.wait_state(message_id, SUBMITTED)
    status = daemon.status()
    assert status["failing_connections"] == [] and status["healthy"] is True
    assert provider.requests[0]["query"]["msg"] == "waiting"
    assert daemon.journal.get_parts(message_id)[0]["reference"] == message_id


def test_respfailed_fails_the_message_with_the_providers_reason(start):
    web = WebProvider(lambda request: (200, "ERR 21: invalid destination")).start()
    try:
        daemon, api = start(client_config(web.url, respsuccess="^OK", respfailed=r"^ERR"))
        wait_for(lambda: daemon.channels.running["Web0"].state == "ready", what="ready")
        message_id = api.send("+36201234567", "bad number")
        api.wait_state(message_id, FAILED)
        part = daemon.journal.get_parts(message_id)[0]
        assert part["reason"] == "provider_refused: ERR 21: invalid destination"
        assert len(web.requests) == 1                  # refused for good: not sent again
    finally:
        web.stop()


def test_an_answer_that_does_not_match_respsuccess_is_a_failure(start):
    web = WebProvider(lambda request: (200, "maybe")).start()
    try:
        daemon, api = start(client_config(web.url, respsuccess="^OK"))
        wait_for(lambda: daemon.channels.running["Web0"].state == "ready", what="ready")
        message_id = api.send("+36201234567", "hmm")
        api.wait_state(message_id, FAILED)
        assert "does not match RESPSUCCESS: maybe" in daemon.journal.get_parts(
            message_id)[0]["reason"]
    finally:
        web.stop()


def test_a_server_error_sends_the_part_back_to_the_queue(start):
    web = WebProvider(lambda request: (503, "busy")).start()
    try:
        daemon, api = start(client_config(web.url))
        wait_for(lambda: daemon.channels.running["Web0"].state == "ready", what="ready")
        message_id = api.send("+36201234567", "later")
        part = wait_for(lambda: next((p for p in daemon.journal.get_parts(message_id)
                                      if p["reason"]), None), what="the answer")
        assert part["state"] == "queued" and part["reason"] == "http_503: busy"
        assert daemon.channels.running["Web0"].state == "ready"   # up, only busy
    finally:
        web.stop()


def test_post_with_basic_auth_sends_the_query_as_the_body(start, provider):
    provider.start()
    daemon, api = start(client_config(
        provider.url, targeturl=f"{provider.url}/api?to=$recipient&text=$messagedata",
        requestmethod="Post", httpauthorizationmethod="Basic",
        httpauthorizationuser="acct", httpauthorizationpassword="s3cret"))
    wait_for(lambda: daemon.channels.running["Web0"].state == "ready", what="ready")
    message_id = api.send("+36201234567", "árvíztűrő")
    api.wait_state(message_id, SUBMITTED)
    request = provider.requests[0]
    assert request["method"] == "POST" and request["path"] == "/api"
    assert request["body"] == {"to": "+36201234567", "text": "árvíztűrő"}
    assert request["headers"]["Authorization"] == "Basic YWNjdDpzM2NyZXQ="
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


def test_multipart_as_binary_sends_each_segment_with_its_concatenation_header(start,
                                                                              provider):
    provider.start()
    daemon, api = start(client_config(
        provider.url, cbmultipartasbin=True,
        targeturlbin=f"{provider.url}/bin?to=$recipient&udh=$udhHEX&ud=$udHEX&dcs=$dcsHEX"
                     "&pid=$pidHEX&id=$messageid"))
    wait_for(lambda: daemon.channels.running["Web0"].state == "ready", what="ready")
    text = "x" * 200                                  # two GSM 7-bit segments
    message_id = api.send("+36201234567", text)
    api.wait_state(message_id, SUBMITTED)
    calls = sorted((r["query"] for r in provider.requests), key=lambda q: q["id"])
    assert [q["id"] for q in calls] == [f"{message_id}.1", f"{message_id}.2"]
    headers = [bytes.fromhex(q["udh"]) for q in calls]
    assert [h[:3] for h in headers] == [b"\x05\x00\x03"] * 2
    assert headers[0][3] == headers[1][3] and [h[4:6] for h in headers] == [b"\x02\x01",
                                                                            b"\x02\x02"]
    assert {(q["dcs"], q["pid"]) for q in calls} == {("00", "00")}
    assert b"".join(bytes.fromhex(q["ud"]) for q in calls) == b"x" * 200   # unpacked septets


def test_without_segmenting_a_long_text_goes_once_and_one_report_settles_it(start, provider):
    provider.start()
    daemon, api = start(client_config(provider.url, cbsegment=False,
                                      respsuccess=r"OK id=(?P<id>\d+)"))
    wait_for(lambda: daemon.channels.running["Web0"].state == "ready", what="ready")
    text = "A long text that the provider splits itself. " * 5
    message_id = api.send("+36201234567", text)
    api.wait_state(message_id, SUBMITTED)
    assert len(provider.requests) == 1 and provider.requests[0]["query"]["msg"] == text
    parts = daemon.journal.get_parts(message_id)
    assert len(parts) == 2 and {p["reference"] for p in parts} == {"100"}
    api.get("/connections/Web0/report", messageid="100", status="delivered",
            token=report_token(daemon))
    api.wait_state(message_id, DELIVERED)
    assert len(provider.requests) == 1


def test_without_segmenting_a_refused_whole_text_fails_the_whole_message(start):
    """Found by a helper: the provider refused part 1 (the whole text); parts 2..n then
    left one by one, the phone got the message without its beginning, and it was
    reported submitted."""
    web = WebProvider(lambda request: (200, "ERROR: text too long")
                      if len(request["query"]["msg"]) > 160 else (200, "OK id=1")).start()
    try:
        daemon, api = start(client_config(web.url, cbsegment=False, windowsize=1,
                                          respsuccess=r"OK id=(?P<id>\d+)",
                                          respfailed="ERROR"))
        wait_for(lambda: daemon.channels.running["Web0"].state == "ready", what="ready")
        message_id = api.send("+36201234567", "Three SMS worth of text. " * 19)
        api.wait_state(message_id, FAILED)
        wait_for(lambda: all(p["state"] == "failed" for p in daemon.journal.get_parts(
            message_id)), what="every part failed")
        assert len(web.requests) == 1                 # nothing of it left alone
    finally:
        web.stop()


def test_a_text_the_encodingcharset_cannot_hold_fails_instead_of_leaving_as_question_marks(
        start, provider):
    """Found by a helper: with ENCODINGCHARSET iso-8859-2, "€ 😀" reached the provider as
    "? ?" and the message was reported submitted."""
    provider.start()
    daemon, api = start(client_config(provider.url, encodingcharset="iso-8859-2"))
    wait_for(lambda: daemon.channels.running["Web0"].state == "ready", what="ready")
    fits = api.send("+36201234567", "Árvíztűrő tükörfúrógép")
    api.wait_state(fits, SUBMITTED)
    assert provider.requests[0]["raw_query"].count("%") > 0
    refused = api.send("+36201234567", "Price: 10 € 😀")
    api.wait_state(refused, FAILED)
    assert "cannot be sent in iso-8859-2" in daemon.journal.get_parts(refused)[0]["reason"]
    assert len(provider.requests) == 1


def test_an_unanswered_submit_follows_submittimeoutaction(start, provider):
    provider.delay = 1.0
    provider.start()
    daemon, api = start(client_config(provider.url, submittimeout=0.2))
    wait_for(lambda: daemon.channels.running["Web0"].state == "ready", what="ready")
    message_id = api.send("+36201234567", "slow")
    api.wait_state(message_id, FAILED)                 # SubmitFailed, the seed's default
    assert daemon.journal.get_parts(message_id)[0]["reason"] == \
        "timeout: no answer within 0.2s"


def test_report_callback_checks_its_token_and_its_parameters(start, provider):
    provider.start()
    daemon, api = start(client_config(provider.url, reporttoken="t0k",
                                      reportidparam="ref", reportstatusparam="stat"))
    wait_for(lambda: daemon.channels.running["Web0"].state == "ready", what="ready")
    message_id = api.send("+36201234567", "token")
    api.wait_state(message_id, SUBMITTED)
    assert api.get("/connections/Web0/report", ref=message_id, stat="failed")[0] == 403
    assert api.get("/connections/Web0/report", ref=message_id, token="t0k")[0] == 400
    assert api.get("/connections/Nope/report", ref=message_id, stat="x")[0] == 404
    status, _ = api.post("/connections/Web0/report",
                         urllib.parse.urlencode({"ref": message_id, "stat": "UNDELIV",
                                                 "token": "t0k"}))
    assert status == 200
    api.wait_state(message_id, 16)                     # Ozeki "Undeliverable"


def test_created_through_the_api_with_the_seeds_keys(appliance, provider):
    daemon, api = appliance
    provider.start()
    body = api.action("createdriver", type="HTTPClient", name="Web1",
                      TARGETURL=f"{provider.url}/s?to=$recipient&m=$messagedata",
                      REQUESTMETHOD="Get", RESPSUCCESS="OK", LIMITTOMPM="0",
                      LOGDIRECTORY=r"C:\Logs", CHARSETHANDLING="Best match",
                      AUTOCONNECT="on")
    assert re.findall(r"<ignoredkey>([^<]+)", body) == ["logdirectory", "charsethandling"]
    assert "<state>running</state>" in body
    wait_for(lambda: daemon.channels.running["Web1"].state == "ready", what="ready")
    message_id = api.send("+36201234567", "via the API")
    api.wait_state(message_id, SUBMITTED)
    assert provider.requests[0]["query"] == {"to": "+36201234567", "m": "via the API"}
    bad = api.action("configdriver", name="Web1", REQUESTMETHOD="Teleport")
    assert "requestmethod: expected one of get, post, got 'Teleport'" in bad


def test_digest_auth_answers_the_providers_challenge(start):
    nonce, realm = "n0nce", "sms"

    def answer(request):
        header = request["headers"].get("Authorization", "")
        if not header.startswith("Digest "):
            return 401, "who?", {"WWW-Authenticate": f'Digest realm="{realm}", '
                                 f'nonce="{nonce}", qop="auth", algorithm=MD5'}
        fields = dict(re.findall(r'(\w+)="?([^",]*)"?', header[7:]))
        ha1 = _md5(f"acct:{realm}:s3cret")
        ha2 = _md5(f"GET:{fields['uri']}")
        wanted = _md5(f"{ha1}:{nonce}:{fields['nc']}:{fields['cnonce']}:auth:{ha2}")
        return (200, "OK") if fields["response"] == wanted else (403, "bad digest")

    web = WebProvider(answer).start()
    try:
        daemon, api = start(client_config(web.url, httpauthorizationmethod="Digest",
                                          httpauthorizationuser="acct",
                                          httpauthorizationpassword="s3cret"))
        wait_for(lambda: daemon.channels.running["Web0"].state == "ready", what="ready")
        message_id = api.send("+36201234567", "digest")
        api.wait_state(message_id, SUBMITTED)
        assert [r.get("headers", {}).get("Authorization", "")[:6] for r in web.requests] == \
            ["", "Digest"]
    finally:
        web.stop()


def _md5(text: str) -> str:
    import hashlib
    return hashlib.md5(text.encode()).hexdigest()


def test_through_a_proxy_in_http_1_0(start, provider):
    provider.start()                                  # it stands in for the proxy too
    daemon, api = start(client_config(
        provider.url, targeturl="http://sms.provider.invalid/send?to=$recipient",
        proxy=f"127.0.0.1:{provider.port}", cbusehttp10=True, useragent="OzekiNG/4.1.12"))
    wait_for(lambda: daemon.channels.running["Web0"].state == "ready", what="ready")
    message_id = api.send("+36201234567", "proxied")
    api.wait_state(message_id, SUBMITTED)
    request = provider.requests[0]
    assert request["target"] == "http://sms.provider.invalid/send?to=%2B36201234567"
    assert request["version"] == "HTTP/1.0"
    assert request["headers"]["User-Agent"] == "OzekiNG/4.1.12"


def test_no_more_requests_in_flight_than_the_window(start):
    import threading
    lock, state = threading.Lock(), {"now": 0, "most": 0}
    release = threading.Event()

    def answer(request):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        release.wait(10)
        with lock:
            state["now"] -= 1
        return 200, "OK"

    web = WebProvider(answer).start()
    try:
        daemon, api = start(client_config(web.url, windowsize=2))
        wait_for(lambda: daemon.channels.running["Web0"].state == "ready", what="ready")
        ids = [api.send("+3620123456{}".format(i), f"n{i}") for i in range(6)]
        wait_for(lambda: len(web.requests) == 2, what="two requests")
        assert daemon.channels.running["Web0"].free_slots() == 0
        release.set()
        for message_id in ids:
            api.wait_state(message_id, SUBMITTED)
        assert state["most"] == 2 and len(web.requests) == 6
    finally:
        release.set()
        web.stop()


def test_stopping_a_connection_stuck_on_a_slow_provider_does_not_hold_the_api(start):
    """Found by a helper: stopdriver/configdriver on an HTTP Client whose provider was slow
    waited for each worker in turn (10 s each) on the HTTP front's only thread, and every
    other client of the API port, an alert included, waited the minute with it."""
    import threading
    gate = threading.Event()
    slow = WebProvider(lambda request: (gate.wait(30), (200, "OK id=1"))[1])
    slow.start()
    try:
        daemon, api = start(client_config(slow.url))
        wait_for(lambda: daemon.channels.running["Web0"].state == "ready", what="ready")
        for n in range(3):
            api.send(f"+3620123456{n}", f"slow {n}")
        wait_for(lambda: len(slow.requests) == 3, what="three requests in flight")
        answer = {}
        stopping = threading.Thread(
            target=lambda: answer.update(body=api.action("stopdriver", name="Web0")))
        stopping.start()
        wait_for(lambda: "Web0" not in daemon.channels.running, what="the stop under way")
        status, _ = api.get("/status")
        assert status == 200 and stopping.is_alive()      # answered while the stop waits
        gate.set()
        stopping.join(30)
        assert "stopped" in answer["body"]
    finally:
        gate.set()
        slow.stop()


def test_an_answer_in_a_charset_python_does_not_know_is_still_a_send(start):
    """Found by a helper: "200 OK id=P1" with `charset=x-unknown` raised LookupError after
    the provider took the SMS; the part was retried and sent again (4 copies in 50 s)."""
    odd = WebProvider(lambda request: (200, "OK id=77", {"Content-Type":
                                                        "text/plain; charset=x-unknown"}))
    odd.start()
    try:
        daemon, api = start(client_config(odd.url, respsuccess=r"OK id=(\d+)"))
        wait_for(lambda: daemon.channels.running["Web0"].state == "ready", what="ready")
        message_id = api.send("+36201234567", "once only")
        api.wait_state(message_id, SUBMITTED)
        assert daemon.journal.get_parts(message_id)[0]["reference"] == "77"
        assert len(odd.requests) == 1
    finally:
        odd.stop()


def test_nourlencoding_keeps_ascii_as_it_is_and_encodes_only_what_a_url_cannot_carry(
        start, provider):
    """Found by a helper: with NOURLENCODING a text with a space was an invalid URL
    (http.client.InvalidURL), taken for the provider being down and retried for ever, and
    the warning logged the whole query (number and text)."""
    provider.start()
    daemon, api = start(client_config(provider.url, nourlencoding=True,
                                      targeturl=f"{provider.url}/s?to=$recipient&t=$messagedata"))
    wait_for(lambda: daemon.channels.running["Web0"].state == "ready", what="ready")
    message_id = api.send("+36201234567", "50% off & more+ é")
    api.wait_state(message_id, SUBMITTED)
    assert provider.requests[0]["raw_query"] == "to=+36201234567&t=50%%20off%20&%20more+%20%C3%A9"


def test_an_unknown_encodingcharset_is_refused_not_retried_for_ever(start, provider):
    """Found by a helper: ENCODINGCHARSET=bogus-cs passed check-config and configdriver, then
    every message through the connection raised LookupError at every retry."""
    from appliance.errors import ConfigError
    with pytest.raises(ConfigError, match="encodingcharset"):
        client_config(provider.url, encodingcharset="bogus-cs").check("connections.Web0")
    provider.start()
    daemon, api = start(client_config(provider.url))
    body = api.action("configdriver", name="Web0", ENCODINGCHARSET="bogus-cs")
    assert "encodingcharset" in body.lower() and "unknown character set" in body
    client_config(provider.url, encodingcharset="default").check("connections.Web0")


def test_a_provider_that_drops_the_connection_after_the_request_is_not_sent_it_again(start):
    """Found by a helper: a provider closing the connection after reading the request (it
    may have taken the SMS) put the connection "down" and the part was resent: 3 copies in
    25 s. Like a timeout, SUBMITTIMEOUTACTION decides (SubmitFailed by default)."""
    import socket
    import threading
    import time
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    requests: list[bytes] = []

    def drop():
        while True:
            try:
                peer, _ = server.accept()
            except OSError:
                return
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = peer.recv(4096)
                if not chunk:
                    break
                data += chunk
            if data.startswith(b"GET"):
                requests.append(data)
            peer.close()
    threading.Thread(target=drop, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        daemon, api = start(client_config(url))
        wait_for(lambda: daemon.channels.running["Web0"].state == "ready", what="ready")
        message_id = api.send("+36201234567", "may have been taken")
        api.wait_state(message_id, FAILED, timeout=15)
        time.sleep(1.0)
        assert len(requests) == 1
        assert "lost before the answer" in daemon.journal.get_message(message_id)["reason"]
    finally:
        server.close()


def test_a_post_answered_with_a_redirect_fails_naming_it_instead_of_a_bodiless_get(start):
    """Found by a helper: REQUESTMETHOD=Post and a provider answering 301 (an http -> https
    move): urllib repeated it as a GET without the body, the provider got no parameters,
    and the message was marked submitted."""
    moved = WebProvider(lambda request: (301, "moved", {"Location": "/moved/send"})
                        if request["path"] != "/moved/send" else (200, "OK"))
    moved.start()
    try:
        daemon, api = start(client_config(moved.url, requestmethod="Post"))
        wait_for(lambda: daemon.channels.running["Web0"].state == "ready", what="ready")
        message_id = api.send("+36201234567", "posted")
        api.wait_state(message_id, FAILED)
        assert "301" in daemon.journal.get_message(message_id)["reason"]
        assert [r["method"] for r in moved.requests] == ["POST"]
    finally:
        moved.stop()


def test_without_reporttoken_reports_need_the_token_the_appliance_made(
        make_config, run_daemon, provider, caplog):
    """Found by a helper: without `reporttoken` the report URL was open, and anyone on the
    LAN could settle messages with forged reports. The appliance makes a token (kept in the
    state dir, the same after a restart), the admin reads the whole URL on the dashboard, and
    a report without it is refused with a clear 403 and one log line."""
    from test_web_dashboard import Browser
    provider.start()
    config = make_config(connections=(client_config(provider.url, respsuccess=r"OK id=(\d+)"),))
    daemon = run_daemon(config)
    api = Api(daemon.port)
    wait_for(lambda: daemon.channels.running["Web0"].state == "ready", what="ready")
    message_id = api.send("+36201234567", "forge me")
    api.wait_state(message_id, SUBMITTED)
    for token in ({}, {"token": ""}, {"token": "guess"}):
        status, body = api.get("/connections/Web0/report", messageid="100", status="DELIVRD",
                               **token)
        assert status == 403 and "token" in body, body
    assert api.state(message_id) == SUBMITTED                     # the forgery settled nothing
    assert len([r for r in caplog.records if "refused" in r.getMessage()
                and "Web0" in r.getMessage()]) == 1
    browser = Browser(daemon.port)
    browser.login()
    url = re.search(r"http://127\.0\.0\.1:\d+/connections/Web0/report\?token=([\w-]{20,})",
                    browser.open("/ui/admin")[1])
    assert url, "the admin page shows the report URL with its token"
    daemon.stop()
    daemon = run_daemon(config)                                   # kept in the state dir
    api = Api(daemon.port)
    status, body = api.get("/connections/Web0/report", messageid="100", status="DELIVRD",
                           token=url.group(1))
    assert (status, body) == (200, "OK\n")
    api.wait_state(message_id, DELIVERED)


def test_an_upgraded_box_keeps_taking_its_providers_token_less_reports_until_the_token_is_used(
        make_config, run_daemon, provider, caplog):
    """Found by a helper: a box upgraded to the release with report tokens refused every
    report its provider sent to the old token-less URL (403), so a fleet upgrade lost all
    delivery reports until someone copied fifty URLs. A connection that was in use before
    keeps taking token-less reports (a warning at each start) until its provider first calls
    with the token; a connection added afterwards needs the token from the start."""
    from appliance.provider.report_token import SINCE, TABLE
    from appliance.store.documents import Documents
    provider.start()
    config = make_config(connections=(client_config(provider.url, respsuccess=r"OK id=(\d+)"),))
    daemon = run_daemon(config)
    api = Api(daemon.port)
    wait_for(lambda: daemon.channels.running["Web0"].state == "ready", what="ready")
    first = api.send("+36201234567", "sent before the upgrade")
    api.wait_state(first, SUBMITTED)
    daemon.stop()
    documents = Documents(config.state_dir)          # as the release before tokens left it
    documents.remove(SINCE, "first")
    documents.remove(TABLE, "Web0")
    documents.close()

    daemon = run_daemon(config)                      # the upgrade
    api = Api(daemon.port)
    assert any("without a token are still taken" in r.getMessage() and "Web0" in r.getMessage()
               for r in caplog.records)
    status, body = api.get("/connections/Web0/report", messageid="100", status="DELIVRD")
    assert (status, body) == (200, "OK\n")
    api.wait_state(first, DELIVERED)
    assert api.get("/connections/Web0/report", messageid="100", status="DELIVRD",
                   token="guess")[0] == 403               # a wrong token is never taken
    second = api.send("+36201234567", "the provider now has the URL with the token")
    api.wait_state(second, SUBMITTED)
    assert api.get("/connections/Web0/report", messageid="200", status="DELIVRD",
                   token=report_token(daemon))[0] == 200
    api.wait_state(second, DELIVERED)
    assert api.get("/connections/Web0/report", messageid="200", status="DELIVRD")[0] == 403
    daemon.stop()

    added = HTTPClientConfig(name="Web1", targeturl=f"{provider.url}/send.cgi?to=$recipient")
    daemon = run_daemon(make_config(connections=(config.connections[0], added)))
    api = Api(daemon.port)
    assert api.get("/connections/Web0/report", messageid="200", status="DELIVRD")[0] == 403
    assert api.get("/connections/Web1/report", messageid="300", status="DELIVRD")[0] == 403


def test_a_message_pinned_to_a_slow_starting_connection_is_not_routed_away_at_start(
        make_config, run_daemon, monkeypatch):
    """The dispatcher started before the channels: while a later connection was still
    starting, a part pinned to it (`serviceprovider`) looked like one for a connection
    taken out of the config, and left through the first one that was up."""
    import dataclasses
    import time
    from appliance import daemon as daemon_module
    first, pinned = WebProvider(), WebProvider()
    first.start()
    pinned.start()
    try:
        web1 = dataclasses.replace(client_config(pinned.url), name="Web1", autoconnect=False)
        config = make_config(connections=(client_config(first.url), web1))
        daemon = run_daemon(config)
        api = Api(daemon.port)
        message_id = api.send("+36201234567", "for Web1", serviceprovider="Web1")
        daemon.stop()

        real_build = daemon_module.build_channel

        def slow_for_web1(conn, *args, **kwargs):
            if conn.name == "Web1":
                time.sleep(1.0)                  # a modem port slow to open, say
            return real_build(conn, *args, **kwargs)
        monkeypatch.setattr(daemon_module, "build_channel", slow_for_web1)
        config = make_config(connections=(client_config(first.url),
                                          dataclasses.replace(web1, autoconnect=True)))
        daemon = run_daemon(config)
        api = Api(daemon.port)
        api.wait_state(message_id, SUBMITTED)
        assert daemon.journal.get_parts(message_id)[0]["connection"] == "Web1"
        assert len(pinned.requests) == 1 and first.requests == []
    finally:
        first.stop()
        pinned.stop()
