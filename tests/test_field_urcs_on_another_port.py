"""Pain point 4: URCs arrive on another interface. A Quectel module sends +CMTI/+CDS to the
port chosen by AT+QURCCFG="urcport"; the worker sets it to the AT port it listens on."""

from __future__ import annotations

from test_modem_kit import Sink, part, rig, network, wait_until  # noqa: F401


def test_quectel_urcs_are_routed_to_our_port(rig, network):
    sim = network.add_modem("slot1", "+36201111111", profile="quectel")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink))
    assert 'AT+QURCCFG="urcport","usbat"' in sim.commands
    sim.deliver_inbound("+36705550001", "arrives by +CMTI, not by the 5-minute sweep")
    wait_until(lambda: sink.fragments, timeout=3, what="+CMTI on our port")
    worker.submit(part(1))
    wait_until(lambda: sink.reports, timeout=3, what="+CDS on our port")


def test_without_urcs_the_storage_sweep_still_finds_messages(rig, network):
    from test_modem_kit import FAST
    import dataclasses
    sim = network.add_modem("slot1", "+36201111111", profile="quectel")
    sink = Sink()
    timings = dataclasses.replace(FAST, sweep=0.5)
    worker = rig.ready(rig.worker(sim, sink, timings=timings))
    sim.urcport_set = False              # firmware that ignored QURCCFG
    sim.deliver_inbound("+36705550001", "found by AT+CMGL")
    wait_until(lambda: sink.fragments, timeout=5, what="sweep")
    assert worker.state == "ready"
