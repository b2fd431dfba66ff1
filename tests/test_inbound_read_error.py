"""Reading the SIM goes wrong: a +CMTI whose AT+CMGR gets an error result (a late answer's
ERROR, a busy SIM) is one warning line, the SMS stays on the SIM and the next sweep reads
it; a modem that stops answering while the SIM is read on becoming ready goes to recovery
as such. Before, both were an ERROR with a traceback ("internal error"). Pty modem
simulator, real worker."""

from __future__ import annotations

import dataclasses
import logging

from appliance.sim import modem as sim_modem
from test_modem_kit import FAST, Sink, rig, network, wait_until  # noqa: F401


def _answer_once_with(monkeypatch, original, answer):
    """The simulator's handler `original` gives `answer(sim)` the first time it is asked."""
    pending = [1]

    def once(sim, line, match):
        if pending:
            pending.pop()
            return answer(sim)
        return original(sim, line, match)

    handlers = [(pattern, once if handler is original else handler)
                for pattern, handler in sim_modem._HANDLERS]
    monkeypatch.setattr(sim_modem, "_HANDLERS", handlers)
    return pending


def test_an_sms_whose_read_fails_waits_on_the_sim_for_the_sweep(rig, network, monkeypatch,
                                                                caplog):
    failures = _answer_once_with(monkeypatch, sim_modem.SimModem._cmgr,
                                 lambda sim: sim._error())
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink, timings=dataclasses.replace(FAST, sweep=1.0)))
    caplog.set_level(logging.WARNING, logger="appliance.modem")
    sim.deliver_inbound("+36309998877", "read at the sweep")
    wait_until(lambda: sink.fragments, timeout=10, what="the SMS read by the sweep")
    assert not failures and sink.fragments[0].text == "read at the sweep"
    assert any("not read now" in r.getMessage() and "AT+CMGR=0: ERROR" in r.getMessage()
               for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert worker.recoveries == {}
    wait_until(lambda: not sim.memory[sim.cpms[2]], timeout=5, what="deleted from the SIM")


def test_a_modem_silent_while_its_sim_is_read_on_becoming_ready_is_recovered(rig, network,
                                                                             monkeypatch,
                                                                             caplog):
    silent = _answer_once_with(monkeypatch, sim_modem.SimModem._cmgl, lambda sim: None)
    sim = network.add_modem("slot1", "+36201111111")
    caplog.set_level(logging.WARNING, logger="appliance.modem")
    worker = rig.worker(sim, Sink(), timings=dataclasses.replace(FAST, command=0.3))
    wait_until(lambda: not silent and worker.recoveries, timeout=15, what="a recovery")
    rig.ready(worker, timeout=15)
    assert any("modem stopped answering (no answer to AT+CMGL=4)" in r.getMessage()
               for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_undecodable_sms_is_kept_as_raw_data_before_the_sim_forgets_it(rig, network):
    """Found by a helper: a PDU with a malformed header was logged, then deleted from the
    SIM, and what it said was gone for good. It reaches the inbox as the raw PDU."""
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    rig.ready(rig.worker(sim, sink))
    garbage = "0791361907001003440B916303198877F70000" + "62112161000000" + "0A05FF"
    sim.post(lambda: sim.receive_deliver(garbage))
    wait_until(lambda: sink.fragments, timeout=10, what="the raw SMS")
    [kept] = sink.fragments
    assert (kept.text, kept.data.hex().upper(), kept.recipient) == \
        (None, garbage, "+36201111111")
    wait_until(lambda: not sim.memory[sim.cpms[2]], timeout=5, what="deleted from the SIM")
