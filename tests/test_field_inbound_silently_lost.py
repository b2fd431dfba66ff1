"""Pain point 5: inbound SMS silently not delivered: CNMI/CPMS differ per modem (SIM800L
refuses AT+CNMI=2,1,0,2), and messages that arrived while the daemon was down stay on the
SIM unless it reads stored memory at start. Here the real journal is the sink."""

from __future__ import annotations

import pytest

from appliance.store.journal import Journal
from test_modem_kit import Sink, rig, network, wait_until  # noqa: F401

LONG = "This inbound message is long enough to need three parts. " * 6


@pytest.fixture
def journal(tmp_path):
    store = Journal.open(tmp_path)
    yield store
    store.close()


def inbox(journal):
    return journal.folder(None, "inbox")


def test_messages_stored_while_down_are_read_at_start(rig, network, journal):
    sim = network.add_modem("slot1", "+36201111111")
    sim.deliver_inbound("+36705550001", "sent while the appliance was off")
    sim.deliver_inbound("+36705550002", LONG)
    wait_until(lambda: len(sim.memory["SM"]) == 4, what="stored on the SIM")
    rig.worker(sim, journal)
    rows = wait_until(lambda: len(inbox(journal)) == 2 and inbox(journal), what="inbox")
    bodies = {row["originator"]: row["body"] for row in rows}
    assert bodies == {"+36705550001": "sent while the appliance was off", "+36705550002": LONG}
    wait_until(lambda: not sim.memory["SM"], what="SIM emptied after commit")


def test_modem_that_refuses_cnmi_ds2_still_gets_reports_and_sms(rig, network):
    sim = network.add_modem("slot1", "+36201111111", profile="sim800")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink))
    assert worker.session.caps.cnmi.command() == "AT+CNMI=2,1,0,1,0"
    sim.deliver_inbound("+36705550001", "hello SIM800")
    wait_until(lambda: sink.fragments, what="+CMTI inbound")
    assert sink.fragments[0].text == "hello SIM800"
    assert sink.fragments[0].recipient == "+36201111111"


def test_sms_between_two_simulated_modems(rig, network):
    first, second = network.add_modem("slot1", "+36201111111"), network.add_modem("slot2", "+36202222222")
    sink_a, sink_b = Sink(), Sink()
    worker_a = rig.ready(rig.worker(first, sink_a))
    rig.ready(rig.worker(second, sink_b))
    from test_modem_kit import part
    worker_a.submit(part(1, "+36202222222", "ping from slot1"))
    wait_until(lambda: sink_b.fragments, what="arrival on slot2")
    assert (sink_b.fragments[0].sender, sink_b.fragments[0].text) == ("+36201111111", "ping from slot1")
    wait_until(lambda: sink_a.reports, what="report on slot1")


def test_direct_cmt_path_acknowledges_each_sms_after_commit_none_lost_or_duplicated(rig, network):
    """A modem that only routes SMS directly (+CMT, mt=2) under AT+CSMS=1: each one is
    acknowledged with +CNMA after the store has it; an unacknowledged one would make the
    modem stop routing and the SMSC deliver it again (a duplicate, or a silent wait)."""
    sim = network.add_modem("slot1", "+36201111111", profile="cmt_only")
    sim.cnma_seconds = 0.5
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink))
    assert worker.session.caps.cnmi.mt == 2 and sim.csms == 1
    sim.deliver_inbound("+36705550001", "first")
    sim.deliver_inbound("+36705550002", LONG)             # three parts
    sim.deliver_inbound("+36705550003", "last")
    wait_until(lambda: len(sink.fragments) == 5, what="five +CMT parts")
    import time
    time.sleep(1.5)                     # past the ack window and the SMSC's retry
    parts = sorted((f.sender, f.concat[2] if f.concat else 1) for f in sink.fragments)
    assert parts == [("+36705550001", 1), ("+36705550002", 1), ("+36705550002", 2),
                     ("+36705550002", 3), ("+36705550003", 1)]
    assert sum(1 for c in sim.commands if c == "AT+CNMA") == 5
    assert sim.cnmi[1] == 2 and not sim.memory["SM"]      # routing still on, nothing stored


def test_direct_cmt_that_the_store_refused_is_delivered_again(rig, network):
    sim = network.add_modem("slot1", "+36201111111", profile="cmt_only")
    sink = Sink()
    sink.refuse_inbound = True
    rig.ready(rig.worker(sim, sink))
    sim.deliver_inbound("+36705550001", "retry me")
    wait_until(lambda: "AT+CNMA=2" in sim.commands, what="negative acknowledgement")
    sink.refuse_inbound = False
    wait_until(lambda: sink.fragments, what="redelivered by the SMSC")
    assert [f.text for f in sink.fragments] == ["retry me"]
    wait_until(lambda: "AT+CNMA" in sim.commands, what="positive acknowledgement")
