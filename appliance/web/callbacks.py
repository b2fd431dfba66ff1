"""The table of callback renderers: which dialect's module says what a callback looks like.

An outbound event carries the callback its request asked for (`{"kind": ..., "url": ...}`);
`DELIVERY_REPORTS` maps that kind to its dialect's renderer. An inbound SMS goes to its
user's `inboundurl` in the user's `inbound_format` (`INBOUND_FORMATS`, Ozeki by default).
The notifier calls `render` and only delivers what it returns.
"""

from __future__ import annotations

import json
from typing import Callable

from appliance.web import bulksms_callbacks, ozeki_callbacks, phonesystem_callbacks
from appliance.web.callback_kit import Call

# callback kind -> fn(event, callback, accounts) -> Call | None (None: nothing to send)
DELIVERY_REPORTS: dict[str, Callable] = {
    "ozeki_reporturl": ozeki_callbacks.delivery_report,
    "phonesystem_dlr": phonesystem_callbacks.delivery_report,
    "bulksms_dlr": bulksms_callbacks.delivery_report,
}

# a user's inbound_format -> fn(event, url) -> Call
INBOUND_FORMATS: dict[str, Callable] = {
    "ozeki": ozeki_callbacks.inbound,
    "phonesystem": phonesystem_callbacks.inbound,
}


def render(event: dict, accounts) -> Call | None:
    """The request for one journal event, or None when there is nothing to send."""
    if event["kind"] == "inbound":
        return _inbound(event, accounts)
    callback = json.loads(event["callback"]) if event.get("callback") else None
    fn = DELIVERY_REPORTS.get(callback.get("kind")) if callback else None
    return fn(event, callback, accounts) if fn else None


def with_own_numbers(own_number: Callable[[str], str]) -> Callable:
    """`render`, where a message sent without a sender reports the sender the recipient saw:
    the number of the connection that sent it (its `phonenumber`; seed 002: "Defaultly it
    is the phone number set in the SMS modem installation"). `own_number(name)` is "" for
    a connection without one, and the report keeps the empty sender."""
    def render_with_sender(event: dict, accounts) -> Call | None:
        if event.get("direction") == "out" and not event.get("originator"):
            number = own_number(event.get("connection") or "")
            if number:
                event = {**event, "originator": number}
        return render(event, accounts)
    return render_with_sender


def _inbound(event: dict, accounts) -> Call | None:
    user = accounts.get(event["user"]) if accounts else None
    if user is None or not user.inbound_url:
        return None
    fmt = (user.settings or {}).get("inbound_format", "").lower()
    return INBOUND_FORMATS.get(fmt, ozeki_callbacks.inbound)(event, user.inbound_url)
