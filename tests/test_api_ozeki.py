"""The Ozeki NG `action=` API through a real socket: every action, its options, its errors.

No connection is configured, so accepted messages wait in the queue (outbox) and nothing
can reach a modem; the tests read states and folders instead.
"""

from __future__ import annotations

import re
import time
import urllib.parse

import pytest

from appliance import config as cfg
from appliance.model import InboundFragment
from conftest import ADMIN_PASSWORD, Api, xml_values
from wsgi_client import WsgiApi


def error_code(body: str) -> int:
    assert "<action>error</action>" in body, body
    return int(xml_values(body, "errorcode")[0])


def make_user(api: Api, name: str = "john", password: str = "john-pass-1", **keys) -> Api:
    body = api.action("createuser", name=name, userpassword=password, **keys)
    assert "<action>createuser</action>" in body, body
    return api.as_user(name, password)


# --- sendmessage --------------------------------------------------------------------------


def test_send_single_and_comma_list(appliance):
    daemon, api = appliance
    body = api.action("sendmessage", recipient="+36201234567,06201112222", messagedata="Hi")
    assert xml_values(body, "statuscode") == ["0", "0"]
    assert xml_values(body, "recipient") == ["+36201234567", "06201112222"]
    ids = xml_values(body, "messageid")
    assert all(re.fullmatch(r"[0-9a-f-]{36}", i) for i in ids)
    assert [api.state(i) for i in ids] == [0, 0]          # queued: no connection
    assert daemon.journal.get_message(ids[0])["body"] == "Hi"


@pytest.mark.parametrize("messagetype,data", [
    ("SMS:TEXT", "plain"),
    ("SMS:TEXT:GSM7BIT:CLASS0", "flash"),
    ("SMS:TEXT:GSM7BIT:CLASS1", "class1"),
    ("SMS:TEXT:GSM7BIT:CLASS2", "class2"),
    ("SMS:TEXT:GSM7BIT:CLASS3", "class3"),
    ("SMS:TEXT:UCS2", "Ünïcödé ✓"),
    ("SMS:BINARY:XML", "<sms><pid>00</pid><dcs>F5</dcs><udh>06050415811581</udh>"
                       "<ud>48656C6C6F</ud></sms>"),
    ("SMS:WAPPUSH", '<si><indication href="http://example.com/a" action="signal-high">'
                    "Offer</indication></si>"),
    ("SMS:WAPPUSH:SL", '<sl href="http://example.com/b" action="signal-high"/>'),
])
def test_every_minimum_message_type_is_accepted(appliance, messagetype, data):
    daemon, api = appliance
    body = api.action("sendmessage", recipient="+36201234567", messagetype=messagetype,
                      messagedata=data)
    assert xml_values(body, "statuscode") == ["0"], body
    message = daemon.journal.get_message(xml_values(body, "messageid")[0])
    assert message["messagetype"] == messagetype
    if messagetype.startswith("SMS:TEXT:GSM7BIT:CLASS"):
        assert message["msg_class"] == int(messagetype[-1])
    if "WAPPUSH" in messagetype or "BINARY" in messagetype:
        assert message["encoding"] == "8bit"


@pytest.mark.parametrize("messagetype,data,code", [
    ("SMS:VCARD", "BEGIN:VCARD", 4),
    ("SMS:BINARY:XML", "<sms><ud>zz</ud></sms>", 4),
    ("SMS:WAPPUSH", "<si><indication>no href</indication></si>", 4),
    ("SMS:WAPPUSH:SL", '<si><indication href="http://a.b">x</indication></si>', 4),
    ("SMS:TEXT", "", 2),
    ("SMS:TEXT", "x" * 4000, 3),
])
def test_refused_types_and_payloads_carry_a_statuscode(appliance, messagetype, data, code):
    _, api = appliance
    body = api.action("sendmessage", recipient="+36201234567", messagetype=messagetype,
                      messagedata=data)
    assert xml_values(body, "statuscode") == [str(code)], body
    assert xml_values(body, "statusmessage")[0]
    assert xml_values(body, "messageid") == []


