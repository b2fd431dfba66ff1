"""GPIO power control with gpiozero's MockFactory and a FakeClock: pulse shapes and lengths."""

from __future__ import annotations

import pytest

from appliance.clock import FakeClock
from appliance.config import GSMModemConfig
from appliance.modem.power import PowerControl, PowerError
from test_modem_kit import mock_factory  # noqa: F401


def states(factory, pin):
    return [bool(s.state) for s in factory.pin(pin).states]


def test_power_pin_cut_holds_for_power_off_seconds(mock_factory):
    clock = FakeClock()
    config = GSMModemConfig(name="m", power_pin=26, power_off_seconds=3.0)
    power = PowerControl.from_config(config, clock=clock, pin_factory=mock_factory)
    start = clock.monotonic()
    assert power.cycle() == "power pin off 3s"
    assert states(mock_factory, 26) == [False, True, False]    # on at start, cut, restored
    assert clock.monotonic() - start == pytest.approx(3.0)


def test_active_low_power_pin(mock_factory):
    config = GSMModemConfig(name="m", power_pin=19, power_active_high=False)
    PowerControl.from_config(config, clock=FakeClock(), pin_factory=mock_factory).cycle()
    assert states(mock_factory, 19)[-2:] == [False, True]       # low = cut, then high again


def test_pwrkey_is_pulsed_twice_for_a_cycle(mock_factory):
    clock = FakeClock()
    config = GSMModemConfig(name="m", pwrkey_pin=6, pwrkey_seconds=2.5, power_off_seconds=5.0)
    power = PowerControl.from_config(config, clock=clock, pin_factory=mock_factory)
    start = clock.monotonic()
    power.cycle()
    assert states(mock_factory, 6) == [False, True, False, True, False]
    assert clock.monotonic() - start == pytest.approx(2.5 + 5.0 + 2.5)


def test_no_pin_means_no_power_control():
    assert PowerControl.from_config(GSMModemConfig(name="m")) is None


def test_unavailable_gpio_is_reported_not_raised_at_start():
    class BrokenFactory:
        def reserve_pins(self, *args):
            raise RuntimeError("no gpiochip")

        def pin(self, spec):
            raise RuntimeError("no gpiochip")

    power = PowerControl(power_pin=26, pin_factory=BrokenFactory())
    assert not power.available()
    with pytest.raises(PowerError, match="GPIO26"):
        power.cycle()
