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
