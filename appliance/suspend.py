"""Waiting for a Future without blocking the event-loop HTTP front.

The loop server (web/loop_server.py) runs each request's bottle handler in a greenlet on the
loop's thread. When such a handler waits for the journal (a group commit), `wait` hands the
Future to the loop and switches away; the loop resumes the handler once the commit has
completed. Everywhere else (modem workers, the dispatcher, tests) `wait` simply blocks.
So every dialect's handler stays plain synchronous code and never blocks the loop.
"""

from __future__ import annotations

from concurrent.futures import Future


class Suspendable:
    """Marker base: a greenlet that may hand a Future to its parent and be resumed later."""


def current_suspendable():
    """The request greenlet we are running in, or None (greenlet only imported when used)."""
    import sys
    greenlet = sys.modules.get("greenlet")
    if greenlet is None:          # no loop server in this process: nothing can suspend
        return None
    current = greenlet.getcurrent()
    return current if isinstance(current, Suspendable) else None


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
    """Run a call that waits on another thread for long (a USSD answer from a modem worker)
    off the loop when in a request greenlet, in a small pool of its own, so neither the
    other connections nor the scrypt offload wait behind it; plain call elsewhere."""
    task = current_suspendable()
    if task is None:
        return fn(*args)
    global _waiting_pool
    if _waiting_pool is None:
        from concurrent.futures import ThreadPoolExecutor
        _waiting_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="http-wait")
    return wait(_waiting_pool.submit(fn, *args))
