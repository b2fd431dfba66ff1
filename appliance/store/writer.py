"""One writer thread owns every write to the journal and commits in groups.

Callers hand it a function `fn(conn)`; it runs everything queued so far inside one
transaction, each call inside its own savepoint (one failing call does not undo the others),
then commits once. That commit is one fsync (store/wal_sync.py) shared by every request
that arrived while the previous one was running: this is how an SD card takes thousands of
accepted messages a second while each of them is durable before its API answer.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from typing import Callable

from appliance import suspend
from appliance.errors import StoreError
from appliance.histogram import BATCH_BUCKETS, SECONDS_BUCKETS, Histogram
from appliance.store import wal_sync

log = logging.getLogger("appliance.store")

_STOP = object()

# A new journal's page size. Every commit writes each page it dirtied whole into the WAL
# (and a checkpoint writes it once more), and an accepted message dirties about a dozen
# B-tree pages: smaller pages are fewer bytes per message on the SD card. 512 is SQLite's
# smallest; against 1024 it wrote 0.73-0.76x the bytes per message at c=8 (0.74x with 1M
# queued) at the same CPU for one-part messages (bench/vs_kannel.py --page-sizes). A long
# message's rows spill into overflow pages: 3 parts 0.76x the bytes at ~5-10 % more writer
# CPU, 10 parts 0.89x the bytes at ~40 % more (bench/commit_cost.py --length,
# docs/architecture.md); alerts are mostly one part. Only a new file takes it: a journal
# made with another size keeps it (WAL mode cannot change it without a VACUUM).
PAGE_SIZE = 512
# The writer's own checkpoint runs inside a commit: only a backstop. The Checkpointer
# below does the work in a quiet moment on its own connection.
BACKSTOP_CHECKPOINT_PAGES = 20000
WAL_SIZE_LIMIT = 4 * 1024 * 1024     # after a checkpoint the WAL file is cut back to this
# Every reading thread (HTTP loop, dispatcher, modem workers, notifier) has its own
# connection, each with its own page cache (SQLite's default: 2 MiB). The OS caches the
# file anyway; a small cache per reader keeps RSS flat with a million messages queued.
READER_CACHE_KIB = 512
# The writer's own cache: what it touches is the right edges of the B-trees (accepts) and the
# head of the queue (claims, results), a few hundred pages. SQLite's default of 2 MiB filled
# up under load and stayed in RSS; 1 MiB: peak RSS at c=32 38.6-39.0 -> 37.4-37.6 MiB,
# writer CPU per message unchanged (bench/vs_kannel.py shape, alternating runs).
WRITER_CACHE_KIB = 1024


def connect(path: str, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection in WAL mode with full durability. Readers never block the writer."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    if not readonly:
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")    # a no-op unless the file is new
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA foreign_keys=ON")
    if readonly:
        conn.execute("PRAGMA query_only=ON")
        conn.execute(f"PRAGMA cache_size=-{READER_CACHE_KIB}")
    return conn


class Pending:
    """The outcome of one write, settled by the writer thread after its commit.

    A Future without concurrent.futures' Condition per object: the loop HTTP front only
    registers a callback, so a gate is made only when a thread blocks on it. The gate is a
    plain lock, held until the outcome is set: a blocked thread waits in one C call to
    acquire it, where a threading.Event cost a Condition, a waiter lock and about a dozen
    Python calls on both threads per request.
    """

    __slots__ = ("_done", "_value", "_error", "_callbacks", "_gate", "_lock", "_taken",
                 "_cancelled")

    def __init__(self):
        self._done = False
        self._taken = self._cancelled = False
        self._value = self._error = None
        self._callbacks: list | None = None
        self._gate = None       # a lock held until settled, made for the first blocked waiter
        self._lock = threading.Lock()

    def done(self) -> bool:
        return self._done

    def result(self, timeout: float | None = None):
        if not self._done:
            gate = self._waiter_gate()
            if gate is not None and not _pass(gate, timeout):
                if self.cancel():
                    raise TimeoutError("the store did not answer in time")
                _pass(gate, None)   # the writer is applying it: its outcome is coming
        if self._error is not None:
            raise self._error
        return self._value

    def _waiter_gate(self):
        """The gate to wait at, or None if the outcome is already set."""
        with self._lock:
            if self._done:
                return None
            if self._gate is None:
                self._gate = threading.Lock()
                self._gate.acquire()            # opened by `settle`
            return self._gate

    def exception(self):
        return self._error

    def cancel(self) -> bool:
        """Withdraw a write the writer has not started: True if it will never be applied
        (its waiter may then say "not stored, retry"); False once the writer has it, whose
        outcome is coming. A caller told "retry" must never find the message sent."""
        with self._lock:
            if self._taken or self._done:
                return False
            self._cancelled = True
            return True

    def take(self) -> bool:
        """The writer's side of `cancel`: False for a withdrawn write, which is skipped."""
        with self._lock:
            if self._cancelled:
                return False
            self._taken = True
            return True

    def add_done_callback(self, fn) -> None:
        with self._lock:
            if not self._done:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        fn(self)

    def set_result(self, value) -> None:
        self.settle(value, None)

    def set_exception(self, error: BaseException) -> None:
        self.settle(None, error)

    def settle(self, value, error: BaseException | None) -> None:
        """The outcome: `error` if it is not None, else `value`."""
        with self._lock:
            self._value, self._error = value, error
            self._done = True
            gate, callbacks = self._gate, self._callbacks
        if gate is not None:
            gate.release()
        for fn in callbacks or ():
            try:
                fn(self)
            except Exception:   # a waiter's bug must not stop the writer thread
                log.exception("store: a commit callback failed")


