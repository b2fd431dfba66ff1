"""A worker asked to stop while its modem hangs in the middle of an AT+CMGS stops at once
(at.Stopping), instead of sitting out the command's timeout: with the default 60 s submit
timeout a hung modem held the daemon's SIGTERM for the whole of its 10 s stop timeout and
went on running after the store was closed. The part it was sending goes back to the queue.
A healthy modem's answer is still waited for (at.STOP_GRACE_SECONDS): a part given back while
it was leaving was sent twice after every restart under load. Against the pty simulator."""

from __future__ import annotations

import time

from appliance.modem.at import STOP_GRACE_SECONDS
from test_modem_kit import (Sink, mock_factory, network, part, rig,  # noqa: F401
                            wait_until)


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


def test_repeated_resets_run_the_ladder_once_and_the_worker_lives(rig, network):
    """Found by a helper: three quick clicks on the dashboard's reset killed the worker
    thread (the resets still queued were handed back as if they were USSD requests), and
    the dispatcher kept handing parts to the dead worker."""
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink))
    network.send_seconds = 0.5
    worker.submit(part(5))                    # busy: the clicks queue behind the send
    assert [worker.request_reset("reset by admin") for _ in range(3)] == [True] * 3
    wait_until(lambda: worker.recoveries, what="the ladder run")
    rig.ready(worker, timeout=20)
    assert worker._thread.is_alive()
    assert worker.status()["last_error"].endswith("reset by admin")
    assert [s[0] for s in sink.submitted] == [5]


def test_a_stopped_worker_gives_its_gpio_pins_back(rig, network, mock_factory):
    """Found by a helper: a driver restarted through the API logged "GPIO17 is already in
    use", and its modem had no power cycle left on its ladder."""
    from appliance.modem.power import PowerControl
    sim = network.add_modem("slot1", "+36201111111")

    def power():
        return PowerControl(power_pin=17, pin_factory=mock_factory, power_off_seconds=0.01)
    first = rig.ready(rig.worker(sim, Sink(), power=power()))
    first.stop()
    again = power()
    assert again.available() and again.error == ""
    again.close()


def test_a_modem_that_does_not_answer_shows_no_signal_or_registration(rig, network):
    """Found by a helper: a failed, recovering or unplugged modem kept showing the last
    check's "registered, -71 dBm" in /status, /metrics and the dashboard."""
    sim = network.add_modem("slot1", "+36201111111")
    worker = rig.ready(rig.worker(sim, Sink(), config={"submittimeout": 60.0}))
    assert worker.status()["registered"] and worker.status()["signal"]["dbm"] is not None
    sim.inject_fault("hang")
    wait_until(lambda: worker.state != "ready", timeout=15, what="the modem given up on")
    status = worker.status()
    assert (status["registered"], status["signal"]["dbm"], status["registration"]) == \
        (False, None, "unknown")
    # and its last error says why it went down, not "modem down: slot1 is recovering"
    assert "is recovering" not in status["last_error"] and status["last_error"]
