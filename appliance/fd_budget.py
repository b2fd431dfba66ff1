"""File descriptors: how many client connections the daemon may hold, and what it says when
it runs out anyway.

One process holds everything: the modems' ports, the SMPP links, the store's files, the
callbacks' sockets, the SMTP sessions and the HTTP clients. Two limits bind them all:

- the soft RLIMIT_NOFILE (1024 under systemd unless the unit raises it): past it every
  open() and accept() fails with EMFILE, so a LAN client that leaks connections would also
  stop a modem from being opened again after a USB reset, and a callback from being sent;
- FD_SETSIZE (1024): pyserial's read and the SMPP worker wait in select(), which cannot
  watch a descriptor numbered 1024 or more. Linux hands out the lowest free number, so
  while fewer than 1024 are open every new one is below it.

So client connections get what is left below both after a reserve for the rest.
"""

from __future__ import annotations

import logging
import resource
import time

log = logging.getLogger(__name__)

FD_SETSIZE = 1024
# the rest of the daemon: modems (2 each), SMPP links, the store (3 files a connection),
# callbacks (at most 64 sockets), SMTP sessions (MAX_SMTP_SESSIONS), logs, the venv's files
RESERVED = 256
MIN_CONNECTIONS = 16
MAX_SMTP_SESSIONS = 32         # LAN devices mailing alerts: a handful at once

ACCEPT_ERROR = "socket.accept() out of system resource"
# connections one listening socket accepts before the loop serves the others: each is a
# descriptor, and with 1024 a burst at the connection limit ran the process out of them
ACCEPTS_AT_ONCE = 64
NOTICE_EVERY = 60.0            # seconds between two log lines about one kind of refusal


def soft_limit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return FD_SETSIZE if soft == resource.RLIM_INFINITY else soft


def connection_budget(wanted: int) -> int:
    """How many HTTP connections may be open at once: `wanted`, or fewer when the limits
    above leave less (then at least MIN_CONNECTIONS, a limit set very low by hand)."""
    usable = min(soft_limit(), FD_SETSIZE) - RESERVED
    return min(wanted, max(MIN_CONNECTIONS, usable))


class Notice:
    """Counts refusals and lets one log line a minute report them: a flood of connections
    would otherwise write a line per connection. `count(kind)` returns the counts since the
    last line when one is due (and starts counting again), else None."""

    def __init__(self, monotonic=time.monotonic, *kinds: str, every: float = NOTICE_EVERY):
        self._monotonic = monotonic
        self._every = every
        self._counts = dict.fromkeys(kinds or ("refused",), 0)
        self._next = 0.0

    def count(self, kind: str = "refused") -> dict[str, int] | None:
        self._counts[kind] += 1
        now = self._monotonic()
        if now < self._next:
            return None
        said, self._counts = self._counts, dict.fromkeys(self._counts, 0)
        self._next = now + self._every
        return said


def quiet_accept_errors(loop, name: str, clock=None) -> None:
    """Out of descriptors, asyncio's accept loop (CPython 3.11) reports the error once for
    each of up to `backlog` tries, each second, with a traceback: 1,024 tracebacks a second,
    190 MB of log in 40 s and a core kept busy writing it. One line a minute says it."""
    notice = Notice(clock.monotonic if clock is not None else time.monotonic)

    def handler(loop, context) -> None:
        if context.get("message") != ACCEPT_ERROR:
            loop.default_exception_handler(context)
            return
        said = notice.count()
        if said is not None:
            log.warning("%s: cannot accept connections: %s (%d times since the last line; "
                        "open descriptors limit %d)", name, context.get("exception"),
                        said["refused"], soft_limit())

    loop.set_exception_handler(handler)