def _pass(gate, timeout: float | None) -> bool:
    """Wait until `gate` is opened (False at the timeout) and leave it open for any other
    thread waiting at it."""
    if not gate.acquire(True, -1 if timeout is None else max(timeout, 0.0)):
        return False
    gate.release()
    return True


class GroupWriter:
    """A thread that applies write functions in batches, one commit per batch."""

    def __init__(self, path: str, *, max_batch: int = 512, checkpoint_idle: float = 0.5,
                 checkpoint_commits: int = 400):
        self._path = path
        self.checkpointer = Checkpointer(path, self, idle=checkpoint_idle,
                                         every=checkpoint_commits)
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        # True from start() until the thread ends: a plain read on every write, where
        # Thread.is_alive() was three Python calls
        self._running = False
        self._conn: sqlite3.Connection | None = None
        self.commits = 0
        self.writes = 0
        self.batch_sizes = Histogram(BATCH_BUCKETS)          # read by /metrics
        self.commit_seconds = Histogram(SECONDS_BUCKETS)     # the fsync of a commit's WAL frames
        self._sync = wal_sync.WalSync(path + "-wal", self.commit_seconds)

    def start(self, init: Callable[[sqlite3.Connection], None]) -> None:
        self._conn = connect(self._path)
        # COMMIT writes the WAL frames; WalSync makes them durable before any write of the
        # commit is settled (store/wal_sync.py)
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_CHECKPOINT_PAGES}")
        self._conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        self._conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
        init(self._conn)
        self._running = True
        self._sync.start()
        self._thread.start()
        self.checkpointer.start()

    def submit(self, fn: Callable[[sqlite3.Connection], object]) -> Pending:
        future = Pending()
        if not self._running:
            future.set_exception(StoreError("the store is closed"))
            return future
        self._queue.put((fn, future))
        return future

    def call(self, fn: Callable[[sqlite3.Connection], object], timeout: float = 60.0):
        """Run `fn` in the writer and wait until it is durably committed. Inside a request
        of the loop HTTP front the wait yields the loop instead of blocking it, and the
        write reaches the writer with the others of the same loop iteration."""
        task = suspend.current_suspendable()
        if task is None:                # a plain thread: it blocks (suspend.wait would)
            return self.submit(fn).result(timeout)
        gather = getattr(task, "gather", None)
        if gather is None:
            return suspend.wait(self.submit(fn), timeout)
        future = Pending()
        gather(self.put_many, (fn, future))
        return suspend.wait(future, timeout)

    def put_many(self, items: list) -> None:
        """Queue several (fn, Pending) writes with one wake-up of the writer thread."""
        if not self._running:
            for _, future in items:
                future.set_exception(StoreError("the store is closed"))
            return
        self._queue.put(items)

    def alive(self) -> bool:
        return self._thread.is_alive() and self._sync.alive()

    def background_threads(self) -> list[threading.Thread]:
        """The checkpointer's thread (thread_priority.step_aside). Not the writer's own: an
        HTTP answer waits for its commit (at nice 19, intake at c=8 fell 3-4 %)."""
        return [self.checkpointer.thread]

    def stop(self) -> None:
        self.checkpointer.stop()
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(30)
        self._sync.stop()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # --- the thread ---

    def _run(self) -> None:
        try:
            while True:
                batch, stop = self._take_batch()
                if batch:
                    self._apply(batch)
                # not kept while waiting for the next one (a 20,000-message request's)
                batch = None
                if stop:
                    return
        finally:
            self._running = False

    def _take_batch(self) -> tuple[list, bool]:
        """Everything queued now, up to max_batch writes (a `put_many` list is taken whole);
        blocks only while the queue is empty."""
        item = self._queue.get()
        batch: list = []
        while True:
            if item is _STOP:
                return batch, True
            if item.__class__ is list:
                batch += item
            else:
                batch.append(item)
            if len(batch) >= self._max_batch:
                return batch, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, False

    def _apply(self, batch: list) -> None:
        batch = [item for item in batch if item[1].take()]     # not those timed out queued
        if not batch:
            return
        conn = self._conn
        results = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            if len(batch) == 1:
                results = [self._run_alone(conn, batch[0][0])]
            elif all(getattr(fn, "replayable", False) for fn, _ in batch):
                results = self._run_together(conn, batch)
            else:
                results = [self._run_one(conn, fn) for fn, _ in batch]
            self._sync.wait_idle()      # one commit waits for its fsync at a time
            conn.execute("COMMIT")
            self.batch_sizes.observe(len(batch))
        except sqlite3.Error as exc:
            log.error("store: commit of %d writes failed: %s", len(batch), exc)
            self._rollback(conn)
            error = StoreError(f"commit failed: {exc}")
            with suspend.settling():        # nothing was committed: nothing to sync
                wal_sync.settle(batch, results, error)
            results = None
        self.commits += 1
        self.writes += len(batch)
        if results is not None:             # committed: settled once the WAL is on disk
            if self._queue.empty():         # nothing to overlap the fsync with
                self._sync.sync_here(batch, results)
            else:
                self._sync.hand(batch, results)
        self.checkpointer.committed()

    @staticmethod
    def _run_alone(conn: sqlite3.Connection, fn) -> tuple[object, BaseException | None]:
        """The only write of its batch: no savepoint, a failure rolls the transaction back
        (and opens an empty one, so the COMMIT that follows writes nothing)."""
        try:
            return fn(conn), None
        except Exception as exc:
            GroupWriter._rollback(conn)
            conn.execute("BEGIN IMMEDIATE")
            return None, exc

    @classmethod
    def _run_together(cls, conn: sqlite3.Connection, batch: list) -> list:
        """Writes marked `replayable` (they change nothing but the database, like an accept)
        run without a savepoint each: two statements fewer per write, and as many fewer
        hand-overs of the GIL to the loop thread. If one of them fails, the transaction is
        rolled back and the batch runs again with a savepoint per write, so the failure
        still undoes only its own write."""
        try:
            return cls._run_merged(conn, [fn for fn, _ in batch])
        except Exception:
            cls._rollback(conn)
            conn.execute("BEGIN IMMEDIATE")
            return [cls._run_one(conn, fn) for fn, _ in batch]

    @staticmethod
    def _run_merged(conn: sqlite3.Connection, fns: list) -> list:
        """Consecutive writes with the same `together(conn, fns) -> values` run as one call
        of it (accepts: one multi-row INSERT per table for all of them, store/accepting.py)."""
        results: list = []
        at = 0
        while at < len(fns):
            together = getattr(fns[at], "together", None)
            end = at + 1
            while together is not None and end < len(fns) \
                    and getattr(fns[end], "together", None) is together:
                end += 1
            if end - at > 1:
                results += [(value, None) for value in together(conn, fns[at:end])]
            else:
                results.append((fns[at](conn), None))
            at = end
        return results

    @staticmethod
    def _run_one(conn: sqlite3.Connection, fn) -> tuple[object, BaseException | None]:
        conn.execute("SAVEPOINT one")
        try:
            value = fn(conn)
        except Exception as exc:  # the caller gets it; the other writes go on
            conn.execute("ROLLBACK TO one")
            conn.execute("RELEASE one")
            return None, exc
        conn.execute("RELEASE one")
        return value, None

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


