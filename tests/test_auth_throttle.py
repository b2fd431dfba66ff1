"""auth.LoginThrottle: at most `limit` failed logins per address per window; an address
without recent failures is answered without the lock and leaves nothing behind."""

from __future__ import annotations

from appliance import auth


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_an_address_is_blocked_at_the_limit_and_free_again_after_the_window():
    clock = Clock()
    throttle = auth.LoginThrottle(limit=2, window=60.0, clock=clock)
    assert not throttle.blocked("10.0.0.1")
    throttle.failed("10.0.0.1")
    assert not throttle.blocked("10.0.0.1")
    throttle.failed("10.0.0.1")
    assert throttle.blocked("10.0.0.1")
    assert not throttle.blocked("10.0.0.2")          # per address
    clock.now += 61
    assert not throttle.blocked("10.0.0.1")
    assert not throttle.blocked("10.0.0.1")          # pruned to empty: still free


def test_a_limit_of_zero_blocks_every_address():
    throttle = auth.LoginThrottle(limit=0)
    assert throttle.blocked("10.0.0.1")


def test_checking_a_clean_address_keeps_no_entry_for_it():
    throttle = auth.LoginThrottle(limit=3)
    for i in range(100):
        assert not throttle.blocked(f"10.0.1.{i}")
    assert not throttle._failures
