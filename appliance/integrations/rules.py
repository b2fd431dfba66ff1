"""Inbound rules: SMS that arrive are matched by sender, receiving number, keyword or regex
and forwarded by e-mail (through `[relay]`), to a webhook, or to other phones, or answered;
STOP/START words maintain the do-not-disturb list.

A thread follows the journal's `inbound_log` (a copy of each received SMS written with it,
by a key SQLite never reuses) with a cursor kept in the document store, so a restart neither
repeats nor skips, and a purge of the inbox hides nothing from the rules. SMS it sends go
through the same intake as the APIs; e-mail and webhook calls are made on a thread of their
own and retried with backoff for an hour, across restarts (integrations/forwarding.py; the
SMS itself is always in the inbox).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import re
import threading
from collections import OrderedDict

from appliance.clock import SYSTEM_CLOCK, Clock
from appliance.errors import StoreError
from appliance.logmask import masked
from appliance.integrations import intake, template
from appliance.integrations.forwarding import STATE_TABLE, Forwarder
from appliance.integrations.settings import Integrations, RuleConfig

log = logging.getLogger("appliance.integrations")

CURSOR = "rules_cursor"
BATCH = 100
POLL_SECONDS = 1.0
AUTOREPLY_GAP = 600.0           # one automatic answer per sender per ten minutes: no SMS loops
# SMS forwards per sender: at most FORWARD_BURST within FORWARD_WINDOW; past that, none until
# the sender has been quiet for the window. Two appliances forwarding to each other's SIMs
# from other SIMs of theirs (the sender is never the target) ping-ponged for ever; this
# ends such a loop after a burst. Mail and webhook forwards are not limited.
FORWARD_BURST = 10
FORWARD_WINDOW = 600.0
SENDERS_REMEMBERED = 1000


class RuleRunner:
    def __init__(self, services, integrations: Integrations, *, clock: Clock = SYSTEM_CLOCK):
        self.services = services
        self.config = integrations
        self.clock = clock
        self.matches = [0] * len(integrations.rules)
        self.counters = {"inbound": 0, "stop": 0, "start": 0, "forwarded": 0, "failed": 0,
                         "forward_limited": 0}
        self._compiled = [re.compile(r.regex) if r.regex else None for r in integrations.rules]
        self.forwarder = Forwarder(self._deliver, self._documents, self.counters, clock=clock)
        self._answered: OrderedDict[str, float] = OrderedDict()
        self._forwarded: OrderedDict[str, list[float]] = OrderedDict()   # sender -> times
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rules", daemon=True)
        self._cursor: int | None = None
        self._inbox_rowid: int | None = None     # for a rollback (_previous_release_cursor)
        self._saved_cursor: int | None = None

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._cursor = self._load_cursor()
        self.forwarder.start()
        self._thread.start()
        log.info("rules: %d inbound rules, STOP words %s", len(self.config.rules),
                 ", ".join(self.config.inbound.stop_words) or "off")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)
        self._save_cursor()
        self.forwarder.stop()

    def alive(self) -> bool:
        return self._thread.is_alive() and self.forwarder.alive()

    def status(self) -> dict:
        return {"rules": [{"name": r.name or f"rule {i + 1}", "matches": self.matches[i],
                           "actions": _actions(r)} for i, r in enumerate(self.config.rules)],
                "retrying": self.forwarder.retrying(), **self.counters}

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.step()
            except Exception:        # a rule's bug must not end the thread
                log.exception("rules: round failed")
                busy = False
            if not busy:
                self._stop.wait(POLL_SECONDS)

    # -- one round ------------------------------------------------------------------------

    def step(self) -> bool:
        """Handle what arrived since the cursor; True when there may be more."""
        rows = self.services.journal.query(
            "SELECT seq, message_id AS id, user, recipient, originator, body, messagetype,"
            " connection, created, (SELECT m.rowid FROM messages m"
            " WHERE m.id=inbound_log.message_id) AS inbox_rowid"
            " FROM inbound_log WHERE seq > ? ORDER BY seq LIMIT ?",
            (self._cursor, BATCH))
        for row in rows:
            self._handle(dict(row))
            self._cursor = row["seq"]
            self._inbox_rowid = row["inbox_rowid"] or self._inbox_rowid
        if rows:
            self.forwarder.save()       # the forwards of these SMS, before the cursor passes them
            self._save_cursor()
        return len(rows) == BATCH

    def _handle(self, sms: dict) -> None:
        self.counters["inbound"] += 1
        text = sms["body"] if sms["messagetype"] != "SMS:BINARY" else ""
        words = text.split()
        first = words[0].upper().strip(".!") if words else ""
        context = {"sender": sms["originator"], "recipient": sms["recipient"], "text": text,
                   "keyword": first, "id": sms["id"], "connection": sms["connection"]}
        self._keywords(first, sms["originator"])
        for index, rule in enumerate(self.config.rules):
            if not self._matches(index, rule, sms, text, first):
                continue
            self.matches[index] += 1
            log.info("rules: SMS %s from %s matched %s", sms["id"], masked(sms["originator"]),
                     rule.name or f"rule {index + 1}")
            self._act(rule, context)
            if rule.last:
                break

    def _keywords(self, first: str, sender: str) -> None:
        inbound = self.config.inbound
        stop = first in {w.upper() for w in inbound.stop_words}
        start = first in {w.upper() for w in inbound.start_words}
        if not (stop or start):
            return
        from appliance.web.gate import dnd_list
        dnd = dnd_list(self.services)
        if stop:
            dnd.add(sender)
            self.counters["stop"] += 1
        else:
            dnd.remove(sender)
            self.counters["start"] += 1
        log.info("rules: %s sent %s: %s the do-not-disturb list", masked(sender), first,
                 "added to" if stop else "removed from")
        if inbound.confirm and start:       # after STOP nothing may be sent to them
            self._sms([sender], "You will receive messages again. Send STOP to opt out.")

    def _matches(self, index: int, rule: RuleConfig, sms: dict, text: str, first: str) -> bool:
        if rule.sender and not _glob(sms["originator"], rule.sender):
            return False
        if rule.recipient and not _glob(sms["recipient"], rule.recipient):
            return False
        if rule.keyword and first != rule.keyword.upper():
            return False
        pattern = self._compiled[index]
        return pattern is None or bool(pattern.search(text))

    # -- actions --------------------------------------------------------------------------

    def _act(self, rule: RuleConfig, context: dict) -> None:
        if rule.forward_to:
            try:
                numbers = intake.resolve(self.services, rule.forward_to,
                                         self.config.inbound.user)
            except intake.UnknownRecipient as exc:
                log.warning("rules: %s: forward_to %s is not a number or group",
                            rule.name, str(exc)[:40])
                numbers = []
            numbers = [n for n in numbers if n != context["sender"]]
            if numbers and self._may_forward(context["sender"]):
                self._sms(numbers, template.render(rule.forward_template, context))
        if rule.autoreply and self._may_answer(context["sender"]):
            self._sms([context["sender"]], template.render(rule.autoreply, context))
        if rule.forward_email:
            self.forwarder.add("mail", list(rule.forward_email), context)
        if rule.forward_url:
            self.forwarder.add("url", rule.forward_url, context)

    def _sms(self, numbers: list[str], text: str) -> None:
        if not text:
            return
        try:
            intake.submit(self.services, user=self.config.inbound.user, recipients=numbers,
                          text=intake.shorten(text, 459), priority="normal", dialect="rules")
            self.counters["forwarded"] += 1
        except StoreError as exc:
            log.error("rules: could not store the SMS to send: %s", exc)

    def _may_answer(self, sender: str) -> bool:
        now = self.clock.monotonic()
        last = self._answered.get(sender)
        if last is not None and now - last < AUTOREPLY_GAP:
            return False
        self._answered[sender] = now
        self._answered.move_to_end(sender)
        while len(self._answered) > SENDERS_REMEMBERED:
            self._answered.popitem(last=False)
        return True

    def _may_forward(self, sender: str) -> bool:
        now = self.clock.monotonic()
        times = [t for t in self._forwarded.get(sender, []) if now - t < FORWARD_WINDOW]
        allowed = len(times) < FORWARD_BURST
        if not allowed and len(times) == FORWARD_BURST:
            log.warning("rules: %s sent %d SMS to forward within %.0f min: no more SMS "
                        "forwards until it is quiet that long (an SMS loop?)", masked(sender),
                        FORWARD_BURST, FORWARD_WINDOW / 60)
        times.append(now)                    # a refused one counts: a loop stays stopped
        self._forwarded[sender] = times[-(FORWARD_BURST + 1):]
        self._forwarded.move_to_end(sender)
        while len(self._forwarded) > SENDERS_REMEMBERED:
            self._forwarded.popitem(last=False)
        if not allowed:
            self.counters["forward_limited"] += 1
        return allowed

    def _deliver(self, kind: str, target, context: dict) -> None:
        """One forward, on the forwarder's thread (forwarding.py)."""
        if kind == "mail":
            send_mail(self.config.relay, target, context)
        else:
            post_json(target, context)

    # -- cursor ---------------------------------------------------------------------------

    def _documents(self):
        return intake.documents_of(self.services)

    def _load_cursor(self) -> int:
        documents = self._documents()
        saved = documents.get(STATE_TABLE, CURSOR) if documents else None
        if saved and "seq" in saved:
            self._saved_cursor = int(saved["seq"])
            return self._saved_cursor
        # First start (or one from before inbound_log, whose cursor was a rowid): rules
        # apply from now on, not to an inbox that predates them.
        top = self.services.journal.query("SELECT max(seq) FROM inbound_log")[0][0] or 0
        return int(top)

    def _previous_release_cursor(self) -> int:
        """The cursor as the release before inbound_log kept it: the inbox rowid of the last
        SMS handled. After a rollback it starts from it (without one it stopped at start with
        a KeyError, with the one it saved before the upgrade it handled again every SMS this
        release had, forwards included); its rows purged meanwhile: the newest rowid."""
        if self._inbox_rowid is None:
            self._inbox_rowid = self.services.journal.query(
                "SELECT max(rowid) FROM messages")[0][0] or 0
        return self._inbox_rowid

    def _save_cursor(self) -> None:
        documents = self._documents()
        if documents is None or self._cursor is None or self._cursor == self._saved_cursor:
            return
        documents.put(STATE_TABLE, {"name": CURSOR, "seq": self._cursor,
                                    "rowid": self._previous_release_cursor()})
        self._saved_cursor = self._cursor


