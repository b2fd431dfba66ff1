"""One message, one sent time and one received time in every Ozeki answer: receivemessage
(`yyyy-MM-dd HH:mm:ss`), getmessagebyid (`yyyy.MM.dd. HH:mm:ss`) and the `$keyword`
callbacks (http-api.md 2.6, 3, 4.1). Through the daemon's WSGI app and a LAN web server."""

from __future__ import annotations

import re
import urllib.parse

import pytest

from appliance.model import InboundFragment, ReportStatus
from appliance.timefmt import ozeki_time
from test_api_dialects import Receiver, _play_modem


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _query(call) -> dict:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(call[1]).query,
                                       keep_blank_values=True))


def _values(body: str, tag: str) -> list[str]:
    """Every `<tag>` value, "" for an empty `<tag />`."""
    return [m.group(1) or "" for m in re.finditer(rf"<{tag}(?:>([^<]*)</{tag}>| />)", body)]


def _by_id(api, message_id: str) -> tuple[str, str]:
    body = api.action("getmessagebyid", msgID=message_id)
    return _values(body, "senttime")[0], _values(body, "receivedtime")[0]


def _in_folder(api, folder: str) -> tuple[str, str]:
    body = api.action("receivemessage", folder=folder)
    return _values(body, "senttime")[0], _values(body, "receivedtime")[0]


def test_an_inbound_sms_without_an_scts_was_sent_when_it_arrived_in_every_answer(
        appliance, receiver):
    """An SMPP deliver_sm (or an HTTP Server post without senttime) carries no SCTS: the
    callback's $submitdate said the arrival time, receivemessage and getmessagebyid an
    empty senttime (Ozeki clients strptime it)."""
    daemon, api = appliance
    daemon.accounts.update("admin", inbound_url=receiver.url + "/in?sent=$submitdate")
    daemon.journal.inbound(InboundFragment(connection="SMPP0", sender="+36301234567",
                                           recipient="+36209999999", encoding="gsm7",
                                           text="no scts"))
    [message] = daemon.journal.folder("admin", "inbox")
    arrived = message["created"]
    assert _in_folder(api, "inbox") == (ozeki_time(arrived), ozeki_time(arrived))
    assert _by_id(api, message["id"]) == (ozeki_time(arrived, dotted=True),
                                          ozeki_time(arrived, dotted=True))
    assert _query(receiver.wait(1)[0])["sent"] == ozeki_time(arrived)


def test_a_queued_message_was_sent_when_accepted_in_every_answer(appliance):
    """Not yet submitted: receivemessage's outbox and the callbacks gave the time it was
    accepted, getmessagebyid an empty senttime."""
    daemon, api = appliance
    message_id = api.send("+36201234567", "waits")          # no connection: it waits
    created = daemon.journal.get_message(message_id)["created"]
    assert _in_folder(api, "outbox") == (ozeki_time(created), "")
    assert _by_id(api, message_id) == (ozeki_time(created, dotted=True), "")


def test_a_failed_message_was_never_received_in_any_answer(appliance, receiver):
    """receivedtime of a sent SMS is its delivery to the handset: for one the network gave
    up on, receivemessage and getmessagebyid said the failure's time, while the report's
    $deliveredtohandsetdate was rightly empty."""
    daemon, api = appliance
    message_id = api.send("+36201234567", "lost", reporturl=receiver.url +
                          "/r?s=$status&sent=$submitdate&handset=$deliveredtohandsetdate")
    _play_modem(daemon, message_id, ReportStatus.FAILED, reference="5")
    m = daemon.journal.get_message(message_id)
    assert m["state"] == "undelivered" and m["done_at"]
    report = _query(receiver.wait(2)[-1])
    assert report["s"] == "deliveryfailed" and report["handset"] == ""
    assert _in_folder(api, "notsent") == (report["sent"], "")
    assert _by_id(api, message_id) == (ozeki_time(m["submitted_at"], dotted=True), "")


def test_a_delivered_message_has_the_same_times_in_every_answer(appliance, receiver):
    daemon, api = appliance
    message_id = api.send("+36201234567", "there", reporturl=receiver.url +
                          "/r?s=$status&sent=$submitdate&handset=$deliveredtohandsetdate")
    _play_modem(daemon, message_id, ReportStatus.DELIVERED, reference="6")
    m = daemon.journal.get_message(message_id)
    report = _query(receiver.wait(2)[-1])
    assert report["s"] == "deliveredtohandset"
    assert report["sent"] == ozeki_time(m["submitted_at"])
    assert report["handset"] == ozeki_time(m["done_at"])
    assert _in_folder(api, "sent") == (report["sent"], report["handset"])
    assert _by_id(api, message_id) == (ozeki_time(m["submitted_at"], dotted=True),
                                       ozeki_time(m["done_at"], dotted=True))
