"""SMS:BINARY with the user data in hex (http-api.md §2.7).

It was refused as "unsupported message type", though it is the type receivemessage shows a
binary SMS under: a binary SMS read from the inbox could not be sent on as it was shown.
It is one 8-bit SMS (DCS 04) of at most 140 octets; a header, PID or another DCS takes
SMS:BINARY:XML.
"""

from __future__ import annotations

import pytest

from conftest import Api, xml_values
from test_modem_kit import wait_until
from web_kit import demo_daemon_on_simulated_modems

DATA = bytes(range(0, 256, 7))          # 37 octets, none of them text


def test_hex_user_data_leaves_as_one_8bit_sms_and_comes_back_as_it_was_shown(
        make_config, run_daemon):
    with demo_daemon_on_simulated_modems(make_config, run_daemon) as (daemon, network):
        api = Api(daemon.port)
        body = api.action("sendmessage", recipient="+36701110009", messagetype="SMS:BINARY",
                          messagedata=" ".join(f"{b:02x}" for b in DATA))   # spaces, lower case
        assert xml_values(body, "statuscode") == ["0"], body
        [submit] = wait_until(lambda: [s for s in network.submits
                                       if s["to"] == "+36701110009"], timeout=30, what="submit")
        assert submit["data"] == DATA and submit["encoding"] == "8bit"

        # a modem's own number: the SMS comes back in, and is shown as it was sent
        own = network.modem("slot2").number
        body = api.action("sendmessage", recipient=own, messagetype="SMS:BINARY",
                          messagedata=DATA.hex())
        assert xml_values(body, "statuscode") == ["0"], body
        inbox = wait_until(lambda: _received(api), timeout=30, what="the binary SMS received")
        assert xml_values(inbox, "messagetype") == ["SMS:BINARY"]
        assert xml_values(inbox, "messagedata") == [DATA.hex().upper()]


def _received(api: Api) -> str | None:
    body = api.action("receivemessage")
    return body if "<message>" in body else None


@pytest.mark.parametrize("messagedata,why", [
    ("zz", "must be hexadecimal octets"),
    ("ABC", "must be hexadecimal octets"),
    ("", "needs the user data in hex"),
    ("00" * 141, "limited to 140 octets"),
])
def test_bad_hex_is_refused_with_a_statuscode_and_nothing_stored(appliance, messagedata, why):
    daemon, api = appliance
    body = api.action("sendmessage", recipient="+36201234567", messagetype="SMS:BINARY",
                      messagedata=messagedata)
    assert xml_values(body, "statuscode") not in (["0"], []), body
    assert why in xml_values(body, "statusmessage")[0]
    assert xml_values(body, "messageid") == []
    assert daemon.journal.folder(None, "outbox", 10) == []


def test_140_octets_fit(appliance):
    daemon, api = appliance
    body = api.action("sendmessage", recipient="+36201234567", messagetype="SMS:BINARY",
                      messagedata="AB" * 140)
    assert xml_values(body, "statuscode") == ["0"], body


def test_the_json_api_sends_and_refuses_it_per_message(appliance):
    from test_api_dialects import post_json
    daemon, api = appliance
    status, reply = post_json(api, "sendmsg", {"messages": [
        {"to_address": "+36201234567", "text": "0102FF", "message_type": "SMS:BINARY"},
        {"to_address": "+36201234568", "text": "zz", "message_type": "SMS:BINARY"}]})
    statuses = [m["status"] for m in reply["data"]["messages"]]
    assert status == 200 and statuses[0] == "SUCCESS", reply
    assert "must be hexadecimal octets" in statuses[1]
    assert len(daemon.journal.folder(None, "outbox", 10)) == 1
