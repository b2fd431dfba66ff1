"""The Ozeki 10 JSON API's message objects say what kind of message each is: `message_type`,
the field sendmsg takes (docs/api.md §2), in the `action=` API's vocabulary (SMS:TEXT,
SMS:TEXT:CLASS0, SMS:BINARY, SMS:WAPPUSH…). Through the daemon's WSGI app."""

from __future__ import annotations

from appliance.model import InboundFragment
from test_api_dialects import post_json

WAP = '<si><indication href="http://example.com/a" action="signal-high">Offer</indication></si>'


def _types(api, folder: str) -> dict[str, str]:
    status, reply = post_json(api, "receivemsg", {"folder": folder})
    assert status == 200, reply
    return {m["text"]: m["message_type"] for m in reply["data"]["data"]}


def test_received_messages_say_whether_they_are_text_flash_or_binary(appliance):
    """A binary SMS's text is its user data in hex: without a type a client took it for a
    text SMS of hex digits, and a flash SMS for an ordinary one."""
    daemon, api = appliance
    journal = daemon.journal
    journal.inbound(InboundFragment(connection="GSMModem0", sender="+36301234567",
                                    recipient="+36209999999", encoding="gsm7", text="plain"))
    journal.inbound(InboundFragment(connection="GSMModem0", sender="+36301234567",
                                    recipient="+36209999999", encoding="gsm7", text="flash",
                                    msg_class=0))
    journal.inbound(InboundFragment(connection="GSMModem0", sender="+36301234567",
                                    recipient="+36209999999", encoding="8bit", text=None,
                                    data=b"\x01\x02", udh=b"\x05\x04\x0b\x84\x23\xf0"))
    assert _types(api, "inbox") == {"plain": "SMS:TEXT", "flash": "SMS:TEXT:CLASS0",
                                    "0605040B8423F00102": "SMS:BINARY"}


def test_sent_messages_carry_the_type_they_were_sent_with(appliance):
    _, api = appliance
    status, reply = post_json(api, "sendmsg", {"messages": [
        {"to_address": "+36201234567", "text": "hello"},
        {"to_address": "+36201234567", "text": WAP, "message_type": "SMS:WAPPUSH"},
        {"to_address": "not a number", "text": "refused", "message_type": "SMS:TEXT:UCS2"}]})
    assert status == 200, reply
    echoed = [(m["status"] == "SUCCESS", m["message_type"]) for m in reply["data"]["messages"]]
    assert echoed == [(True, "SMS:TEXT"), (True, "SMS:WAPPUSH"), (False, "SMS:TEXT:UCS2")]
    assert _types(api, "outbox") == {"hello": "SMS:TEXT", WAP: "SMS:WAPPUSH"}
