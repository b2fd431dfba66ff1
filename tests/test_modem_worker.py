"""ModemWorker against the pty simulator: the Channel contract, end to end over a real tty."""

from __future__ import annotations

from appliance.model import ReportStatus
from test_modem_kit import Sink, part, rig, network, wait_until  # noqa: F401 (fixtures)


def test_sends_one_sms_and_matches_its_status_report(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink))
    worker.submit(part(7, "+36701234567", "Hello world"))
    wait_until(lambda: sink.submitted, what="part_submitted")
    part_id, connection, reference = sink.submitted[0]
    assert (part_id, connection) == (7, worker.name)
    # the simulated network records the submit on its own timer, racing the modem's +CMGS
    wait_until(lambda: network.submits, what="the network's record of the submit")
    assert network.submits[0]["text"] == "Hello world"
    report = wait_until(lambda: sink.reports and sink.reports[0], what="report")
    assert report.reference == reference
    assert report.status == ReportStatus.DELIVERED
    assert report.recipient == "+36701234567"
    assert worker.status()["sent"] == 1


def test_a_store_that_cannot_take_a_result_is_retried_not_taken_for_a_modem_fault(rig,
                                                                                   network):
    """Found by a helper with a full disk: the store's error reset a healthy modem, and the
    send's record was lost (the part stayed `sending` until a restart sent it again)."""
    from appliance.errors import StoreError
    sim = network.add_modem("slot1", "+36201111111")

    class FullDisk(Sink):
        refusals = 2

        def part_submitted(self, part_id, connection, reference):
            if self.refusals:
                self.refusals -= 1
                raise StoreError("commit failed: database or disk is full")
            super().part_submitted(part_id, connection, reference)
    sink = FullDisk()
    worker = rig.ready(rig.worker(sim, sink))
    worker.submit(part(7, "+36701234567", "Hello world"))
    wait_until(lambda: sink.submitted, timeout=20, what="the record, once the store takes it")
    assert [s[0] for s in sink.submitted] == [7] and sink.failed == []
    assert len(network.submits) == 1                    # sent once
    status = worker.status()
    assert status["state"] == "ready" and status["resets_last_hour"] == 0


def test_an_idle_modem_sleeps_until_a_request_or_a_line_wakes_it(rig, network):
    """The worker sleeps in one poll() on the port and its inbox (modem/inbox.py) instead of
    waking ten times a second to look. With its timers 30 s away, a part, an incoming SMS,
    an unplugged port and a stop are each still handled at once."""
    import dataclasses
    import time

    from test_modem_kit import FAST
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink, timings=dataclasses.replace(FAST, poll=30.0)))
    time.sleep(0.3)                                   # asleep in its poll() by now
    worker.submit(part(7, "+36701234567", "woken by the inbox"))
    wait_until(lambda: sink.submitted, timeout=5, what="the part sent at once")
    sim.deliver_inbound("+36705550000", "woken by +CMTI")
    fragment = wait_until(lambda: sink.fragments and sink.fragments[0], timeout=5,
                          what="the SMS read at once")
    assert fragment.text == "woken by +CMTI"
    sim.inject_fault("unplug")
    wait_until(lambda: worker.state != "ready", timeout=5, what="the unplug seen at once")
    started = time.monotonic()
    worker.stop(10)
    assert time.monotonic() - started < 5, "stop waited for the timers"


def test_the_inbox_wakes_its_waiter_and_polls_a_port_without_a_descriptor():
    import os
    import threading
    import time

    from appliance.modem.inbox import FALLBACK_POLL, Inbox
    inbox = Inbox()
    read_end, write_end = os.pipe()                   # a quiet port
    try:
        threading.Timer(0.2, lambda: inbox.put(("send", 1))).start()
        started = time.monotonic()
        assert inbox.wait(read_end, 30.0) is False    # woken by the put, the port quiet
        assert inbox.get_nowait() == ("send", 1)
        assert time.monotonic() - started < 5
        os.write(write_end, b"+CMTI")
        assert inbox.wait(read_end, 30.0) is True     # the port has a line
    finally:
        os.close(read_end)
        os.close(write_end)
    started = time.monotonic()
    assert inbox.wait(None, 30.0) is False            # loop://: looked at as before
    assert time.monotonic() - started < FALLBACK_POLL + 2
