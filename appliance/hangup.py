"""SIGHUP before the daemon's handler exists: noted, not fatal.

SIGHUP means "restart in place" (daemon.request_restart), but its default action ends the
process, and the daemon installs its handler only after the config is read and the state
opened. A `systemctl reload` right after start killed it there, and systemd took that for a
clean exit. `sms-appliance run` holds SIGHUP from its first import (stdlib only here) and
the daemon acts on one that came meanwhile: the config may have changed after it was read.
"""

from __future__ import annotations

import os
import signal

_arrived = False


def _note(_signum, _frame) -> None:
    global _arrived
    _arrived = True


def is_run(argv: list[str]) -> bool:
    """Whether this process is `sms-appliance run` (the entry point or `python -m appliance`)."""
    program = os.path.basename(argv[0]) if argv else ""
    words = [word for word in argv[1:] if not word.startswith("-")]
    return program in ("sms-appliance", "__main__.py") and words[:1] == ["run"]


def hold() -> None:
    """From now until the daemon takes SIGHUP over, one that comes is only noted. A restart
    in place blocks SIGHUP across its exec (block_for_exec): one pending is delivered here."""
    signal.signal(signal.SIGHUP, _note)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})


def block_for_exec() -> None:
    """Before a restart's exec: a SIGHUP stays pending in the new image (the mask and pending
    signals survive exec, a handler does not) until its hold() takes it."""
    signal.signal(signal.SIGHUP, _note)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})


def arrived() -> bool:
    """Whether a SIGHUP came while held; read once, as the daemon installs its handler."""
    global _arrived
    came, _arrived = _arrived, False
    return came