def test_bad_recipient_and_originator(appliance):
    _, api = appliance
    body = api.action("sendmessage", recipient="abc,+36201234567", messagedata="x")
    assert xml_values(body, "statuscode") == ["1", "0"]
    body = api.action("sendmessage", recipient="+36201234567", messagedata="x",
                      originator="Far-too-long-sender-name")
    assert xml_values(body, "statuscode") == ["7"]


def test_parameter_names_are_case_insensitive_and_recepient_is_accepted(appliance):
    _, api = appliance
    status, body = api.get("/api", Action="sendmessage", UserName="admin",
                           Password=ADMIN_PASSWORD, recepient="+36201234567",
                           MessageType="SMS:TEXT", MessageData="Hello")
    assert status == 200 and xml_values(body, "statuscode") == ["0"], body


def test_charset_parameter_decodes_values(appliance):
    daemon, api = appliance
    query = ("action=sendmessage&username=admin&password=" + ADMIN_PASSWORD
             + "&recipient=%2B36201234567&_charset_=iso-8859-2&messagedata=%F5r")  # "őr"
    status, body = api._open(urllib.request.Request(f"{api.base}/api?{query}"))
    message_id = xml_values(body, "messageid")[0]
    assert daemon.journal.get_message(message_id)["body"] == "őr"


def test_maxresponse_caps_reports_but_sends_all(appliance):
    daemon, api = appliance
    body = api.action("sendmessage", recipient="+3620111111,+3620222222,+3620333333",
                      messagedata="x", maxresponse="1")
    assert len(xml_values(body, "statuscode")) == 1
    assert len(daemon.journal.folder("admin", "outbox", 10)) == 3


def test_sendondate_schedules_and_vp_sets_validity(appliance):
    daemon, api = appliance
    later = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() + 3600))
    vp = time.strftime("%Y.%m.%d. %H:%M:%S", time.localtime(time.time() + 7200))
    message_id = api.send("+36201234567", "later", sendondate=later, vp=vp)
    assert api.state(message_id) == 17                      # Scheduled
    stored = daemon.journal.get_message(message_id)
    assert abs(stored["send_at"] - (time.time() + 3600)) < 5
    assert abs(stored["valid_until"] - (time.time() + 7200)) < 5
    assert error_code(api.action("sendmessage", recipient="+36201234567", messagedata="x",
                                 vp="2001.01.01. 00:00:00")) == 3
    assert error_code(api.action("sendmessage", recipient="+36201234567", messagedata="x",
                                 sendondate="tomorrow")) == 3


def test_serviceprovider_only_with_allowrouteoverride(make_config, run_daemon):
    modem = cfg.GSMModemConfig(name="GSMModem1", modemorport="/dev/null", autoconnect=False)
    daemon = run_daemon(make_config(connections=(modem,)))     # known, not running: waits
    api = WsgiApi(daemon.app)
    john = make_user(api)
    mary = make_user(api, "mary", "mary-pass-1", allowrouteoverride="on")
    plain = john.send("+36201234567", "x", serviceprovider="GSMModem1")
    routed = mary.send("+36201234567", "x", serviceprovider="GSMModem1")
    assert daemon.journal.get_message(plain)["serviceprovider"] == ""
    assert daemon.journal.get_message(routed)["serviceprovider"] == "GSMModem1"
    # a name no connection has would wait until its validity ends: refused (a typo)
    body = mary.action("sendmessage", recipient="+36201234567", messagedata="x",
                       serviceprovider="GSMModem9")
    assert error_code(body) == 3 and "no connection or route named 'GSMModem9'" in body
    assert john.send("+36201234567", "x", serviceprovider="GSMModem9")   # not his to choose


def test_smpp_overrides_are_kept(appliance):
    daemon, api = appliance
    message_id = api.send("+36201234567", "x", source_addr_ton="5", esm_class="64")
    assert '"source_addr_ton":5' in daemon.journal.get_message(message_id)["extra"]
    assert error_code(api.action("sendmessage", recipient="+36201234567", messagedata="x",
                                 data_coding="999")) == 3



