"""Waiting for a Future without blocking the event-loop HTTP front.

The loop server (web/loop_server.py) runs each request's bottle handler in a greenlet on the
loop's thread. When such a handler waits for the journal (a group commit), `wait` hands the
Future to the loop and switches away; the loop resumes the handler once the commit has
completed. Everywhere else (modem workers, the dispatcher, tests) `wait` simply blocks.
So every dialect's handler stays plain synchronous code and never blocks the loop.
"""

from __future__ import annotations

import logging
import sys
import threading
from concurrent.futures import Future

log = logging.getLogger("appliance.store")

_settling = threading.local()


class Suspendable:
    """Marker base: a greenlet that may hand a Future to its parent and be resumed later."""


def current_suspendable():
    """The request greenlet we are running in, or None (greenlet only imported when used)."""
    getcurrent = _getcurrent or _find_getcurrent()
    if getcurrent is None:
        return None
    current = getcurrent()
    return current if isinstance(current, Suspendable) else None


# greenlet.getcurrent, kept once greenlet is fully imported: current_suspendable runs twice
# per journal write, and the lookup below cost more than the call itself.
_getcurrent = None


def _find_getcurrent():
    # No loop server in this process: nothing can suspend. Nor while another thread is still
    # importing greenlet (the HTTP front starts after the modem workers): the module is in
    # sys.modules half made, and no greenlet runs yet. A worker's journal write at that
    # moment raised AttributeError and left an SMS stored on the SIM unread.
    global _getcurrent
    _getcurrent = getattr(sys.modules.get("greenlet"), "getcurrent", None)
    return _getcurrent


def wait(future: Future, timeout: float | None = None):
    """The Future's result (or exception); yields to the loop inside a request greenlet."""
    task = current_suspendable()
    if task is None:
        return future.result(timeout)
    return task.parent.switch((future, timeout))


def offload(fn, *args):
    """Run a CPU-heavy or blocking call (scrypt, a file write) off the loop's thread when in a
    request greenlet, so the other connections are served meanwhile; plain call elsewhere."""
    task = current_suspendable()
    if task is None:
        return fn(*args)
    return wait(task.executor.submit(fn, *args))


_waiting_pool = None


def blocking(fn, *args):
    """Run a call that waits for long (a USSD answer from a modem worker, a read that scans
    the journal: `Journal.long_query`) off the loop when in a request greenlet, in a small
    pool of its own, so neither the other connections nor the scrypt offload wait behind
    it; plain call elsewhere."""
    task = current_suspendable()
    if task is None:
        return fn(*args)
    global _waiting_pool
    if _waiting_pool is None:
        from concurrent.futures import ThreadPoolExecutor
        _waiting_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="http-wait")
    return wait(_waiting_pool.submit(fn, *args))


class settling:
    """Around the writer's settling of one commit's Futures: a wake-up asked for inside
    (`after_settling`) runs once, at the end. Without it the loop thread woke at the first
    settled Future, took the GIL while the writer was still settling the others, and the
    two threads handed the GIL back and forth once per request (several wake-ups per
    commit); now the loop resumes every handler of the commit in one pass."""

    def __enter__(self):
        self._outer = getattr(_settling, "pending", None) is not None
        if not self._outer:
            _settling.pending = []
        return self

    def __exit__(self, *exc_info):
        if not self._outer:             # an inner block leaves the wake-ups to the outer
            pending, _settling.pending = _settling.pending, None
            for fn in pending:
                try:
                    fn()
                except Exception:   # a waiter's bug (a loop closed meanwhile) must not stop
                    log.exception("store: a wake-up after a commit failed")   # the writer
        return False


def after_settling(fn) -> None:
    """`fn()` now, or at the end of the `settling` block this thread is in."""
    pending = getattr(_settling, "pending", None)
    if pending is None:
        fn()
    else:
        pending.append(fn)
