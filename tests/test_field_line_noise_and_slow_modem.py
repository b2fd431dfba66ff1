"""Garbage bytes on the line (boot noise, a flaky USB hub) and a slow modem must neither
break the AT framing nor trigger a needless recovery."""

from __future__ import annotations

from test_modem_kit import Sink, part, rig, network, wait_until  # noqa: F401


def test_garbage_between_answers_is_ignored(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink))
    sim.inject_fault("garbage")
    for part_id in (1, 2, 3):
        worker.submit(part(part_id))
        wait_until(lambda: len(sink.submitted) == part_id, what=f"part {part_id}")
        rig.ready(worker)
    wait_until(lambda: len(sink.reports) == 3, what="three reports")
    assert worker.session.port.noise_lines > 0
    assert worker.recoveries == {}


def test_slow_modem_still_delivers_without_recovery(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    sim.slow_seconds = 0.3               # under the keep-alive timeout, as a busy module is
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink))
    sim.inject_fault("slow")
    worker.submit(part(1))
    wait_until(lambda: sink.reports, what="report from a slow modem")
    assert worker.recoveries == {}


def test_an_ok_whose_cmgs_line_noise_ate_is_a_send_not_a_failure(rig, network):
    """Found by a helper: the +CMGS line garbled, the final OK intact: the SMS had left, but
    the part was failed as retryable and sent again at every backoff (4 copies in 50 s), and
    the healthy modem was reset after three such "failures"."""
    import time
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink))
    sim.inject_fault("noisy_cmgs")
    for part_id in (1, 2, 3, 4):
        worker.submit(part(part_id, text=f"pay invoice {part_id}"))
        wait_until(lambda: len(sink.submitted) + len(sink.failed) >= part_id,
                   what=f"part {part_id} answered")
    time.sleep(0.3)
    assert [p for p, _, _ in sink.submitted] == [1, 2, 3, 4] and sink.failed == []
    assert all(reference == "" for _, _, reference in sink.submitted)
    assert sorted(s["text"] for s in network.submits) == [f"pay invoice {n}" for n in (1, 2, 3, 4)]
    assert worker.recoveries == {} and worker.state == "ready"
