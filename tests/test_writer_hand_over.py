"""The writer takes a hand-over of several writes (GroupWriter.put_many, what the loop front
sends once per loop iteration) as one group commit, each write in its own savepoint."""

from __future__ import annotations

import threading

import pytest

from appliance import suspend
from appliance.errors import StoreError
from appliance.store.writer import Pending


def write(value):
    return lambda conn: conn.execute("INSERT INTO ledger(user, delta, reason, at)"
                                     " VALUES ('w', ?, 'test', 0)", (value,)).lastrowid


def outcomes_of(items) -> list:
    """Each write's result, or the exception it was settled with."""
    outcomes = []
    for _, future in items:
        try:
            outcomes.append(future.result(10))
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


def test_a_hand_over_is_one_commit_and_a_failing_write_undoes_only_itself(journal):
    writer = journal._writer
    before = writer.commits
    items = [(write(i), Pending()) for i in range(5)]
    items.insert(2, (lambda conn: conn.execute("INSERT INTO ledger(user) VALUES (NULL)"),
                     Pending()))
    writer.put_many(items)
    results = outcomes_of(items)
    assert writer.commits - before == 1
    assert [isinstance(r, int) for r in results] == [True, True, False, True, True, True]
    rows = journal.query("SELECT delta FROM ledger WHERE user='w' ORDER BY id")
    assert [r[0] for r in rows] == [0, 1, 2, 3, 4]


def test_a_wake_up_asked_for_while_a_commit_is_settled_runs_after_all_of_it(journal):
    """The loop front asks for its wake-up from a Future's done-callback
    (`suspend.after_settling`). It must run only once every Future of the commit is
    settled, or the loop thread wakes for the first request and takes the GIL from the
    writer once per request of the commit."""
    items = [(write(i), Pending()) for i in range(5)]
    seen: list[list[bool]] = []
    settled = threading.Event()

    def woken(_future):
        suspend.after_settling(lambda: (seen.append([f.done() for _, f in items]),
                                        len(seen) == len(items) and settled.set()))
    for _, future in items:
        future.add_done_callback(woken)
    journal._writer.put_many(items)
    assert settled.wait(10)
    assert seen == [[True] * 5] * 5


def test_a_wake_up_that_fails_does_not_stop_the_writer(journal):
    """A loop front stopped meanwhile (its loop closed) fails the wake-up it asked for:
    logged, and the next writes are committed as before."""
    first = Pending()

    def broken(_future):
        suspend.after_settling(lambda: 1 / 0)
    first.add_done_callback(broken)
    journal._writer.put_many([(write(1), first)])
    assert isinstance(first.result(10), int)
    later = Pending()
    journal._writer.put_many([(write(2), later)])
    assert isinstance(later.result(10), int)
    assert journal._writer._thread.is_alive()


def test_a_hand_over_to_a_stopped_writer_is_refused_not_lost(journal):
    writer = journal._writer
    writer.stop()
    future = Pending()
    writer.put_many([(write(1), future)])
    with pytest.raises(StoreError):
        future.result(1)


def replayable(fn):
    fn.replayable = True
    return fn


def test_replayable_writes_share_the_transaction_and_a_failure_replays_the_rest(journal):
    """No savepoint per write until one fails; then the batch runs again, each write in its
    own savepoint: the good ones are committed once each, the bad one gets its error."""
    writer = journal._writer
    runs: list[int] = []

    def counted(i):
        return replayable(lambda conn: (runs.append(i), write(i)(conn))[1])

    bad = replayable(lambda conn: conn.execute("INSERT INTO ledger(user) VALUES (NULL)"))
    items = [(counted(i), Pending()) for i in range(4)]
    items.insert(3, (bad, Pending()))
    before = writer.commits
    writer.put_many(items)
    outcomes = outcomes_of(items)
    assert writer.commits - before == 1
    assert [isinstance(o, Exception) for o in outcomes] == [False, False, False, True, False]
    assert runs == [0, 1, 2, 0, 1, 2, 3]       # the first pass stopped at the failure
    rows = journal.query("SELECT delta FROM ledger WHERE user='w' ORDER BY id")
    assert [r[0] for r in rows] == [0, 1, 2, 3]


