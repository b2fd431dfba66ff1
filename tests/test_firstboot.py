"""First boot (image/firstboot.py) on a temporary root tree: what lands where, with which
permissions, and what is left on the FAT partition."""

from __future__ import annotations

import importlib.util
import os
import re
import stat
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("firstboot", REPO / "image" / "firstboot.py")
firstboot = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(firstboot)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvAfM3mDl6Vf0Tb0Wm3KkQjS9h6kq8v3W1p8e9r0s1t op@laptop"

FULL = f"""
hostname = "gw-01"

[admin]
password = "s3cret-admin"
phone = "+36201234567"

[demo]
enabled = true
modems = 2

[wifi]
ssid = "IEEE"
psk = "password"
country = "HU"

[ssh]
authorized_keys = ["{KEY}"]

[connections.slot1]
type = "GSMModem"
modemorport = "/dev/sms-appliance/slot1"
pincode = "1234"
power_pin = 26

[connections.uplink]
type = "SMPP"
host = "smpp.example.net"
username = "acct"
password = "smpp-secret"

[users.shop]
password = "shop-secret"
credits = -1
ip_allow = ["10.0.0.0/8"]

[[routes]]
connections = ["slot1", "uplink"]
prefix = "+36"
"""


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "boot" / "firmware").mkdir(parents=True)
    (root / "etc" / "group").write_text("root:x:0:\nsms-appliance:x:4242:\n")
    (root / "etc" / "hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\tsms-appliance\n")
    return root


def boot(root: Path) -> Path:
    return root / "boot" / "firmware"


def config(root: Path) -> Path:
    return root / "etc" / "sms-appliance" / "config.toml"


def run(root: Path) -> int:
    return firstboot.main(["--root", str(root)])


def test_full_file_is_applied_and_removed_from_the_fat(tree: Path):
    (boot(tree) / "sms-appliance.toml").write_text(FULL)
    assert run(tree) == 0

    cfg = config(tree)
    st = cfg.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (0, 4242)  # group from the tree's /etc/group
    data = tomllib.loads(cfg.read_text())
    assert set(data) == {"admin", "demo", "connections", "users", "routes"}  # no board keys
    assert set(data["admin"]) == {"password_hash", "phone"}
    assert "s3cret-admin" not in cfg.read_text() and "shop-secret" not in cfg.read_text()
    from appliance.auth import verify_password

    assert verify_password("s3cret-admin", data["admin"]["password_hash"])
    assert verify_password("shop-secret", data["users"]["shop"]["password_hash"])
    assert data["connections"]["uplink"]["password"] == "smpp-secret"   # the SMSC needs it
    assert data["connections"]["slot1"]["power_pin"] == 26
    assert data["routes"] == [{"connections": ["slot1", "uplink"], "prefix": "+36"}]

    # The daemon's own strict parser accepts what first boot wrote.
    from appliance import config as appliance_config

    parsed = appliance_config.load(cfg)
    assert parsed.demo.enabled and {c.name for c in parsed.connections} == {"slot1", "uplink"}

    # The FAT keeps no secret: the file is gone, the note names no password.
    assert not (boot(tree) / "sms-appliance.toml").exists()
    note = (boot(tree) / "sms-appliance-provisioned.txt").read_text()
    for secret in ("s3cret-admin", "smpp-secret", "shop-secret", "password", "1234"):
        assert secret not in note

    assert (tree / "etc" / "hostname").read_text() == "gw-01\n"
    assert "127.0.1.1\tgw-01" in (tree / "etc" / "hosts").read_text()
    assert "sms-appliance" not in (tree / "etc" / "hosts").read_text()


def test_wifi_stores_the_derived_key_not_the_passphrase(tree: Path):
    (boot(tree) / "sms-appliance.toml").write_text(FULL)
    run(tree)
    wpa = tree / "etc" / "wpa_supplicant" / "wpa_supplicant-wlan0.conf"
    assert stat.S_IMODE(wpa.stat().st_mode) == 0o600
    text = wpa.read_text()
    # IEEE 802.11i-2004 annex H.4 test vector: passphrase "password", SSID "IEEE".
    assert "psk=f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e" in text
    assert "ssid=49454545" in text and "country=HU" in text
    assert '"password"' not in text
    wants = tree / "etc/systemd/system/multi-user.target.wants/wpa_supplicant@wlan0.service"
    assert os.readlink(wants) == "/lib/systemd/system/wpa_supplicant@.service"


def test_ssh_key_enables_ssh_for_root_with_that_key_only(tree: Path):
    (boot(tree) / "sms-appliance.toml").write_text(FULL)
    run(tree)
    keys = tree / "root" / ".ssh" / "authorized_keys"
    assert keys.read_text() == KEY + "\n"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.parent.stat().st_mode) == 0o700
    assert (tree / "etc/systemd/system/multi-user.target.wants/ssh.service").is_symlink()