@pytest.mark.parametrize("value", ["\u00b2", "9" * 5000, "0x08", "-1", "256", "abc", "\u0668"])
def test_an_smpp_parameter_that_is_no_decimal_number_is_error_3(appliance, value):
    """Found by a helper: '²' (str.isdigit() says yes, int() says no) and 5000 digits (past
    int()'s limit) were an HTTP 500; in a batch, only the message that carries it is refused."""
    daemon, api = appliance
    assert error_code(api.action("sendmessage", recipient="+36201234567", messagedata="x",
                                 data_coding=value)) == 3
    body = api.action("sendmessage", messagecount="2", recipient0="+36201234567",
                      messagedata0="ok", recipient1="+36201234568", messagedata1="bad",
                      esm_class1=value)
    assert [xml_values(body, f"statuscode{i}")[0] for i in range(2)] == ["0", "9"]
    assert "esm_class must be a number 0..255" in xml_values(body, "statusmessage1")[0]
    assert [m["body"] for m in daemon.journal.folder(None, "outbox", 10)] == ["ok"]
    message_id = api.send("+36201234567", "x", data_coding="008")
    assert '"data_coding":8' in daemon.journal.get_message(message_id)["extra"]

def test_html_response_with_continueurl_template(appliance):
    _, api = appliance
    status, body = api.get("/api", action="sendmessage", username="admin",
                           password=ADMIN_PASSWORD, recipient="+4412345678,06203105366",
                           messagedata="<b>hi</b>", responseformat="html",
                           continueurl="http://lan.example/done?id=$messageid&m='x'")
    assert status == 200
    assert body.startswith("<HTML><HEAD><TITLE>SMS</TITLE>")
    assert body.count("Status code: 0<br>") == 2
    assert "Recipient: +4412345678<br>" in body
    link = re.search(r"<a href='([^']*)'>Click here to continue</a>", body).group(1)
    assert link.startswith("http://lan.example/done?id=") and "'" not in link
    assert "$messageid" not in link


def test_urlencoded_response(appliance):
    _, api = appliance
    body = api.action("sendmessage", recipient="+36201234567,+36201234568", messagedata="x",
                      responseformat="urlencoded")
    fields = urllib.parse.parse_qs(body)
    assert fields["statuscode0"] == ["0"] and fields["statuscode1"] == ["0"]
    assert fields["recipient1"] == ["+36201234568"]
    single = urllib.parse.parse_qs(api.action("sendmessage", recipient="+36201234567",
                                              messagedata="x", responseformat="urlencoded"))
    assert single["statusmessage"] == ["Message accepted for delivery"]


def test_redirecturl_redirects_with_keywords(appliance_socket):
    _, api = appliance_socket
    query = urllib.parse.urlencode({
        "action": "sendmessage", "username": "admin", "password": ADMIN_PASSWORD,
        "recipient": "+36201234567", "messagedata": "x",
        "redirecturl": "http://lan.example/after?code=$statuscode&id=$messageid"})
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", int(api.base.rsplit(":", 1)[1]), timeout=10)
    conn.request("GET", "/api?" + query)
    answer = conn.getresponse()
    location = answer.getheader("Location")
    answer.read()
    conn.close()
    assert answer.status == 302
    assert location.startswith("http://lan.example/after?code=0&id=")


def test_batch_of_twenty_thousand_in_one_post_and_one_accept(appliance):
    daemon, api = appliance
    calls = []
    real_accept = daemon.journal.accept

    def counting_accept(messages):
        calls.append(len(messages))
        return real_accept(messages)

    daemon.journal.accept = counting_accept
    fields = {"action": "sendmessage", "username": "admin", "password": ADMIN_PASSWORD,
              "messagecount": "20000"}
    for i in range(20000):
        fields[f"recipient{i}"] = f"+3620{i:07d}"
        fields[f"messagedata{i}"] = f"m{i}"
    status, body = api.post("/api", urllib.parse.urlencode(fields))
    assert status == 200
    assert calls == [20000]
    assert body.count("<statuscode19999>0</statuscode19999>") == 1
    assert len(daemon.journal.folder("admin", "outbox", 30000)) == 20000
    fields["messagecount"] = "20001"
    assert error_code(api.post("/api", urllib.parse.urlencode(fields))[1]) == 3


