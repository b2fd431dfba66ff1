"""Outbound HTTP callbacks to the LAN with durable retry.

The journal records an event whenever a message with a callback changes state, and for every
inbound SMS. This thread delivers them: a renderer per callback kind turns an event into an
HTTP request (dialects register theirs in `RENDERERS`), 2xx means done, anything else is
retried with backoff across restarts, in order per message, for up to `GIVE_UP_SECONDS`.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Callable

from appliance.clock import SYSTEM_CLOCK, Clock
from appliance.compose import Submission, prepare
from appliance.errors import ValidationError
from appliance.logmask import masked
from appliance.model import Priority
from appliance.timefmt import ozeki_time

log = logging.getLogger("appliance.notify")

BACKOFF = (10, 30, 60, 120, 300, 600, 900)
GIVE_UP_SECONDS = 3 * 24 * 3600
TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Call:
    url: str
    method: str = "GET"
    body: bytes | None = None
    headers: dict = field(default_factory=dict)


# kind -> fn(event: dict, accounts) -> Call | None (None: nothing to send for this event)
RENDERERS: dict[str, Callable] = {}


def renderer(kind: str):
    def register(fn):
        RENDERERS[kind] = fn
        return fn
    return register


# --- Ozeki reporturl (http-api.md §2.6) ------------------------------------------------

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
        "submitdate": ozeki_time(event["created"]),
        "deliveredtonetworkdate": ozeki_time(event["submitted_at"]),
        "deliveredtohandsetdate": ozeki_time(event["done_at"]) if event["kind"] == "delivered"
        else "",
        "receivedate": ozeki_time(event["created"]),
    }


def fill_template(template: str, values: dict[str, str]) -> str:
    """Replace `$keyword` tokens, longest first, with URL-encoded values."""
    for key in sorted(values, key=len, reverse=True):
        template = template.replace("$" + key, urllib.parse.quote(str(values[key] or ""), safe=""))
    return template


@renderer("ozeki_reporturl")
def _ozeki_report(event: dict, callback: dict, accounts) -> Call | None:
    if event["kind"] not in _OZEKI_STATUS:
        return None
    return Call(fill_template(callback["url"], ozeki_keywords(event)))


_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
_FINAL_KINDS = {"delivered", "undelivered", "expired", "failed"}


# --- Ozeki Phone System notifications (http-api.md §13.3; field names are our choice) --------


@renderer("phonesystem_dlr")
def _phonesystem_report(event: dict, callback: dict, accounts) -> Call | None:
    """SMSDeliveryReport, POSTed to the DeliveryReportURL of SendSms once the outcome is known."""
    if event["kind"] not in _FINAL_KINDS:
        return None
    fields = {"NotificationName": "SMSDeliveryReport", "ApiExtension": callback.get("extension", ""),
              "SmsId": event["id"], "Sender": event["originator"],
              "Recipient": event["recipient"], "DeliveryStatus": event["kind"].capitalize(),
              "DeliveryTime": ozeki_time(event["done_at"] or event["at"]),
              "Reason": event["reason"] or ""}
    return Call(callback["url"], "POST", urllib.parse.urlencode(fields).encode(), _FORM)


def _phonesystem_incoming(event: dict, url: str) -> Call:
    fields = {"NotificationName": "IncomingSMS", "SmsId": event["id"],
              "Sender": event["originator"], "Recipient": event["recipient"],
              "Message": event["body"], "ReceiveTime": ozeki_time(event["created"]),
              "Connection": event["connection"]}
    return Call(url, "POST", urllib.parse.urlencode(fields).encode(), _FORM)


# --- bulksms delivery reports (http-api.md §14; format [NF], ours) ---------------------------

_BULKSMS_STAT = {"delivered": "DELIVRD", "undelivered": "UNDELIV", "expired": "EXPIRED",
                 "failed": "REJECTD"}


@renderer("bulksms_dlr")
def _bulksms_report(event: dict, callback: dict, accounts) -> Call | None:
    """GET the user's report URL: `$` keywords filled if it has any, else query fields."""
    stat = _BULKSMS_STAT.get(event["kind"])
    if stat is None:
        return None
    values = {"msgid": event["id"], "destination": event["recipient"],
              "source": event["originator"], "status": stat,
              "code": event["code"] or ("0" if stat == "DELIVRD" else "1"),
              "reason": event["reason"] or "", "donedate": ozeki_time(event["done_at"])}
    url = callback["url"]
    if "$" in url:
        return Call(fill_template(url, values))
    return Call(url + ("&" if "?" in url else "?") + urllib.parse.urlencode(values))


