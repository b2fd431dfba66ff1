"""Demo mode: simulated modems on ptys and a simulated mobile network, no hardware.

The daemon opens the ptys with its unchanged serial code, so demo mode exercises the same
path as a board with real modems. Power pins are gpiozero mock pins wired to the simulator,
so a hung simulated modem recovers only when the recovery ladder cycles its power.
"""

from __future__ import annotations

import dataclasses

from appliance.config import Config


def start(config: Config, *, record: bool = True):
    """Start the simulated network; returns (config with the modems, network, pin factory).
    `record=False` (the `run --demo` command): the simulator keeps no history per message."""
    from appliance.modem.power import mock_pin_factory
    from appliance.sim.network import SimNetwork
    from appliance.sim.demo import demo_modems

    pin_factory = mock_pin_factory()
    network = SimNetwork(send_seconds=config.demo.send_seconds,
                         report_seconds=config.demo.report_seconds, record=record)
    taken = [c.name for c in config.connections] + \
        [getattr(c, "slot", "") for c in config.connections if getattr(c, "slot", "")]
    modems = demo_modems(network, config.demo.modems, pin_factory, taken)
    config = dataclasses.replace(config, connections=tuple(config.connections) + tuple(modems))
    return config, network, pin_factory
