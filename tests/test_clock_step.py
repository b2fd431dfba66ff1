"""A step of the wall clock loses nothing and stalls nothing.

A Pi has no RTC: it boots with the time it saved at shutdown and NTP steps it forward by as
long as it was off. Before: an alert accepted in between (valid 72 h) expired unsent after a
step of four days, and after a step back of a day the whole queue waited a day. The journal
is a real SQLite file, the dispatcher the real one; the fake clock's `step` moves the wall
clock alone, as NTP and `date -s` do.
"""

from __future__ import annotations

import logging

from appliance import notify
from appliance.clock import FakeClock
from appliance.clock_step import STEP_SECONDS, StepWatch
from appliance.compose import Submission, prepare
from appliance.dispatch import Dispatcher
from appliance.model import InboundFragment
from appliance.routing import Router
from appliance.store import journal as journal_module
from appliance.store.clock_step import LONGEST_RETRY

DAY = 86400.0
VALID = 72 * 3600.0


class Channel:
    def __init__(self):
        self.parts = []
        self.set_wake = lambda wake: None

    def free_slots(self) -> int:
        return 10

    def submit(self, part) -> None:
        self.parts.append(part)


def accept(journal, clock, **fields) -> str:
    """Without a validity: the default one, counted from acceptance (as intake sets it)."""
    if "valid_until" not in fields:
        fields.update(valid_until=clock.now() + VALID, validity_relative=True)
    message = prepare(Submission(user="admin", recipient="+36201234567", text="UPS on battery",
                                 **fields))
    assert journal.accept([message]) == [message.id]
    return message.id


def dispatcher(journal, clock, channel) -> Dispatcher:
    return Dispatcher(journal, {"S0": channel}, Router((), ["S0"]), clock=clock)


def test_the_watch_sees_steps_not_slews():
    clock = FakeClock()
    watch = StepWatch(clock)
    start = clock.now()
    clock.advance(10)
    clock.step(STEP_SECONDS / 2)         # NTP slewing, or a small correction: not a step
    assert watch.check() == 0.0
    clock.advance(10)
    clock.step(4 * DAY)
    assert watch.check() == 4 * DAY
    assert watch.window == (start, start + 10 + STEP_SECONDS / 2)
    assert watch.check() == 0.0          # reported once
    clock.step(-DAY)
    assert watch.check() == -DAY
    assert watch.window == (start + 4 * DAY, start + 20 + STEP_SECONDS / 2 + 4 * DAY)


def test_an_alert_accepted_before_ntp_steps_the_clock_forward_still_goes_out(journal, clock,
                                                                            caplog):
    channel = Channel()
    d = dispatcher(journal, clock, channel)
    clock.advance(5)
    alert = accept(journal, clock)
    created = journal.get_message(alert)["created"]
    clock.advance(1)
    clock.step(4 * DAY)                  # longer than its 72 h validity
    late = accept(journal, clock)        # accepted in the new time: nothing to move
    late_valid = journal.get_message(late)["valid_until"]
    with caplog.at_level(logging.WARNING, logger="appliance.dispatch"):
        assert d.step() == 2
    assert [p.message_id for p in channel.parts] == [alert, late]
    message = journal.get_message(alert)
    assert message["state"] == "sending"
    assert message["created"] == created + 4 * DAY
    assert message["valid_until"] == created + 4 * DAY + VALID
    assert journal.get_message(late)["valid_until"] == late_valid
    steps = [r.getMessage() for r in caplog.records if "clock stepped" in r.getMessage()]
    assert steps == ["dispatch: the system clock stepped forward by 4 d; 1 messages accepted"
                     " before keep their validity, 0 retries and timers brought back to now"]


def test_without_the_watch_the_same_step_expired_the_alert(journal, clock):
    """The defect the watch mends, shown on the journal alone."""
    alert = accept(journal, clock)
    clock.step(4 * DAY)
    assert journal.housekeeping()["expired"] == 1
    assert journal.get_message(alert)["state"] == "expired"


def test_messages_of_an_earlier_run_keep_their_time(journal, clock):
    old = accept(journal, clock, valid_until=clock.now() + DAY,    # before this run began
                 validity_relative=True)
    clock.advance(60)
    d = dispatcher(journal, clock, Channel())
    clock.advance(1)
    clock.step(2 * DAY)
    d.step()
    assert journal.get_message(old)["state"] == "expired"


def test_a_client_send_time_is_absolute_and_keeps_its_validity(journal, clock):
    channel = Channel()
    d = dispatcher(journal, clock, channel)
    send_at = clock.now() + 3 * DAY
    scheduled = accept(journal, clock, send_at=send_at, valid_until=send_at + 3600)
    clock.step(DAY)
    d.step()
    message = journal.get_message(scheduled)
    assert message["state"] == "scheduled" and message["valid_until"] == send_at + 3600
    clock.step(2 * DAY - 10)
    d.step()
    assert channel.parts == []
    clock.advance(10)
    d.step()
    assert [p.message_id for p in channel.parts] == [scheduled]


