"""The uplink's submits-per-second figure (/status `submits_per_second`): right over its
span, and bounded in memory at any rate."""

from __future__ import annotations

import tracemalloc

from appliance.uplink.window import Rate


def test_rate_over_the_last_ten_seconds():
    rate = Rate(span=10.0)
    assert rate.per_second(0.0) == 0.0
    for i in range(1000):                      # 100 a second for 10 s
        rate.add(i / 100)
    assert 99.0 <= rate.per_second(10.0) <= 101.0
    assert 49.0 <= rate.per_second(15.0) <= 51.0      # the last 5 s of it
    assert rate.per_second(30.0) == 0.0        # nothing in the last 10 s
    rate.add(30.0, count=5)                    # a batch at once
    assert rate.per_second(30.0) == 5.0


def test_a_high_rate_keeps_no_record_per_submit():
    rate = Rate(span=10.0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(100_000):               # 10,000 a second for 10 s
            rate.add(i / 10_000)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, grown
    assert 9_900 <= rate.per_second(10.0) <= 10_100
