"""Pain point 14: operators block bursts and cap SIMs per day. `limittompm` spaces sends,
`random_delay_seconds` adds jitter, `daily_limit` stops a SIM for the rest of the local day,
and after a restart the store's count of today's sends is honoured."""

from __future__ import annotations

from appliance.clock import FakeClock
from appliance.modem.pacing import Pacing
from test_modem_kit import Sink, part, rig, network, wait_until  # noqa: F401


def test_limittompm_spaces_sends(rig, network):
    clock = FakeClock()
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink, clock=clock, config=dict(limittompm=6)))
    worker.submit(part(1))
    wait_until(lambda: sink.submitted, what="first send")
    assert worker.free_slots() == 0
    clock.advance(9.9)
    assert worker.free_slots() == 0
    clock.advance(0.2)
    assert worker.free_slots() == 1


def test_daily_budget_counts_todays_sends_from_the_store(rig, network):
    clock = FakeClock()
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    sink.sent_today = 2                      # sent before a restart, says the store
    worker = rig.ready(rig.worker(sim, sink, clock=clock, config=dict(daily_limit=3)))
    worker.submit(part(1))
    wait_until(lambda: sink.submitted, what="third send of the day")
    assert worker.free_slots() == 0 and worker.status()["sent_today"] == 3
    clock.advance(86400)                      # the next local day
    assert worker.free_slots() == 1


def test_todays_count_survives_a_restart_without_a_daily_limit(rig, network, tmp_path):
    """Found by a helper: without a daily_limit the worker never asked the store, so the
    dashboard's "today: N sent" and sms_modem_sent_today restarted at 0 with the daemon.
    The count comes from the real journal's parts."""
    from appliance.compose import Submission, prepare
    from appliance.store.journal import Journal
    journal = Journal.open(tmp_path)
    try:
        message = prepare(Submission(user="admin", recipient="+36201234567", text="earlier"))
        journal.accept([message])
        [part_id] = [p.id for p in journal.due_parts(10)]
        journal.claim([(part_id, "GSMModem0")])
        journal.part_submitted(part_id, "GSMModem0", "7")
        sim = network.add_modem("slot1", "+36201111111")
        worker = rig.ready(rig.worker(sim, journal, config=dict(name="GSMModem0")))
        assert worker.status()["sent_today"] == 1
    finally:
        journal.close()


def test_random_delay_adds_jitter_within_bounds():
    clock = FakeClock()
    gaps = set()
    for seed in range(20):
        import random
        pacing = Pacing(clock, per_minute=60, random_delay=5.0, daily_limit=0,
                        rng=random.Random(seed))
        pacing.record_attempt(counted=True)
        gaps.add(round(pacing.seconds_until_allowed(), 3))
    assert all(1.0 <= gap <= 6.0 for gap in gaps) and len(gaps) > 10
