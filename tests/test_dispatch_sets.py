"""Set-based dispatch writes (issue 15, backlog drain): a batch of one-part messages is
claimed and recorded `submitted` with one statement each (store/dispatch_batch.py), mixed
with multi-part messages on their per-part path, and each message ends as the per-part
path would leave it. Real SQLite journal on the fake clock; the SMPP part against the real
smpp34 SMSC on 127.0.0.1."""

from __future__ import annotations

import pytest

from appliance.compose import Submission, prepare
from appliance.dispatch import Dispatcher
from appliance.model import Priority, Report, ReportStatus
from appliance.routing import Router
from fakes.smsc import Smsc
from test_forward import uplink
from test_smpp import wait_until

LONG = "x" * 400        # three GSM-7 parts
CALLBACK = {"kind": "url", "url": "http://127.0.0.1:1/cb"}


def accept(journal, *submissions) -> list[str]:
    ids = journal.accept([prepare(s) for s in submissions])
    assert all(isinstance(i, str) for i in ids), ids
    return ids


def sub(n: int, text: str = "hi", **kw) -> Submission:
    return Submission(user="admin", recipient=f"+3620{n:07d}", text=text, **kw)


def message_row(journal, message_id: str) -> dict:
    return journal.get_message(message_id)


def events_of(journal, message_id: str) -> list[str]:
    return [r["kind"] for r in journal.query(
        "SELECT kind FROM events WHERE message_id=? ORDER BY id", (message_id,))]


def test_a_claim_of_mixed_priorities_and_a_long_message(journal, clock):
    bulk, alert, long_id, normal = accept(
        journal, sub(1, priority=Priority.BULK), sub(2, priority=Priority.ALERT, callback=CALLBACK),
        sub(3, LONG), sub(4))
    parts = journal.due_parts(limit=100)
    # alerts before bulk; a message's parts in order
    assert [p.message_id for p in parts] == [alert, long_id, long_id, long_id, normal, bulk]
    clock.advance(2)
    claimed = journal.claim_whole([(p.id, "S0", p.message_id, p.total) for p in parts])

    assert set(claimed) == {p.id for p in parts}
    long_ref = {claimed[p.id] for p in parts if p.message_id == long_id}
    [round_] = journal.route_history(long_id)               # one round, one reference
    assert (round_["connection"], long_ref) == ("S0", {round_["concat_ref"]})
    for message_id in (bulk, alert, normal, long_id):
        row = message_row(journal, message_id)
        assert (row["state"], row["connection"], row["updated"]) == \
            ("sending", "S0", clock.now())
    assert all(p["state"] == "sending" and p["attempts"] == 1
               for m in (bulk, alert, normal, long_id) for p in journal.get_parts(m))
    assert events_of(journal, alert) == ["sending"]       # only it asked for callbacks
    assert events_of(journal, bulk) == []
    # claimed parts are not claimed again (another pass, a stale list)
    assert journal.claim_whole([(p.id, "S1", p.message_id, p.total) for p in parts]) == {}
    assert message_row(journal, alert)["connection"] == "S0"


def test_a_batch_of_results_with_a_deleted_and_a_purged_message(journal, clock):
    ids = accept(journal, *(sub(i, callback=CALLBACK if i == 0 else None) for i in range(5)),
                 sub(9, LONG))
    parts = journal.due_parts(limit=100)
    journal.claim_whole([(p.id, "S0", p.message_id, p.total) for p in parts])
    deleted, purged = ids[1], ids[2]
    journal.delete_messages([deleted])              # in flight: its part still settles
    # purged meanwhile (as inbox.purge removes a message and its parts)
    journal._write(lambda conn: (conn.execute("DELETE FROM parts WHERE message_id=?", (purged,)),
                                 conn.execute("DELETE FROM messages WHERE id=?", (purged,))))
    clock.advance(3)
    before = journal.commits
    results = [(p.id, f"ref{p.id}") for p in parts]
    journal.parts_submitted("S0", results)

    assert journal.commits - before == 1
    for message_id in (ids[0], ids[3], ids[4], ids[5]):
        row = message_row(journal, message_id)
        assert (row["state"], row["submitted_at"]) == ("submitted", clock.now())
    assert [p["reference"] for p in journal.get_parts(ids[3])] == \
        [f"ref{p.id}" for p in parts if p.message_id == ids[3]]
    assert events_of(journal, ids[0]) == ["sending", "submitted"]
    assert [p["state"] for p in journal.get_parts(deleted)] == ["submitted"]
    assert message_row(journal, deleted)["deleted"] == 1
    assert message_row(journal, purged) is None
    purged_part = next(p for p in parts if p.message_id == purged)
    assert journal.query("SELECT connection, reference FROM purged_refs")[0][:] == \
        ("S0", f"ref{purged_part.id}")
    # the long message's round ended with its last part (its reference is free again)
    assert journal.route_history(ids[5])[0]["ended"] is not None
    # a repeated result changes nothing and raises nothing
    journal.parts_submitted("S0", results[:2])
    assert message_row(journal, ids[0])["state"] == "submitted"


