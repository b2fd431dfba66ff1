"""Webhook receivers: `POST /hooks/alertmanager`, `/hooks/grafana` and `/hooks/json/<name>`.

Authenticated by HTTP Basic with an appliance user or by the hook's `token=`, behind the
hook's IP allow list. One SMS per notification and recipient, from a template; a per-hook
rate limit and dedupe window keep an alert storm to a few SMS. The answer (200) is written
only after the messages are durably accepted; a store that cannot accept answers 503, so
Alertmanager and Grafana retry.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections import OrderedDict, deque

import bottle

from appliance.accounts import AuthError, in_networks
from appliance.errors import StoreError
from appliance.integrations import intake, payloads, settings, template
from appliance.logmask import masked
from appliance.web.params import client_address
from appliance.web.refusals import mark_logged

log = logging.getLogger("appliance.integrations")

MAX_BODY = 1024 * 1024
DEDUPE_KEYS = 1024
DEFAULT_TEMPLATES = {"alertmanager": settings.ALERTMANAGER_TEMPLATE,
                     "grafana": settings.GRAFANA_TEMPLATE}


class Refusal(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class Gate:
    """Per-hook rate limit and dedupe window, in memory and bounded (a restart forgets them:
    at worst one repeated SMS)."""

    def __init__(self, clock):
        self.clock = clock
        self._lock = threading.Lock()
        self._sent: dict[str, deque] = {}
        self._seen: dict[str, OrderedDict] = {}
        self.suppressed: dict[str, int] = {}
        self.duplicates: dict[str, int] = {}

    def admit(self, hook: settings.HookConfig, key: str, signature: str = "") -> str:
        """"send", "duplicate" or "rate_limited"; a "send" is counted against the limit.
        A duplicate is the same `signature` (the alerts and their states) as the last
        notification sent for `key` (the group and its recipients), within the window: a
        group that resolved and fired again, or resolved in part, is news."""
        now = self.clock.monotonic()
        with self._lock:
            seen = self._seen.setdefault(hook.name, OrderedDict())
            last = seen.get(key)
            if last is not None and last[1] == signature and hook.dedupe_seconds \
                    and now - last[0] < hook.dedupe_seconds:
                self.duplicates[hook.name] = self.duplicates.get(hook.name, 0) + 1
                return "duplicate"
            sent = self._sent.setdefault(hook.name, deque())
            while sent and now - sent[0] >= 60.0:
                sent.popleft()
            if hook.rate_limit_per_minute and len(sent) >= hook.rate_limit_per_minute:
                self.suppressed[hook.name] = self.suppressed.get(hook.name, 0) + 1
                return "rate_limited"
            sent.append(now)
            seen[key] = (now, signature)
            seen.move_to_end(key)
            while len(seen) > DEDUPE_KEYS:
                seen.popitem(last=False)
            return "send"

    def forget(self, hook: settings.HookConfig, key: str) -> None:
        """The messages could not be stored: the sender's retry must not look like a repeat."""
        with self._lock:
            self._seen.get(hook.name, {}).pop(key, None)
            sent = self._sent.get(hook.name)
            if sent:
                sent.pop()

    def take_suppressed(self, hook_name: str) -> int:
        with self._lock:
            return self.suppressed.pop(hook_name, 0)

    def restore_suppressed(self, hook_name: str, count: int) -> None:
        if count:
            with self._lock:
                self.suppressed[hook_name] = self.suppressed.get(hook_name, 0) + count


def register(app: bottle.Bottle, services) -> None:
    gate = Gate(services.clock)
    services.control.hook_gate = gate

    @app.route("/hooks/alertmanager", method="POST")
    def alertmanager():
        return _answer(services, "alertmanager",
                       lambda: _receive(services, gate, "alertmanager", "alertmanager"))

    @app.route("/hooks/grafana", method="POST")
    def grafana():
        return _answer(services, "grafana",
                       lambda: _receive(services, gate, "grafana", "grafana"))

    @app.route("/hooks/json/<name>", method="POST")
    def generic(name):
        return _answer(services, name, lambda: _receive(services, gate, "json", name))


def _answer(services, name: str, work) -> str:
    bottle.response.content_type = "application/json"
    try:
        body = work()
    except Refusal as refusal:
        services.refusals.note_error(f"hook {name[:40]}", client_address(bottle.request),
                                     refusal, f"{refusal.status} {refusal.message}")
        bottle.response.status = refusal.status
        for key, value in refusal.headers.items():
            bottle.response.set_header(key, value)
        body = {"status": "error", "error": refusal.message}
    return json.dumps(body)


def _receive(services, gate: Gate, kind: str, name: str) -> dict:
    hook = _hook(services, kind, name)
    request = bottle.request
    user = _authenticate(services, hook, request)
    payload = _payload(request)
    context = _context(kind, payload)
    recipients, unknown = _recipients(services, hook, request, context, user)
    group, signature = payloads.dedupe_key(kind, payload, context)
    key = f"{group}|{','.join(sorted(recipients))}"       # another receiver's copy is no repeat
    verdict = gate.admit(hook, key, signature)
    if verdict != "send":
        log.info("hook %s: %s notification for %s dropped (%s)", hook.name,
                 context.get("status", ""), user, verdict.replace("_", " "))
        return {"status": verdict, "messages": 0}
    held = gate.take_suppressed(hook.name)
    text = _text(hook, context, held)
    try:
        outcome = intake.submit(services, user=user, recipients=recipients, text=text,
                                priority=hook.priority, dialect=f"hook:{kind}")
    except StoreError as exc:
        gate.forget(hook, key)
        gate.restore_suppressed(hook.name, held)
        log.error("hook %s: store cannot accept: %s", hook.name, exc)
        raise mark_logged(Refusal(503, "the appliance cannot store messages now; retry",
                                  {"Retry-After": "30"})) from None
    refused = list(outcome.refused) + [(entry, "neither a phone number nor an address-book"
                                       " group with a phone") for entry in unknown]
    log.info("hook %s: %s from %s: %d SMS accepted, %d refused", hook.name,
             context.get("status", "notification"), user, len(outcome.ids), len(refused))
    if not outcome.ids and outcome.refused:
        # nothing left: the held-back count waits for the next SMS that does, and the same
        # notification sent again (credit topped up, number off the DND list) is no duplicate
        gate.forget(hook, key)
        gate.restore_suppressed(hook.name, held)
        raise mark_logged(Refusal(422, "; ".join(f"{masked(n)}: {r}"      # the intake noted them
                                                 for n, r in outcome.refused)), counted=True)
    return {"status": "accepted", "messages": len(outcome.ids), "ids": outcome.ids,
            "refused": [{"recipient": n, "reason": r} for n, r in refused]}


