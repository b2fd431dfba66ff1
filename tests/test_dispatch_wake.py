"""New messages wake the dispatcher only when a pass could move them (issue 14: an alert
storm into a box whose channels are all busy, or that has none, must not wake the dispatcher
thread once per request). Real SQLite journal; the dispatcher's own event is the observable."""

from __future__ import annotations

from appliance.compose import Submission, prepare
from appliance.dispatch import Dispatcher
from appliance.routing import Router


class Channel:
    name = "S0"

    def __init__(self, slots: int, wakes: bool = True):
        self.slots = slots
        self.parts = []
        if wakes:
            self.set_wake = lambda wake: None

    def free_slots(self) -> int:
        return self.slots

    def submit(self, part) -> None:
        self.parts.append(part)


def dispatcher(journal, clock, channels: dict) -> Dispatcher:
    return Dispatcher(journal, channels, Router((), list(channels)), clock=clock)


def accept_one(journal) -> None:
    journal.accept([prepare(Submission(user="admin", recipient="+36201234567", text="x"))])


def test_new_work_does_not_wake_a_dispatcher_whose_channels_are_full(journal, clock):
    channel = Channel(slots=0)
    d = dispatcher(journal, clock, {"S0": channel})
    assert d.step() == 0
    accept_one(journal)
    d.work_arrived()
    assert not d._wake.is_set()
    channel.slots = 1          # the channel frees a slot and wakes the dispatcher itself
    d.wake()
    assert d._wake.is_set()
    assert d.step() == 1 and len(channel.parts) == 1


def test_new_work_does_not_wake_a_dispatcher_without_channels(journal, clock):
    d = dispatcher(journal, clock, {})
    d.step()
    d.work_arrived()
    assert not d._wake.is_set()


def test_new_work_wakes_a_dispatcher_with_a_free_slot(journal, clock):
    d = dispatcher(journal, clock, {"S0": Channel(slots=4)})
    d.step()
    d.work_arrived()
    assert d._wake.is_set()


def test_a_channel_that_cannot_wake_the_dispatcher_is_looked_at_on_new_work(journal, clock):
    d = dispatcher(journal, clock, {"S0": Channel(slots=0, wakes=False)})
    d.step()
    d.work_arrived()
    assert d._wake.is_set()


def test_before_the_first_pass_new_work_wakes_it(journal, clock):
    d = dispatcher(journal, clock, {})
    d.work_arrived()
    assert d._wake.is_set()
