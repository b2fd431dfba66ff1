"""The fsync of the journal's WAL, off the writer thread: the writer runs the next batch's
statements while the previous commit is being made durable.

With `synchronous=FULL` SQLite calls fdatasync inside COMMIT, so the writer thread did
statements, COMMIT, fsync, one after the other, and under load every batch waited for the
fsync of the one before it to end before its first statement ran. The writer's connection now
commits with `synchronous=NORMAL` (in WAL mode: the frames are written at COMMIT, synced at
checkpoints; the journal stays consistent after a power cut, SQLite's guarantee) and this
thread adds the durability: it fdatasyncs the WAL after each commit and only then settles the
commit's writes. An API answer, a claim handed to a channel, a result recorded: each still
follows the fsync that made it durable, as before.

At most one commit waits for its fsync at a time (`wait_idle` before the next COMMIT): the
batch is whatever arrived while that fsync ran, as large as before, and the statements of
the next one overlap it. Checkpoints run on the Checkpointer's own `synchronous=FULL`
connection, which syncs the WAL before copying it and the journal file after, so a WAL
restart never outruns the file it was copied into.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from appliance import suspend
from appliance.errors import StoreError

log = logging.getLogger("appliance.store")


class WalSync:
    """A thread that fdatasyncs the WAL file and then settles the writes it made durable."""

    def __init__(self, wal_path: str, fsync_seconds, *, fdatasync=os.fdatasync):
        self._wal_path = wal_path
        self._fdatasync = fdatasync               # tests hold it to see what waits for it
        self._fsync_seconds = fsync_seconds       # a Histogram, read by /metrics
        self._fd: int | None = None
        self._cond = threading.Condition(threading.Lock())
        self._waiting: list = []                  # (batch, results) committed, not yet synced
        self._busy = False
        self._stopping = False
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="store-sync", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def hand(self, batch: list, results: list) -> None:
        """From the writer, right after COMMIT: settle these once the WAL is on disk."""
        with self._cond:
            self._waiting.append((batch, results))
            self._cond.notify_all()

    def sync_here(self, batch: list, results: list) -> None:
        """From the writer, right after COMMIT, when nothing else is queued: sync and settle
        in the writer's own thread (a single client's request is not handed to a second
        thread and back: at c=1 that cost ~10 % more CPU per message)."""
        with self._cond:
            self._busy = True
        try:
            self._sync_and_settle([(batch, results)])
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def wait_idle(self) -> None:
        """From the writer, before COMMIT: until every commit handed over is durable."""
        with self._cond:
            while (self._waiting or self._busy) and self._thread.is_alive():
                self._cond.wait(1.0)

    def stop(self) -> None:
        """After the writer's last commit: sync what is left, then end."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(30)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._stopping:
                    self._cond.wait()
                if not self._waiting:
                    return
                taken, self._waiting = self._waiting, []
                self._busy = True
            try:
                self._sync_and_settle(taken)
            except Exception:   # a bug here must not leave every later write unsettled
                log.exception("store: settling synced writes failed")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _sync_and_settle(self, taken: list) -> None:
        error = self._sync()
        with suspend.settling():            # the loop front is woken once, after all of them
            for batch, results in taken:
                settle(batch, results, error)

    def _sync(self) -> StoreError | None:
        """fdatasync the WAL; None, or the error every write of these commits gets."""
        started = time.perf_counter()
        try:
            if self._fd is None or os.fstat(self._fd).st_nlink == 0:
                self._reopen()      # the first sync, or a WAL file removed and made again
            self._fdatasync(self._fd)
        except OSError as exc:
            if not self._failing:
                log.error("store: the journal's WAL could not be synced: %s", exc)
            self._failing = True
            # committed but maybe not on disk: the caller is told so (a retry may send twice,
            # which beats an acknowledged message lost in a power cut)
            return StoreError(f"commit not synced to disk: {exc}")
        if self._failing:
            log.info("store: the journal's WAL syncs again")
            self._failing = False
        self._fsync_seconds.observe(time.perf_counter() - started)
        return None

    def _reopen(self) -> None:
        """Open the WAL file by its name: SQLite keeps it while a connection is open, so one
        open serves the daemon's life; a deleted one (no name left) would sync nothing."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._fd = os.open(self._wal_path, os.O_RDONLY | os.O_CLOEXEC)


def settle(batch: list, results: list, error: StoreError | None = None) -> None:
    """Each write's (value, error) outcome, or `error` for every one of them; the loop front
    is woken once, after all of them (inside the caller's `suspend.settling()`)."""
    if error is not None:
        results = [(None, error)] * len(batch)
    for (_, future), (value, failed) in zip(batch, results, strict=True):
        future.settle(value, failed)
