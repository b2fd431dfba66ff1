"""What /status, start-up and the API ask the journal costs the same with a deep queue as with
a shallow one. Measured deterministically as SQLite virtual-machine steps (a progress
handler), not time: a full scan of the queue shows up as steps proportional to its length."""

import pytest

from appliance.clock import FakeClock
from appliance.compose import Submission, prepare
from appliance.store.journal import Journal

STEP = 100          # the progress handler is called every STEP VM instructions


def fill(journal, count: int) -> None:
    for start in range(0, count, 500):
        journal.accept([prepare(Submission(user="admin", recipient="+36201234567",
                                           text=f"queued {i}"))
                        for i in range(start, min(count, start + 500))])


def steps(journal, call) -> int:
    """VM steps `call` costs on the reader connection of this thread and the writer's."""
    counted = [0]

    def tick():
        counted[0] += 1
        return 0
    connections = [journal._read(), journal._writer._conn]
    for conn in connections:
        conn.set_progress_handler(tick, STEP)
    try:
        call()
    finally:
        for conn in connections:
            conn.set_progress_handler(None, STEP)
    return counted[0]


@pytest.fixture
def journals(tmp_path):
    made = []
    for count in (20, 4000):
        journal = Journal.open(tmp_path / str(count), clock=FakeClock())
        fill(journal, count)
        made.append(journal)
    yield made
    for journal in made:
        journal.close()


@pytest.mark.parametrize("name, call", [
    ("status counters", lambda j: j.stats()),
    ("pending callbacks", lambda j: j.pending_events()),
    ("requeue at start", lambda j: j.requeue_inflight()),
    ("housekeeping check", lambda j: j.housekeeping()),
    ("next parts to send", lambda j: j.due_parts(limit=50)),
])
def test_cost_does_not_grow_with_the_queue(journals, name, call):
    shallow, deep = journals
    call(shallow), call(deep)                      # warm both the same way
    few, many = steps(shallow, lambda: call(shallow)), steps(deep, lambda: call(deep))
    assert many <= few * 2 + 5, f"{name}: {few} steps at 20 queued, {many} at 4000"


def test_the_old_status_query_would_have_been_caught(journals):
    """The COUNT(*) ... GROUP BY this file guards against grows with the queue."""
    shallow, deep = journals
    count = "SELECT state, count(*) FROM parts GROUP BY state"
    assert steps(deep, lambda: deep.query(count)) > 10 * steps(shallow,
                                                                lambda: shallow.query(count))