def test_batch_indexed_shape(appliance):
    _, api = appliance
    body = api.action("sendmessage", messagecount="2", recipient0="06203105366",
                      messagetype0="SMS:TEXT", messagedata0="Hello World",
                      recipient1="bad", messagedata1="Second")
    assert xml_values(body, "statuscode0") == ["0"]
    assert xml_values(body, "statuscode1") == ["1"]
    assert xml_values(body, "recipient") == ["06203105366", "bad"]
    assert "<serviceprovider0 />" in body


def test_a_batch_messages_own_indexed_parameters_apply_to_it_alone(appliance):
    """Seed 001: "attaching a sequence number to the end of each HTTP api parameter that
    relates to the submitted messages". Found by a helper: sendondate1, vp1,
    serviceprovider1 and reporturl1 were ignored, so message 1 left at once."""
    daemon, api = appliance
    later = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() + 7200))
    past = "2000-01-01 00:00:00"
    body = api.action("sendmessage", messagecount="4",
                      recepient0="+36201234567", messagedata0="now",
                      recipient1="+36201234568", messagedata1="later", sendondate1=later,
                      reporturl1="http://10.0.0.9/report?id=$messageid",
                      recipient2="+36201234569", messagedata2="too late", vp2=past,
                      recipient3="+36201234560", messagedata3="x", serviceprovider3="nosuch")
    assert [xml_values(body, f"statuscode{i}")[0] for i in range(4)] == ["0", "0", "9", "9"]
    assert "vp" in xml_values(body, "statusmessage2")[0]
    now_id, later_id = (xml_values(body, f"messageid{i}")[0] for i in range(2))
    assert daemon.journal.get_message(now_id)["state"] == "queued"
    scheduled = daemon.journal.get_message(later_id)
    assert scheduled["state"] == "scheduled" and scheduled["send_at"] > time.time() + 7000
    assert "10.0.0.9" in scheduled["callback"]
    assert not daemon.journal.get_message(now_id)["callback"]


def test_a_comma_list_inside_a_batch_gets_a_report_per_number_in_order(appliance):
    """Two <acceptreport0> (and statuscode0 twice in the urlencoded answer) lost one id for
    a client that reads the reports by name (found by a helper)."""
    daemon, api = appliance
    fields = dict(messagecount="2", recipient0="+36201234567,+36201234568", messagedata0="a",
                  recipient1="+36201234569", messagedata1="b")
    body = api.action("sendmessage", **fields)
    assert xml_values(body, "recipient") == ["+36201234567", "+36201234568", "+36201234569"]
    ids = [xml_values(body, f"messageid{i}")[0] for i in range(3)]
    assert [daemon.journal.get_message(i)["body"] for i in ids] == ["a", "a", "b"]
    answer = urllib.parse.parse_qs(api.action("sendmessage", responseformat="urlencoded",
                                              **fields))
    assert [answer[f"recipient{i}"] for i in range(3)] == \
        [["+36201234567"], ["+36201234568"], ["+36201234569"]]
    assert all(len(values) == 1 for values in answer.values())


# --- receiving, by id, folders --------------------------------------------------------------


def _inbound(daemon, text: str, sender: str = "+36301234567") -> None:
    daemon.journal.inbound(InboundFragment(connection="GSMModem0", sender=sender,
                                           recipient="+36209999999", encoding="gsm7",
                                           text=text, sent_at=time.time() - 5))


