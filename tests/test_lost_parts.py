"""The safety net for parts a channel took and no longer holds (appliance/lost_parts.py):
against a real journal, and through the real SMPP uplink and the smpp34 SMSC."""

from __future__ import annotations

import logging

import pytest

from appliance.clock import FakeClock
from appliance.compose import Submission, prepare
from appliance.lost_parts import LOST_AFTER, LostParts
from appliance.store.journal import Journal
from fakes.smsc import Smsc
from test_smpp import wait_until
from test_smpp_daemon import _queue_backlog, started_daemon


class Holding:
    """A channel that says which parts it holds."""

    def __init__(self, held):
        self.held = held

    def holding(self):
        return None if self.held is None else set(self.held)


@pytest.fixture
def claimed(tmp_path):
    """A journal with three one-part messages claimed for connection X."""
    journal = Journal.open(tmp_path)
    journal.accept([prepare(Submission(user="admin", recipient=f"+3620123456{i}",
                                       text=f"m{i}")) for i in range(3)])
    parts = journal.due_parts(limit=3)
    journal.claim_whole([(p.id, "X", p.message_id, p.total) for p in parts])
    yield journal, [p.id for p in parts]
    journal.close()


def _state(journal, part_id: int) -> str:
    return journal.query("SELECT state FROM parts WHERE id=?", (part_id,))[0]["state"]


def test_parts_not_held_for_lost_after_are_queued_again(claimed, caplog):
    journal, (kept, lost, later) = claimed
    clock = FakeClock()
    net = LostParts(journal, clock=clock)
    channel = Holding({kept})
    assert net.check({"X": channel}) == 0               # first seen not held
    clock.advance(LOST_AFTER / 2)
    channel.held = {kept, later}                        # `later` is held at this check
    assert net.check({"X": channel}) == 0
    clock.advance(LOST_AFTER / 2 + 1)
    channel.held = {kept}
    with caplog.at_level(logging.WARNING, logger="appliance.dispatch"):
        assert net.check({"X": channel}) == 1           # `lost`: not held at every check
    assert [_state(journal, p) for p in (kept, lost, later)] == ["sending", "queued", "sending"]
    assert journal.query("SELECT reason FROM parts WHERE id=?", (lost,))[0]["reason"] == \
        "lost: X no longer held it; queued again"
    assert journal.due_parts(limit=3)[0].id == lost    # sent again at once
    assert len(caplog.records) == 1 and "X no longer holds 1 parts" in caplog.text
    clock.advance(LOST_AFTER)
    assert net.check({"X": channel}) == 1               # `later` counts from its last miss
    assert _state(journal, later) == "queued"


def test_a_channel_that_cannot_tell_or_is_gone_starts_over(claimed):
    journal, (first, second, third) = claimed
    clock = FakeClock()
    net = LostParts(journal, clock=clock)
    assert net.check({"X": Holding(set())}) == 0
    clock.advance(LOST_AFTER)
    assert net.check({"X": Holding(None)}) == 0         # results waiting to be written
    clock.advance(LOST_AFTER)
    assert net.check({"X": Holding(set())}) == 0        # first seen again
    assert net.check({"X": object()}) == 0              # a channel that cannot say
    clock.advance(LOST_AFTER)
    assert net.check({}) == 0                           # X removed: its own stop gives back
    assert {_state(journal, p) for p in (first, second, third)} == {"sending"}


@pytest.fixture
def unanswering_smsc():
    server = Smsc(receipts=True, receipt_window=10).start()
    server.hold_after = 0                   # submit_sm stay unanswered until released
    yield server
    server.stop()


def test_the_uplink_holds_what_it_took_and_a_part_it_lost_goes_again(tmp_path,
                                                                     unanswering_smsc):
    """Through the real uplink: what `holding()` says is what the store has `sending` on
    it (the window and the parts waiting behind it). A part the uplink then loses track
    of (taken out of its window, as a bug would) is queued again and delivered."""
    daemon = started_daemon(tmp_path, unanswering_smsc.port)
    try:
        channel = daemon.channels.running["SMPP0"]
        ids, _ = _queue_backlog(daemon, 30, 0)
        wait_until(lambda: len(unanswering_smsc.held) == channel.conn.windowsize,
                   what="a full window, unanswered")
        sending = set(daemon.journal.sending_on("SMPP0"))
        assert len(sending) == 30 and channel.holding() == sending
        sequence, flight = next(iter(channel._window._by_seq.items()))
        channel._window.pop(sequence)                   # the uplink forgets one part
        clock = FakeClock()
        net = LostParts(daemon.journal, clock=clock)
        assert net.check(daemon.channels.running) == 0
        clock.advance(LOST_AFTER)
        assert net.check(daemon.channels.running) == 1
        unanswering_smsc.release_held()
        wait_until(lambda: daemon.journal.get_parts(flight.part.message_id)[0]["state"]
                   == "delivered", timeout=20, what="the lost part sent again and delivered")
    finally:
        daemon.stop()
