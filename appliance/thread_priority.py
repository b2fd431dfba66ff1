"""Threads that work in batches step aside for the ones a peer is waiting on.

The store's writer (a group commit at a time), its checkpointer and the dispatcher (a claim
of a few hundred parts) batch their work. The SMPP link's thread, the modems' threads and
the HTTP loop answer one PDU or request at a time while a peer waits. When every core was
busy, the kernel let the writer finish its slice in the middle of a commit while the link's
thread, woken by the SMSC's answers, waited for a core: the window ran dry. Linux gives each
thread a nice value of its own, so these three run at nice 19. That changes nothing while a
core is free; it decides only who waits when none is.

Measured on 2 cores, `bench/uplink.py --backlog 50000 10 0 3` (alternating runs, 9 drains
each): the backlog drained at 5,290-5,902 submit_sm/s against 4,793-5,072 (drain/alone
0.86-0.89 against 0.81-0.84). The HTTP intake waits for the writer's commit, and it paid
for this: `bench/vs_kannel.py` c=8 3,655-3,720 accepted/s against 3,791-3,858 (about -3 %,
p99 4.7 against 4.4 ms); c=32 within the noise. nice 10 gained less than half as much.
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
