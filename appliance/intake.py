"""The one way into the store for every sender: API dialects, the dashboard, integrations
and the appliance's own alert SMS.

`prepare` checks one recipient's `Submission` (UTF-8, numbers, message type and parts via
`compose`, the do-not-disturb list, the default validity and the validity rules) and answers
a `NewMessage` carrying a new, effective copy of it: the caller's submission is never
changed. `submit_batch` prepares many, accepts the good ones in one durable commit, wakes the
dispatcher and answers one result per submission, in order.
"""

from __future__ import annotations

import logging

from appliance import compose
from appliance.errors import StoreError, ValidationError
from appliance.logmask import masked
from appliance.model import NewMessage, Priority, Submission
from appliance.web.gate import dnd_list     # the one way to reach the do-not-disturb list
from appliance.web.refusals import who

log = logging.getLogger("appliance.intake")

ALERT_USER = "admin"
ALERT_TEXT_MAX = 300


def prepare(services, sub: Submission, *, honour_dnd: bool = True) -> NewMessage:
    """Validate one recipient's submission under the appliance's policy. Raises
    ValidationError; the checks run in the order the dialects' answers were built on."""
    check_unicode(sub.text)
    now = services.clock.now()
    valid_until = effective_validity(services, sub, now)
    message = compose.prepare(sub, valid_until=valid_until, validity_relative=(
        valid_until is not None and sub.valid_until is None and sub.send_at is None))
    if honour_dnd:
        dnd_list(services).check(message.submission.recipient)
    check_validity(valid_until, sub.send_at, now)
    return message


def effective_validity(services, sub: Submission, now: float) -> float | None:
    """The sender's validity, or `[store] default_validity_hours` from the send time."""
    if sub.valid_until is not None:
        return sub.valid_until
    hours = services.config.store.default_validity_hours
    if hours and hours > 0:
        return max(sub.send_at or 0.0, now) + hours * 3600.0
    return None


def check_validity(valid_until: float | None, send_at: float | None, now: float) -> None:
    """The same rule for every sender: a message that may not leave any more is refused."""
    if valid_until is None:
        return
    if valid_until <= now:
        raise ValidationError("bad_validity", "the validity period is already over", "vp")
    if send_at is not None and valid_until <= send_at:
        raise ValidationError("bad_validity", "the validity period ends before the send time",
                              "vp")


def check_unicode(text) -> None:
    """Bytes that were not UTF-8 (kept as lone surrogates by web.params) or a lone surrogate
    from a JSON escape: refused, never sent as U+FFFD."""
    if not isinstance(text, str) or text.isascii():     # ASCII: known at once, no copy
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        detail = f"byte 0x{ord(bad) - 0xDC00:02X}" if 0xDC80 <= ord(bad) <= 0xDCFF else \
            f"lone surrogate U+{ord(bad):04X}"
        raise ValidationError("bad_text", f"the message text is not valid UTF-8 ({detail} at "
                              f"character {exc.start})", "messagedata") from None


def submit_batch(services, items, *, honour_dnd: bool = True,
                 sender: tuple[str, str] = ("", ""), logs_refusals: bool = False) -> list:
    """One result per item, in order: the accepted `NewMessage` (its `id` is the message id,
    its `submission` the effective values) or the ValidationError that refused it.

    An item is a `Submission`, or a ValidationError the dialect already hit while building
    it (kept in its place; `sender`, its (dialect, user), names it in the log). The good
    ones are accepted in one durable commit; StoreError and TimeoutError propagate, and then
    nothing of the batch was accepted. Every refusal is counted and the first of its kind
    logged (web/refusals.py), unless the caller `logs_refusals` itself."""
    results: list = []
    ready: list[int] = []
    for item in items:
        if isinstance(item, Submission):
            try:
                item = prepare(services, item, honour_dnd=honour_dnd)
                ready.append(len(results))
            except ValidationError as exc:
                _note_refused(services, item.dialect, item.user, exc, logs_refusals)
                item = exc
        elif isinstance(item, ValidationError):
            _note_refused(services, *sender, item, logs_refusals)
        results.append(item)
    if ready:
        accepted = services.journal.accept([results[i] for i in ready])
        services.wake()
        for index, outcome in zip(ready, accepted):
            if isinstance(outcome, ValidationError):
                sub = results[index].submission
                _note_refused(services, sub.dialect, sub.user, outcome, logs_refusals)
                results[index] = outcome
    return results


def _note_refused(services, dialect: str, user: str, exc: ValidationError,
                  logged: bool) -> None:
    services.refusals.note(dialect or "intake", who(user), exc.text or exc.code, kind=exc.code,
                           logged=logged)


def alert_sms(services, phone: str, text: str) -> str | None:
    """The administrator's alert SMS: priority ALERT, the default validity, a dispatcher wake.

    Not subject to the do-not-disturb list: the number is the operator's own on-call phone
    from `[admin] phone`, and an opt-out list kept for bulk senders (STOP replies) must not
    silence a modem-failure alert. A number that is on the list is said once per alert."""
    sub = Submission(user=ALERT_USER, recipient=phone, text=text[:ALERT_TEXT_MAX],
                     priority=Priority.ALERT, dialect="alert")
    try:
        (result,) = submit_batch(services, [sub], honour_dnd=False, logs_refusals=True)
    except (StoreError, TimeoutError) as exc:      # an alert must not take its caller down
        log.error("intake: alert SMS to %s not stored: %s", masked(phone), exc)
        return None
    if isinstance(result, ValidationError):
        log.error("intake: cannot send alert SMS to %s: %s", masked(phone), result.text)
        return None
    _warn_if_dnd(services, result.submission.recipient)
    return result.id


def _warn_if_dnd(services, number: str) -> None:
    try:
        dnd_list(services).check(number)
    except ValidationError:
        log.warning("intake: alert SMS sent to %s although it is on the do-not-disturb list "
                    "([admin] phone overrides it)", masked(number))
