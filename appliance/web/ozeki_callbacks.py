"""What the Ozeki dialect's callbacks look like: the `reporturl` delivery report
(http-api.md §2.6) and the default inbound `inboundurl` call, both `$keyword` templates."""

from __future__ import annotations

from appliance.timefmt import ozeki_time
from appliance.web.callback_kit import Call, fill_template
from appliance.web.ozeki_xml import sent_at

_OZEKI_STATUS = {"submitted": "deliveredtonetwork", "delivered": "deliveredtohandset",
                 "undelivered": "deliveryfailed", "failed": "deliveryfailed",
                 "expired": "deliveryfailed"}


def ozeki_keywords(event: dict) -> dict[str, str]:
    failed = _OZEKI_STATUS.get(event["kind"]) == "deliveryfailed"
    return {
        "messageid": event["id"], "recipient": event["recipient"],
        "originator": event["originator"], "messagetype": event["messagetype"],
        "messagedata": event["body"], "status": _OZEKI_STATUS.get(event["kind"], ""),
        "statuscode": event["code"] or ("1" if failed else "0"),
        "statusmessage": event["reason"] or event["kind"],
        # "time sent from the gateway" (http-api.md 2.6), the senttime of receivemessage
        "submitdate": ozeki_time(sent_at(event)),
        "deliveredtonetworkdate": ozeki_time(event["submitted_at"]),
        "deliveredtohandsetdate": ozeki_time(event["done_at"]) if event["kind"] == "delivered"
        else "",
        "receivedate": ozeki_time(event["created"]),
    }


def delivery_report(event: dict, callback: dict, accounts) -> Call | None:
    """GET the request's reporturl with the event's keywords filled in."""
    if event["kind"] not in _OZEKI_STATUS:
        return None
    return Call(fill_template(callback["url"], ozeki_keywords(event)))


def inbound(event: dict, url: str) -> Call:
    """GET the user's inboundurl with the inbound SMS's keywords filled in."""
    return Call(fill_template(url, ozeki_keywords(event)))
