"""Request parameters are parsed once per request (web/params.py keeps them on the environ),
with exactly bottle's pairs and order, and a request without a body never reads one; GET and
POST still give the same answers (in process, against the daemon's WSGI app)."""

from __future__ import annotations

import io
import itertools
import re
import urllib.parse

import bottle
import pytest

from appliance.web import params
from conftest import ADMIN_PASSWORD

PIECES = ["a", "B", "=", "&", "%", "%2", "%20", "%zz", "+", "%C3%A9", "_charset_", "%ff",
          "==", "&&", "x=1"]


def test_query_pairs_are_bottles_own_pairs_in_bottles_order():
    for size in (1, 2, 3):
        for combo in itertools.product(PIECES, repeat=size):
            query = "".join(combo)
            expected = list(bottle.BaseRequest({"QUERY_STRING": query}).query.allitems())
            assert params._query_items(query) == expected, query


def test_form_bodies_give_bottles_own_pairs_without_its_forms_dict():
    """A urlencoded body is parsed as the query is (params._form_items), not through
    bottle's FormsDict, which held a large batch's fields a second time: the same pairs, in
    the same order, for any content type that is not multipart (bottle's own test)."""
    for content_type in ("application/x-www-form-urlencoded", "", "text/plain; charset=x",
                         " Application/X-WWW-Form-Urlencoded"):
        for size in (1, 2, 3):
            for combo in itertools.product(PIECES + ["\xe9", "caf\xc3\xa9"], repeat=size):
                body = "".join(combo).encode("latin-1")
                def request():
                    environ = {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)),
                               "wsgi.input": io.BytesIO(body), "CONTENT_TYPE": content_type}
                    return bottle.BaseRequest(environ)
                expected = list(request().forms.allitems())
                assert params._form_items(request()) == expected, (content_type, body)


def test_a_form_body_past_memfile_max_is_the_requests_error(monkeypatch):
    monkeypatch.setattr(bottle.BaseRequest, "MEMFILE_MAX", 10)
    with pytest.raises(params.ParamError, match="Request entity too large"):
        params._form_items(_request("", b"a=1&b=22222222", "POST"))


def test_percent_decoding_is_unquotes_own_for_every_native_string():
    """_percent_decoded decodes escapes as bytes; it must answer what
    unquote(encoding="latin1") answers, non-ASCII and broken escapes included (and a string
    that is no native string, as a test's URL can hold)."""
    pieces = ["%", "%4", "%41", "%e9", "%E9", "%zz", "\xe9", "\xff", "\u20ac", "a", "%%", "%\xe9"]
    for size in (1, 2, 3):
        for combo in itertools.product(pieces, repeat=size):
            text = "".join(combo)
            assert params._percent_decoded(text) == urllib.parse.unquote(
                text, encoding="latin1"), text


