"""What the bulksms dialect's delivery reports look like (http-api.md §14; the format is
[NF], ours): a GET of the user's report URL."""

from __future__ import annotations


from appliance.timefmt import ozeki_time
from appliance.web.callback_kit import Call, fill_template, has_keyword, with_query

_BULKSMS_STAT = {"delivered": "DELIVRD", "undelivered": "UNDELIV", "expired": "EXPIRED",
                 "failed": "REJECTD"}


def delivery_report(event: dict, callback: dict, accounts) -> Call | None:
    """`$` keywords filled if the URL has any, else the values as query fields."""
    stat = _BULKSMS_STAT.get(event["kind"])
    if stat is None:
        return None
    values = {"msgid": event["id"], "destination": event["recipient"],
              "source": event["originator"], "status": stat,
              "code": event["code"] or ("0" if stat == "DELIVRD" else "1"),
              "reason": event["reason"] or "", "donedate": ozeki_time(event["done_at"])}
    url = callback["url"]
    if has_keyword(url, values):        # not any `$` (a token, another dialect's keywords)
        return Call(fill_template(url, values))
    return Call(with_query(url, values))
