"""Is the system clock synchronized? The kernel's own flag, as `timedatectl` reads it.

A Pi has no RTC: until NTP reaches a server its clock is the time it saved at shutdown.
An unsynchronized clock puts Ozeki's server-local times and `sendondate` schedules off, and
an SMPP validity period (absolute time) may already be over in the SMSC's eyes. NTP clients
(systemd-timesyncd, chrony) clear the kernel's STA_UNSYNC flag when they synchronize;
adjtimex(2) with no change requested reads it (TIME_ERROR while unsynchronized).
"""

from __future__ import annotations

import ctypes

TIME_ERROR = 5
TIMEX_BYTES = 512           # struct timex is 208 bytes on 64-bit Linux; room to spare
_adjtimex = None


def kernel_synchronized() -> bool | None:
    """True or False; None where the kernel cannot say (not Linux, no adjtimex)."""
    global _adjtimex
    if _adjtimex is None:
        try:
            _adjtimex = ctypes.CDLL(None, use_errno=True).adjtimex
        except (OSError, AttributeError):
            return None
    timex = ctypes.create_string_buffer(TIMEX_BYTES)    # modes 0: read only
    state = _adjtimex(timex)
    return None if state < 0 else state != TIME_ERROR
