"""glibc malloc settings that keep the daemon's RSS flat on a small Pi.

scrypt (16 MiB per credential check) frees a large block; glibc then raises its mmap
threshold, so the next 16 MiB comes from the heap and stays in RSS for good (measured: idle
35 MiB -> 52 MiB after the first logins). A fixed 1 MiB threshold returns such blocks to the
kernel at once; two arenas stop each thread growing its own heap. Called before any thread
starts; does nothing off glibc. mallopt is looked up in the process's own symbols
(dlopen(NULL): libc is always loaded), not with ctypes.util.find_library, which runs
`ldconfig -p` in a child process at every start (~18 ms here, more on a Pi).
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("appliance.daemon")

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def tune_malloc(mmap_threshold: int = 1 << 20, arenas: int = 2) -> bool:
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1
    ok = mallopt(M_ARENA_MAX, arenas) == 1 and ok
    if not ok:
        log.debug("memory: mallopt refused the settings")
    return ok