def test_accepts_in_one_commit_run_without_savepoints(journal):
    """Journal.accept's write is replayable: a commit of accepts issues no SAVEPOINT."""
    writer = journal._writer
    items = [(_accept_write(journal, f"t{i}"), Pending()) for i in range(3)]
    statements: list[str] = []
    writer._conn.set_trace_callback(statements.append)
    try:
        writer.put_many(items)
        ids = [future.result(10)[0] for _, future in items]
    finally:
        writer._conn.set_trace_callback(None)
    assert all(isinstance(i, str) for i in ids)
    assert not [s for s in statements if s.startswith("SAVEPOINT")], statements


def _accept_write(journal, text: str):
    """The writer call Journal.accept builds for one message, taken from it."""
    from appliance.compose import Submission, prepare
    msg = prepare(Submission(user="admin", recipient="+36201234567", text=text))
    captured = []
    journal._writer.call = lambda fn, timeout=60.0: captured.append(fn) or [msg.id]
    try:
        journal.accept([msg])
    finally:
        del journal._writer.call
    return captured[0]


def test_a_write_that_times_out_while_queued_is_never_applied(journal):
    """A caller told "the store did not answer" (and so "retry") must not find its write
    done later; a write the writer already started is waited for instead."""
    writer = journal._writer
    gate, inside = threading.Event(), threading.Event()

    def hold(conn):
        inside.set()
        gate.wait(30)
        return "held"
    held = writer.submit(hold)
    assert inside.wait(10)
    queued = writer.submit(write(41))
    with pytest.raises(TimeoutError):
        queued.result(0.05)
    # `held` is past its deadline too, but in progress: its waiter gets its outcome
    threading.Timer(0.2, gate.set).start()
    assert held.result(0.05) == "held"
    journal._write(lambda conn: None)
    assert journal.query("SELECT count(*) FROM ledger WHERE delta=41")[0][0] == 0


def test_a_failing_checkpoint_backs_off_and_says_so_once(journal, caplog):
    """Found by a helper with a full disk: a failed checkpoint was retried at once, in a
    loop (1,383 warnings in 28 s). Now one line a failure streak and a growing pause."""
    import sqlite3
    import time
    checkpointer = journal._writer.checkpointer
    attempts = []

    class FullDisk:
        def execute(self, sql):
            attempts.append(sql)
            raise sqlite3.OperationalError("database or disk is full")

        def close(self):
            pass
    real, checkpointer._conn = checkpointer._conn, FullDisk()
    try:
        for _ in range(5):
            journal._write(lambda conn: None)
        journal._writer.checkpointer._every = 1      # every commit makes one due at once
        journal._write(lambda conn: None)
        time.sleep(1.5)
    finally:
        checkpointer._conn = real
    assert 1 <= len(attempts) <= 3
    assert sum("checkpoint failed" in r.getMessage() for r in caplog.records) == 1


def test_every_thread_blocked_on_a_write_gets_its_outcome():
    """Pending's gate is one lock: each waiter that passes leaves it open for the next."""
    for outcome in ("value", StoreError("refused")):
        future = Pending()
        got: list = []

        def wait():
            try:
                got.append(future.result(10))
            except StoreError as exc:
                got.append(exc)
        waiters = [threading.Thread(target=wait) for _ in range(3)]
        for waiter in waiters:
            waiter.start()
        with pytest.raises(TimeoutError):
            Pending().result(0.01)        # nobody settles it: a timeout, as before
        if isinstance(outcome, Exception):
            future.settle(None, outcome)
        else:
            future.set_result(outcome)
        for waiter in waiters:
            waiter.join(10)
        assert got == [outcome] * 3
