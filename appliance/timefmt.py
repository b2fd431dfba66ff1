"""Date formats the Ozeki dialects use, shared by the web layer and the notifier."""

from __future__ import annotations

import time


def ozeki_time(epoch: float | None, *, dotted: bool = False) -> str:
    """`2008-01-16 10:04:00` (receivemessage) or `2011.10.17. 13:10:26` (getmessagebyid)."""
    if not epoch:
        return ""
    fmt = "%Y.%m.%d. %H:%M:%S" if dotted else "%Y-%m-%d %H:%M:%S"
    return time.strftime(fmt, time.localtime(epoch))
