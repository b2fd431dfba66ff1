"""What the Ozeki Phone System dialect's notifications look like (http-api.md §13.3; the
field names are our choice): form POSTs named by `NotificationName`."""

from __future__ import annotations

import urllib.parse

from appliance.timefmt import ozeki_time
from appliance.web.callback_kit import FINAL_KINDS, FORM, Call


def delivery_report(event: dict, callback: dict, accounts) -> Call | None:
    """SMSDeliveryReport, POSTed to the DeliveryReportURL of SendSms once the outcome is known."""
    if event["kind"] not in FINAL_KINDS:
        return None
    fields = {"NotificationName": "SMSDeliveryReport", "ApiExtension": callback.get("extension", ""),
              "SmsId": event["id"], "Sender": event["originator"],
              "Recipient": event["recipient"], "DeliveryStatus": event["kind"].capitalize(),
              "DeliveryTime": ozeki_time(event["done_at"] or event["at"]),
              "Reason": event["reason"] or ""}
    return Call(callback["url"], "POST", urllib.parse.urlencode(fields).encode(), FORM)


def inbound(event: dict, url: str) -> Call:
    """IncomingSMS, for users whose inbound_format is phonesystem."""
    fields = {"NotificationName": "IncomingSMS", "SmsId": event["id"],
              "Sender": event["originator"], "Recipient": event["recipient"],
              "Message": event["body"], "ReceiveTime": ozeki_time(event["created"]),
              "Connection": event["connection"]}
    return Call(url, "POST", urllib.parse.urlencode(fields).encode(), FORM)
