"""The whole-message policy with an injected clock: the real journal (SQLite file), the real
Dispatcher and Router, and channels that record what they are handed and answer through
the journal as a modem worker does (part_submitted / part_failed / report).

The pty-modem end-to-end proof is tests/test_whole_messages.py; here the time-dependent
rules (grace period, reference wrap, late reports) are driven step by step.
"""

from __future__ import annotations

import pytest

from appliance.compose import Submission, prepare
from appliance.dispatch import Dispatcher
from appliance.model import Report, ReportStatus
from appliance.routing import Router
from appliance.store.journal import Journal

LONG = "x" * 600          # 4 GSM-7 parts
GRACE = 300.0


class RecordingChannel:
    """One slot at a time, like a modem; the test decides each part's outcome."""

    def __init__(self, name: str, slots: int = 1):
        self.name = name
        self.slots = slots
        self.up = True
        self.handed: list = []       # every part handed over, in order
        self.pending: list = []      # handed, no outcome yet

    def free_slots(self) -> int:
        return max(0, self.slots - len(self.pending)) if self.up else 0

    def submit(self, part) -> None:
        self.handed.append(part)
        self.pending.append(part)


def rig(journal, clock, names=("M0", "M1"), slots=1):
    channels = {n: RecordingChannel(n, slots) for n in names}
    dispatcher = Dispatcher(journal, channels, Router((), list(names)), clock=clock,
                            reroute_after=GRACE)
    return dispatcher, channels


def pinned_to_m0_that_took_nothing(journal, dispatcher, channels) -> str:
    """A long message pinned to M0 (M1 down), none of its parts taken: a restart requeued
    them; then M0 goes down and M1 comes up. Returns the message id."""
    channels["M1"].up = False
    message_id = accept(journal)
    dispatcher.step()
    journal.requeue_inflight()                                 # a restart while it was sending
    channels["M0"].pending.clear()
    channels["M0"].up, channels["M1"].up = False, True
    return message_id


def accept(journal, text=LONG, recipient="+36201234567") -> str:
    [message_id] = journal.accept([prepare(Submission(user="admin", recipient=recipient,
                                                      text=text))])
    return message_id


def settle(journal, channel, reference_base=100) -> None:
    """The channel answers every pending part: submitted, reference = part id + base."""
    while channel.pending:
        part = channel.pending.pop(0)
        journal.part_submitted(part.id, channel.name, str(part.id + reference_base))


def pump(dispatcher, journal, channels, rounds=20) -> None:
    for _ in range(rounds):
        dispatcher.step()
        for channel in channels.values():
            if channel.up:
                settle(journal, channel)


def test_every_part_leaves_through_one_channel_in_order(journal, clock):
    dispatcher, channels = rig(journal, clock)
    ids = [accept(journal) for _ in range(3)]
    pump(dispatcher, journal, channels)
    for message_id in ids:
        carried = [(c.name, p.seq, p.concat_ref) for c in channels.values()
                   for p in c.handed if p.message_id == message_id]
        assert len({name for name, _, _ in carried}) == 1
        assert [seq for _, seq, _ in carried] == [1, 2, 3, 4]
        assert len({ref for _, _, ref in carried}) == 1
        assert journal.get_message(message_id)["state"] == "submitted"
    assert all(c.handed for c in channels.values())        # balance still spreads messages


def test_references_are_unique_per_channel_and_recipient_and_wrap_after_256(journal, clock):
    dispatcher, channels = rig(journal, clock, names=("M0",), slots=10_000)
    ids = [accept(journal, "y" * 200) for _ in range(257)]   # 2 parts each, none answered
    for _ in range(10):
        dispatcher.step()
    handed = channels["M0"].handed
    refs_by_message = {p.message_id: p.concat_ref for p in handed}
    assert len(refs_by_message) == 256                         # the 257th waits: no ref free
    assert sorted(refs_by_message.values()) == list(range(256))
    assert ids[-1] not in refs_by_message
    # a message to another recipient has its own references
    other = accept(journal, "z" * 200, recipient="+36209999999")
    dispatcher.step()
    assert {p.concat_ref for p in handed if p.message_id == other} == {0}
    # one message finishes: its reference is free again and the waiting one takes it
    settle_message = ids[0]
    for part in [p for p in channels["M0"].pending if p.message_id == settle_message]:
        channels["M0"].pending.remove(part)
        journal.part_submitted(part.id, "M0", str(part.id))
    dispatcher.step()
    assert {p.concat_ref for p in handed if p.message_id == ids[-1]} == {0}


def test_a_failure_before_anything_left_sends_the_message_elsewhere_at_once(journal, clock):
    dispatcher, channels = rig(journal, clock)
    message_id = accept(journal)
    dispatcher.step()
    first = next(c for c in channels.values() if c.handed)
    other = next(c for c in channels.values() if c is not first)
    part = first.pending.pop()
    journal.part_failed(part.id, first.name, "CMS 500", "modem fault", retryable=True)
    clock.advance(30)                                          # past the retry delay only
    pump(dispatcher, journal, channels)
    assert [p.seq for p in other.handed] == [1, 2, 3, 4]
    assert journal.channels_used([message_id])[message_id] == [other.name]
    assert journal.duplicate_parts(message_id) == 0


