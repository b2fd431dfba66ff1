"""Demo mode: simulated modems wired like real Sixfab slots, so recovery can be watched.

Each modem's power pin is a gpiozero mock pin shared with its worker's PowerControl; a
`hang` fault clears only when the worker's ladder reaches the power cycle.
"""

from __future__ import annotations

from appliance.config import GSMModemConfig

# BCM pins that no HAT in field-notes §3.3 claims; one per slot.
DEMO_POWER_PINS = (17, 27, 22, 23, 24, 25, 5, 12)


def demo_indexes(count: int, taken=()) -> list[int]:
    """The indexes of `count` demo modems (GSMModem{i} on slot{i+1}) whose name and slot
    no connection in `taken` (names and slots) has."""
    taken = {name.lower() for name in taken}
    free = (i for i in range(10_000) if f"gsmmodem{i}" not in taken
            and f"slot{i + 1}" not in taken)
    return [index for _, index in zip(range(count), free)]


def demo_modems(network, count: int, pin_factory, taken=()) -> list[GSMModemConfig]:
    """Add `count` simulated modems to `network`; return their worker configurations. Names
    and slots in `taken` (a config file's own connections, `--demo --config FILE`) are
    skipped: the demo's GSMModem0 silently replaced the file's GSMModem0 before."""
    configs = []
    for index in demo_indexes(count, taken):
        slot = f"slot{index + 1}"
        number = f"+3620{index + 1:07d}"
        pin = DEMO_POWER_PINS[index % len(DEMO_POWER_PINS)]
        sim = network.add_modem(slot, number, power_pin=pin, pin_factory=pin_factory)
        configs.append(GSMModemConfig(
            name=f"GSMModem{index}", modemorport=sim.path, slot=slot, phonenumber=number,
            power_pin=pin, power_active_high=True, power_off_seconds=1.0, boot_seconds=1.0,
            ussd_balance="*100#", ussd_interval_hours=1.0, balance_low=5.0,
            deregistered_timeout=15.0, keepaliveperiod=5.0, limittompm=0))
    return configs
