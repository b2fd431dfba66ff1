"""Cutting a modem's power or pulsing its PWRKEY through GPIO. The only gpiozero importer.

Sixfab Base HAT: BCM26 HIGH cuts the mPCIe card's power (power_pin=26, active high).
Waveshare SIM7600X HAT: BCM6 drives PWRKEY through a transistor, HIGH = key pressed
(pwrkey_pin=6, 2.5 s); PWRKEY toggles, so a cycle is two pulses with a pause between.
Sleeps go through the injected clock, so tests with a FakeClock take no time.
"""

from __future__ import annotations

import logging

from appliance.clock import SYSTEM_CLOCK, Clock
from appliance.errors import ApplianceError

log = logging.getLogger("appliance.modem")


def mock_pin_factory():
    """gpiozero's MockFactory, for demo mode and tests (pins that only record states)."""
    from gpiozero.pins.mock import MockFactory
    return MockFactory()


class PowerError(ApplianceError):
    """The GPIO backend is missing or refused the pin."""


class PowerControl:
    def __init__(self, *, power_pin: int = -1, power_active_high: bool = True,
                 power_off_seconds: float = 3.0, pwrkey_pin: int = -1,
                 pwrkey_seconds: float = 2.5, pwrkey_active_high: bool = True,
                 clock: Clock = SYSTEM_CLOCK, pin_factory=None, label: str = ""):
        self.clock = clock
        self.power_off_seconds = power_off_seconds
        self.pwrkey_seconds = pwrkey_seconds
        self.label = label
        self.error = ""
        self._power = self._device(power_pin, power_active_high, pin_factory)
        self._pwrkey = self._device(pwrkey_pin, pwrkey_active_high, pin_factory)

    @classmethod
    def from_config(cls, config, *, clock: Clock = SYSTEM_CLOCK,
                    pin_factory=None) -> "PowerControl | None":
        """None when the slot has no pin: the ladder then skips the power step."""
        if config.power_pin < 0 and config.pwrkey_pin < 0:
            return None
        return cls(power_pin=config.power_pin, power_active_high=config.power_active_high,
                   power_off_seconds=config.power_off_seconds, pwrkey_pin=config.pwrkey_pin,
                   pwrkey_seconds=config.pwrkey_seconds,
                   pwrkey_active_high=config.pwrkey_active_high, clock=clock,
                   pin_factory=pin_factory, label=config.slot or config.name)

    def available(self) -> bool:
        return self._power is not None or self._pwrkey is not None

    def cycle(self) -> str:
        """Power the module off and on again; returns what was done, for the log."""
        if not self.available():
            raise PowerError(self.error or "no power or PWRKEY pin configured")
        if self._power is not None:
            return self._cut_power()
        return self._toggle_pwrkey()

    def close(self) -> None:
        for device in (self._power, self._pwrkey):
            if device is not None:
                device.close()

    def _cut_power(self) -> str:
        self._power.on()                       # active = power cut
        self.clock.sleep(self.power_off_seconds)
        self._power.off()
        done = f"power pin off {self.power_off_seconds:g}s"
        if self._pwrkey is not None:           # modules that do not start on power alone
            self._pulse()
            done += f", PWRKEY {self.pwrkey_seconds:g}s"
        return done

    def _toggle_pwrkey(self) -> str:
        self._pulse()                          # off
        self.clock.sleep(self.power_off_seconds)
        self._pulse()                          # on again
        return f"PWRKEY {self.pwrkey_seconds:g}s twice, {self.power_off_seconds:g}s apart"

    def _pulse(self) -> None:
        self._pwrkey.on()
        self.clock.sleep(self.pwrkey_seconds)
        self._pwrkey.off()

    def _device(self, pin: int, active_high: bool, pin_factory):
        if pin is None or pin < 0:
            return None
        try:
            from gpiozero import OutputDevice
            # initial_value=False: the module stays powered and PWRKEY released at start.
            return OutputDevice(pin, active_high=active_high, initial_value=False,
                                pin_factory=pin_factory)
        except Exception as exc:     # no GPIO on this machine, pin busy, no permission
            self.error = f"GPIO{pin}: {exc}"
            log.warning("%s: GPIO%s unavailable: %s", self.label, pin, exc)
            return None


def mock_pin_factory():
    """gpiozero's MockFactory, for demo mode and tests: pins that only record their states."""
    from gpiozero.pins.mock import MockFactory
    return MockFactory()
