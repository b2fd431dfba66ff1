"""A channel stopped while the dispatcher claims parts for it strands nothing.

Seen on a busy machine (tests/test_whole_message_known_down.py): the operator stopped a modem
while the dispatcher's claim for it was being committed; the hand-over then looked the modem
up, found it gone, and the step died with KeyError. The claimed parts stayed `sending`
until the next restart, and the other channels' batches of that step were never handed over.
Real SQLite journal, the real dispatcher; the stop happens inside the claim.
"""

from __future__ import annotations

import threading

from appliance.compose import Submission, prepare
from appliance.dispatch import Dispatcher
from appliance.routing import Router


class Channel:
    def __init__(self, slots: int = 5):
        self.slots = slots
        self.parts = []
        self.set_wake = lambda wake: None

    def free_slots(self) -> int:
        return self.slots

    def submit_batch(self, parts) -> None:
        self.parts.extend(parts)


def accept(journal, count: int) -> list[str]:
    messages = [prepare(Submission(user="admin", recipient=f"+3620123456{i}", text=f"alert {i}"))
                for i in range(count)]
    return journal.accept(messages)


def test_parts_claimed_for_a_channel_stopped_meanwhile_go_back_to_the_queue(journal, clock):
    m0, m1 = Channel(slots=2), Channel(slots=2)
    d = Dispatcher(journal, {"M0": m0, "M1": m1}, Router((), ["M0", "M1"]), clock=clock)
    ids = accept(journal, 4)
    claim = journal.claim_whole

    def claim_while_the_operator_stops_m0(assignments):
        claimed = claim(assignments)
        d.set_channels({"M1": m1})            # Channels.stop("M0") on the web thread
        return claimed
    journal.claim_whole = claim_while_the_operator_stops_m0
    assert d.step() == 2                       # M1's two, handed over; M0's two given back
    journal.claim_whole = claim
    assert len(m1.parts) == 2 and m0.parts == []
    states = [journal.get_message(i)["state"] for i in ids]
    assert sorted(states) == ["queued", "queued", "sending", "sending"]
    m1.slots = 4
    clock.advance(1)
    assert d.step() == 2                       # at once, not after a retry delay
    assert sorted(p.message_id for p in m1.parts) == sorted(ids)


def test_a_channel_is_swapped_out_only_between_hand_overs(journal, clock):
    """Channels.stop swaps the set before it stops the channel: a hand-over under way ends
    first, so the parts are in the channel's queue when its stop gives them back."""
    entered, release = threading.Event(), threading.Event()

    class SlowChannel(Channel):
        def submit_batch(self, parts) -> None:
            entered.set()
            release.wait(10)
            super().submit_batch(parts)
    slow = SlowChannel()
    d = Dispatcher(journal, {"M0": slow}, Router((), ["M0"]), clock=clock)
    accept(journal, 1)
    stepper = threading.Thread(target=d.step)
    stepper.start()
    assert entered.wait(10)
    swapped = threading.Event()
    swapper = threading.Thread(target=lambda: (d.set_channels({}), swapped.set()))
    swapper.start()
    assert not swapped.wait(0.2)               # waits for the hand-over
    release.set()
    stepper.join(10)
    swapper.join(10)
    assert swapped.is_set() and len(slow.parts) == 1
