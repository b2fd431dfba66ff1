"""A worker asked to stop while its modem hangs in the middle of an AT+CMGS stops at once
(at.Stopping), instead of sitting out the command's timeout: with the default 60 s submit
timeout a hung modem held the daemon's SIGTERM for the whole of its 10 s stop timeout and
went on running after the store was closed. The part it was sending goes back to the queue.
A healthy modem's answer is still waited for (at.STOP_GRACE_SECONDS): a part given back while
it was leaving was sent twice after every restart under load. Against the pty simulator."""

from __future__ import annotations

import time

from appliance.modem.at import STOP_GRACE_SECONDS
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
    started = time.monotonic()
    worker.stop(timeout=STOP_GRACE_SECONDS + 5)
    assert not worker._thread.is_alive()
    assert time.monotonic() - started < STOP_GRACE_SECONDS + 3     # not the 60 s timeout
    assert sink.failed == [(2, worker.name, "stopped", "slot1 stopped while sending it", True)]
    assert worker.state == "stopped"


def test_a_stop_waits_for_the_answer_of_a_part_that_is_leaving(rig, network):
    """Found by a helper: SIGTERM during a drain, then a restart, sent the part each modem
    was sending twice. The modem answers within the grace: recorded as submitted."""
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink, config={"submittimeout": 60.0}))
    network.send_seconds = 1.5
    worker.submit(part(3))
    wait_until(lambda: sim._busy_until > time.monotonic(), what="the modem sending part 3")
    worker.stop(timeout=STOP_GRACE_SECONDS + 5)
    assert not worker._thread.is_alive()
    assert [s[0] for s in sink.submitted] == [3] and sink.failed == []