def test_a_receipt_that_came_before_its_batch_settles_the_part(journal):
    [message_id] = accept(journal, sub(1))
    [part] = journal.due_parts()
    journal.claim_whole([(part.id, "S0", part.message_id, part.total)])
    journal.report(Report("S0", "r-early", ReportStatus.DELIVERED))     # kept as an orphan
    journal.parts_submitted("S0", [(part.id, "r-early")])
    assert message_row(journal, message_id)["state"] == "delivered"
    assert journal.query("SELECT count(*) FROM orphan_reports")[0][0] == 0


def test_results_of_long_messages_settle_each_message_once_for_its_parts(journal, clock):
    """Parts of long messages are recorded first and each message is settled once for all
    of its parts in the batch (journal._record_submitted_parts); what it ends as is what
    the part-by-part path left: whole messages `submitted` with their round ended, one cut
    short still `sending` with its round open, one event per state change."""
    whole, cut, bulk, other = accept(journal, sub(1, LONG, callback=CALLBACK), sub(2, LONG),
                                     sub(3, callback=CALLBACK), sub(4, LONG))
    parts = journal.due_parts(limit=100)
    journal.claim_whole([(p.id, "S0", p.message_id, p.total) for p in parts])
    clock.advance(2)
    # interleaved as answers come back; the second long message's last part is not answered
    results = [(p.id, f"r{p.id}") for p in sorted(parts, key=lambda p: (p.seq, p.id))
               if not (p.message_id == cut and p.seq == 3)]
    journal.parts_submitted("S0", results)

    assert message_row(journal, whole)["state"] == "submitted"
    assert events_of(journal, whole) == ["sending", "submitted"]
    assert journal.route_history(whole)[0]["ended"] is not None
    assert [p["reference"] for p in journal.get_parts(whole)] == \
        [f"r{p.id}" for p in parts if p.message_id == whole]
    assert (message_row(journal, other)["state"], journal.route_history(other)[0]["ended"]) \
        == ("submitted", clock.now())
    assert message_row(journal, cut)["state"] == "sending"
    assert [p["state"] for p in journal.get_parts(cut)] == ["submitted", "submitted", "sending"]
    assert journal.route_history(cut)[0]["ended"] is None
    assert (message_row(journal, bulk)["state"], events_of(journal, bulk)) == \
        ("submitted", ["sending", "submitted"])
    # the last part answered later closes the round and the message
    last = next(p for p in parts if p.message_id == cut and p.seq == 3)
    journal.parts_submitted("S0", [(last.id, "r-last")])
    assert message_row(journal, cut)["state"] == "submitted"
    assert journal.route_history(cut)[0]["ended"] is not None


def test_parts_of_long_messages_are_recorded_in_one_statement(journal, clock):
    """Their submit results are one UPDATE (dispatch_batch.record_submitted_long), the rows
    carrying the counted-apart mark; a part given back to the queue before its answer came
    is still recorded part by part, and the counts stay exact."""
    first, second = accept(journal, sub(1, LONG), sub(2, LONG))
    parts = journal.due_parts(limit=100)
    journal.claim_whole([(p.id, "S0", p.message_id, p.total) for p in parts])
    back = next(p for p in parts if p.message_id == second and p.seq == 2)
    journal._write(lambda conn: conn.execute("UPDATE parts SET state='queued' WHERE id=?",
                                             (back.id,)))
    marks = {r["id"]: r["counted_apart"] for r in journal.query(
        "SELECT id, counted_apart FROM parts")}
    statements = []
    journal._write(lambda conn: conn.set_trace_callback(statements.append))
    clock.advance(1)
    journal.parts_submitted("S0", [(p.id, f"r{p.id}") for p in parts])
    journal._write(lambda conn: conn.set_trace_callback(None))

    # distinct texts: SQLite traces a statement again on each step of its RETURNING rows
    updates = {s for s in statements if s.startswith("UPDATE parts SET state='submitted'")}
    assert len(updates) == 3          # the one-part set (none taken), the long set, `back`
    after = {r["id"]: r["counted_apart"] for r in journal.query(
        "SELECT id, counted_apart FROM parts")}
    assert [p.id for p in parts if after[p.id] > marks[p.id]] == \
        [p.id for p in parts if p.id != back.id]
    for message_id in (first, second):
        assert message_row(journal, message_id)["state"] == "submitted"
        assert [p["reference"] for p in journal.get_parts(message_id)] == \
            [f"r{p.id}" for p in parts if p.message_id == message_id]
        assert journal.route_history(message_id)[0]["ended"] == clock.now()
    counts = {r["state"]: r["n"] for r in journal.query(
        "SELECT state, count(*) AS n FROM parts GROUP BY state")}
    assert journal.stats()["parts_by_state"] == counts == {"submitted": 6}


