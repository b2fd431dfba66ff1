"""Whether a channel is known down: it will not send soon, so a message pinned to it need
not wait out the whole-message grace period (store/message_routes.py).

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


def known_down(channel) -> str:
    """Why `channel` will not send soon ('is failed', 'is failing'), or '' if it may."""
    status_of = getattr(channel, "status", None)
    if status_of is None:
        return ""
    status = status_of()
    state = status.get("state", "")
    if state in DOWN_STATES:
        return f"is {state}"
    if status.get("failing"):
        return "is failing"
    return ""
