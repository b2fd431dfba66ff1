"""Bad requests and refused messages in the log: a line for the first of each kind, then a count.

Every sender gets bad input answered in its own dialect's format; the operator needs to see it
too, once. The first refusal of a kind (the dialect, who sent it, the reason) is one WARNING
line; the same kind again within `QUIET_SECONDS` is only counted, and the next line for it
says how many were held back. Every refusal is counted for the daemon's periodic line
("N refused since the last line"). So a UPS or a script that sends a malformed number every
ten seconds is seen, and cannot fill the SD card with log lines.

Refusals already logged where they happen (a failed login, a stopped user, an address
outside a user's list) are counted here and not said again.
"""

from __future__ import annotations

import logging
import re
import threading

from appliance.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger("appliance.web")

QUIET_SECONDS = 600.0
MAX_KINDS = 256          # kinds remembered; the oldest is forgotten (and said again if it recurs)
MAX_REASON = 160         # characters of a reason in the log (it may quote what was sent)


class Refusals:
    """Counts refusals and logs the first of each kind. Thread-safe; nothing is kept per
    request, only per kind (at most MAX_KINDS)."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK, quiet_seconds: float = QUIET_SECONDS,
                 max_kinds: int = MAX_KINDS):
        self.clock = clock
        self.quiet_seconds = quiet_seconds
        self.max_kinds = max_kinds
        self._lock = threading.Lock()
        self._said: dict[tuple[str, str, str], list] = {}    # kind -> [said at, held back]
        self.total = 0
        self._reported = 0
        self._by_source: dict[str, int] = {}        # for /metrics: a handful of keys

    def note(self, dialect: str, who: str, reason: str, *, kind: str = "",
             logged: bool = False) -> None:
        """One refusal. `who` names the sender (a user, an address, or both); `kind` what
        makes two refusals alike (by default the reason); `logged`: the caller has logged it
        already, so it is only counted."""
        reason = _printable(str(reason))
        with self._lock:
            self.total += 1
            source = source_of(dialect)
            self._by_source[source] = self._by_source.get(source, 0) + 1
            if logged:
                return
            held = self._held_back((dialect, who, kind or reason))
        if held is None:
            return
        more = f" ({held} more like it since the last line about it)" if held else ""
        log.warning("%s: refused %s: %s%s", dialect, who or "a client", reason, more)

    def note_error(self, dialect: str, who: str, error: BaseException, reason: str) -> None:
        """A refusal raised as an exception: `login` marks the ones it logged, the intake
        the ones it noted already (`mark_logged`)."""
        marked = getattr(error, "refusal_logged", None)
        if marked != COUNTED:
            self.note(dialect, who, reason, logged=bool(marked))

    def by_source(self) -> dict[str, int]:
        """Refusals since the start per source (`source_of`), for sms_refused_total."""
        with self._lock:
            return dict(self._by_source)

    def since_last(self) -> int:
        """Refusals since the previous call (the daemon's periodic line)."""
        with self._lock:
            count, self._reported = self.total - self._reported, self.total
            return count

    def _held_back(self, kind: tuple[str, str, str]) -> int | None:
        """None: stay quiet; else say it now, with this many held back since (under _lock)."""
        now = self.clock.monotonic()
        entry = self._said.get(kind)
        if entry is not None and now - entry[0] < self.quiet_seconds:
            entry[1] += 1
            return None
        held = entry[1] if entry is not None else 0
        self._said.pop(kind, None)
        self._said[kind] = [now, 0]          # newest last: the oldest kinds go first
        while len(self._said) > self.max_kinds:
            del self._said[next(iter(self._said))]
        return held


COUNTED = "counted"


def mark_logged(error: BaseException, *, counted: bool = False) -> BaseException:
    """The refusal was logged where it was raised, so Refusals.note_error only counts it;
    `counted`: it was noted already (the intake's refusal of a message), so not even that."""
    error.refusal_logged = COUNTED if counted else True
    return error


def source_of(dialect: str) -> str:
    """A metric label from a dialect: `hook alertmanager`, `hook:grafana` and a JSON hook's
    own name are all `hook`, so a client cannot make new label values."""
    return "hook" if dialect.startswith("hook") else dialect


def who(user: str = "", address: str = "") -> str:
    """The sender as a log line names it: `user 'anna' from 10.0.0.5`."""
    named = f"user {user[:32]!r}" if user else ""
    return " from ".join(p for p in (named, address) if p)


_USERINFO = re.compile(r"//[^/@\s]*@")


def _printable(text: str) -> str:
    """One line, no control characters, no URL's user:password@: a reason may quote what
    was sent (a callback URL)."""
    text = _USERINFO.sub("//…@", text[:MAX_REASON])
    return text if text.isprintable() else "".join(c if c.isprintable() else "?" for c in text)