def test_without_ssh_keys_ssh_stays_off(tree: Path):
    (boot(tree) / "sms-appliance.toml").write_text('[admin]\npassword = "pw-123456"\n[ssh]\nauthorized_keys = []\n')
    assert run(tree) == 0
    assert not (tree / "etc/systemd/system/multi-user.target.wants/ssh.service").exists()
    assert not (tree / "root" / ".ssh").exists()


def test_no_file_makes_a_random_password_shown_once(tree: Path, capsys):
    assert run(tree) == 0
    out = capsys.readouterr().out
    password = re.search(r"write it down\): (\S+)", out).group(1)   # console and journal
    assert len(password) >= 16
    stored = tomllib.loads(config(tree).read_text())["admin"]
    assert set(stored) == {"password_hash"} and password not in config(tree).read_text()
    from appliance.auth import verify_password

    assert verify_password(password, stored["password_hash"])

    before = config(tree).read_bytes()
    assert run(tree) == 0  # later boots: nothing to do, password not shown again
    assert config(tree).read_bytes() == before
    assert password not in capsys.readouterr().out


def test_random_passwords_differ_between_boards(tmp_path: Path, tree: Path):
    other = tmp_path / "other"
    os.makedirs(other / "etc")
    (other / "etc" / "group").write_text("sms-appliance:x:4242:\n")
    run(tree)
    run(other)
    assert config(tree).read_text() != config(other).read_text()


def test_file_without_admin_password_keeps_the_existing_one(tree: Path, capsys):
    run(tree)
    old = tomllib.loads(config(tree).read_text())["admin"]["password_hash"]
    capsys.readouterr()
    (boot(tree) / "sms-appliance.toml").write_text('[demo]\nenabled = true\nmodems = 1\n')
    assert run(tree) == 0
    data = tomllib.loads(config(tree).read_text())
    assert data["admin"]["password_hash"] == old and data["demo"]["modems"] == 1
    assert "write it down" not in capsys.readouterr().out


def test_password_hash_is_passed_through(tree: Path):
    (boot(tree) / "sms-appliance.toml").write_text('[admin]\npassword_hash = "pbkdf2_sha256$1$x$y"\n')
    assert run(tree) == 0
    assert tomllib.loads(config(tree).read_text())["admin"] == {"password_hash": "pbkdf2_sha256$1$x$y"}


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("hostname = \"Bad_Name\"\n", "hostname"),
        ("[wifi]\nssid = \"x\"\npsk = \"short\"\ncountry = \"HU\"\n", "wifi.psk"),
        ("[wifi]\nssid = \"x\"\npsk = \"long enough\"\n", "wifi.country"),
        ("[wifi]\nssid = \"x\"\npsk = \"long enough\"\ncountry = \"HU\"\nchannel = 6\n", "wifi.channel"),
        ("[ssh]\nauthorized_keys = [\"hello\"]\n", "ssh.authorized_keys[0]"),
        ("[admin\npassword = 1\n", "not valid TOML"),
        ("[time]\nzone = \"Mars/Olympus_Mons\"\n", "time.zone"),
        ("[time]\nzone = \"../../etc/passwd\"\n", "time.zone"),
        ("[time]\nntp = [\"10.0.0.1\\nFallbackNTP=evil\"]\n", "time.ntp"),
        ("[time]\nntp = [\"10.0.0.1 10.0.0.2\"]\n", "time.ntp"),
        ("[time]\nserver = \"10.0.0.1\"\n", "time.server"),
    ],
)
def test_bad_file_changes_nothing_and_says_why(tree: Path, text: str, complaint: str):
    (boot(tree) / "sms-appliance.toml").write_text("hostname = \"ok-name\"\n" + text if "hostname" not in text else text)
    assert run(tree) == 1
    assert (boot(tree) / "sms-appliance.toml").exists()  # kept until fixed
    assert complaint in (boot(tree) / "sms-appliance-error.txt").read_text()
    assert not (tree / "etc" / "hostname").exists()
    assert not (tree / "etc" / "wpa_supplicant").exists()
    assert not (tree / "etc" / "localtime").is_symlink()
    assert not (tree / "etc" / "systemd" / "timesyncd.conf.d").exists()
    # The board still comes up reachable: a random password, no default one.
    assert tomllib.loads(config(tree).read_text())["admin"]["password_hash"]