def test_a_receipt_before_its_long_message_part_is_recorded_applies_to_that_part(journal):
    [message_id] = accept(journal, sub(1, LONG))
    parts = journal.due_parts(limit=10)
    journal.claim_whole([(p.id, "S0", p.message_id, p.total) for p in parts])
    journal.report(Report("S0", "r-2", ReportStatus.DELIVERED))       # kept as an orphan
    journal.parts_submitted("S0", [(p.id, f"r-{p.seq}") for p in parts])
    assert [p["state"] for p in journal.get_parts(message_id)] == \
        ["submitted", "delivered", "submitted"]
    assert message_row(journal, message_id)["state"] == "submitted"
    assert journal.query("SELECT count(*) FROM orphan_reports")[0][0] == 0


class WakingChannel:
    """Takes parts up to its ready queue and wakes the dispatcher when asked to, as the SMPP
    channel does; records what it got in each hand-over."""

    def __init__(self, slots: int):
        self.slots = slots
        self.batches: list[list] = []
        self.wake = None

    def set_wake(self, wake) -> None:
        self.wake = wake

    def free_slots(self) -> int:
        return self.slots - sum(map(len, self.batches))

    def submit_batch(self, parts) -> None:
        self.batches.append(list(parts))


def test_the_dispatcher_reads_past_parts_that_wait(journal):
    # the long message's part 3 waits behind its part 2, which its channel has no room
    # for; one-part messages after it still fill the free slots
    ids = accept(journal, sub(1, LONG), *(sub(i) for i in range(2, 60)))
    channel = WakingChannel(slots=2)
    dispatcher = Dispatcher(journal, {"S0": channel}, Router((), ["S0"]))
    assert dispatcher.step() == 2
    assert [p.message_id for p in channel.batches[0]] == [ids[0], ids[0]]
    channel.slots = 10
    assert dispatcher.step() == 8
    moved = channel.batches[1]
    assert [(p.message_id, p.seq) for p in moved[:1]] == [(ids[0], 3)]
    assert [p.message_id for p in moved[1:]] == ids[1:8]


def test_a_dispatcher_woken_by_its_channel_moves_batches(journal):
    accept(journal, *(sub(i) for i in range(300)))
    channel = WakingChannel(slots=100)
    dispatcher = Dispatcher(journal, {"S0": channel}, Router((), ["S0"]), idle_seconds=30)
    channel.set_wake(dispatcher.wake)
    dispatcher.start()
    try:
        wait_until(lambda: len(channel.batches) == 1)
        assert len(channel.batches[0]) == 100
        channel.slots = 300                     # room again: the channel says so
        channel.wake()
        wait_until(lambda: sum(map(len, channel.batches)) == 300)
    finally:
        dispatcher.stop()
    assert [len(b) for b in channel.batches] == [100, 200]


@pytest.fixture
def smsc():
    server = Smsc(receipts=False).start()
    yield server
    server.stop()


def test_a_backlog_through_smpp_is_recorded_in_batches(smsc, make_config, run_daemon):
    smsc.hold_after = 0                 # the SMSC answers nothing until the backlog is in
    daemon = run_daemon(make_config(connections=(uplink(smsc, windowsize=10),)))
    journal = daemon.journal
    batches: list[int] = []
    record = journal.parts_submitted

    def counting(connection, results):
        batches.append(len(results))
        record(connection, results)
    journal.parts_submitted = counting
    ids = accept(journal, *(sub(i, f"backlog {i}") for i in range(400)), sub(999, LONG))
    smsc.release_held()
    wait_until(lambda: all(journal.get_message(m)["state"] == "submitted" for m in ids),
               timeout=60, what="all submitted")
    assert sum(batches) == 403                  # every result through the batch path
    assert max(batches) > 1
    texts = [r.short_message for r in smsc.received]
    assert len(texts) == len(set(texts)) == 403     # each part once