def test_receivemessage_answers_in_the_responseformat_asked_for(appliance):
    daemon, api = appliance
    _inbound(daemon, "in <1> & more")
    _inbound(daemon, "in 2", sender="+36301234568")
    answer = urllib.parse.parse_qs(api.action("receivemessage", responseformat="urlencoded"))
    assert answer["messagedata0"] == ["in <1> & more"] and answer["messagedata1"] == ["in 2"]
    assert answer["originator1"] == ["+36301234568"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", answer["receivedtime0"][0])
    page = api.action("receivemessage", responseformat="html")
    assert page.startswith("<HTML>") and "messagedata: in &lt;1&gt; &amp; more<br>" in page
    assert "messagedata" in api.action("receivemessage") and "<message>" in \
        api.action("receivemessage")                       # XML stays the default


@pytest.mark.parametrize("after", ["mark", "delete"])
def test_pollers_downloading_at_once_get_each_message_once(appliance_socket, after):
    """Found by a helper: two clients polling receivemessage with afterdownload=mark both
    read the same unread messages before either marked them: 110 handed out for 60 SMS."""
    import threading
    daemon, api = appliance_socket
    for i in range(60):
        _inbound(daemon, f"in {i}")
    got: list[str] = []

    def poll():
        while True:
            texts = xml_values(api.action("receivemessage", limit="3", afterdownload=after),
                               "messagedata")
            if not texts:       # "until empty": empty must mean nothing is left (a helper:
                return          # pollers that lost the race got [] while messages waited)
            got.extend(texts)
    pollers = [threading.Thread(target=poll) for _ in range(4)]
    for poller in pollers:
        poller.start()
    for poller in pollers:
        poller.join(60)
    assert sorted(got) == sorted(f"in {i}" for i in range(60))


def test_a_download_that_lost_the_race_for_the_first_messages_gets_the_next(appliance,
                                                                          monkeypatch):
    """Found by a helper: a poller whose first messages another poller marked first got an
    empty answer while messages waited, and a client paging "until empty" stopped."""
    daemon, api = appliance
    for i in range(6):
        _inbound(daemon, f"in {i}")
    real, raced = daemon.journal.claim_unread, []

    def another_poller_first(ids, user=None):
        if not raced:                  # the other poller marks these just before us
            raced.append(real(ids, user))
            return []
        return real(ids, user)
    monkeypatch.setattr(daemon.journal, "claim_unread", another_poller_first)
    body = api.action("receivemessage", limit="3", afterdownload="mark")
    assert xml_values(body, "messagedata") == ["in 3", "in 4", "in 5"]


def test_receivemessage_limit_and_afterdownload(appliance):
    daemon, api = appliance
    for i in range(3):
        _inbound(daemon, f"in {i}")
    body = api.action("receivemessage", folder="inbox", limit="2")
    assert "http://www.ozekisms.com/DTD/response.xml" in body
    assert xml_values(body, "messagedata") == ["in 0", "in 1"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", xml_values(body, "receivedtime")[0])
    # untouched by default: the same messages come again
    again = api.action("receivemessage", limit="2")
    assert xml_values(again, "messagedata") == ["in 0", "in 1"]
    marked = api.action("receivemessage", limit="2", afterdownload="mark")
    assert xml_values(marked, "messagedata") == ["in 0", "in 1"]
    rest = api.action("receivemessage", afterdownload="delete")
    assert xml_values(rest, "messagedata") == ["in 2"]
    assert xml_values(api.action("receivemessage"), "messagedata") == []
    deleted = api.action("querymessagelist", folder="deleted")
    assert xml_values(deleted, "messagedata") == ["in 2"]
    assert error_code(api.action("receivemessage", afterdownload="shred")) == 3
    assert error_code(api.action("receivemessage", folder="spam")) == 3
    assert error_code(api.action("receivemessage", limit="0")) == 3


def test_getmessagebyid_shape_and_unknown(appliance):
    _, api = appliance
    message_id = api.send("+36201234567", "Test message")
    body = api.action("getmessagebyid", msgID=message_id)
    assert "<action>getMsgInfoByID</action>" in body
    assert xml_values(body, "folder") == ["OUTBOX"]
    assert xml_values(body, "state") == ["0"]
    assert re.fullmatch(r"\d{4}\.\d\d\.\d\d\. \d\d:\d\d:\d\d",
                        xml_values(body, "creationtime")[0])
    assert error_code(api.action("getmessagebyid", msgID="nope")) == 7
    missing = api.action("getmessagebyid")           # named as the seed names it
    assert error_code(missing) == 2 and "msgID" in missing, missing
    assert xml_values(api.action("getmessagebyid", messageid=message_id), "state") == ["0"]


def test_mark_and_delete_by_id_respect_ownership(appliance):
    daemon, api = appliance
    john = make_user(api)
    mine = john.send("+36201234567", "mine")
    admins = api.send("+36201234567", "admins")
    assert error_code(john.action("deletemessagebyid", msgID=admins)) == 7
    body = john.action("markmessagebyid", msgID=mine)
    assert xml_values(body, "messageid") == [mine]
    assert daemon.journal.get_message(mine)["is_read"] == 1
    john.action("deletemessagebyid", msgID=mine)
    assert xml_values(john.action("getmessagebyid", msgID=mine), "folder") == ["DELETED"]
    assert daemon.journal.get_message(admins)["deleted"] == 0


def test_folder_list_delete_and_purge(appliance):
    daemon, api = appliance
    ids = [api.send("+36201234567", f"m{i}") for i in range(3)]
    listing = api.action("querymessagelist", folder="outbox", limit="2")
    assert xml_values(listing, "messageid") == ids[:2]
    assert xml_values(listing, "count") == ["2"]
    body = api.action("deletemessagelist", folder="outbox")
    assert xml_values(body, "count") == ["3"]
    assert xml_values(api.action("querymessagelist", folder="outbox"), "messageid") == []
    assert error_code(api.action("deletefolderitems", folder="outbox")) == 3
    purged = api.action("deletefolderitems", folder="deleted")
    assert xml_values(purged, "count") == ["3"]
    assert daemon.journal.get_message(ids[0]) is None


# --- credits -------------------------------------------------------------------------------


def test_credits_get_set_add_and_spend(appliance):
    daemon, api = appliance
    john = make_user(api)
    assert xml_values(john.action("getcredits"), "balance") == ["1000"]   # the start balance
    body = api.action("setcredits", useraccount="john", newbalance="3")
    assert xml_values(body, "balance") == ["3"] and "<action>setcredits</action>" in body
    body = api.action("addcredits", useraccount="john", add="2")
    assert "<action>getcredits</action>" in body and xml_values(body, "balance") == ["5"]
    body = api.action("setcredits", useraccount="john")                # empty: unchanged
    assert xml_values(body, "balance") == ["5"]
    long_text = "x" * 300                                                 # two parts
    john.send("+36201234567", long_text)
    assert xml_values(john.action("getcredits"), "balance") == ["3"]
    api.action("setcredits", useraccount="john", newbalance="0")
    refused = john.action("sendmessage", recipient="+36201234567", messagedata="x")
    assert xml_values(refused, "statuscode") == ["5"]
    # only the administrator changes balances, and others only see their own
    assert error_code(john.action("setcredits", useraccount="john", newbalance="99")) == 5
    assert error_code(john.action("addcredits", useraccount="john", add="99")) == 5
    assert error_code(john.action("getcredits", useraccount="admin")) == 5
    assert error_code(api.action("getcredits", useraccount="ghost")) == 7
    assert error_code(api.action("setcredits", useraccount="john", newbalance="lots")) == 3


def test_credit_comes_back_for_parts_that_never_left(appliance):
    """Found by a helper: a prepaid user paid for messages deleted before they were sent
    and for ones that expired waiting for a route (no connection here: nothing leaves)."""
    daemon, api = appliance
    john = make_user(api)
    api.action("setcredits", useraccount="john", newbalance="10")
    later = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() + 3600))
    scheduled = john.send("+36201234567", "x" * 300, sendondate=later)        # two parts
    expiring = john.send("+36201234568", "soon gone",
                         vp=time.strftime("%Y-%m-%d %H:%M:%S",
                                          time.localtime(time.time() + 2)))
    assert xml_values(john.action("getcredits"), "balance") == ["7"]
    john.action("deletemessagebyid", messageid=scheduled)
    assert xml_values(john.action("getcredits"), "balance") == ["9"]
    api.wait_state(expiring, 14, timeout=15)
    assert xml_values(john.action("getcredits"), "balance") == ["10"]
    reasons = [r["reason"] for r in daemon.journal.query(
        "SELECT reason FROM ledger WHERE user='john' AND reason LIKE 'refund%' ORDER BY id")]
    assert reasons == ["refund: deleted before it was sent", "refund: expired before it was sent"]
    john.action("deletemessagebyid", messageid=scheduled)                    # once only
    assert xml_values(john.action("getcredits"), "balance") == ["10"]


