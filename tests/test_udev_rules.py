"""udev/77-sms-appliance.rules: syntax, ordering, and matching, checked by a small evaluator.

The evaluator implements the part of udev(7) the file uses: match keys on the device
(ACTION, SUBSYSTEM, KERNEL, ENV, ATTR), match keys on the device or one ancestor that must
all hold on the same device (SUBSYSTEMS, KERNELS, ATTRS, DRIVERS), `|` alternatives and
shell globs, assignments (ENV, SYMLINK+=, GROUP, MODE), GOTO/LABEL, and %b, %k, $env{}.
Devices are described with the properties `udevadm info` shows for real modems.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parent.parent / "udev" / "77-sms-appliance.rules"
_TOKEN = re.compile(r'\s*([A-Z]+)(?:\{([^}]*)\})?\s*(==|!=|\+=|:=|=)\s*"([^"]*)"\s*(?:,|$)')
_DEVICE_KEYS = {"ACTION", "SUBSYSTEM", "KERNEL", "ENV", "ATTR", "DRIVER"}
_PARENT_KEYS = {"SUBSYSTEMS", "KERNELS", "ATTRS", "DRIVERS"}
_ASSIGN_KEYS = {"ENV", "SYMLINK", "GROUP", "MODE", "GOTO", "LABEL", "OWNER", "TAG"}


@dataclass
class Device:
    subsystem: str
    kernel: str
    attrs: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    driver: str = ""
    parent: "Device | None" = None

    def chain(self):
        device = self
        while device is not None:
            yield device
            device = device.parent


@dataclass
class Outcome:
    env: dict
    symlinks: list
    group: str = ""
    mode: str = ""


def parse(text: str) -> list[list[tuple]]:
    rules = []
    for line in text.replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        tokens, rest = [], line
        while rest.strip():
            match = _TOKEN.match(rest)
            assert match, f"cannot parse: {rest!r}"
            tokens.append(match.groups())
            rest = rest[match.end():]
        for key, _, op, _ in tokens:
            known = _DEVICE_KEYS | _PARENT_KEYS if op in ("==", "!=") else _ASSIGN_KEYS
            assert key in known, f"unknown key/operator {key}{op} in {line!r}"
        rules.append(tokens)
    return rules


def glob(pattern: str, value: str | None) -> bool:
    return value is not None and any(fnmatch.fnmatchcase(value, alt) for alt in pattern.split("|"))


def evaluate(rules, device: Device, action: str = "add") -> Outcome:
    env = dict(device.env)
    outcome = Outcome(env, [])
    labels = {tokens[0][3]: i for i, tokens in enumerate(rules) if tokens[0][0] == "LABEL"}
    index = 0
    while index < len(rules):
        tokens = rules[index]
        index += 1
        matched_parent = _matches(tokens, device, env, action)
        if matched_parent is False:
            continue
        for key, attr, op, value in tokens:
            if op in ("==", "!="):
                continue
            value = _substitute(value, device, env, matched_parent)
            if key == "ENV":
                env[attr] = value
            elif key == "SYMLINK":
                outcome.symlinks.append(value)
            elif key == "GROUP":
                outcome.group = value
            elif key == "MODE":
                outcome.mode = value
            elif key == "GOTO":
                assert value in labels, f"GOTO to a missing LABEL {value}"
                index = labels[value]
    return outcome


def _matches(tokens, device: Device, env: dict, action: str):
    """False, or the ancestor that matched the parent keys (None when there were none)."""
    for key, attr, op, value in tokens:
        if op not in ("==", "!=") or key in _PARENT_KEYS:
            continue
        actual = {"ACTION": action, "SUBSYSTEM": device.subsystem, "KERNEL": device.kernel,
                  "DRIVER": device.driver, "ENV": env.get(attr),
                  "ATTR": device.attrs.get(attr)}[key]
        if glob(value, actual) != (op == "=="):
            return False
    parent_tokens = [t for t in tokens if t[0] in _PARENT_KEYS]
    if not parent_tokens:
        return None
    for candidate in device.chain():
        if all(_parent_match(t, candidate) for t in parent_tokens):
            return candidate
    return False


def _parent_match(token, candidate: Device) -> bool:
    key, attr, op, value = token
    actual = {"SUBSYSTEMS": candidate.subsystem, "KERNELS": candidate.kernel,
              "DRIVERS": candidate.driver, "ATTRS": candidate.attrs.get(attr)}[key]
    return glob(value, actual) == (op == "==")


def _substitute(value: str, device: Device, env: dict, parent) -> str:
    value = re.sub(r"\$env\{([^}]*)\}", lambda m: env.get(m.group(1), ""), value)
    value = value.replace("%k", device.kernel)
    return value.replace("%b", parent.kernel if parent else "")


# -- device fixtures: what `udevadm info -a` shows for these modems --------------------------

def usb_modem(vid: str, pid: str, busport: str = "1-1.2") -> Device:
    return Device("usb", busport, attrs={"idVendor": vid, "idProduct": pid, "busnum": "1"},
                  env={"DEVTYPE": "usb_device"}, driver="usb")


def tty(modem: Device, interface: str, number: int, *, cls="ff", subclass="ff",
        protocol="ff") -> Device:
    iface = Device("usb", f"{modem.kernel}:1.{int(interface)}", driver="option",
                   attrs={"bInterfaceNumber": interface, "bInterfaceClass": cls,
                          "bInterfaceSubClass": subclass, "bInterfaceProtocol": protocol},
                   parent=modem)
    port = Device("usb-serial", f"ttyUSB{number}", parent=iface)
    # 60-serial.rules has already run: these come from the usb_id builtin.
    env = {"ID_VENDOR_ID": modem.attrs["idVendor"], "ID_MODEL_ID": modem.attrs["idProduct"],
           "ID_USB_INTERFACE_NUM": interface,
           "ID_PATH": f"platform-3f980000.usb-usb-0:{modem.kernel.split('-', 1)[1]}:1.{int(interface)}"}
    return Device("tty", f"ttyUSB{number}", env=env, parent=port)


@pytest.fixture(scope="module")
def rules():
    return parse(RULES.read_text())


def test_file_sorts_after_60_serial_and_before_modemmanager():
    assert "60-serial.rules" < RULES.name < "80-mm-candidate.rules"


def test_every_goto_has_its_label(rules):
    labels = {t[0][3] for t in rules if t[0][0] == "LABEL"}
    gotos = {value for tokens in rules for key, _, _, value in tokens if key == "GOTO"}
    assert gotos <= labels


@pytest.mark.parametrize("vid,pid,at_interface", [
    ("2c7c", "0125", "02"),      # Quectel EC25 / EG25-G
    ("2c7c", "0121", "02"),      # Quectel EC21
    ("1e0e", "9001", "02"),      # SIMCom SIM7600
    ("1e0e", "9011", "04"),      # SIMCom in RNDIS mode
    ("1bc7", "1201", "04"),      # Telit LE910C1
    ("1bc7", "1204", "05"),      # Telit LE910C1 MBIM
    ("1bc7", "1031", "01"),      # Telit LE910C1-EUX
])
def test_only_the_at_interface_gets_the_stable_link(rules, vid, pid, at_interface):
    modem = usb_modem(vid, pid, "1-1.2")
    for number, interface in enumerate(("00", "01", "02", "03", "04", "05")):
        outcome = evaluate(rules, tty(modem, interface, number))
        assert outcome.env.get("ID_MM_DEVICE_IGNORE") == "1"
        if interface == at_interface:
            assert outcome.symlinks == ["sms-appliance/usb-1-1.2"]
            assert (outcome.group, outcome.mode) == ("dialout", "0660")
        else:
            assert outcome.symlinks == [], f"interface {interface} must not be linked"


def test_huawei_pcui_port_is_found_by_class_not_number(rules):
    modem = usb_modem("12d1", "15c1", "1-1.4")
    modem_port = tty(modem, "00", 0, cls="ff", subclass="02", protocol="01")   # PPP
    pcui = tty(modem, "02", 1, cls="ff", subclass="02", protocol="02")
    assert evaluate(rules, modem_port).symlinks == []
    assert evaluate(rules, pcui).symlinks == ["sms-appliance/usb-1-1.4"]


def test_two_identical_modems_get_names_by_physical_port(rules):
    first, second = usb_modem("2c7c", "0125", "1-1.2"), usb_modem("2c7c", "0125", "1-1.3")
    # Enumeration order decides ttyUSBn; the names must not care.
    assert evaluate(rules, tty(second, "02", 2)).symlinks == ["sms-appliance/usb-1-1.3"]
    assert evaluate(rules, tty(first, "02", 6)).symlinks == ["sms-appliance/usb-1-1.2"]


def test_usb_device_itself_is_hidden_from_modemmanager(rules):
    assert evaluate(rules, usb_modem("1e0e", "9001")).env.get("ID_MM_DEVICE_IGNORE") == "1"


def test_unrelated_serial_devices_are_untouched(rules):
    ftdi = usb_modem("0403", "6001")
    outcome = evaluate(rules, tty(ftdi, "00", 0))
    assert outcome.symlinks == [] and "ID_MM_DEVICE_IGNORE" not in outcome.env


def test_remove_events_do_nothing(rules):
    outcome = evaluate(rules, tty(usb_modem("2c7c", "0125"), "02", 2), action="remove")
    assert outcome.symlinks == []
