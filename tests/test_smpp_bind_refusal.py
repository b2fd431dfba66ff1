"""Refused binds back off (issue 13 item 2), against the raw-socket SMSC (tests/fakes/raw_smsc.py:
smpp34's server accepts every bind). The channel runs on a FakeClock: its backoff waits move
the fake time instead of sleeping, and the SMSC reads that clock as each bind arrives, so the
gaps between binds are the channel's delays, exactly, with no real waiting."""

from __future__ import annotations

import pytest

from appliance.config import SMPPConfig
from appliance.uplink.backoff import Backoff
from appliance.uplink.smpp import SmppChannel
from test_smpp import RecordingSink, part, wait_until

ESME_RINVPASWD = 0x0E
REFUSALS = [ESME_RINVPASWD, "unbind", "close", "unbind_instead"]


@pytest.fixture
def bind_times(raw, clock):
    """The fake time at which each bind reached the SMSC."""
    times: list[float] = []
    raw.on_bind = lambda: times.append(clock.monotonic())
    return times


@pytest.fixture
def channel_for(raw, clock):
    started = []

    def make(**kw):
        sink = RecordingSink()
        conn = SMPPConfig(name="SMPP0", host="127.0.0.1", port=raw.port, username="esme",
                          password="wrong", reconnectdelay=1.0, reconnectmaxdelay=8.0, **kw)
        channel = SmppChannel(conn, sink, clock=clock, rng=lambda: 0.0)   # no jitter
        channel.start()
        started.append(channel)
        return channel, sink
    yield make
    for channel in started:
        channel.stop()


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 3) for a, b in zip(times, times[1:])]


@pytest.mark.parametrize("refusal", REFUSALS)
def test_a_refused_bind_backs_off_exponentially_up_to_the_max(raw, bind_times, channel_for,
                                                                refusal):
    raw.refuse = refusal
    channel, _ = channel_for()
    wait_until(lambda: len(bind_times) >= 7, what="7 binds")
    assert gaps(bind_times)[:6] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    status = channel.status()
    assert status["failing"] and status["failed_binds_in_a_row"] >= 6
    assert status["counts"]["bind_failures"] >= 6


@pytest.mark.parametrize("refusal,reason", [
    (ESME_RINVPASWD, "bind_transceiver refused: 0x0E Invalid Password"),
    ("unbind", "bind not kept: the SMSC unbound 0.0s after the bind"),
    ("close", "bind not kept: link lost"),
    ("unbind_instead", "bind_transceiver refused: the SMSC answered with unbind"),
])
def test_the_status_says_failing_with_the_smscs_reason(raw, bind_times, channel_for, refusal,
                                                      reason):
    raw.refuse = refusal
    channel, _ = channel_for()
    wait_until(lambda: len(bind_times) >= 2, what="2 binds")
    wait_until(lambda: channel.status()["last_error"].startswith(reason),
               what=f"the reason {reason!r} in {channel.status()['last_error']!r}")
    assert channel.status()["failing"]


def test_parts_handed_over_during_refusals_go_back_to_the_store(raw, bind_times, channel_for):
    raw.refuse = "unbind"
    channel, sink = channel_for()
    wait_until(lambda: len(bind_times) >= 2, what="2 binds")
    channel.submit(part(1))
    wait_until(lambda: sink.failed, what="the part back")
    assert sink.failed[0][0] == 1 and sink.failed[0][2] is True
    assert not sink.submitted


def test_the_backoff_resets_only_after_the_bind_held(raw, bind_times, channel_for, clock):
    raw.refuse = ESME_RINVPASWD
    channel, sink = channel_for()
    wait_until(lambda: len(bind_times) >= 4, what="4 binds")     # delays 1, 2, 4
    raw.refuse = None                                           # credentials fixed
    wait_until(lambda: channel.state == "bound", what="bound")
    assert channel.status()["failing"]                          # not yet proven
    clock.advance(60)                                           # the bind holds a minute
    wait_until(lambda: not channel.status()["failing"], what="no longer failing")
    before = len(bind_times)
    dropped_at = clock.monotonic()
    raw.drop_links()                                            # a network fault later on
    wait_until(lambda: len(bind_times) > before, what="the next bind")
    assert round(bind_times[before] - dropped_at, 3) == 1.0     # the first delay again
    wait_until(lambda: channel.state == "bound", what="bound again")
    channel.submit(part(1))
    wait_until(lambda: 1 in sink.submitted, what="sent")


def test_a_link_dropped_before_it_held_keeps_the_backoff_growing(raw, bind_times, channel_for,
                                                                  clock):
    raw.refuse = ESME_RINVPASWD
    channel, _ = channel_for()
    wait_until(lambda: len(bind_times) >= 4, what="4 binds")     # delays 1, 2, 4
    raw.refuse = None
    wait_until(lambda: channel.state == "bound", what="bound")
    clock.advance(10)                                           # up, but not for long
    before = len(bind_times)
    dropped_at = clock.monotonic()
    raw.drop_links()
    wait_until(lambda: len(bind_times) > before, what="the next bind")
    assert round(bind_times[before] - dropped_at, 3) == 8.0     # 1, 2, 4, then 8
    assert channel.status()["failing"]


def test_the_backoff_stays_at_its_cap_for_ever():
    backoff = Backoff(base=1.0, cap=60.0, rng=lambda: 0.0)
    delays = [backoff.next_delay() for _ in range(5000)]    # an SMSC refusing for days
    assert delays[:3] == [1.0, 2.0, 4.0] and set(delays[6:]) == {60.0}
