"""Pain point 7: DLR ids that do not match (hex vs decimal, leading zeros, case). A modem's
reference is TP-MR, 0-255, reported as the plain decimal string the +CMGS answer gave, with
the recipient so the store can tell apart references that wrapped around."""

from __future__ import annotations

from test_modem_kit import Sink, part, rig, network, wait_until  # noqa: F401


def test_report_reference_equals_the_submit_reference(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    sim._mr = 250                             # wrap past 255 during the test
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink))
    recipients = [f"+3670123450{i}" for i in range(8)]
    for part_id, recipient in enumerate(recipients, start=1):
        rig.ready(worker)
        worker.submit(part(part_id, recipient))
        wait_until(lambda: len(sink.submitted) == part_id, what=f"part {part_id}")
    wait_until(lambda: len(sink.reports) == 8, what="all reports")
    submitted = {ref: part_id for part_id, _, ref in sink.submitted}
    assert all(ref == str(int(ref)) and 0 <= int(ref) <= 255 for ref in submitted)
    assert "0" in submitted or "1" in submitted                  # it wrapped
    for report in sink.reports:
        part_id = submitted[report.reference]
        assert report.recipient == recipients[part_id - 1]
        assert report.connection == worker.name
