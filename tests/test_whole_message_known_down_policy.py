"""Which channel states end a whole-message round at once, step by step with an injected
clock: the real journal (SQLite file), the real Dispatcher and Router, and channels that
report a state through `status()` as modem workers and uplinks do.

The pty-modem end-to-end proof is tests/test_whole_message_known_down.py.
"""

from __future__ import annotations

import pytest

from test_whole_message_policy import (GRACE, RecordingChannel, accept,
                                       pinned_to_m0_that_took_nothing, rig, settle)


class StatefulChannel(RecordingChannel):
    """A RecordingChannel whose `status()` reports a modem/uplink state."""

    def __init__(self, name: str, slots: int = 1):
        super().__init__(name, slots)
        self.state, self.failing = "ready", False

    def status(self) -> dict:
        return {"name": self.name, "state": self.state, "failing": self.failing}


def stateful_rig(journal, clock):
    dispatcher, _ = rig(journal, clock, names=("M0", "M1"))
    channels = {n: StatefulChannel(n) for n in ("M0", "M1")}
    dispatcher.channels = channels
    return dispatcher, channels


def passes(dispatcher, clock, count=3) -> None:
    """Housekeeping passes, one second apart, each followed by a dispatch."""
    for _ in range(count):
        clock.advance(1.0)
        dispatcher.step()


def part_1_left_on_m0(journal, clock):
    dispatcher, channels = stateful_rig(journal, clock)
    channels["M1"].up = False
    message_id = accept(journal)
    dispatcher.step()
    settle(journal, channels["M0"])
    channels["M0"].up, channels["M1"].up = False, True        # M0 takes nothing more
    return dispatcher, channels, message_id


@pytest.mark.parametrize("state", ["failed", "held", "wrong_modem", "stopped"])
def test_a_modem_known_down_after_part_1_gets_the_message_resent_whole_at_once(
        journal, clock, state):
    dispatcher, channels, message_id = part_1_left_on_m0(journal, clock)
    channels["M0"].state = state
    for _ in range(6):
        passes(dispatcher, clock, 1)
        settle(journal, channels["M1"])
    assert [p.seq for p in channels["M1"].handed] == [1, 2, 3, 4]   # whole, in order
    assert len({p.concat_ref for p in channels["M1"].handed}) == 1
    history = journal.route_history(message_id)
    assert [(r["connection"], r["parts_sent"]) for r in history] == [("M0", 1), ("M1", 4)]
    assert f"M0 stalled (is {state}) after 1 of 4 parts" in history[0]["outcome"]
    assert journal.duplicate_parts(message_id) == 1


def test_an_uplink_that_reports_itself_failing_is_left_at_once(journal, clock):
    dispatcher, channels, message_id = part_1_left_on_m0(journal, clock)
    channels["M0"].state, channels["M0"].failing = "backoff", True
    passes(dispatcher, clock)
    assert "is failing" in journal.route_history(message_id)[0]["outcome"]
    assert channels["M1"].handed


@pytest.mark.parametrize("state", ["recovering", "probing", "backoff", "down", "ready"])
def test_a_channel_only_recovering_or_busy_keeps_the_grace_period(journal, clock, state):
    dispatcher, channels, message_id = part_1_left_on_m0(journal, clock)
    channels["M0"].state = state
    passes(dispatcher, clock, 10)
    assert channels["M1"].handed == []                          # still pinned to M0
    assert journal.route_history(message_id)[0]["ended"] is None
    clock.advance(GRACE)
    passes(dispatcher, clock)
    assert [p.seq for p in channels["M1"].handed][:1] == [1]   # the grace period still ends it


def test_a_removed_connection_counts_only_after_it_stayed_missing(journal, clock):
    dispatcher, channels, message_id = part_1_left_on_m0(journal, clock)
    m1 = channels["M1"]
    dispatcher.channels = {"M1": m1}                            # M0 stopped by the operator
    clock.advance(1.0)
    dispatcher.step()
    assert m1.handed == []                                      # a restart's gap is not removal
    passes(dispatcher, clock, 3)
    outcome = journal.route_history(message_id)[0]["outcome"]
    assert "M0 stalled (was stopped or removed) after 1 of 4 parts" in outcome
    assert [p.seq for p in m1.handed][:1] == [1]


def test_a_message_none_of_whose_parts_left_is_released_from_a_held_modem(journal, clock):
    dispatcher, channels = stateful_rig(journal, clock)
    message_id = pinned_to_m0_that_took_nothing(journal, dispatcher, channels)
    channels["M0"].state = "held"
    for _ in range(6):
        passes(dispatcher, clock, 1)
        settle(journal, channels["M1"])
    assert [p.seq for p in channels["M1"].handed] == [1, 2, 3, 4]
    assert journal.duplicate_parts(message_id) == 0
    history = journal.route_history(message_id)
    assert history[0]["outcome"] == "M0 is held" and history[0]["parts_sent"] == 0


def test_a_restart_gap_is_not_removal_once_the_channel_is_back(journal, clock):
    dispatcher, channels, message_id = part_1_left_on_m0(journal, clock)
    m0, m1 = channels["M0"], channels["M1"]
    for _ in range(3):                                          # absent 1 s, back, absent 1 s ...
        dispatcher.channels = {"M1": m1}
        passes(dispatcher, clock, 1)
        dispatcher.channels = {"M0": m0, "M1": m1}
        m0.state = "stopped"                                    # a worker not yet probing
        passes(dispatcher, clock, 1)
        m0.state = "probing"
        passes(dispatcher, clock, 1)
    assert m1.handed == []
    assert journal.route_history(message_id)[0]["ended"] is None
