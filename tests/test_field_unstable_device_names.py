"""Pain point 3: unstable device names (ttyUSB0 becomes ttyUSB1). The worker opens a stable
link (/dev/sms-appliance/<slot> in production, the simulator's link here); when the modem
vanishes and re-enumerates under a new pty, the worker reopens the same name and carries on.
The udev rules that make those links are tested in test_udev_rules.py."""

from __future__ import annotations

import os

from test_modem_kit import Sink, part, rig, network, wait_until  # noqa: F401


def test_unplugged_modem_comes_back_under_its_stable_name(rig, network):
    sim = network.add_modem("slot1", "+36201111111")
    sink = Sink()
    worker = rig.ready(rig.worker(sim, sink))
    first_tty = sim.tty_path
    sim.inject_fault("unplug")
    wait_until(lambda: worker.state == "recovering", what="port loss noticed")
    rig.ready(worker, timeout=15)
    assert os.path.realpath(sim.path) == sim.tty_path   # the link follows the new pty
    assert first_tty
    assert worker.recoveries == {"reopen": 1}
    worker.submit(part(1))
    wait_until(lambda: sink.reports, what="delivered after replug")