# --- users -----------------------------------------------------------------------------------


def test_user_lifecycle(appliance):
    daemon, api = appliance
    john = make_user(api, priority="bulk", reporturl="http://lan.example/r")
    assert xml_values(john.action("getcredits"), "username") == ["john"]
    assert error_code(api.action("createuser", name="john", userpassword="x" * 10)) == 3
    assert error_code(api.action("createuser", name="smppy", type="SMPP")) == 11
    assert error_code(api.action("createuser", name="bad name!")) == 3
    body = api.action("configuser", name="john", allowrouteoverride="on", idoverride="off")
    assert xml_values(body, "allowrouteoverride") == ["on"]
    assert daemon.accounts.get("john").settings["idoverride"] == "off"
    api.action("stopuser", name="john")
    assert error_code(john.action("getcredits")) == 10
    api.action("startuser", name="john")
    api.action("configuser", name="john", newpassword="changed-pass-2")
    assert error_code(john.action("getcredits")) == 4
    john.password = "changed-pass-2"
    assert xml_values(john.action("getcredits"), "balance") == ["1000"]
    # non-admins cannot manage users; the admin account cannot be removed
    assert error_code(john.action("createuser", name="eve", userpassword="eve-pass-12")) == 5
    assert error_code(api.action("deleteuser", name="admin")) == 11
    assert error_code(api.action("stopuser", name="admin")) == 3
    api.action("deleteuser", name="john")
    assert error_code(john.action("getcredits")) == 4
    assert error_code(api.action("deleteuser", name="john")) == 7


