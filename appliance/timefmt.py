"""Date formats the Ozeki dialects use, shared by the web layer and the notifier."""

from __future__ import annotations

import time

# 9999-12-31 23:59:59 UTC less the largest zone offset (+14:00): the last moment every time
# zone still shows within the year 9999. A date past it (a "never expires" validity, a far
# send date a client may give in a zone west of UTC) is shown as this moment: Python's
# datetime ends at the year 9999, and a local conversion past it failed (the daemon could not
# even start east of UTC when this was computed from a local date at import).
LAST_EPOCH = 253402300799 - 14 * 3600


def clamped(epoch: float) -> float:
    return min(epoch, LAST_EPOCH)


def ozeki_time(epoch: float | None, *, dotted: bool = False) -> str:
    """`2008-01-16 10:04:00` (receivemessage) or `2011.10.17. 13:10:26` (getmessagebyid)."""
    if not epoch:
        return ""
    fmt = "%Y.%m.%d. %H:%M:%S" if dotted else "%Y-%m-%d %H:%M:%S"
    return time.strftime(fmt, time.localtime(clamped(epoch)))
