"""A modem worker's requests, and one wait for a request or a line from the modem.

An idle worker polled: it waited 0.1 s for a request, then looked at the port, about ten
wake-ups a second per modem for nothing (0.5 % of a core for four modems here, several
times that on a Pi). Now it sleeps in one poll() on the port and on a pipe that every
request writes a byte to, so a part, a USSD code or a +CMTI wakes it at once and an idle
modem wakes only for its timers. A port without a descriptor (pyserial's loop://) is
looked at every 0.1 s as before.
"""

from __future__ import annotations

import os
import queue
import select
import weakref

FALLBACK_POLL = 0.1      # seconds, for a port poll() cannot watch


class Inbox(queue.Queue):
    """A queue whose puts wake `wait`."""

    def __init__(self):
        super().__init__()
        self._read_end, self._write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        # a worker replaced through the API drops its inbox: the pipe goes with it
        weakref.finalize(self, _close, self._read_end, self._write_end)

    def _put(self, item) -> None:          # under the queue's lock
        super()._put(item)
        self.wake()

    def wake(self) -> None:
        """Ends a `wait` now (a put does it; a stop calls it)."""
        try:
            os.write(self._write_end, b"!")
        except BlockingIOError:            # the pipe holds wake-ups enough already
            pass

    def wait(self, port_fd: int | None, timeout: float) -> bool:
        """Returns when a request waits, `port_fd` is ready, or `timeout` passed; True if
        the port is ready (readable, or hung up: the caller's read then says which)."""
        if self.qsize():
            return False
        watch = select.poll()              # not select(): no limit on descriptor numbers
        watch.register(self._read_end, select.POLLIN)
        if port_fd is None:
            timeout = min(timeout, FALLBACK_POLL)
        else:
            watch.register(port_fd, select.POLLIN)
        try:
            ready = dict(watch.poll(max(0.0, timeout) * 1000))
        except OSError:                    # interrupted: the caller loops
            return False
        if self._read_end in ready:
            self._forget_wakeups()
        return port_fd is not None and port_fd in ready

    def _forget_wakeups(self) -> None:
        try:
            while os.read(self._read_end, 4096):
                pass
        except BlockingIOError:
            pass


def _close(*fds: int) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