def test_a_validity_the_sender_gave_is_absolute_and_keeps_its_time(journal, clock):
    """An Ozeki `vp` or a JSON `valid_until` is a time on the client's clock, which was
    right: moving it by the step of ours sent the message past the client's deadline."""
    d = dispatcher(journal, clock, Channel())
    clock.advance(5)
    deadline = clock.now() + 3600
    own = accept(journal, clock, valid_until=deadline)
    default = accept(journal, clock)
    clock.advance(1)
    clock.step(DAY)
    d.step()
    assert journal.get_message(own)["valid_until"] == deadline
    assert journal.get_message(default)["valid_until"] > deadline + DAY
    journal.housekeeping()
    assert journal.get_message(own)["state"] == "expired"
    assert journal.get_message(default)["state"] != "expired"


def test_a_step_back_does_not_hold_the_queue(journal, clock):
    channel = Channel()
    d = dispatcher(journal, clock, channel)
    waiting = accept(journal, clock)
    clock.advance(1)
    clock.step(-DAY)
    assert d.step() == 1
    assert [p.message_id for p in channel.parts] == [waiting]


def test_a_step_back_brings_a_retry_back_to_now(journal, clock):
    channel = Channel()
    d = dispatcher(journal, clock, channel)
    retried = accept(journal, clock)
    d.step()
    journal.part_failed(channel.parts.pop().id, "S0", "CMS 500", "network busy", True)
    clock.advance(1)
    assert d.step() == 0                 # waits its retry delay
    clock.advance(1)
    clock.step(-DAY)                     # its retry time is now a day away
    assert d.step() == 1
    assert [p.message_id for p in channel.parts] == [retried]


def test_no_backoff_outlasts_what_a_step_back_brings_back():
    assert max(journal_module.RETRY_BACKOFF) <= LONGEST_RETRY
    assert max(notify.BACKOFF) <= LONGEST_RETRY


def test_a_pending_callback_keeps_its_age_and_its_retry(journal, clock):
    d = dispatcher(journal, clock, Channel())
    message = accept(journal, clock, callback={"kind": "ozeki", "url": "http://10.0.0.9/cb"})
    d.step()
    [event] = journal.due_events()
    journal.event_retry(event["event_id"], "connection refused", 600, give_up=False)
    clock.advance(1)
    clock.step(4 * DAY)
    d.step()
    assert journal.give_up_events(3 * DAY) == 0      # four days old in the old time, not now
    assert journal.due_events() == []                # it waits its 600 s retry
    clock.advance(1)
    clock.step(-5 * DAY)
    d.step()
    assert [e["id"] for e in journal.due_events()] == [message]   # not 5 days more


def test_a_submitted_part_keeps_its_report_timeout(journal, clock):
    channel = Channel()
    d = dispatcher(journal, clock, channel)
    sent = accept(journal, clock)
    d.step()
    journal.part_submitted(channel.parts[0].id, "S0", "ref-1")
    clock.advance(1)
    clock.step(4 * DAY)                  # past the 48 h report timeout in the new time
    d.step()
    assert journal.get_message(sent)["state"] == "submitted"


def test_half_a_long_inbound_sms_still_waits_for_its_other_half(journal, clock):
    d = dispatcher(journal, clock, Channel())

    def half(seq: int, text: str) -> InboundFragment:
        return InboundFragment(connection="GSMModem0", sender="+36301234567",
                               recipient="+36201234567", encoding="gsm7", text=text,
                               concat=(7, 2, seq, 8), sent_at=clock.now())
    assert journal.inbound(half(1, "Power restored ")) is None
    clock.advance(1)
    clock.step(4 * DAY)                  # past the hour a part waits for the rest
    d.step()
    assert journal.expire_fragments() == 0
    message_id = journal.inbound(half(2, "at 04:12"))
    assert journal.get_message(message_id)["body"] == "Power restored at 04:12"


def test_a_big_queue_moves_in_slices_with_the_dispatcher_alive_between(journal, clock,
                                                                      monkeypatch):
    monkeypatch.setattr(journal_module, "STEP_SLICE", 2)
    d = dispatcher(journal, clock, Channel())
    ids = [accept(journal, clock) for _ in range(5)]
    commits, beats = journal.commits, []
    clock.advance(1)
    clock.step(4 * DAY)
    monkeypatch.setattr(d, "_beat", lambda: beats.append(journal.commits))
    d._housekeeping()
    assert beats == [commits + 1, commits + 2, commits + 3]     # one commit per slice of 2
    assert all(journal.get_message(i)["valid_until"] > clock.now() for i in ids)
