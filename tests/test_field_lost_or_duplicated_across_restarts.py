"""Pain point 8: messages lost across restarts and crashes. An inbound SMS leaves the SIM
only after the store committed it: a store that cannot commit leaves it on the SIM, and the
next start (or sweep) delivers it; a worker that stops hands its queued parts back."""

from __future__ import annotations

from test_modem_kit import Sink, part, rig, network, wait_until  # noqa: F401


class OrderCheckingSink(Sink):
    """Asserts, at commit time, that the SMS is still on the SIM (delete comes after)."""

    def __init__(self, sim):
        super().__init__()
        self.sim = sim
        self.on_sim_at_commit = []

    def inbound(self, fragment):
        self.on_sim_at_commit.append(bool(self.sim.memory["SM"]))
        super().inbound(fragment)


def test_inbound_is_deleted_from_the_sim_only_after_the_store_committed(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    sink = OrderCheckingSink(sim)
    rig.ready(rig.worker(sim, sink))
    sim.deliver_inbound("+36705550001", "commit first")
    wait_until(lambda: sink.fragments, what="inbound")
    assert sink.on_sim_at_commit == [True]
    wait_until(lambda: not sim.memory["SM"], what="deleted after commit")


def test_store_failure_leaves_the_sms_on_the_sim_until_a_restart(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    broken = Sink()
    broken.refuse_inbound = True
    worker = rig.ready(rig.worker(sim, broken))
    sim.deliver_inbound("+36705550001", "must survive")
    wait_until(lambda: sim.memory["SM"], what="stored on the SIM")
    wait_until(lambda: any(c.startswith("AT+CMGR") for c in sim.commands), what="read attempt")
    rig.ready(worker)
    worker.stop(5)
    assert len(sim.memory["SM"]) == 1 and broken.fragments == []
    healthy = Sink()
    rig.worker(sim, healthy)
    wait_until(lambda: healthy.fragments, what="delivered after restart")
    assert healthy.fragments[0].text == "must survive"
    wait_until(lambda: not sim.memory["SM"], what="deleted after the commit")


def test_parts_queued_in_a_stopping_worker_go_back_to_the_queue(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink))
    sim.inject_fault("slow")
    for part_id in (1, 2, 3):
        worker.submit(part(part_id))
    worker.stop(10)
    outcomes = {p[0] for p in sink.submitted} | {f[0] for f in sink.failed if f[4]}
    assert outcomes == {1, 2, 3}              # each either submitted or handed back
