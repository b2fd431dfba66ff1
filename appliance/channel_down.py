"""Whether a channel is known down: it will not send soon, so a message pinned to it need
not wait out the whole-message grace period (store/message_routes.py); and whether it can
send now, which a failover rule asks of its first choice (`can_send`).

Decided from the channel's own state only. States that mean "will not send soon":
- a modem worker `failed` (gave up), `held` (hourly reset cap reached: it waits up to an
  hour), `wrong_modem` (the port answers with another modem; it never sends until fixed),
  `stopped` (stopped by the operator or the appliance);
- an SMPP/HTTP/SMTP connection `stopped`, or one whose status says `failing` (SMPP: a bind
  refused or not kept, marked by the uplink itself; an HTTP Client or SMTP provider: down,
  and the probe after the failure failed too).
Busy, `probing`, `recovering`, SMPP `backoff`/`connecting` before it is marked failing, and a
provider's first `down` (one failed request, probed again after a short backoff) keep the
grace period: they are expected to send again soon, and resending whole would duplicate
parts.
"""

from __future__ import annotations

DOWN_STATES = frozenset({"failed", "held", "wrong_modem", "stopped"})
# A channel's state while it can send now: a modem or a provider `ready`, an uplink `bound`,
# an HTTP Server connection `listening` (its provider polls for what waits). The same set
# is "up" for /health, /metrics and systemd's STATUS line.
SENDING_STATES = frozenset({"ready", "bound", "listening"})


def _status(channel) -> dict | None:
    status_of = getattr(channel, "status", None)
    return status_of() if status_of is not None else None


def can_send(channel) -> bool:
    """Whether `channel` is in a state to send now (busy or not): what a failover rule asks
    of its first choice (routing.py). A channel without a status is taken as able."""
    status = _status(channel)
    return status is None or status.get("state", "ready") in SENDING_STATES


def known_down(channel) -> str:
    """Why `channel` will not send soon ('is failed', 'is failing'), or '' if it may."""
    status = _status(channel)
    if status is None:
        return ""
    state = status.get("state", "")
    if state in DOWN_STATES:
        return f"is {state}"
    if status.get("failing"):
        return "is failing"
    return ""
