"""The HTTP Client channel alone, with a recording sink: a provider that goes away in the
middle puts the channel down, its parts go back, and it comes up again by itself."""

from __future__ import annotations

import threading
import time

import pytest

from appliance.channel_down import known_down
from appliance.clock import Clock
from appliance.model import OutPart
from appliance.provider.http_client import HttpClientChannel
from appliance.provider.settings import HTTPClientConfig
from fakes.providers import WebProvider, wait_for


class RecordingSink:
    def __init__(self):
        self.calls: list[tuple] = []
        self._lock = threading.Lock()

    def part_submitted(self, part_id, connection, reference, whole_message=False):
        with self._lock:
            self.calls.append(("submitted", part_id, reference))

    def part_failed(self, part_id, connection, code, reason, retryable):
        with self._lock:
            self.calls.append(("failed", part_id, code, retryable))

    def get_message(self, message_id):
        return None                        # whole messages are tested through the daemon

    def get_parts(self, message_id):
        return []


def part(n: int) -> OutPart:
    return OutPart(id=n, message_id=f"m{n}", recipient="+36201234567", originator="ACME",
                   text=f"text {n}")


@pytest.fixture
def channel_for():
    made = []

    def make(url: str) -> tuple[HttpClientChannel, RecordingSink]:
        sink = RecordingSink()
        conn = HTTPClientConfig(name="Web0", targeturl=f"{url}/s?to=$recipient&m=$messagedata",
                                limittompm=0, reconnectdelay=0.05, keepaliveperiod=0.2,
                                windowsize=2)
        channel = HttpClientChannel(conn, sink)
        channel.start()
        made.append(channel)
        return channel, sink
    yield make
    for channel in made:
        channel.stop()


def test_a_provider_lost_mid_way_returns_the_part_and_comes_back(channel_for):
    first = WebProvider().start()
    channel, sink = channel_for(first.url)
    wait_for(lambda: channel.state == "ready", what="ready")
    channel.submit(part(1))
    wait_for(lambda: ("submitted", 1, "m1") in sink.calls, what="part 1")

    first.stop()                                   # the provider goes away
    channel.submit(part(2))
    wait_for(lambda: ("failed", 2, "provider_down", True) in sink.calls, what="part 2 back")
    assert channel.state == "down" and channel.free_slots() == 0
    assert channel.status()["counts"]["down"] == 1

    again = WebProvider(port=first.port).start()   # and comes back on its address
    try:
        wait_for(lambda: channel.state == "ready", what="up again")
        assert channel.free_slots() == 2
        channel.submit(part(2))
        wait_for(lambda: ("submitted", 2, "m2") in sink.calls, what="part 2 sent")
        assert again.requests[0]["query"] == {"to": "+36201234567", "m": "text 2"}
    finally:
        again.stop()


def test_stop_gives_back_what_is_still_queued(channel_for):
    gate = threading.Event()
    web = WebProvider(lambda request: (gate.wait(10), (200, "OK"))[1]).start()
    try:
        channel, sink = channel_for(web.url)
        wait_for(lambda: channel.state == "ready", what="ready")
        for n in range(1, 5):                      # two in flight, two waiting
            channel.submit(part(n))
        wait_for(lambda: len(web.requests) == 2, what="two in flight")
        # the provider answers the two in flight only once the stop has begun
        threading.Thread(target=lambda: (wait_for(channel._stop.is_set, what="stopping"),
                                         gate.set())).start()
        channel.stop()
        outcomes = {call[1]: call[0] for call in sink.calls}
        assert sorted(outcomes) == [1, 2, 3, 4]
        assert sorted(outcomes.values()) == ["failed", "failed", "submitted", "submitted"]
        assert all(call[3] for call in sink.calls if call[0] == "failed")   # retryable
    finally:
        gate.set()
        web.stop()


class SteppedClock(Clock):
    """Monotonic time moves only when the test says so; waits still block (briefly), so the
    channel's threads run as they do, but no probe is due before the test moves the clock."""

    def __init__(self):
        self.at = 1000.0

    def monotonic(self) -> float:
        return self.at

    def wait(self, event, seconds: float) -> bool:
        return event.wait(min(max(0.0, seconds), 0.02))


def stepped_channel(url: str):
    """A started channel to `url` on a clock the test moves: (channel, clock, sink)."""
    clock, sink = SteppedClock(), RecordingSink()
    conn = HTTPClientConfig(name="Web0", targeturl=url, limittompm=0, reconnectdelay=1.0,
                            keepaliveperiod=4.0, windowsize=2)
    channel = HttpClientChannel(conn, sink, clock=clock)
    channel.start()
    return channel, clock, sink


