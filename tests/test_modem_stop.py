"""A worker asked to stop while its modem hangs in the middle of an AT+CMGS stops at once
(at.Stopping), instead of sitting out the command's timeout: with the default 60 s submit
timeout a hung modem held the daemon's SIGTERM for the whole of its 10 s stop timeout and
went on running after the store was closed. The part it was sending goes back to the queue.
Against the pty simulator."""

from __future__ import annotations

from test_modem_kit import Sink, part, rig, network, wait_until  # noqa: F401 (fixtures)


def test_a_stop_ends_the_wait_on_a_hung_modem_and_gives_the_part_back(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink, config={"submittimeout": 60.0}))
    sim.hang_after_submits(1)
    worker.submit(part(1))
    wait_until(lambda: sink.submitted, what="part 1 sent")
    worker.submit(part(2))
    wait_until(lambda: "hang" in sim.faults, what="the modem hung on part 2")
    worker.stop(timeout=5)
    assert not worker._thread.is_alive()
    assert sink.failed == [(2, worker.name, "stopped", "slot1 stopped while sending it", True)]
    assert worker.state == "stopped"
