"""Pain point 6: delivery reports lost: modems that only store reports in SR memory and
announce them with +CDSI (gammu's $500 bounty), and reports that arrived while we were down."""

from __future__ import annotations

from appliance.model import ReportStatus
from test_modem_kit import Sink, part, rig, network, wait_until  # noqa: F401


def test_reports_in_sr_memory_are_read_and_deleted(rig, network):
    sim = network.add_modem("slot1", "+36201111111", profile="srmem")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink))
    assert worker.session.caps.cnmi.ds == 2
    worker.submit(part(1))
    wait_until(lambda: sink.reports, what="+CDSI report")
    assert sink.reports[0].reference == sink.submitted[0][2]
    wait_until(lambda: not sim.memory["SR"], what="SR slot freed")


def test_reports_stored_while_down_are_read_at_start(rig, network):
    sim = network.add_modem("slot1", "+36201111111", profile="srmem")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink))
    worker.submit(part(1, "+99912345678"))         # an undeliverable number
    wait_until(lambda: sink.submitted, what="submitted")
    worker.stop(5)                                 # the report arrives while we are down
    wait_until(lambda: sim.memory["SR"], what="report stored in SR")
    sink2 = Sink()
    rig.ready(rig.worker(sim, sink2))
    report = wait_until(lambda: sink2.reports and sink2.reports[0], what="report read at start")
    assert report.status == ReportStatus.FAILED and report.code == 0x41
    # the slot is freed only after the report was handed over (kept), so wait for it
    wait_until(lambda: not sim.memory["SR"], what="SR slot freed")


def test_tp_status_mapping():
    from appliance.modem.reports import report_status
    assert report_status(0x00) == ReportStatus.DELIVERED
    assert report_status(0x02) == ReportStatus.DELIVERED
    assert report_status(0x21) == ReportStatus.PENDING
    assert report_status(0x46) == ReportStatus.EXPIRED
    assert report_status(0x41) == ReportStatus.FAILED
    assert report_status(0x62) == ReportStatus.FAILED


def test_quectel_cdsi_names_sm_while_the_report_sits_in_sr(rig, network):
    """Quectel EC25/EG25 with ds=1 refused store the report in SR but announce it as
    `+CDSI: "SM",n` (field-notes §2 point 6): the worker reads it from SR at once."""
    sim = network.add_modem("slot1", "+36201111111", profile="quectel_sr")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink))
    assert worker.session.caps.cnmi.ds == 2
    worker.submit(part(1))
    report = wait_until(lambda: sink.reports and sink.reports[0], timeout=5,
                        what="report read from SR after +CDSI \"SM\"")
    assert report.reference == sink.submitted[0][2]
    assert report.status == ReportStatus.DELIVERED
    wait_until(lambda: not sim.memory["SR"], what="SR slot freed")
    assert len(sink.reports) == 1


def _submit_then_unplug(rig, network, profile):
    network.report_seconds = 0.5            # the report arrives while the link is gone
    sim = network.add_modem("slot1", "+36201111111", profile=profile)
    sim.replug_seconds = 2.0
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink))
    worker.submit(part(1))
    wait_until(lambda: sink.submitted, what="submitted")
    sim.inject_fault("unplug")
    return sim, sink, worker


def test_report_kept_in_sr_while_unplugged_is_read_after_the_reopen(rig, network):
    sim, sink, worker = _submit_then_unplug(rig, network, "quectel")
    wait_until(lambda: sim.memory["SR"], timeout=3, what="report kept in SR while unplugged")
    rig.ready(worker, timeout=10)
    report = wait_until(lambda: sink.reports and sink.reports[0], what="report read from SR")
    assert report.reference == sink.submitted[0][2]
    assert report.status == ReportStatus.DELIVERED
    assert worker.recoveries == {"reopen": 1}
    assert 'AT+CPMS="SR"' in sim.commands
    # the report reaches the store before its AT+CMGD frees the slot: wait for that
    wait_until(lambda: not sim.memory["SR"], timeout=5, what="SR slot freed")


def test_modem_that_kept_no_report_leaves_the_part_submitted(rig, network):
    import time
    sim, sink, worker = _submit_then_unplug(rig, network, "sim800")     # no SR memory
    rig.ready(worker, timeout=10)
    time.sleep(1.5)                         # longer than the network's retry
    assert sink.reports == [] and sink.failed == []
    assert [p[0] for p in sink.submitted] == [1]     # honest: submitted, no invented report