def test_a_channel_back_within_the_grace_period_finishes_the_message(journal, clock):
    dispatcher, channels = rig(journal, clock, names=("M0",))
    m0 = channels["M0"]
    message_id = accept(journal)
    for _ in range(2):                                        # parts 1 and 2 leave
        dispatcher.step()
        settle(journal, m0)
    m0.up = False
    clock.advance(GRACE - 10)
    dispatcher.step()
    m0.up = True
    pump(dispatcher, journal, channels)
    assert [p.seq for p in m0.handed] == [1, 2, 3, 4]
    assert len({p.concat_ref for p in m0.handed}) == 1
    assert journal.duplicate_parts(message_id) == 0
    assert [r["outcome"] for r in journal.route_history(message_id)] == ["sent"]


def test_a_channel_dead_mid_message_leads_to_a_whole_resend(journal, clock):
    dispatcher, channels = rig(journal, clock, names=("M0", "M1"))
    channels["M1"].up = False
    message_id = accept(journal)
    m0, m1 = channels["M0"], channels["M1"]
    for _ in range(2):
        dispatcher.step()
        settle(journal, m0)
    m0.up, m1.up = False, True                                 # M0 dies after part 2 of 4
    dispatcher.step()
    assert m1.handed == []                                     # parts 3, 4 wait for M0
    clock.advance(GRACE + 1)
    pump(dispatcher, journal, channels)
    assert [p.seq for p in m1.handed] == [1, 2, 3, 4]          # the whole message again
    old_ref, new_ref = m0.handed[0].concat_ref, m1.handed[0].concat_ref
    assert len({p.concat_ref for p in m1.handed}) == 1
    history = journal.route_history(message_id)
    assert [(r["connection"], r["parts_sent"]) for r in history] == [("M0", 2), ("M1", 4)]
    assert "stalled after 2 of 4 parts" in history[0]["outcome"]
    assert history[0]["concat_ref"] == old_ref and history[1]["concat_ref"] == new_ref
    assert journal.duplicate_parts(message_id) == 2
    assert journal.channels_used([message_id])[message_id] == ["M0", "M1"]
    summary = journal.routes_summary()
    assert summary["resent_whole"] == 1 and summary["duplicate_parts"] == 2

    # a late report for a part of the abandoned round settles nothing, and is not kept as
    # an orphan that a later part with the same (wrapped) reference would take
    stale = m0.handed[0]
    journal.report(Report("M0", str(stale.id + 100), ReportStatus.FAILED))
    assert journal.get_message(message_id)["state"] == "submitted"
    assert journal.query("SELECT count(*) AS n FROM orphan_reports")[0]["n"] == 0
    for part in m1.handed:
        journal.report(Report("M1", str(part.id + 100), ReportStatus.DELIVERED))
    assert journal.get_message(message_id)["state"] == "delivered"


def test_a_part_in_flight_holds_the_resend_until_the_channel_answers(journal, clock):
    dispatcher, channels = rig(journal, clock, names=("M0", "M1"))
    channels["M1"].up = False
    m0, m1 = channels["M0"], channels["M1"]
    message_id = accept(journal)
    dispatcher.step()
    settle(journal, m0)
    dispatcher.step()                                          # part 2 handed, no answer yet
    m1.up = True
    clock.advance(GRACE + 1)
    dispatcher.step()
    assert m1.handed == []                 # the answer may still say part 2 left: no resend
    part = m0.pending.pop()
    journal.part_failed(part.id, "M0", "AT timeout", "no answer", retryable=True)
    m0.up = False
    clock.advance(1)
    pump(dispatcher, journal, channels)
    assert [p.seq for p in m1.handed] == [1, 2, 3, 4]
    assert journal.duplicate_parts(message_id) == 1


def test_a_message_pinned_to_a_channel_that_took_nothing_is_released(journal, clock):
    dispatcher, channels = rig(journal, clock, names=("M0", "M1"))
    message_id = pinned_to_m0_that_took_nothing(journal, dispatcher, channels)
    dispatcher.step()
    assert channels["M1"].handed == []                 # pinned: M0 may come back in time
    clock.advance(GRACE + 1)
    pump(dispatcher, journal, channels)
    assert [p.seq for p in channels["M1"].handed] == [1, 2, 3, 4]
    assert journal.duplicate_parts(message_id) == 0
    assert "took no part" in journal.route_history(message_id)[0]["outcome"]


def test_a_single_sms_needs_no_pin_and_fails_over_per_part(journal, clock):
    dispatcher, channels = rig(journal, clock, names=("M0", "M1"))
    message_id = accept(journal, "short")
    dispatcher.step()
    first = next(c for c in channels.values() if c.handed)
    other = next(c for c in channels.values() if c is not first)
    part = first.pending.pop()
    journal.part_failed(part.id, first.name, "CMS 500", "modem fault", retryable=True)
    clock.advance(30)
    pump(dispatcher, journal, channels)
    assert [p.message_id for p in other.handed] == [message_id]
    assert journal.route_history(message_id) == []


@pytest.mark.parametrize("key", ["reroute_after_seconds", "inbound_partial_after_seconds"])
def test_the_grace_periods_must_be_positive(tmp_path, key):
    from appliance.config import ConfigError, load
    path = tmp_path / "config.toml"
    path.write_text(f"[store]\n{key} = 0\n")
    with pytest.raises(ConfigError, match=f"store.{key}: must be more than 0"):
        load(path)
    path.write_text(f"[store]\n{key} = 30\n")
    assert getattr(load(path).store, key) == 30.0
