"""Pain point 12: opaque +CMS ERROR codes. Each failure carries the modem's code, a reason a
human can read and a retry decision: network causes about the recipient are final; CMS 500
is retried elsewhere, and repeated 500s make the worker reset the radio."""

from __future__ import annotations

from appliance.modem.at import AtCommandError
from appliance.modem.errors import classify
from test_modem_kit import Sink, part, rig, network, wait_until  # noqa: F401


def test_cms_500_is_retryable_and_repeated_ones_trigger_recovery(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink, config=dict(max_failures=2)))
    sim.inject_fault("cms500")
    for part_id in (1, 2):
        rig.ready(worker)
        worker.submit(part(part_id))
        wait_until(lambda: len(sink.failed) == part_id, what=f"failure {part_id}")
    assert [f[2:] for f in sink.failed] == [("CMS 500", "unknown error", True)] * 2
    rig.ready(worker, timeout=15)
    assert worker.recoveries["cfun_radio"] == 1
    worker.submit(part(3))
    wait_until(lambda: sink.submitted, what="send after the reset")


def test_network_refusal_about_the_recipient_is_final(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    network.refuse["+36709999999"] = 8            # operator determined barring
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink))
    worker.submit(part(1, "+36709999999"))
    wait_until(lambda: sink.failed, what="refusal")
    assert sink.failed[0][2:] == ("CMS 8", "operator determined barring", False)
    assert worker.state == "ready"                 # not the modem's fault: no recovery


def test_classification_table():
    def cms(code):
        return classify(AtCommandError("AT+CMGS=20", "CMS", code))
    assert cms(1).retryable is False and cms(1).reason == "unassigned (unallocated) number"
    assert cms(304).retryable is False
    assert cms(330).race and cms(330).retryable
    assert cms(42).retryable and not cms(42).modem_fault
    assert cms(500).modem_fault and cms(500).retryable
    assert classify(AtCommandError("AT+CMGS=20", "ERROR", None)).code == "ERROR"
    assert cms(777).reason == "network or vendor specific error"
