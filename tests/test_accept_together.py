"""Accept calls queued behind one commit are written together (store/accepting.py): one
multi-row INSERT per table, with exactly the results the calls would get one by one (the
running credit balance across calls, refusals in their places, client-chosen ids still
checked for duplicates), in a real journal file."""

from __future__ import annotations

import sqlite3

from appliance.compose import prepare
from appliance.errors import ValidationError
from appliance.model import Submission
from appliance.store import accepting
from appliance.store.writer import Pending

from test_writer_hand_over import outcomes_of


def message(text: str, user: str = "alice", **fields):
    return prepare(Submission(user=user, recipient="+36201234567", text=text, **fields))


def hand_over(journal, *calls) -> list:
    """The calls reach the writer in one put_many (as one loop iteration's requests do)."""
    items = [(accepting.Accept(messages, journal.clock.now(), journal.dedupe_window), Pending())
             for messages in calls]
    before = journal._writer.commits
    journal._writer.put_many(items)
    outcomes = outcomes_of(items)
    assert journal._writer.commits - before == 1
    return outcomes


def refused(result, code: str) -> bool:
    return isinstance(result, ValidationError) and result.code == code


def test_the_running_balance_spans_the_calls_of_one_commit(journal):
    journal.set_balance("alice", 3)
    calls = [[message("a1"), message("a2")], [message("b1"), message("b2")], [message("c1")]]
    first, second, third = hand_over(journal, *calls)
    assert first == [calls[0][0].id, calls[0][1].id]
    assert second[0] == calls[1][0].id and refused(second[1], "no_credit")
    assert refused(third[0], "no_credit")
    assert journal.balance("alice") == 0
    rows = journal.query("SELECT message_id, delta FROM ledger WHERE user='alice' AND"
                         " reason='send' ORDER BY id")
    assert [(r[0], r[1]) for r in rows] == [(calls[0][0].id, -1), (calls[0][1].id, -1),
                                           (calls[1][0].id, -1)]
    stored = {r[0] for r in journal.query("SELECT body FROM messages")}
    assert stored == {"a1", "a2", "b1"}


def test_a_client_chosen_duplicate_id_refuses_only_itself(journal):
    taken = message("first", message_id="client-id-1")
    assert journal.accept([taken]) == ["client-id-1"]
    plain = [message("plain 1"), message("plain 2")]
    chosen = [message("again", message_id="client-id-1"), message("new", message_id="id-2")]
    outcomes = hand_over(journal, plain, chosen, [message("plain 3")])
    assert outcomes[0] == [m.id for m in plain]
    assert refused(outcomes[1][0], "duplicate_id") and outcomes[1][1] == "id-2"
    assert len(outcomes[2]) == 1 and isinstance(outcomes[2][0], str)
    bodies = [r[0] for r in journal.query("SELECT body FROM messages ORDER BY rowid")]
    assert bodies == ["first", "plain 1", "plain 2", "new", "plain 3"]


def test_many_rows_in_chunks_keep_every_message_and_part_in_order(journal):
    long_text = "x" * 400                     # three GSM parts
    batch = [message(long_text if i % 7 == 0 else f"m{i}") for i in range(71)]
    [ids] = hand_over(journal, batch)
    assert ids == [m.id for m in batch]
    parts = journal.query("SELECT message_id, seq, total, state FROM parts ORDER BY id")
    expected = [(m.id, p.seq, p.total, "queued") for m in batch for p in m.parts]
    assert [tuple(r) for r in parts] == expected
    assert sum(len(m.parts) for m in batch) == 71 + 11 * 2
    counts = dict(journal.query("SELECT state, n FROM state_counts WHERE tbl='parts'"))
    assert counts.get("queued") == len(expected)


def test_the_rows_are_those_of_a_message_accepted_alone(journal, tmp_path):
    """The same messages, written one call per commit and all in one commit, give the same
    rows (but for the ids and times)."""
    texts = ["alpha", "x" * 300, "gamma"]
    alone = [journal.accept([message(t)])[0] for t in texts]
    together = hand_over(journal, *[[message(t)] for t in texts])
    assert all(isinstance(r[0], str) for r in together)

    def rows(ids):
        conn = sqlite3.connect(journal.path)
        try:
            return [conn.execute(
                "SELECT m.direction, m.user, m.recipient, m.body, m.encoding, m.state,"
                " m.parts_total, m.priority, m.want_report, m.dedupe, p.seq, p.total,"
                " p.text, p.udh IS NULL, p.state, p.attempts FROM messages m"
                " JOIN parts p ON p.message_id=m.id WHERE m.id=? ORDER BY p.seq",
                (i,)).fetchall() for i in ids]
        finally:
            conn.close()
    assert rows(alone) == rows([r[0] for r in together])


def test_the_calls_of_one_commit_are_one_insert_per_table(journal):
    """What SQLite itself was asked to run (its trace of the writer's connection): eight
    requests of one commit, 40 messages, are one INSERT into messages per chunk (32 + 8
    rows), not a statement per message, and the same for their parts."""
    statements: list[str] = []
    journal._writer.call(lambda conn: conn.set_trace_callback(statements.append))
    try:
        hand_over(journal, *[[message(f"r{r} m{i}") for i in range(5)] for r in range(8)])
    finally:
        journal._writer.call(lambda conn: conn.set_trace_callback(None))
    # SQLite reports a statement again at each trigger it runs (the counters): once each
    runs = [s for i, s in enumerate(statements) if i == 0 or statements[i - 1] != s]
    inserts = [s for s in runs if s.startswith("INSERT INTO messages")]
    assert [s.count("'out'") for s in inserts] == [32, 8]
    assert len([s for s in runs if s.startswith("INSERT INTO parts")]) == 2
    assert journal.query("SELECT count(*) FROM messages")[0][0] == 40
