"""Accepts queued together run as one call in the writer (writer.Merged): one savepoint, one
credit read and one balance update for all of them, yet each caller gets its own answer, a
failing one undoes only itself, and the queue's order holds. Real SQLite file, real writer
thread; the writer is held busy by a write that waits on an Event, so the others queue up
behind it and form one batch."""

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

from appliance.compose import Submission, prepare
from appliance.errors import ValidationError
from appliance.store.writer import Merged


def new(text="Hello", user="bob"):
    return prepare(Submission(user=user, recipient="+36201234567", text=text))


class HeldWriter:
    """Keeps the writer thread inside one write until `release`, so later submissions queue."""

    def __init__(self, journal):
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.future = journal._writer.submit(self._hold)

    def _hold(self, conn):
        self.entered.set()
        assert self.gate.wait(30)

    def __enter__(self):
        assert self.entered.wait(30)
        return self

    def __exit__(self, *exc):
        self.gate.set()
        self.future.result(30)


def ledger(journal, user):
    return [r["message_id"] for r in journal.query(
        "SELECT message_id FROM ledger WHERE user=? AND reason='send' ORDER BY id", (user,))]


def test_accepts_queued_together_share_one_call_and_each_gets_its_own_answer(journal):
    journal.set_balance("bob", 2)
    calls = []
    original = journal._accept_calls

    def counting(conn, batch):
        calls.append(len(batch))
        return original(conn, batch)

    journal._accept_calls = counting
    messages = [new(f"text {i}") for i in range(3)]
    with ThreadPoolExecutor(3) as pool:
        with HeldWriter(journal):
            futures = []
            for message in messages:            # queued one after the other, in this order
                before = journal._writer._queue.qsize()
                futures.append(pool.submit(journal.accept, [message]))
                while journal._writer._queue.qsize() == before:
                    threading.Event().wait(0.001)
        results = [f.result(30) for f in futures]
    assert calls == [3]
    assert results[0] == [messages[0].id] and results[1] == [messages[1].id]
    assert isinstance(results[2][0], ValidationError) and results[2][0].code == "no_credit"
    assert journal.balance("bob") == 0
    assert ledger(journal, "bob") == [messages[0].id, messages[1].id]
    assert journal.accepted == 2


def _queue_in_order(journal, fns):
    futures = []
    with HeldWriter(journal):
        futures = [journal._writer.submit(fn) for fn in fns]
    return [f.result(30) if f.exception() is None else f.exception() for f in futures]


def test_a_failing_merged_call_runs_each_write_alone_and_only_the_bad_one_fails(journal):
    seen = []

    def insert_names(conn, names):
        seen.append(list(names))
        for name in names:
            if name == "bad":
                raise RuntimeError("refused")
            conn.execute("INSERT INTO balances(user, balance) VALUES (?, 1)", (name,))
        return [f"ok {name}" for name in names]

    results = _queue_in_order(journal, [Merged(insert_names, n) for n in ("a", "bad", "c")])
    assert seen == [["a", "bad", "c"], ["a"], ["bad"], ["c"]]
    assert results[0] == "ok a" and results[2] == "ok c"
    assert isinstance(results[1], RuntimeError)
    users = {r["user"] for r in journal.query("SELECT user FROM balances")}
    assert {"a", "c"} <= users and "bad" not in users


def test_only_consecutive_writes_merge_so_the_queue_order_holds(journal):
    order = []

    def merged(conn, names):
        order.append(tuple(names))
        return names

    def plain(conn):
        order.append("plain")
        return "plain"

    results = _queue_in_order(journal, [Merged(merged, "a"), Merged(merged, "b"), plain,
                                        Merged(merged, "c")])
    assert results == ["a", "b", "plain", "c"]
    assert order == [("a", "b"), "plain", ("c",)]


def test_a_merged_call_answering_the_wrong_count_falls_back_to_one_by_one(journal):
    def short(conn, names):
        return names[:1] if len(names) > 1 else names

    assert _queue_in_order(journal, [Merged(short, "x"), Merged(short, "y")]) == ["x", "y"]


def test_a_store_error_in_one_merged_accept_leaves_the_others_accepted(journal):
    journal.set_balance("bob", 5)
    journal._write(lambda conn: conn.execute(
        "CREATE TRIGGER boom BEFORE INSERT ON parts WHEN NEW.text = 'boom'"
        " BEGIN SELECT RAISE(ABORT, 'parts refused'); END"))
    good, bad = new("fine"), new("boom")
    results = _queue_in_order(journal, [
        Merged(journal._accept_calls, ([good], journal.clock.now())),
        Merged(journal._accept_calls, ([bad], journal.clock.now()))])
    assert results[0] == [good.id]
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert {r["id"] for r in journal.query("SELECT id FROM messages")} == {good.id}
    assert journal.balance("bob") == 4 and ledger(journal, "bob") == [good.id]
