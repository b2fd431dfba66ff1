"""`sms-appliance modems` over a fake sysfs and /dev: AT port choice, by-path, IMEI via a sim pty."""

from __future__ import annotations

import os

from appliance.modem.discover import format_modems, list_modems
from test_modem_kit import network  # noqa: F401


def add_usb_modem(sysfs, busport, vid, pid, interfaces, *, product=""):
    device = sysfs / "devices" / "platform" / "usb1" / busport
    device.mkdir(parents=True)
    (device / "idVendor").write_text(vid + "\n")
    (device / "idProduct").write_text(pid + "\n")
    (device / "product").write_text(product + "\n")
    for number, tty, cls, sub, proto in interfaces:
        interface = device / f"{busport}:1.{int(number)}"
        (interface / tty).mkdir(parents=True)
        for name, value in (("bInterfaceNumber", number), ("bInterfaceClass", cls),
                            ("bInterfaceSubClass", sub), ("bInterfaceProtocol", proto)):
            (interface / name).write_text(value + "\n")
        (sysfs / "class" / "tty" / tty).mkdir(parents=True)
        os.symlink(interface / tty, sysfs / "class" / "tty" / tty / "device")


def test_lists_modems_with_their_at_ports_and_imei(tmp_path, network):
    sysfs, dev = tmp_path / "sys", tmp_path / "dev"
    (dev / "serial" / "by-path").mkdir(parents=True)
    ec25 = [(f"{i:02d}", f"ttyUSB{i}", "ff", "ff", "ff") for i in range(4)]
    add_usb_modem(sysfs, "1-1.2", "2c7c", "0125", ec25, product="EG25-G")
    huawei = [("00", "ttyUSB4", "ff", "02", "01"), ("02", "ttyUSB5", "ff", "02", "02")]
    add_usb_modem(sysfs, "1-1.3", "12d1", "15c1", huawei)
    (sysfs / "class" / "tty" / "ttyS0").mkdir(parents=True)          # not USB: ignored
    sim = network.add_modem("slot1", "+36201111111")
    os.symlink(sim.path, dev / "ttyUSB2")                              # the EC25's AT port
    os.symlink("../../ttyUSB2", dev / "serial" / "by-path" / "platform-usb-0:1.2:1.2-port0")

    modems = list_modems(str(sysfs), str(dev))
    assert [m["usb_port"] for m in modems] == ["1-1.2", "1-1.3"]
    quectel, hua = modems
    assert quectel["at_port"] == f"{dev}/ttyUSB2" and quectel["imei"] == sim.imei
    assert quectel["by_path"].endswith("platform-usb-0:1.2:1.2-port0")
    assert hua["at_port"] == f"{dev}/ttyUSB5" and hua["vendor"] == "Huawei"
    assert hua["imei"].startswith("unavailable")                       # no such tty here

    text = format_modems(modems)
    assert 'modemorport = "' + f"{dev}/sms-appliance/usb-1-1.2" + '"' in text
    assert 'usb_device = "1-1.3"' in text and "<- AT port" in text


def test_nothing_found_explains_what_to_check(tmp_path):
    assert "No USB modems found" in format_modems(list_modems(str(tmp_path), str(tmp_path)))
