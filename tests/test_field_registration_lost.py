"""Pain point 13 (second half): registration lost or denied (+CGREG: 0,3); the cure in the
field is AT+CFUN=0 / AT+CFUN=1. The worker stops taking parts while unregistered and, after
`deregistered_timeout`, climbs the first rung of the ladder."""

from __future__ import annotations

from test_modem_kit import Sink, part, rig, network, wait_until  # noqa: F401


def test_deregistered_modem_is_routed_around_then_cured_by_cfun(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink))
    sim.inject_fault("deregister")
    wait_until(lambda: not worker.status()["registered"], what="deregistration seen")
    assert worker.free_slots() == 0                   # the dispatcher uses another modem
    rig.ready(worker, timeout=15)
    assert worker.recoveries == {"cfun_radio": 1}
    assert "AT+CFUN=0" in sim.commands and "AT+CFUN=1" in sim.commands
    worker.submit(part(1))
    wait_until(lambda: sink.submitted, what="send after re-registration")
