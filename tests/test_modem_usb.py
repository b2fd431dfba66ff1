"""USB re-authorization through a fake sysfs tree under tmp_path."""

from __future__ import annotations

import os

from appliance.clock import FakeClock
from appliance.modem.usb import find_usb_device, reauthorize


def make_sysfs(root, busport="1-1.2", tty="ttyUSB2"):
    device = root / "devices" / "platform" / "soc" / "usb1" / busport
    interface = device / f"{busport}:1.2"
    (interface / tty).mkdir(parents=True)
    (device / "authorized").write_text("1")
    (device / "idVendor").write_text("2c7c")
    (root / "bus" / "usb" / "devices").mkdir(parents=True)
    os.symlink(device, root / "bus" / "usb" / "devices" / busport)
    (root / "class" / "tty" / tty).mkdir(parents=True)
    os.symlink(interface / tty, root / "class" / "tty" / tty / "device")
    return device


def test_device_found_from_config_link_name_or_tty(tmp_path):
    device = make_sysfs(tmp_path)
    by_config = find_usb_device("/dev/whatever", str(tmp_path), usb_device="1-1.2")
    by_link = find_usb_device("/dev/sms-appliance/usb-1-1.2", str(tmp_path))
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "ttyUSB2").touch()
    by_tty = find_usb_device(str(dev / "ttyUSB2"), str(tmp_path))
    assert by_config.resolve() == by_link.resolve() == by_tty.resolve() == device.resolve()
    assert find_usb_device("socket://127.0.0.1:1", str(tmp_path)) is None


def test_reauthorize_writes_zero_then_one(tmp_path):
    device = make_sysfs(tmp_path)
    seen = []

    class RecordingClock(FakeClock):
        def sleep(self, seconds):
            seen.append((device / "authorized").read_text())
            super().sleep(seconds)

    reauthorize(device, RecordingClock())
    assert seen == ["0"] and (device / "authorized").read_text() == "1"