def send_mail(relay, recipients, context: dict) -> None:
    # the mail and HTTP clients are imported by the first forward, not by every daemon
    import smtplib
    import ssl
    from email.message import EmailMessage
    if not relay.host:
        raise ValueError("no [relay] host configured")
    message = EmailMessage()
    message["From"] = relay.mail_from
    message["To"] = ", ".join(recipients)
    # a sender may hold a line break (an HTTP Server connection's `sender`, a GSM
    # alphanumeric one): a header cannot, and the forward failed for an hour of retries
    message["Subject"] = f"SMS from {' '.join(str(context['sender']).split())}"
    message.set_content(f"{context['text']}\n\nFrom: {context['sender']}\nTo: "
                        f"{context['recipient']}\nConnection: {context['connection']}\n"
                        f"Message id: {context['id']}\n")
    client = smtplib.SMTP_SSL if relay.ssl else smtplib.SMTP
    with client(relay.host, relay.port, timeout=relay.timeout) as smtp:
        if relay.starttls and not relay.ssl:
            smtp.starttls(context=ssl.create_default_context())
        if relay.username:
            smtp.login(relay.username, relay.password)
        smtp.send_message(message)


def post_json(url: str, context: dict) -> None:
    import urllib.request
    body = json.dumps({"event": "inbound_sms", **context}).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        if not 200 <= answer.status < 300:
            raise ValueError(f"HTTP {answer.status}")


def _glob(number: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(number, pattern) or \
        fnmatch.fnmatchcase(number.lstrip("+"), pattern.lstrip("+"))


def _actions(rule: RuleConfig) -> list[str]:
    names = [("forward_email", rule.forward_email), ("forward_url", rule.forward_url),
             ("forward_to", rule.forward_to), ("autoreply", rule.autoreply)]
    return [name for name, value in names if value]