def test_time_zone_and_the_lans_ntp_servers_are_set_for_the_board(tree: Path):
    zone = tree / "usr" / "share" / "zoneinfo" / "Europe" / "Budapest"
    zone.parent.mkdir(parents=True)
    zone.write_bytes(b"TZif2")
    (boot(tree) / "sms-appliance.toml").write_text(
        '[time]\nzone = "Europe/Budapest"\nntp = ["10.0.0.1", "ntp.corp.lan", "fd00::1"]\n'
        '[admin]\npassword = "s3cret-admin"\n')
    assert run(tree) == 0
    assert os.readlink(tree / "etc" / "localtime") == "/usr/share/zoneinfo/Europe/Budapest"
    assert (tree / "etc" / "timezone").read_text() == "Europe/Budapest\n"
    dropin = tree / "etc" / "systemd" / "timesyncd.conf.d" / "sms-appliance.conf"
    assert dropin.read_text().splitlines()[1:] == ["[Time]", "NTP=10.0.0.1 ntp.corp.lan fd00::1"]
    assert "time" not in tomllib.loads(config(tree).read_text())     # the board's, not the daemon's
    note = (boot(tree) / "sms-appliance-provisioned.txt").read_text()
    assert "time zone Europe/Budapest" in note and "NTP servers 10.0.0.1" in note

    (boot(tree) / "sms-appliance.toml").write_text("[time]\nntp = []\n")    # back to the pool
    assert run(tree) == 0
    assert not dropin.exists()
    assert os.readlink(tree / "etc" / "localtime") == "/usr/share/zoneinfo/Europe/Budapest"


def test_fixed_file_clears_the_error_note(tree: Path):
    (boot(tree) / "sms-appliance.toml").write_text('hostname = "Bad_Name"\n')
    run(tree)
    (boot(tree) / "sms-appliance.toml").write_text('hostname = "good-name"\n')
    assert run(tree) == 0
    assert not (boot(tree) / "sms-appliance-error.txt").exists()


def test_shipped_example_is_valid_and_applies(tree: Path):
    example = REPO / "image" / "files" / "sms-appliance.toml.example"
    (boot(tree) / "sms-appliance.toml").write_text(example.read_text())
    assert run(tree) == 0
    from appliance import config as appliance_config

    assert appliance_config.load(config(tree)).admin.password_hash  # random one was made


@pytest.mark.parametrize(
    "value",
    ["plain", 'quo"te', "back\\slash", "new\nline", "tab\tand \u00e9\u00f6 \U0001f600", "", "\x01ctl"],
)
def test_toml_writer_round_trips_strings(value: str):
    data = {"admin": {"password": value}, "users": {"name with space": {"ip_allow": [value, "b"]}}}
    assert tomllib.loads(firstboot.dump_toml(data)) == data


def test_toml_writer_round_trips_numbers_booleans_and_table_arrays():
    data = {
        "http": {"port": 9501, "threads": 4},
        "store": {"default_validity_hours": 1.5},
        "demo": {"enabled": False},
        "routes": [{"connections": ["a"], "prefix": "+1"}, {"connections": ["b"], "mode": "balance"}],
    }
    assert tomllib.loads(firstboot.dump_toml(data)) == data


def test_a_clear_admin_password_from_an_older_image_is_hashed_on_the_next_provisioning(tree: Path):
    target = config(tree)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text('[admin]\npassword = "old-clear-pw"\n')
    (boot(tree) / "sms-appliance.toml").write_text('[demo]\nenabled = true\n')
    assert run(tree) == 0
    text = config(tree).read_text()
    from appliance.auth import verify_password

    assert "old-clear-pw" not in text
    assert verify_password("old-clear-pw", tomllib.loads(text)["admin"]["password_hash"])


class FakeBoard:
    """The boot partition's mount as first boot sees it: not mounted until the `mount`
    call number `mounts_at` (0 = never), on a clock that only sleeps move."""

    def __init__(self, mounts_at: int):
        self.mounts_at, self.calls, self.now, self.mounted = mounts_at, 0, 0.0, False

    def try_mount(self, _path) -> bool:
        self.calls += 1
        self.mounted = self.calls == self.mounts_at
        return self.mounted

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def wait(self, path: Path, wait: float = 300.0) -> bool:
        return firstboot.wait_for_boot_partition(
            path, wait, is_mounted=lambda _p: self.mounted, try_mount=self.try_mount,
            sleep=self.sleep, clock=lambda: self.now)


def test_a_boot_partition_systemd_gave_up_on_is_mounted_by_first_boot(tmp_path: Path, capsys):
    """Its label can show up after systemd's device timeout on a slow first boot; first
    boot then mounts it itself rather than run without the file (no SSH key, no password)."""
    fake = FakeBoard(mounts_at=3)
    assert fake.wait(tmp_path) is True
    assert fake.calls == 3 and fake.now == 4.0
    assert "not mounted yet" in capsys.readouterr().out