def test_created_user_without_password_cannot_log_in(appliance):
    _, api = appliance
    api.action("createuser", name="nopass")
    assert error_code(api.as_user("nopass", "").action(
        "getcredits")) == 4


def test_users_survive_a_restart(make_config, run_daemon):
    config = make_config()
    daemon = run_daemon(config)
    api = WsgiApi(daemon.app)
    make_user(api, allowrouteoverride="on")
    api.action("setcredits", useraccount="john", newbalance="7")
    daemon.stop()
    again = run_daemon(config)
    john = WsgiApi(again.app, "john", "john-pass-1")
    assert xml_values(john.action("getcredits"), "balance") == ["7"]
    assert again.accounts.get("john").allowrouteoverride


# --- security ---------------------------------------------------------------------------------


def test_failed_logins_are_throttled_per_address(appliance):
    _, api = appliance
    bad = api.as_user("admin", "wrong")
    codes = [error_code(bad.action("getcredits")) for _ in range(12)]
    assert codes[0] == 4 and codes[-1] == 6
    # the right password is refused too while the address is throttled
    assert error_code(api.action("getcredits")) == 6


def test_password_never_reaches_the_log(appliance, caplog):
    _, api = appliance
    bad = api.as_user("admin", "Sup3rS3cretGuess")
    bad.action("getcredits")
    api.send("+36201234567", "x")
    assert "Sup3rS3cretGuess" not in caplog.text and ADMIN_PASSWORD not in caplog.text


def test_echoed_values_are_escaped(appliance):
    _, api = appliance
    body = api.action("sendmessage", recipient="<script>", messagedata="a&b<c>")
    assert "<script>" not in body and "&lt;script&gt;" in body
    assert "a&amp;b&lt;c&gt;" in body
    html = api.action("sendmessage", recipient="<img src=x>", messagedata="x",
                      responseformat="html")
    assert "<img" not in html
    err = api.action("unknown<tag>")
    assert "unknown&lt;tag&gt;" in err


def test_request_level_errors(appliance):
    _, api = appliance
    assert error_code(api.action("nosuchaction")) == 1
    status, body = api.get("/api", username="admin", password=ADMIN_PASSWORD)
    assert error_code(body) == 2
    assert error_code(api.as_user("ghost", "x").action(
        "sendmessage")) == 4
    html = api.action("nosuchaction", responseformat="html")
    assert "Error code: 1<br>" in html


