"""systemd/sms-appliance.service: systemd-analyze verify and security, and the contract the
daemon and the image rely on (Type=notify, watchdog, sandbox that still reaches the hardware)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "sms-appliance.service"
IMAGE_UNITS = sorted((REPO / "image" / "files").glob("*.service"))
ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"

needs_analyze = pytest.mark.skipif(
    not os.access(ANALYZE, os.X_OK),
    reason="systemd-analyze is not installed (make test-deps-image installs package systemd)",
)


def unit_entries(path: Path) -> dict[str, list[str]]:
    """Key -> values of the [Service]/[Unit]/[Install] lines (keys may repeat in units)."""
    entries: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        entries.setdefault(key.strip(), []).append(value.strip())
    return entries


def fake_root(tmp_path: Path, units: list[Path], executables: list[str]) -> Path:
    """A root with the host's system units (for targets) plus ours and stub executables."""
    root = tmp_path / "root"
    system = root / "usr" / "lib" / "systemd" / "system"
    host_units = next(p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir())
    shutil.copytree(host_units, system, symlinks=True)
    (root / "etc" / "systemd" / "system").mkdir(parents=True)
    for unit in units:
        shutil.copy(unit, root / "etc" / "systemd" / "system" / unit.name)
    for exe in executables:
        stub = root / exe.lstrip("/")
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\n")
        stub.chmod(0o755)
    return root


@needs_analyze
def test_unit_passes_systemd_analyze_verify(tmp_path: Path):
    root = fake_root(tmp_path, [UNIT], ["/opt/sms-appliance/venv/bin/sms-appliance",
                                           "/bin/kill"])          # ExecReload, as ssh.service
    result = subprocess.run([ANALYZE, "verify", f"--root={root}", "sms-appliance.service"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # no warnings either


@needs_analyze
def test_verify_catches_a_missing_executable(tmp_path: Path):
    """The check above is not vacuous: without the venv the same call fails."""
    root = fake_root(tmp_path, [UNIT], [])
    result = subprocess.run([ANALYZE, "verify", f"--root={root}", "sms-appliance.service"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "not executable" in result.stderr


@needs_analyze
@pytest.mark.parametrize("unit", IMAGE_UNITS, ids=lambda p: p.name)
def test_image_units_pass_verify(tmp_path: Path, unit: Path):
    exes = [v.split()[0] for v in unit_entries(unit).get("ExecStart", [])]
    root = fake_root(tmp_path, [unit], exes)
    result = subprocess.run([ANALYZE, "verify", f"--root={root}", unit.name],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


@needs_analyze
def test_security_exposure_is_at_most_3(tmp_path: Path):
    root = fake_root(tmp_path, [UNIT], ["/opt/sms-appliance/venv/bin/sms-appliance",
                                           "/bin/kill"])          # ExecReload, as ssh.service
    result = subprocess.run([ANALYZE, "security", "--offline=yes", f"--root={root}", "--no-pager",
                             "/etc/systemd/system/sms-appliance.service"],
                            capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for sms-appliance\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 3.0, result.stdout


def test_service_contract():
    e = unit_entries(UNIT)
    assert e["Type"] == ["notify"] and e["NotifyAccess"] == ["main"]
    assert e["WatchdogSec"] and e["Restart"] == ["on-failure"]
    assert e["ExecStart"] == ["/opt/sms-appliance/venv/bin/sms-appliance run --config /etc/sms-appliance/config.toml"]
    assert e["User"] == ["sms-appliance"]
    assert e["SupplementaryGroups"] == ["dialout gpio"]
    assert e["StateDirectory"] == ["sms-appliance"]
    assert e["ConfigurationDirectory"] == ["sms-appliance"]
    assert e["WantedBy"] == ["multi-user.target"]


def test_sandbox_still_reaches_the_hardware():
    e = unit_entries(UNIT)
    allowed = {v.split()[0]: v.split()[1] for v in e["DeviceAllow"]}
    for device in ("char-ttyUSB", "char-ttyACM", "char-gpiochip"):
        assert allowed.get(device) == "rw", device
    assert e["DevicePolicy"] == ["closed"]  # closed still allows ptmx/pts (simulated modems)
    assert "PrivateDevices" not in e  # it would hide /dev/ttyUSB*
    # USB re-authorize: /sys/bus/usb/devices/* are symlinks into /sys/devices, and
    # ProtectKernelTunables makes /sys read-only, so /sys/devices must be re-opened.
    # (image/boot-test.sh proves it on a booted board, with a control that fails.)
    paths = " ".join(e["ReadWritePaths"]).split()
    assert e["ProtectKernelTunables"] == ["yes"] and e["ProtectSystem"] == ["strict"]
    assert "/sys/devices" in paths and "/sys/bus/usb/devices" in paths
    assert "ProcSubset" not in e  # gpiozero reads /proc/cpuinfo to identify the board