def test_a_boot_partition_that_never_mounts_is_given_up_after_the_wait(tmp_path: Path, capsys):
    fake = FakeBoard(mounts_at=0)
    assert fake.wait(tmp_path, wait=30) is False
    assert fake.now >= 30 and fake.calls == 16  # every 2 s, and once more at the deadline
    assert "could not be mounted" in capsys.readouterr().out


def test_a_mounted_boot_partition_is_left_alone(tmp_path: Path):
    fake = FakeBoard(mounts_at=0)
    fake.mounted = True
    assert fake.wait(tmp_path) is True and fake.calls == 0


def test_only_a_boot_partition_listed_in_fstab_is_waited_for(tree: Path):
    board = firstboot.Board(tree, live=False)
    assert not firstboot.in_fstab(board, "/boot/firmware")  # no fstab at all
    (tree / "etc" / "fstab").write_text(
        "# LABEL=X /boot/firmware vfat defaults 0 2\nLABEL=RASPIROOT / ext4 rw 0 1\n")
    assert not firstboot.in_fstab(board, "/boot/firmware")  # only in a comment
    (tree / "etc" / "fstab").write_text(
        "LABEL=RASPIROOT / ext4 rw 0 1\nLABEL=RASPIFIRM /boot/firmware vfat rw,nofail 0 2\n")
    assert firstboot.in_fstab(board, "/boot/firmware")


@pytest.mark.parametrize("text, complaint", [
    ('[admin]\npassword = "1234"\n', "admin.password: must have at least 8 characters"),
    ('[admin]\npassword = "long-enough"\n[users.shop]\npassword = "x"\n',
     "users.shop.password: must have at least 8 characters"),
])
def test_a_short_login_password_is_refused_before_it_is_hashed(tree: Path, text, complaint):
    """Found by a helper: first boot hashed the passwords before check-config saw them, so
    `password = "1234"` passed (a hash has no length) and became the admin's password."""
    (boot(tree) / "sms-appliance.toml").write_text('hostname = "ok-name"\n' + text)
    assert run(tree) == 1
    assert complaint in (boot(tree) / "sms-appliance-error.txt").read_text()
    assert "1234" not in (boot(tree) / "sms-appliance-error.txt").read_text()


def test_check_config_problems_name_the_key_not_a_line_of_a_file_nobody_sees(tmp_path: Path):
    """Found by a helper: the error file said "/run/sms-appliance-firstboot.toml:12: ..."
    (first boot's own rewrite of the file, comments and board keys gone), not a line of the
    operator's sms-appliance.toml. The key path is what is left."""
    import subprocess
    import sys
    probe = tmp_path / "sms-appliance-firstboot.toml"
    probe.write_text(firstboot.dump_toml({"connections": {"slot1": {
        "type": "GSMModem", "modemorport": "/dev/ttyUSB2", "pincode": "12"}}}))
    result = subprocess.run([sys.executable, "-m", "appliance", "check-config", str(probe)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 1 and f"{probe}:" in result.stderr
    said = firstboot.boot_file_problems(result.stderr, probe)
    assert "connections.slot1.pincode" in said and str(probe) not in said
    assert len(said.splitlines()) == 1         # the "1 problem" summary is not a problem


def test_check_mode_says_what_first_boot_would_apply_and_changes_nothing(tmp_path: Path,
                                                                          capsys):
    """Left undone last time: an operator could only learn of a mistake in the boot file by
    booting the card and reading sms-appliance-error.txt. `--check FILE` runs first boot's
    own checks (board keys, login passwords) and the appliance's check-config on it, on a
    PC or on a running board before a re-provisioning reboot, and writes nothing."""
    import sys
    cli = str(Path(sys.executable).parent / "sms-appliance")
    path = tmp_path / "sms-appliance.toml"
    path.write_text(FULL)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert firstboot.main(["--check", str(path), "--cli", cli]) == 0
    out = capsys.readouterr().out
    assert "hostname gw-01" in out and "Wi-Fi network 'IEEE' (HU)" in out
    assert "SSH on with 1 key(s)" in out and "passed check-config" in out
    assert "s3cret" not in out and "smpp-secret" not in out
    assert path.read_text() == FULL and sorted(p.name for p in tmp_path.iterdir()) == before

    for mistake, said in (('pincode = "1234"', "connections.slot1.pincode"),
                          ('hostname = "gw-01"', "hostname:"),
                          ('password = "s3cret-admin"', "admin.password: must have at least")):
        wrong = {"pincode": 'pincode = "12"', "hostname": 'hostname = "gw_01"',
                 "password": 'password = "short"'}[mistake.split(" ")[0]]
        path.write_text(FULL.replace(mistake, wrong))
        assert firstboot.main(["--check", str(path), "--cli", cli]) == 1, mistake
        err = capsys.readouterr().err
        assert said in err, err
    assert not (tmp_path / "sms-appliance-error.txt").exists()