class Checkpointer:
    """Copies the WAL back into the journal file in a quiet moment, off the commit path.

    SQLite's own auto-checkpoint runs inside the commit that crosses its threshold, so one
    request in a thousand waits for it; here a thread with its own connection runs a PASSIVE
    checkpoint (it never blocks the writer or a reader) once the writer has been idle for
    `idle` seconds, or after `every` commits under sustained load. Rarer checkpoints also
    write a page dirtied by many commits (the right edge of an index, a counter row) once.
    """

    def __init__(self, path: str, writer: GroupWriter, *, idle: float, every: int):
        self._path = path
        self._writer = writer
        self._idle = idle
        self._every = every
        self._done_at = 0                 # writer.commits at the last checkpoint
        self._failed_until = 0.0          # monotonic: after a failed checkpoint, wait until
        self._failures = 0
        self._last_commit = time.monotonic()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="store-checkpoint", daemon=True)
        self._conn: sqlite3.Connection | None = None
        self.checkpoints = 0

    def start(self) -> None:
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def committed(self) -> None:
        """From the writer thread, after each commit. Wakes the thread only to start its
        idle timer (the first commit since a checkpoint) or when a checkpoint is due."""
        self._last_commit = time.monotonic()
        pending = self._writer.commits - self._done_at
        if pending == 1 or pending >= self._every:     # start the idle timer, or act now
            self._wake.set()

    def due(self, now: float) -> bool:
        pending = self._writer.commits - self._done_at
        return pending >= self._every or (pending > 0 and now - self._last_commit >= self._idle)

    def run_once(self) -> tuple[int, int, int] | None:
        """One PASSIVE checkpoint: (busy, frames in the WAL, frames copied), or None."""
        if self._conn is None:
            self._conn = connect(self._path)
            self._conn.execute(f"PRAGMA cache_size=-{READER_CACHE_KIB}")
        commits = self._writer.commits
        try:
            row = tuple(self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())
        except sqlite3.Error as exc:
            # a full or failing disk: back off (1 s doubling to a minute), one line a failure
            # streak, or the thread spun on it (a helper counted 1,383 lines in 28 s)
            self._failures += 1
            self._failed_until = time.monotonic() + min(60.0, 2.0 ** (self._failures - 1))
            if self._failures == 1:
                log.warning("store: checkpoint failed: %s; retrying with back-off", exc)
            return None
        if self._failures:
            log.info("store: checkpoint works again after %d failures", self._failures)
            self._failures = 0
        self._done_at = commits
        self.checkpoints += 1
        return row

    def _timeout(self, now: float) -> float | None:
        """Sleep until the writer may have gone idle; with nothing to copy, until woken."""
        pending = self._writer.commits - self._done_at
        if pending == 0:
            return None
        if now < self._failed_until:
            return self._failed_until - now
        if pending >= self._every:
            return 0.0
        return max(0.0, self._last_commit + self._idle - now)

    def _run(self) -> None:
        try:
            while not self._stopping:
                self._wake.wait(self._timeout(time.monotonic()))
                self._wake.clear()
                now = time.monotonic()
                if not self._stopping and now >= self._failed_until and self.due(now):
                    self.run_once()
        finally:
            if self._conn is not None:
                self._conn.close()
