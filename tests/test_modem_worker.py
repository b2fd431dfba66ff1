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
