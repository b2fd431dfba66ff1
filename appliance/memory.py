"""glibc malloc settings that keep the daemon's RSS flat on a small Pi.

scrypt (16 MiB per credential check) frees a large block; glibc then raises its mmap
threshold, so the next 16 MiB comes from the heap and stays in RSS for good (measured: idle
35 MiB -> 52 MiB after the first logins). A fixed 1 MiB threshold returns such blocks to the
kernel at once; two arenas stop each thread growing its own heap. Called before any thread
starts; does nothing off glibc. mallopt is looked up in the process's own symbols
(dlopen(NULL): libc is always loaded), not with ctypes.util.find_library, which runs
`ldconfig -p` in a child process at every start (~18 ms here, more on a Pi).

A large request (a 20,000-message batch: ~40 MiB of Python objects for a moment) leaves
freed memory in holes of glibc's heap, where no threshold returns it (the daemon's [heap]
stayed at 11 MiB after such a batch, 5 idle). `trim` (glibc's malloc_trim(0)) hands every
free page of every arena back to the kernel (back to 6 MiB); the loop HTTP front calls it
once nothing is in flight after such a request. pymalloc's partly used arenas stay.
"""

from __future__ import annotations

import ctypes
import logging
import time

log = logging.getLogger("appliance.daemon")

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def _libc(name: str):
    """A function of the C library the process runs on, or None (not glibc, no such symbol)."""
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None


def tune_malloc(mmap_threshold: int = 1 << 20, arenas: int = 2) -> bool:
    mallopt = _libc("mallopt")
    if mallopt is None:
        return False
    ok = mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1
    ok = mallopt(M_ARENA_MAX, arenas) == 1 and ok
    if not ok:
        log.debug("memory: mallopt refused the settings")
    return ok


_malloc_trim = None


def trim() -> float | None:
    """Return the free pages of every malloc arena to the kernel. The seconds it took, or
    None off glibc."""
    global _malloc_trim
    if _malloc_trim is None:
        _malloc_trim = _libc("malloc_trim") or False
    if not _malloc_trim:
        return None
    started = time.perf_counter()
    _malloc_trim(0)
    return time.perf_counter() - started
