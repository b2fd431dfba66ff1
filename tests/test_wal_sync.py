"""The writer's commits are made durable by WalSync (store/wal_sync.py): a write is settled
only after the fdatasync of the WAL holding it, and the next batch's statements run while
that fsync is under way. A held fdatasync shows what waits for it, on a real journal file."""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import threading

import pytest

from appliance.errors import StoreError
from appliance.store.writer import Pending


class HeldSync:
    """os.fdatasync for the journal's WalSync, held at a gate while `held` is set."""

    def __init__(self):
        self.held = threading.Event()
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.calls = 0
        self.fail_next = False

    def __call__(self, fd: int) -> None:
        self.calls += 1
        if self.held.is_set():
            self.entered.set()
            assert self.gate.wait(10)
        if self.fail_next:
            self.fail_next = False
            raise OSError(errno.EIO, "Input/output error")
        os.fdatasync(fd)


@pytest.fixture
def held(journal):
    sync = HeldSync()
    journal._writer._sync._fdatasync = sync
    yield sync
    sync.gate.set()


def insert(value, ran: threading.Event | None = None, wait: threading.Event | None = None):
    def fn(conn):
        if ran is not None:
            ran.set()
        if wait is not None:
            assert wait.wait(10)
        return conn.execute("INSERT INTO ledger(user, delta, reason, at)"
                            " VALUES ('s', ?, 'test', 0)", (value,)).lastrowid
    return fn


def committed_values(journal) -> list[int]:
    """What another connection sees in the file: committed, synced or not."""
    conn = sqlite3.connect(journal.path)
    try:
        return [r[0] for r in conn.execute("SELECT delta FROM ledger WHERE user='s' ORDER BY id")]
    finally:
        conn.close()


def test_a_write_is_settled_only_after_the_wal_holding_it_is_synced(journal, held):
    held.held.set()
    future = journal._writer.submit(insert(1))
    assert held.entered.wait(10)
    assert committed_values(journal) == [1]        # COMMIT has written it to the WAL
    assert not future.done()                       # but nobody is told before the fsync
    held.gate.set()
    assert isinstance(future.result(10), int)


def test_the_next_batch_runs_while_the_commit_before_it_is_synced(journal, held):
    writer = journal._writer
    first_ran, queued, second_ran = threading.Event(), threading.Event(), threading.Event()
    held.held.set()
    first = writer.submit(insert(1, ran=first_ran, wait=queued))
    assert first_ran.wait(10)       # taken alone; it commits with the second one queued
    second = Pending()
    writer.put_many([(insert(2, ran=second_ran), second)])
    queued.set()
    assert held.entered.wait(10)                    # the first commit's fsync, held
    assert second_ran.wait(10)                      # the second's statements ran meanwhile
    assert not first.done() and not second.done()
    assert committed_values(journal) == [1]         # its COMMIT waits for the first fsync
    held.held.clear()
    held.gate.set()
    assert isinstance(first.result(10), int)
    assert isinstance(second.result(10), int)
    assert committed_values(journal) == [1, 2]


def test_a_failed_sync_fails_its_writes_and_the_next_commit_is_synced_again(journal, held,
                                                                            caplog):
    caplog.set_level(logging.INFO, "appliance.store")
    held.fail_next = True
    failed = journal._writer.submit(insert(1))
    with pytest.raises(StoreError, match="not synced"):
        failed.result(10)
    later = journal._writer.submit(insert(2))
    assert isinstance(later.result(10), int)
    assert len([r for r in caplog.records if "could not be synced" in r.getMessage()]) == 1
    assert [r for r in caplog.records if "syncs again" in r.getMessage()]


def test_every_commit_is_synced(journal, held):
    before = held.calls
    for i in range(5):
        journal._writer.submit(insert(i)).result(10)
    assert held.calls - before == 5


def test_a_wal_file_removed_and_made_again_is_the_one_synced(tmp_path):
    """SQLite keeps the WAL file while a connection is open; should it still be removed and
    made again, the sync must reach the new file, not the old one's orphaned inode."""
    from appliance.histogram import SECONDS_BUCKETS, Histogram
    from appliance.store.wal_sync import WalSync
    wal = tmp_path / "journal.sqlite3-wal"
    wal.write_bytes(b"frames")
    synced: list[int] = []
    sync = WalSync(str(wal), Histogram(SECONDS_BUCKETS),
                   fdatasync=lambda fd: synced.append(os.fstat(fd).st_ino))
    sync.start()
    try:
        first = Pending()
        sync.hand([(None, first)], [(1, None)])
        assert first.result(10) == 1
        wal.unlink()
        wal.write_bytes(b"new frames")
        second = Pending()
        sync.hand([(None, second)], [(2, None)])
        assert second.result(10) == 2
    finally:
        sync.stop()
    assert synced[-1] == wal.stat().st_ino != synced[0]


def orphan_part(conn):
    """A write COMMIT refuses: a part of no message, its foreign key checked at COMMIT."""
    conn.execute("PRAGMA defer_foreign_keys=ON")
    conn.execute("INSERT INTO parts(message_id, seq, total, encoding, state, next_attempt)"
                 " VALUES ('no-such-message', 1, 1, 'gsm7', 'queued', 0)")


def test_a_failed_commit_fails_every_write_of_it_unsynced_and_the_writer_goes_on(journal,
                                                                              held):
    writer = journal._writer
    items = [(insert(1), Pending()), (orphan_part, Pending()), (insert(2), Pending())]
    before = held.calls
    writer.put_many(items)
    for _, future in items:
        with pytest.raises(StoreError, match="commit failed"):
            future.result(10)
    assert held.calls == before             # nothing committed, nothing to sync
    assert committed_values(journal) == []
    assert isinstance(writer.submit(insert(3)).result(10), int)
    assert committed_values(journal) == [3]
