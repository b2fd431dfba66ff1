"""USB re-authorization through sysfs: the device is logically unplugged and probed again.

`authorized` = 0 then 1 on /sys/bus/usb/devices/<busport> (kernel Documentation/usb/
authorization.txt). No power cut, but it clears a wedged USB function (field-notes §4.2).
The device is the one in config (`usb_device = "1-1.2"`), or the one behind the port's
link: /dev/sms-appliance/usb-1-1.2, or any tty whose sysfs parent chain we can walk.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from appliance.clock import SYSTEM_CLOCK, Clock


def find_usb_device(port: str, sysfs_root: str = "/sys", usb_device: str = "") -> Path | None:
    devices = Path(sysfs_root) / "bus" / "usb" / "devices"
    for busport in (usb_device, _busport_from_link(port)):
        if busport and (devices / busport / "authorized").exists():
            return devices / busport
    return _walk_from_tty(port, Path(sysfs_root))


def reauthorize(device: Path, clock: Clock = SYSTEM_CLOCK, off_seconds: float = 1.0) -> None:
    authorized = device / "authorized"
    authorized.write_text("0")
    clock.sleep(off_seconds)
    authorized.write_text("1")


def _busport_from_link(port: str) -> str:
    match = re.search(r"usb-(\d+-[\d.]+)$", port)
    return match.group(1) if match else ""


def _walk_from_tty(port: str, sysfs_root: Path) -> Path | None:
    if "://" in port or not port:
        return None
    name = os.path.basename(os.path.realpath(port))
    device_link = sysfs_root / "class" / "tty" / name / "device"
    if not device_link.exists():
        return None
    current = device_link.resolve()
    while current != current.parent and sysfs_root.resolve() in current.parents:
        if (current / "authorized").exists() and (current / "idVendor").exists():
            return current
        current = current.parent
    return None