def _request(query: str, body: bytes = b"", method: str = "GET") -> bottle.BaseRequest:
    environ = {"REQUEST_METHOD": method, "QUERY_STRING": query,
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    if body:
        environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
    return bottle.BaseRequest(environ)


def test_peek_then_read_parses_the_query_once_and_answers_copies(monkeypatch):
    calls = []
    original = params._query_items
    monkeypatch.setattr(params, "_query_items", lambda q: calls.append(q) or original(q))
    request = _request("Action=sendmessage&recepient=%2B3620&MessageData=caf%C3%A9")
    assert params.peek_params(request)["action"] == "sendmessage"
    first = params.read_params(request)
    first["messagedata"] = "changed by a caller"
    second = params.read_params(request)
    assert calls == ["Action=sendmessage&recepient=%2B3620&MessageData=caf%C3%A9"]
    assert second == {"action": "sendmessage", "recipient": "+3620", "messagedata": "café"}


class _NoBody(io.BytesIO):
    def read(self, *args):
        raise AssertionError("a request without a body had its body read")


def test_a_request_without_a_body_never_reads_one_and_post_fields_win():
    request = _request("text=a&x=1")
    request.environ["wsgi.input"] = _NoBody()
    assert params.read_params(request) == {"text": "a", "x": "1"}
    posted = _request("text=from+query&y=2", b"text=from+body", "POST")
    assert params.read_params(posted) == {"text": "from body", "y": "2"}


def test_a_bad_charset_is_refused_on_every_read():
    request = _request("_charset_=no-such-codec&text=a")
    for _ in range(2):
        try:
            params.read_params(request)
        except params.ParamError as exc:
            assert "no-such-codec" in str(exc)
        else:
            raise AssertionError("a bad _charset_ was accepted")


def test_a_charset_name_with_spaces_is_the_charset_it_becomes():
    """read_params strips names, so " _charset_ " is the `_charset_` parameter: it must also
    be the charset the values are read in (it only became a parameter of that name)."""
    request = _request("%20_charset_%20=iso-8859-2&text=%B9")
    assert params.read_params(request)["text"] == "š"
    assert params.read_params(_request("_CHARSET_=iso-8859-2&text=%B9"))["text"] == "š"


def _without_ids(body: str) -> str:
    return re.sub(r"<messageid>[^<]+</messageid>", "<messageid/>", body)


def test_get_and_post_sendmessage_give_the_same_answer(appliance):
    _, api = appliance
    fields = {"action": "sendmessage", "username": "admin", "password": ADMIN_PASSWORD,
              "recipient": "+36201234567,+36207654321", "messagetype": "SMS:TEXT",
              "messagedata": "Same <answer> & 'quotes' € ü"}
    query = urllib.parse.urlencode(fields)
    status_get, _, body_get = api.call("GET", f"http://127.0.0.1/api?{query}")
    status_post, _, body_post = api.call(
        "POST", "http://127.0.0.1/api", query.encode(),
        {"Content-Type": "application/x-www-form-urlencoded"})
    assert status_get == status_post == 200
    assert _without_ids(body_get.decode()) == _without_ids(body_post.decode())
    assert body_get.decode().count("<statuscode>0</statuscode>") == 2
    assert "Same &lt;answer&gt; &amp; 'quotes' € ü" in body_get.decode()


BROKEN_MULTIPART = {"Content-Type": "multipart/form-data; boundary=zzz"}


def test_a_body_that_cannot_be_read_is_answered_in_each_dialects_own_format(appliance):
    """Found by helpers: a multipart body cut short got bottle's plain-text 400
    ("MultipartError: ...") in every dialect, which their clients cannot read."""
    _, api = appliance
    broken = b"--zzz\r\nbroken"
    status, _, body = api.call("POST", f"/api?action=getcredits&username=admin&password="
                               f"{ADMIN_PASSWORD}", broken, BROKEN_MULTIPART)
    assert status == 200 and "<errorcode>3</errorcode>" in body.decode(), body
    assert "body cannot be read" in body.decode()
    status, _, body = api.call("POST", "/?command=SendSms", broken, BROKEN_MULTIPART)
    assert status == 200 and "<Code>300</Code>" in body.decode(), body
    status, _, body = api.call("POST", f"/bulksms/bulksms?username=admin&password="
                               f"{ADMIN_PASSWORD}&type=0&dlr=0&destination=36201515151",
                               broken, BROKEN_MULTIPART)
    assert status == 200 and body.decode().startswith("1702|36201515151|"), body


def test_a_bad_charset_is_answered_in_the_responseformat_asked_for(appliance):
    _, api = appliance
    status, headers, body = api.call(
        "GET", f"/api?action=sendmessage&username=admin&password={ADMIN_PASSWORD}"
        "&recipient=%2B36201234567&messagedata=x&_charset_=bogus&responseformat=html")
    assert headers["content-type"].startswith("text/html"), body
    assert b"Error code: 3" in body


def test_a_head_request_sends_nothing(appliance):
    """Found by a helper: bottle answers HEAD with the GET handler, so an uptime monitor's
    probe of a configured send URL sent and charged a real SMS each time."""
    daemon, api = appliance
    send = ("recipient=%2B36201234567&messagedata=probe&username=admin&password="
            + ADMIN_PASSWORD)
    for url in (f"/api?action=sendmessage&{send}",
                f"/bulksms/bulksms?type=0&dlr=0&destination=36201919191&message=x&username="
                f"admin&password={ADMIN_PASSWORD}",
                f"/?command=SendSms&Recipient=%2B36201234567&Message=x&username=admin&"
                f"password={ADMIN_PASSWORD}"):
        status, headers, _ = api.call("HEAD", url)
        assert status == 405 and headers["allow"] == "GET, POST", url
    assert daemon.journal.query("SELECT count(*) FROM messages")[0][0] == 0
    assert api.call("HEAD", "/status")[0] == 200
    assert api.call("HEAD", "/")[0] in (200, 302, 303)      # the dashboard, as with GET