def test_a_provider_whose_probe_fails_too_is_failing_until_it_answers():
    """One failed request is a hiccup (the grace period holds); the probe after it failing
    too makes the connection `failing`, which channel_down counts as known down."""
    first = WebProvider().start()
    channel, clock, sink = stepped_channel(f"{first.url}/s?to=$recipient&m=$messagedata")
    again = None
    try:
        wait_for(lambda: channel.state == "ready", what="ready")
        assert not channel.status()["failing"] and known_down(channel) == ""

        first.stop()
        channel.submit(part(1))
        wait_for(lambda: ("failed", 1, "provider_down", True) in sink.calls, what="part 1 back")
        status = channel.status()       # the clock stands still: no probe yet
        assert (status["state"], status["failures_in_a_row"], status["failing"]) == \
            ("down", 1, False)
        assert known_down(channel) == ""

        clock.at += 5.0                 # the probe is due, and fails too
        wait_for(lambda: channel.status()["failing"], what="the probe failed too")
        assert channel.status()["failures_in_a_row"] == 2
        assert known_down(channel) == "is failing"

        again = WebProvider(port=first.port).start()
        clock.at += 10.0
        wait_for(lambda: channel.state == "ready", what="up again")
        assert not channel.status()["failing"] and known_down(channel) == ""
        channel.submit(part(2))         # the count starts again once a send succeeds
        wait_for(lambda: any(c[:2] == ("submitted", 2) for c in sink.calls), what="part 2 sent")
        assert channel.status()["failures_in_a_row"] == 0
    finally:
        channel.stop()
        if again is not None:
            again.stop()


def test_a_provider_whose_port_answers_while_every_request_fails_becomes_failing():
    """Found by a helper: an HTTPS provider whose certificate does not verify (here: TLS to
    a plain HTTP port) failed every request while the TCP probe passed; the probe reset the
    count, so the connection flapped down/ready for ever, never `failing`, /status healthy,
    the message queued for its whole validity."""
    plain = WebProvider().start()
    channel, clock, sink = stepped_channel(f"https://127.0.0.1:{plain.port}/s?m=$messagedata")
    try:
        wait_for(lambda: channel.state == "ready", what="ready")
        channel.submit(part(1))
        wait_for(lambda: channel.state == "down", what="the request failed")
        clock.at += 5.0                 # the probe: the port answers
        wait_for(lambda: channel.state == "ready", what="probe passed")
        channel.submit(part(2))         # what the dispatcher does next
        wait_for(lambda: channel.status()["failing"], what="failing after the second failure")
        assert known_down(channel) == "is failing"
    finally:
        channel.stop()
        plain.stop()


def test_reports_for_no_message_are_dropped_after_two_days(tmp_path):
    """Found by a helper: every report at the HTTP Client's report URL with an unknown
    reference was kept for ever (3,000 junk requests: 3,000 rows, after restarts too); only
    SMPP uplinks ever dropped theirs."""
    from appliance.clock import FakeClock
    from appliance.model import Report, ReportStatus
    from appliance.store.journal import Journal
    clock = FakeClock()
    journal = Journal.open(tmp_path, clock=clock)
    provider = WebProvider().start()
    channel = None
    try:
        journal.report(Report("Web0", "junk-old", ReportStatus.DELIVERED))
        clock.advance(49 * 3600)
        journal.report(Report("Web0", "junk-new", ReportStatus.DELIVERED))
        conn = HTTPClientConfig(name="Web0", targeturl=f"{provider.url}/s?m=$messagedata",
                                limittompm=0)
        channel = HttpClientChannel(conn, journal)
        channel.start()
        wait_for(lambda: [r["reference"] for r in journal.query(
            "SELECT reference FROM orphan_reports")] == ["junk-new"], what="the old one dropped")
    finally:
        if channel is not None:
            channel.stop()
        provider.stop()
        journal.close()


def test_stop_waits_one_deadline_for_all_workers_not_one_each(channel_for):
    """Six workers each in a request the provider holds: stop(1 s) returns after about one
    second, not six (the deadline is shared; joined one after another, it took 160 s with
    16 workers in slow requests)."""
    gate = threading.Event()
    web = WebProvider(lambda request: (gate.wait(30), (200, "OK"))[1]).start()
    conn = HTTPClientConfig(name="Web0", targeturl=f"{web.url}/s?to=$recipient&m=$messagedata",
                            limittompm=0, reconnectdelay=0.05, keepaliveperiod=0.2,
                            windowsize=6)
    channel = HttpClientChannel(conn, RecordingSink())
    channel.start()
    try:
        wait_for(lambda: channel.state == "ready", what="ready")
        for n in range(1, 7):
            channel.submit(part(n))
        wait_for(lambda: len(web.requests) == 6, what="six in flight")
        started = time.monotonic()
        channel.stop(timeout=1.0)
        took = time.monotonic() - started
        assert channel.state == "stopped"
        assert 0.9 <= took < 4.0, took          # one shared second; six would be >= 6
    finally:
        gate.set()
        web.stop()