def _hook(services, kind: str, name: str) -> settings.HookConfig:
    hook = settings.of(services.config).hook(kind, name)
    if hook is not None:
        return hook
    if kind == "json":
        raise Refusal(404, f"no JSON hook named {name[:40]!r} is configured")
    return settings.HookConfig(name=kind, kind=kind)   # Basic auth and ?to= only


def _authenticate(services, hook: settings.HookConfig, request) -> str:
    address = client_address(request)
    if hook.ip_allow and not in_networks(address, hook.ip_allow):
        log.warning("hook %s: refused client %s (not in ip_allow)", hook.name, address)
        raise mark_logged(Refusal(403, "this address may not use the hook"))
    token = request.query.get("token", "")
    if token:
        if hook.token and hmac.compare_digest(token.encode(), hook.token.encode()):
            return hook.user
        log.warning("hook %s: wrong token from %s", hook.name, address)
        raise mark_logged(Refusal(401, "wrong token"))
    credentials = request.auth
    if not credentials or not credentials[0]:
        raise Refusal(401, "authentication required (HTTP Basic or ?token=)",
                      {"WWW-Authenticate": 'Basic realm="sms-appliance"'})
    try:
        user = services.accounts.authenticate(credentials[0], credentials[1] or "", address)
    except AuthError as exc:
        log.warning("hook %s: login of %s from %s failed (%s)", hook.name, credentials[0],
                    address, exc.kind)
        raise mark_logged(Refusal(401, "wrong user or password",
                                  {"WWW-Authenticate": 'Basic realm="sms-appliance"'})) from None
    allowed, _ = user.address_allowed(address)
    if not allowed:
        raise Refusal(403, "this address may not log in as this user")
    return user.name


def _payload(request):
    if (request.content_length or 0) > MAX_BODY:
        raise Refusal(413, f"the body is larger than {MAX_BODY} bytes")
    raw = request.body.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise Refusal(413, f"the body is larger than {MAX_BODY} bytes")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Refusal(400, f"the body is not JSON: {exc}") from None
    except RecursionError:      # [[[[…]]]]: valid JSON nested deeper than the parser goes
        raise Refusal(400, "the body is nested too deeply") from None


def _context(kind: str, payload) -> dict:
    try:
        if kind == "alertmanager":
            return payloads.alertmanager(payload)
        if kind == "grafana":
            return payloads.grafana(payload)
    except payloads.PayloadError as exc:
        raise Refusal(400, str(exc)) from None
    return payload if isinstance(payload, dict) else {"items": payload}


def _recipients(services, hook, request, context: dict,
                user: str) -> tuple[list[str], list[str]]:
    """(numbers, entries that are none): an empty group among the recipients (its last
    contact removed) must not keep the alert from the others; Alertmanager does not retry
    a 400."""
    if request.query.get("to", "").strip():
        entries = [_plus(e) for e in request.query.get("to").split(",")]
    elif hook.kind == "alertmanager" and isinstance(context.get("receiver"), str) \
            and context["receiver"] in hook.receivers:
        entries = list(hook.receivers[context["receiver"]])
    elif hook.to_template:
        entries = template.render(hook.to_template, context).split(",")
    else:
        entries = list(hook.to)
    numbers, unknown = intake.resolve_known(services, entries, user)
    if unknown:
        log.warning("hook %s: %s: neither a phone number nor an address-book group with a"
                    " phone; the others get the alert", hook.name,
                    ", ".join(repr(e[:40]) for e in unknown))
    if not numbers and unknown:
        raise mark_logged(Refusal(400, f"{unknown[0][:40]!r} is neither a phone number nor an"
                                       " address-book group"))
    if not numbers:
        raise Refusal(400, "no recipients: configure `to` for the hook or pass ?to=")
    return numbers, unknown


def _plus(entry: str) -> str:
    """`to=+3620…` typed into a URL unencoded arrives as " 3620…": the + was meant."""
    return "+" + entry.strip() if entry[:1] == " " and entry.strip()[:1].isdigit() else entry


def _text(hook: settings.HookConfig, context: dict, held: int) -> str:
    suffix = f" (+{held} held back by the rate limit)" if held else ""
    instances = context.get("instances")
    if not hook.template and instances and hook.kind in DEFAULT_TEMPLATES:
        # the default text ends "on host1, host2": a long summary is cut, not the hosts
        head = template.render(DEFAULT_TEMPLATES[hook.kind], {**context, "instances": ""})
        return intake.shorten(head, hook.max_chars, f" on {instances}{suffix}")
    text = template.render(hook.template or DEFAULT_TEMPLATES.get(hook.kind, ""), context)
    return intake.shorten(text or f"{hook.name} notification", hook.max_chars, suffix)

