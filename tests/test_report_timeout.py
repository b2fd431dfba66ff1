"""The report timeout policy (issue 17): a part whose delivery report never comes ends
`expired` with a reason after its connection's `report_timeout_hours`, and its callback
fires; Ozeki's getmessagebyid and the bulksms report show it. Time is a FakeClock."""

import time
import urllib.parse

import pytest

from appliance import config as cfg
from appliance.clock import FakeClock
from appliance.compose import Submission, prepare
from appliance.store import report_timeout
from appliance.store.journal import Journal
from test_api_dialects import receiver  # noqa: F401 - fixture
from conftest import Api, xml_values

HOUR = 3600


@pytest.fixture
def journal(tmp_path):
    clock = FakeClock()
    journal = Journal.open(tmp_path / "state", clock=clock)
    journal.clock = clock
    yield journal
    journal.close()


def _sent(journal, connection: str, want_report: bool = True) -> str:
    message = prepare(Submission(user="admin", recipient="+36201234567", text="hi",
                                 want_report=want_report))
    [message_id] = journal.accept([message])
    part_id = journal.query("SELECT id FROM parts WHERE message_id=?", (message_id,))[0]["id"]
    journal.claim([(part_id, connection)])
    journal.part_submitted(part_id, connection, f"ref-{message_id[:6]}")
    return message_id


def _state(journal, message_id: str) -> tuple[str, str]:
    row = journal.get_message(message_id)
    return row["state"], row["reason"]


def test_each_connection_has_its_own_timeout(journal):
    journal.report_timeouts = {"FAST": 1 * HOUR, "NOREPORTS": None}
    fast = _sent(journal, "FAST")
    default = _sent(journal, "SMPP0")
    no_reports = _sent(journal, "NOREPORTS")
    unasked = _sent(journal, "SMPP0", want_report=False)

    journal.clock.advance(HOUR - 5)
    assert journal.housekeeping()["unreported"] == 0
    journal.clock.advance(10)
    assert journal.housekeeping()["unreported"] == 1
    assert _state(journal, fast) == ("expired",
                                     "no delivery report within 1 h (report timeout)")
    assert _state(journal, default)[0] == "submitted"

    journal.clock.advance(48 * HOUR)
    assert journal.housekeeping()["unreported"] == 1
    assert _state(journal, default) == ("expired",
                                        "no delivery report within 48 h (report timeout)")
    assert _state(journal, no_reports)[0] == "submitted"      # never asked for reports
    assert _state(journal, unasked)[0] == "submitted"         # the client asked for none
    assert journal.housekeeping()["unreported"] == 0          # settled once


def test_timeouts_come_from_the_connection_config():
    conns = cfg.from_dict({"connections": {
        "M1": {"type": "GSMModem", "modemorport": "/dev/ttyUSB0", "report_timeout_hours": 6},
        "M2": {"type": "GSMModem", "modemorport": "/dev/ttyUSB1", "deliveryreport": False},
        "S1": {"type": "SMPP", "host": "10.0.0.1"}}}).connections
    assert report_timeout.timeouts_from_config(conns) == {"M1": 6 * HOUR, "M2": None,
                                                          "S1": 48 * HOUR}


def test_ozeki_and_bulksms_show_the_timeout_and_callbacks_fire(make_config, run_daemon, receiver):
    clock = FakeClock(start=time.time())
    daemon = run_daemon(make_config(), clock=clock)
    api = Api(daemon.port)
    ozeki_id = api.send("+36201234567", "x",
                        reporturl=receiver.url + "/o?st=$status&sm=$statusmessage")
    api.action("createuser", name="bulk", userpassword="bulk-pass-1",
               reporturl=receiver.url + "/b")
    status, body = api.get("/bulksms/bulksms", username="bulk", password="bulk-pass-1",
                           type="0", dlr="1", destination="+36201234568", source="ACME",
                           message="Hello")
    bulk_id = body.split("|")[2]
    for message_id in (ozeki_id, bulk_id):
        part = daemon.journal.query("SELECT id FROM parts WHERE message_id=?",
                                    (message_id,))[0]["id"]
        daemon.journal.claim([(part, "SMPP0")])
        daemon.journal.part_submitted(part, "SMPP0", "r" + message_id[:5])
    assert api.state(ozeki_id) == 13
    clock.advance(48 * HOUR + 1)
    assert daemon.journal.housekeeping()["unreported"] == 2

    assert api.state(ozeki_id) == 14
    body = api.action("getmessagebyid", msgID=ozeki_id)
    assert "no delivery report within 48 h" in body
    calls = [path for _, path, _ in receiver.wait(3)]
    ozeki = [urllib.parse.parse_qs(urllib.parse.urlsplit(c).query) for c in calls
             if c.startswith("/o")]
    assert [q["st"][0] for q in ozeki] == ["deliveredtonetwork", "deliveryfailed"]
    assert "report timeout" in ozeki[1]["sm"][0]
    bulk = [urllib.parse.parse_qs(urllib.parse.urlsplit(c).query) for c in calls
            if c.startswith("/b")]
    assert bulk[0]["status"] == ["EXPIRED"] and "report timeout" in bulk[0]["reason"][0]
    assert xml_values(api.action("getmessagebyid", msgID=bulk_id), "state") == ["14"]
