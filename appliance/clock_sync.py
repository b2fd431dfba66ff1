"""Is the system clock synchronized? What `timedatectl` would say, read without privileges.

A Pi has no RTC: until NTP reaches a server its clock is the time it saved at shutdown.
An unsynchronized clock puts Ozeki's server-local times and `sendondate` schedules off, and
an SMPP validity period (absolute time) may already be over in the SMSC's eyes.

NTP clients (systemd-timesyncd, chrony) clear the kernel's STA_UNSYNC flag when they
synchronize; adjtimex(2) with no change requested reads it (TIME_ERROR while not). The
service's sandbox (ProtectClock=yes) refuses adjtimex even for reading, so there the answer
comes from systemd-timesyncd, which touches TIMESYNCD_FLAG at each synchronization (/run is
emptied at boot): no flag while timesyncd runs here means not synchronized yet.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

TIME_ERROR = 5
TIMEX_BYTES = 512           # struct timex is 208 bytes on 64-bit Linux; room to spare
TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")
TIMESYNCD_STATE = Path("/var/lib/systemd/timesync")     # timesyncd is in use on this system
_adjtimex = None


def synchronized(*, flag: Path = TIMESYNCD_FLAG, timesyncd_state: Path = TIMESYNCD_STATE,
                 kernel=None) -> bool | None:
    """True or False; None where neither the kernel nor timesyncd can say."""
    answer = (kernel or kernel_synchronized)()
    if answer is not None:
        return answer
    if flag.exists():
        return True
    return False if timesyncd_state.is_dir() else None


def kernel_synchronized() -> bool | None:
    """The kernel's flag; None where adjtimex is missing or refused (a sandbox)."""
    global _adjtimex
    if _adjtimex is None:
        try:
            _adjtimex = ctypes.CDLL(None, use_errno=True).adjtimex
        except (OSError, AttributeError):
            return None
    timex = ctypes.create_string_buffer(TIMEX_BYTES)    # modes 0: read only
    state = _adjtimex(timex)
    return None if state < 0 else state != TIME_ERROR
