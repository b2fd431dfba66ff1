"""The writer takes a hand-over of several writes (GroupWriter.put_many, what the loop front
sends once per loop iteration) as one group commit, each write in its own savepoint."""

from __future__ import annotations

import pytest

from appliance.errors import StoreError
from appliance.store.writer import Pending


def write(value):
    return lambda conn: conn.execute("INSERT INTO ledger(user, delta, reason, at)"
                                     " VALUES ('w', ?, 'test', 0)", (value,)).lastrowid


def test_a_hand_over_is_one_commit_and_a_failing_write_undoes_only_itself(journal):
    writer = journal._writer
    before = writer.commits
    items = [(write(i), Pending()) for i in range(5)]
    items.insert(2, (lambda conn: conn.execute("INSERT INTO ledger(user) VALUES (NULL)"),
                     Pending()))
    writer.put_many(items)
    results = []
    for _, future in items:
        try:
            results.append(future.result(10))
        except Exception as exc:
            results.append(exc)
    assert writer.commits - before == 1
    assert [isinstance(r, int) for r in results] == [True, True, False, True, True, True]
    rows = journal.query("SELECT delta FROM ledger WHERE user='w' ORDER BY id")
    assert [r[0] for r in rows] == [0, 1, 2, 3, 4]


def test_a_hand_over_to_a_stopped_writer_is_refused_not_lost(journal):
    writer = journal._writer
    writer.stop()
    future = Pending()
    writer.put_many([(write(1), future)])
    with pytest.raises(StoreError):
        future.result(1)