def _inbound_call(event: dict, accounts) -> Call | None:
    user = accounts.get(event["user"]) if accounts else None
    if user is None or not user.inbound_url:
        return None
    if (user.settings or {}).get("inbound_format", "").lower() == "phonesystem":
        return _phonesystem_incoming(event, user.inbound_url)
    return Call(fill_template(user.inbound_url, ozeki_keywords(event)))


class Notifier:
    def __init__(self, journal, accounts=None, *, clock: Clock = SYSTEM_CLOCK,
                 idle_seconds: float = 1.0, opener=None):
        self.journal = journal
        self.accounts = accounts
        self.clock = clock
        self.idle_seconds = idle_seconds
        self._open = opener or urllib.request.urlopen
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.heartbeat = clock.monotonic()
        self.delivered = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(TIMEOUT_SECONDS + 2)

    def alive(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def _run(self) -> None:
        while not self._stop.is_set():
            self.heartbeat = self.clock.monotonic()
            try:
                done = self.step()
            except Exception:
                log.exception("notify: step failed; retrying")
                done = 0
            if not done:
                self._stop.wait(self.idle_seconds)

    def step(self) -> int:
        events = self.journal.due_events(limit=50)
        for event in events:
            if self._stop.is_set():
                break
            self._deliver(event)
        return len(events)

    def _deliver(self, event: dict) -> None:
        call = self._render(event)
        if call is None:
            self.journal.event_done(event["event_id"])
            return
        error = self._send(call)
        if error is None:
            self.delivered += 1
            self.journal.event_done(event["event_id"])
            return
        age = self.clock.now() - event["at"]
        give_up = age > GIVE_UP_SECONDS
        delay = BACKOFF[min(event["attempts"], len(BACKOFF) - 1)]
        log.warning("notify: %s for %s failed (%s); %s", event["kind"], event["id"], error,
                    "giving up" if give_up else f"retry in {delay}s")
        self.journal.event_retry(event["event_id"], error, delay, give_up)

    def _render(self, event: dict) -> Call | None:
        if event["kind"] == "inbound":
            return _inbound_call(event, self.accounts)
        import json
        callback = json.loads(event["callback"]) if event.get("callback") else None
        fn = RENDERERS.get(callback.get("kind")) if callback else None
        return fn(event, callback, self.accounts) if fn else None

    def _send(self, call: Call) -> str | None:
        request = urllib.request.Request(call.url, data=call.body, method=call.method,
                                         headers={"User-Agent": "sms-appliance", **call.headers})
        try:
            with self._open(request, timeout=TIMEOUT_SECONDS) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            return str(exc)[:200]
        return None if 200 <= status < 300 else f"HTTP {status}"

    # --- alerts to the administrator ---

    def admin_alert(self, admin, slot: str, text: str) -> None:
        """An SMS to the admin's phone (alerts leave before bulk) and/or a POST to alert_url."""
        if admin.phone:
            self._alert_sms(admin.phone, f"sms-appliance {slot}: {text}")
        if admin.alert_url:
            body = urllib.parse.urlencode({"slot": slot, "alert": text}).encode()
            threading.Thread(target=self._send, daemon=True, args=(Call(
                admin.alert_url, "POST", body,
                {"Content-Type": "application/x-www-form-urlencoded"}),)).start()

    def _alert_sms(self, phone: str, text: str) -> None:
        try:
            message = prepare(Submission(user="admin", recipient=phone, text=text[:300],
                                         priority=Priority.ALERT, dialect="alert"))
        except ValidationError as exc:
            log.error("notify: cannot send alert SMS to %s: %s", masked(phone), exc)
            return
        self.journal.accept([message])
