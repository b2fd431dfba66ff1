"""Pain point 2: another process (ModemManager, a CLI tool, a second daemon) grabs the tty.
The worker opens its port exclusively, so a second opener fails loudly instead of silently
stealing answers; `sms-appliance modems` reports such a port as busy."""

from __future__ import annotations

import pytest

from appliance.modem.at import PortGone, open_port
from test_modem_kit import Sink, part, rig, network, wait_until  # noqa: F401


def test_second_opener_is_refused_while_the_worker_runs(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink))
    with pytest.raises(PortGone):
        open_port(sim.path)
    worker.submit(part(1))
    wait_until(lambda: sink.reports, what="still sending")


def test_worker_waits_while_someone_else_holds_the_port(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    squatter = open_port(sim.path)
    worker = rig.worker(sim)
    wait_until(lambda: "port" in worker.status()["last_error"] or worker.state != "probing",
               what="worker noticed")
    squatter.close()
    rig.ready(worker, timeout=20)
