"""LIMITTOMPM on an SMPP uplink: submit_sm spaced 60/limit seconds apart, as docs/api.md
says it is applied (it was read only by modems and providers: an SMPP link sent at full
speed, found by a helper). The channel runs on a FakeClock; the raw SMSC counts what
arrives."""

from __future__ import annotations

import time

from appliance.clock import FakeClock
from test_smpp import part, wait_until


def test_limittompm_spaces_the_submits_without_a_burst_after_a_pause(raw, raw_channel):
    clock = FakeClock()
    channel, sink = raw_channel({"clock": clock}, limittompm=60, windowsize=5)
    assert channel.capacity == 5 + 10            # ten seconds' worth waits in memory
    for i in range(1, 6):
        channel.submit(part(i))
    wait_until(lambda: len(raw.submits) == 1, what="the first submit_sm")
    time.sleep(0.3)                              # the worker cycles; the clock stands still
    assert len(raw.submits) == 1
    clock.advance(1.0)
    wait_until(lambda: len(raw.submits) == 2, what="the second, a second later")
    clock.advance(30.0)                          # long idle: one, then the spacing again
    wait_until(lambda: len(raw.submits) == 3, what="the third")
    time.sleep(0.3)
    assert len(raw.submits) == 3
    clock.advance(1.0)
    wait_until(lambda: len(raw.submits) == 4, what="the fourth")
    wait_until(lambda: len(sink.submitted) == 4, what="their results")


def test_without_a_limit_the_window_fills_at_once(raw, raw_channel):
    channel, _ = raw_channel({"clock": FakeClock()}, windowsize=5)
    for i in range(1, 6):
        channel.submit(part(i))
    wait_until(lambda: len(raw.submits) == 5, what="five submit_sm at once")
