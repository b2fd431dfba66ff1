"""`sms-appliance modems`: which modems are plugged in, which tty is their AT port, and the
config snippet that names it by physical USB port.

Reads sysfs (class/tty/* -> USB interface -> USB device) and /dev/serial/by-path; asks the
AT port for the IMEI when it can open it (a port the daemon holds is reported as busy).
"""

from __future__ import annotations

import os
from pathlib import Path

from appliance.errors import ApplianceError
from appliance.modem import probe
from appliance.modem.at import PortBusy, open_port

# (vendor id, product id) -> (vendor, model, AT interface number or "pcui")
KNOWN_MODEMS = {
    ("2c7c", "0125"): ("Quectel", "EC25 / EG25-G", "02"),
    ("2c7c", "0121"): ("Quectel", "EC21", "02"),
    ("2c7c", "0191"): ("Quectel", "EG91", "02"),
    ("2c7c", "0195"): ("Quectel", "EG95", "02"),
    ("2c7c", "0296"): ("Quectel", "BG96", "02"),
    ("2c7c", "0306"): ("Quectel", "EG06 / EP06", "02"),
    ("1e0e", "9001"): ("SIMCom", "SIM7600 / SIM7100", "02"),
    ("1e0e", "9011"): ("SIMCom", "SIM7600 (RNDIS) / A7600", "04"),
    ("1e0e", "9205"): ("SIMCom", "SIM7070 / SIM7080", "02"),
    ("1e0e", "9206"): ("SIMCom", "SIM7070 / SIM7080", "02"),
    ("12d1", "15c1"): ("Huawei", "ME909s / ME906s", "pcui"),
    ("12d1", "1573"): ("Huawei", "MU609", "pcui"),
    ("1bc7", "1201"): ("Telit", "LE910C1", "04"),
    ("1bc7", "1204"): ("Telit", "LE910C1 (MBIM)", "05"),
    ("1bc7", "1031"): ("Telit", "LE910C1-EUX (rmnet)", "01"),
    ("1bc7", "1033"): ("Telit", "LE910C1-EUX (ECM)", "01"),
}


def list_modems(sysfs_root: str = "/sys", dev_root: str = "/dev",
                ask_imei: bool = True) -> list[dict]:
    by_path = _by_path_links(Path(dev_root))
    modems: dict[str, dict] = {}
    for tty_name, interface, device in _usb_ttys(Path(sysfs_root)):
        busport = device.name
        modem = modems.setdefault(busport, _describe_device(device, busport, dev_root))
        role = "AT" if _is_at_port(modem, interface) else ""
        modem["ports"].append({"tty": f"{dev_root}/{tty_name}", "interface": _read(interface, "bInterfaceNumber"),
                               "role": role, "by_path": by_path.get(tty_name, "")})
        if role:
            modem["at_port"] = f"{dev_root}/{tty_name}"
            modem["by_path"] = by_path.get(tty_name, "")
    result = sorted(modems.values(), key=lambda m: m["usb_port"])
    for modem in result:
        modem["ports"].sort(key=lambda p: p["interface"])
        if ask_imei and modem["at_port"]:
            modem["imei"] = ask_imei_at(modem["stable_path"] if os.path.exists(
                modem["stable_path"]) else modem["at_port"])
    return result


def ask_imei_at(path: str, timeout: float = 2.0) -> str:
    try:
        port = open_port(path)
    except PortBusy:
        return "busy (another process holds the port; is the daemon running?)"
    except ApplianceError as exc:
        return f"unavailable ({exc})"
    try:
        try:
            port.command("ATE0", timeout)
        except ApplianceError:
            pass
        return probe.parse_imei(port.command("AT+CGSN", timeout)) or "unknown"
    except ApplianceError as exc:
        return f"no answer ({exc})"
    finally:
        port.close()


def format_modems(modems: list[dict]) -> str:
    if not modems:
        return ("No USB modems found. Check `lsusb`, the cable and the HAT's USB jumper; "
                "install udev/77-sms-appliance.rules for stable names.")
    blocks = [_format_one(index, modem) for index, modem in enumerate(modems)]
    return "\n\n".join(blocks)


