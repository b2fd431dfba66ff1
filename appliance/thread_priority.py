"""Per-thread OS settings: the threads' names, and the threads that work in batches and
that no request waits on step aside for the others.

Names: Python 3.11 names its threads only for itself, so `top -H`, `ps -L` and htop showed
a dozen `python` threads on a busy box. `name_for_os` gives each its own (`store-writer`,
`modem-slot1`, `smpp-SMPP0`: the first 15 bytes) through /proc/self/task/TID/comm, which
Linux lets a process write for its own threads.

Priorities:

The dispatcher (a claim of a few hundred parts) and the store's checkpointer batch their
work. The SMPP link's thread, the modems' threads and the HTTP loop answer one PDU or request
at a time while a peer waits. When every core was busy, the kernel let a batching thread
finish its slice while the link's thread, woken by the SMSC's answers, waited for a core:
the window ran dry. Linux gives each thread a nice value of its own, so these two run at
nice 19. That changes nothing while a core is free; it decides only who waits when none is.

The store's writer batches too, and lowering it gained most in the drain, but an HTTP answer
waits for its commit. Measured on 2 cores, alternating runs: with the writer also at nice
19 the backlog drained at 5,277-5,456 submit_sm/s against 4,783-5,186 (`bench/uplink.py
--backlog 50000 10 0 3`: drain/alone median 0.87-0.88 against 0.80-0.82), but intake
(`bench/vs_kannel.py`) fell 3-4 % at c=8 and c=32 and its p99 rose in one round of two
(7.2 against 4.1 ms at c=8, 13.9 against 6.8 at c=32). So the writer keeps its priority.
nice 10 gained half as much as 19; SCHED_BATCH nothing. The dispatcher and checkpointer
alone moved the drain within the noise (4,940-5,283 against 4,856-5,239 submit_sm/s, median
drain/alone 0.86 against 0.83): they stay at 19 because nothing waits on them.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger("appliance.daemon")

BACKGROUND_NICE = 19        # the lowest priority a thread can have


def step_aside(threads: list[threading.Thread]) -> list[str]:
    """Lower each running thread to BACKGROUND_NICE; the names of those lowered. Raising a
    nice value needs no privilege; an OS without per-thread nice values lowers none."""
    if not hasattr(os, "setpriority"):
        return []
    lowered = []
    for thread in threads:
        tid = thread.native_id
        if tid is None or not thread.is_alive():
            continue
        try:
            os.setpriority(os.PRIO_PROCESS, tid, BACKGROUND_NICE)
        except OSError as exc:       # a sandbox that forbids it: run as before
            log.debug("daemon: %s keeps its priority: %s", thread.name, exc)
            continue
        lowered.append(thread.name)
    return lowered


COMM_BYTES = 15                 # what the kernel keeps of a thread's name
_told_os: dict[int, str] = {}   # native thread id -> the name the OS has for it


def name_for_os(threads: list[threading.Thread] | None = None) -> int:
    """Tell the OS each live thread's name (all of them by default); how many were new.
    Cheap to repeat: a thread is written once per name (the daemon asks every 2 s, so the
    threads a recovery or a new connection starts get theirs too)."""
    threads = threading.enumerate() if threads is None else threads
    told = 0
    for thread in threads:
        if thread is threading.main_thread():
            continue                # its name is the process's (ps, pgrep, systemd)
        tid = thread.native_id
        name = thread.name.encode("utf-8", "replace")[:COMM_BYTES].decode("utf-8", "ignore")
        if tid is None or _told_os.get(tid) == name:
            continue
        try:
            with open(f"/proc/self/task/{tid}/comm", "w", encoding="utf-8") as comm:
                comm.write(name)
        except OSError:             # ended meanwhile, or no /proc (not Linux)
            continue
        _told_os[tid] = name
        told += 1
    if len(_told_os) > 4 * len(threads) + 64:      # ids of threads that ended
        alive = {t.native_id for t in threads}
        for tid in [t for t in _told_os if t not in alive]:
            del _told_os[tid]
    return told
