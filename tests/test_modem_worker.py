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