def test_submit_results_the_store_refuses_are_written_again(smsc, make_config, run_daemon,
                                                              monkeypatch):
    """A full disk while an SMPP uplink sends: the results' commit fails. They were
    logged and lost, their parts `sending` until a restart sent them again; the channel
    writes them again until they take."""
    import sqlite3
    from appliance.store import dispatch_batch
    daemon = run_daemon(make_config(connections=(uplink(smsc, windowsize=10),)))
    journal = daemon.journal
    record = dispatch_batch.record_submitted
    refusals = [1, 1]

    def full_disk(conn, connection, results, now):
        if refusals:
            refusals.pop()
            raise sqlite3.OperationalError("database or disk is full")
        return record(conn, connection, results, now)
    monkeypatch.setattr(dispatch_batch, "record_submitted", full_disk)
    ids = accept(journal, *(sub(i, f"disk full {i}") for i in range(5)))
    wait_until(lambda: all(journal.get_message(m)["state"] == "submitted" for m in ids),
               timeout=30, what="all recorded in the end")
    assert not refusals
    texts = [r.short_message for r in smsc.received]
    assert len(texts) == len(set(texts)) == 5          # each sent once, none again


def test_a_dispatcher_passes_again_at_once_only_for_channels_that_cannot_wake_it(journal):
    woken = WakingChannel(slots=5)
    dispatcher = Dispatcher(journal, {"S0": woken}, Router((), ["S0"]))
    assert not dispatcher._unwoken_free()         # waits for the channel's wake
    dispatcher.channels = {"S0": woken, "M0": PolledChannel(free=1)}
    assert dispatcher._unwoken_free()             # it has room and never wakes: look now
    dispatcher.channels["M0"].free = 0
    assert not dispatcher._unwoken_free()


class PolledChannel:
    def __init__(self, free: int):
        self.free = free

    def free_slots(self) -> int:
        return self.free


class RecordingSink:
    def __init__(self):
        self.writes: list[list] = []

    def parts_submitted(self, connection, results):
        self.writes[-1].append(("submitted", list(results)))

    def report(self, report):
        self.writes[-1].append(("report", report.reference))

    def write_many(self, calls, *, wait=True, then=None):
        self.writes.append([])
        for call in calls:
            call()
        if then is not None:
            then([None] * len(calls))
            return None
        return [None] * len(calls) if wait else None


def test_the_uplink_holds_submit_results_and_a_receipt_takes_them_first(clock):
    from appliance.config import SMPPConfig
    from appliance.uplink.smpp import RESULTS_PER_WRITE, SmppChannel, _SubmittedBatch
    sink = RecordingSink()
    channel = SmppChannel(SMPPConfig(name="S0", host="127.0.0.1", port=1, username="u",
                                     password="p", windowsize=10), sink, clock=clock)

    def read(*items):
        """One read's effects: submit results (part ids) and receipts (references)."""
        effects = []
        for item in items:
            if isinstance(item, int):
                channel._batch_of(effects).results.append((item, f"r{item}"))
            else:
                report = Report("S0", item, ReportStatus.DELIVERED)
                effects.append((lambda r=report: sink.report(r), object()))
        channel._hold_results(effects)
        channel._apply(effects)

    read(1, 2)
    read(3)
    assert sink.writes == []                        # held: no write per read
    read(4, "r1")                                   # a receipt: the held results go first
    assert sink.writes == [[("submitted", [(1, "r1"), (2, "r2"), (3, "r3"), (4, "r4")]),
                            ("report", "r1")]]
    for n in range(RESULTS_PER_WRITE):
        read(100 + n)
    assert len(sink.writes) == 2 and len(sink.writes[1][0][1]) == RESULTS_PER_WRITE
    read(500)
    channel._flush_results(idle=True)               # nothing in flight: no answer to wait for
    assert sink.writes[2] == [("submitted", [(500, "r500")])]
    assert isinstance(channel._batch_of([]), _SubmittedBatch)
    channel._wake_r.close()
    channel._wake_w.close()