def _format_one(index: int, modem: dict) -> str:
    lines = [f"USB port {modem['usb_port']}: {modem['vendor']} {modem['model']} "
             f"({modem['vendor_id']}:{modem['product_id']})"]
    if modem.get("imei"):
        lines.append(f"  IMEI       {modem['imei']}")
    for port in modem["ports"]:
        marker = "  <- AT port" if port["role"] else ""
        lines.append(f"  if{port['interface'] or '??'}  {port['tty']}{marker}")
        if port["by_path"]:
            lines.append(f"        by-path {port['by_path']}")
    if not modem["at_port"]:
        lines.append("  (no known AT port for this modem)")
        return "\n".join(lines)
    stable = modem["stable_path"]
    if not os.path.exists(stable):
        lines.append(f"  note: {stable} does not exist yet; install udev/77-sms-appliance.rules")
    lines += ["", f"[connections.GSMModem{index}]", 'type = "GSMModem"',
              f'modemorport = "{stable}"', f'slot = "usb-{modem["usb_port"]}"',
              f'usb_device = "{modem["usb_port"]}"']
    lines += _power_hint(modem)
    return "\n".join(lines)


def _power_hint(modem: dict) -> list[str]:
    if modem["vendor"] == "Quectel":
        return ["# Sixfab Base HAT: BCM26 HIGH cuts the module's power",
                "# power_pin = 26", "# power_active_high = true"]
    if modem["vendor"] == "SIMCom":
        return ["# Waveshare SIM7600X HAT with the PWR-D6 jumper: PWRKEY on BCM6",
                "# pwrkey_pin = 6", "# pwrkey_seconds = 2.5"]
    return []


# -- sysfs --------------------------------------------------------------------------------

def _usb_ttys(sysfs_root: Path):
    """(tty name, USB interface dir, USB device dir) for each tty behind a USB interface."""
    tty_class = sysfs_root / "class" / "tty"
    if not tty_class.is_dir():
        return
    for entry in sorted(tty_class.iterdir()):
        device_link = entry / "device"
        if not device_link.exists():
            continue
        current = device_link.resolve()
        interface = next((p for p in [current, *current.parents]
                          if (p / "bInterfaceNumber").exists()), None)
        if interface is None or not (interface.parent / "idVendor").exists():
            continue
        yield entry.name, interface, interface.parent


def _describe_device(device: Path, busport: str, dev_root: str) -> dict:
    vid, pid = _read(device, "idVendor"), _read(device, "idProduct")
    vendor, model, at_rule = KNOWN_MODEMS.get((vid, pid), (
        _read(device, "manufacturer") or "unknown", _read(device, "product") or "", ""))
    return {"usb_port": busport, "vendor_id": vid, "product_id": pid, "vendor": vendor,
            "model": model, "product": _read(device, "product"), "serial": _read(device, "serial"),
            "at_rule": at_rule, "ports": [], "at_port": "", "by_path": "", "imei": "",
            "stable_path": f"{dev_root}/sms-appliance/usb-{busport}"}


def _is_at_port(modem: dict, interface: Path) -> bool:
    rule = modem["at_rule"]
    if rule == "pcui":
        return (_read(interface, "bInterfaceClass") == "ff"
                and _read(interface, "bInterfaceSubClass") in ("01", "02")
                and _read(interface, "bInterfaceProtocol") == "02")
    return bool(rule) and _read(interface, "bInterfaceNumber") == rule


def _by_path_links(dev_root: Path) -> dict[str, str]:
    folder = dev_root / "serial" / "by-path"
    if not folder.is_dir():
        return {}
    # One level only: by-path links point at the tty by name ("../../ttyUSB2").
    return {os.path.basename(os.readlink(link)): str(link) for link in sorted(folder.iterdir())
            if link.is_symlink()}


def _read(folder: Path, name: str) -> str:
    try:
        return (folder / name).read_text().strip()
    except OSError:
        return ""
