"""Batched dispatch (issue 15): results recorded in one commit, parts handed over in one call,
in-flight parts back at once after a link drop. Real SQLite journal; the SMPP path against
the real smpp34 SMSC on 127.0.0.1."""

from __future__ import annotations

import pytest

from appliance.compose import Submission, prepare
from appliance.dispatch import Dispatcher
from appliance.model import Report, ReportStatus
from appliance.routing import Router
from fakes.smsc import Smsc
from test_forward import uplink
from test_smpp import wait_until


def accept(journal, count: int, text: str = "hello") -> list[str]:
    return journal.accept([prepare(Submission(user="admin", recipient=f"+3620{i:07d}",
                                              text=text)) for i in range(count)])


def claim_all(journal) -> list:
    parts = journal.due_parts(limit=10_000)
    journal.claim([(p.id, "S0") for p in parts])
    return parts


def test_many_results_share_one_commit_and_a_refused_one_undoes_only_itself(journal):
    accept(journal, 200)
    parts = claim_all(journal)
    before = journal.commits
    calls = [lambda p=p: journal.part_submitted(p.id, "S0", f"ref{p.id}") for p in parts]
    # a write the database refuses (NOT NULL) undoes only itself; a result for a part that
    # no longer exists (purged meanwhile) is dropped, not an error
    calls.insert(100, lambda: journal._write(
        lambda conn: conn.execute("INSERT INTO parts(message_id) VALUES (NULL)")))
    calls.insert(101, lambda: journal.part_submitted(10**9, "S0", "no such part"))
    errors = journal.write_many(calls)
    assert journal.commits - before == 1
    assert [i for i, e in enumerate(errors) if e is not None] == [100]
    states = journal.stats()["parts_by_state"]
    assert states == {"submitted": 200}


def test_a_part_back_from_a_dropped_link_is_due_at_once(journal, clock):
    accept(journal, 2)
    dropped, refused = claim_all(journal)
    journal.part_failed(dropped.id, "S0", "link_down", "link lost", retryable=True)
    journal.part_failed(refused.id, "S0", "smpp_0x45", "submit failed", retryable=True)
    assert [p.id for p in journal.due_parts()] == [dropped.id]    # no 5 s retry delay
    clock.advance(5)
    assert [p.id for p in journal.due_parts()] == [dropped.id, refused.id]


class BatchChannel:
    name = "S0"

    def __init__(self):
        self.calls: list[list] = []

    def free_slots(self) -> int:
        return 50

    def submit_batch(self, parts) -> None:
        self.calls.append(list(parts))


def test_the_dispatcher_hands_a_channel_its_parts_in_one_call_in_order(journal, clock):
    ids = accept(journal, 5, text="x" * 300)              # 5 messages of 2 parts
    channel = BatchChannel()
    Dispatcher(journal, {"S0": channel}, Router((), ["S0"]), clock=clock).step()
    assert len(channel.calls) == 1
    handed = [(p.message_id, p.seq) for p in channel.calls[0]]
    assert handed == [(m, seq) for m in ids for seq in (1, 2)]


@pytest.fixture
def smsc():
    server = Smsc(receipts=False).start()
    yield server
    server.stop()


def test_smpp_results_go_to_the_journal_without_a_thread_pool(
        smsc, make_config, run_daemon):
    daemon = run_daemon(make_config(connections=(uplink(smsc, windowsize=50),)))
    channel = daemon.channels.running["SMPP0"]
    wait_until(lambda: channel.state == "bound", what="bound")
    messages = [prepare(Submission(user="admin", recipient=f"+3620{i:07d}", text=f"m{i}"))
                for i in range(300)]
    daemon.journal.accept(messages)
    wait_until(lambda: daemon.journal.stats()["parts_by_state"].get("submitted") == 300,
               timeout=60, what="all submitted")
    assert channel._pool is None          # results were written on the uplink's own thread
    assert len(smsc.proxy.wire) == 300


def test_results_queued_without_waiting_are_seen_by_a_later_receipt(journal):
    accept(journal, 1)
    [part] = claim_all(journal)
    assert journal.write_many([lambda: journal.part_submitted(part.id, "S0", "R1")],
                              wait=False) is None
    journal.report(Report("S0", "R1", ReportStatus.DELIVERED))     # queued after: sees it
    assert journal.stats()["parts_by_state"] == {"delivered": 1}
    assert journal.query("SELECT count(*) AS n FROM orphan_reports")[0]["n"] == 0


def test_the_uplink_holds_a_window_in_flight_and_more_parts_ready(
        smsc, make_config, run_daemon):
    smsc.hold_after = 0                           # the SMSC answers nothing for now
    daemon = run_daemon(make_config(connections=(uplink(smsc, windowsize=10),)))
    channel = daemon.channels.running["SMPP0"]
    wait_until(lambda: channel.state == "bound", what="bound")
    total = channel.capacity + 40                 # more than the channel takes at once
    daemon.journal.accept([prepare(Submission(user="admin", recipient=f"+3620{i:07d}",
                                              text=f"m{i}")) for i in range(total)])
    ready = channel.capacity - 10
    assert ready >= 10
    wait_until(lambda: channel.status()["window"]["in_use"] == 10
               and channel.status()["queued"] == ready, what="window full, the next ready")
    assert daemon.journal.stats()["parts_by_state"] == {"sending": 10 + ready,
                                                        "queued": total - 10 - ready}
    smsc.release_held()
    wait_until(lambda: daemon.journal.stats()["parts_by_state"].get("submitted") == total,
               timeout=60, what="all submitted")