def test_ip_rules_refuse_with_forbidden_address(appliance):
    _, api = appliance
    john = make_user(api, ipdeny="127.0.0.0/8")
    assert error_code(john.action("getcredits")) == 9
    api.action("configuser", name="john", ipdeny="", ipallow="10.0.0.0/8")
    assert error_code(john.action("getcredits")) == 9
    api.action("configuser", name="john", ipallow="127.0.0.1")
    assert xml_values(john.action("getcredits"), "username") == ["john"]


# --- address book, reporting, DND ---------------------------------------------------------------


def test_getaddressbook_csv(appliance):
    _, api = appliance
    api.action("addcontact", contactname="John Smith", phonenumber="+3613710150",
               description='My friend "JS"', groups="Friends, Work")
    api.action("addcontact", contactname="Jim", phonenumber="+36209999999")
    body = api.action("getaddressbook")
    assert "<Action>getAddressbook</Action>" in body
    data = re.search(r"<Data>(.*)</Data>", body, re.S).group(1)
    lines = data.split("\n")
    assert lines[0] == '"Jim","+36209999999",,'
    assert lines[1] == '"John Smith","+3613710150","My friend ""JS""","Friends, Work"'


def test_reporting_summary(appliance):
    daemon, api = appliance
    john = make_user(api)
    john.send("+36201234567", "a")
    john.send("+36201234567", "b")
    api.send("+36201234567", "c")
    _inbound(daemon, "hello")
    body = api.action("reporting", repDirection="out", toExport="summary")
    assert body.startswith('<?xml version="1.0" encoding="utf-8"?>')
    users = dict(zip(xml_values(body, "username"), xml_values(body, "messages")))
    assert users == {"admin": "1", "john": "2"}
    incoming = api.action("reporting", repDirection="in", toExport="summary")
    assert dict(zip(xml_values(incoming, "username"), xml_values(incoming, "messages"))) == \
        {"admin": "1"}
    assert error_code(john.action("reporting", repDirection="in")) == 5
    assert error_code(api.action("reporting", toExport="details")) == 11


def test_messages_waiting_for_a_number_put_on_the_dnd_list_never_leave(appliance):
    """Found by a helper: the list was only checked at acceptance, so scheduled and queued
    messages went to people who had sent STOP (a compliance problem)."""
    daemon, api = appliance
    later = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() + 3600))
    scheduled = api.send("+36201114444", "promo", sendondate=later)
    queued = api.send("+36201114444", "queued promo")
    in_range = api.send("+36305550000", "range")
    other = api.send("+36201234567", "not on the list")
    api.action("adddnd", number="+36201114444")
    api.action("adddnd", number="+36305*")
    for message_id in (scheduled, queued, in_range):
        assert api.state(message_id) == 11
        assert "do-not-disturb" in daemon.journal.get_message(message_id)["reason"]
    assert api.state(other) == 0


def test_dnd_list_refuses_in_every_dialect(appliance):
    _, api = appliance
    api.action("adddnd", number="+36201111111")
    api.action("adddnd", number="+3630*")
    assert xml_values(api.action("listdnd"), "number") == ["+36201111111", "+3630*"]
    body = api.action("sendmessage", recipient="+36201111111,+36301234567,+36201234567",
                      messagedata="x")
    assert xml_values(body, "statuscode") == ["10", "10", "0"]
    api.action("deletednd", number="+36201111111")
    body = api.action("sendmessage", recipient="+36201111111", messagedata="x")
    assert xml_values(body, "statuscode") == ["0"]


def test_a_refund_stays_within_the_balances_range(appliance):
    """Found by a helper: a refund on top of the largest balance made 2147483650, which
    every later credit change then refused."""
    daemon, api = appliance
    john = make_user(api)
    api.action("setcredits", useraccount="john", newbalance="10")
    message_id = john.send("+36201234567", "x" * 300)                   # two parts
    api.action("setcredits", useraccount="john", newbalance="2147483647")
    john.action("deletemessagebyid", messageid=message_id)
    assert xml_values(john.action("getcredits"), "balance") == ["2147483647"]
