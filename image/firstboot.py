#!/usr/bin/python3
"""sms-appliance first boot: provision the board from the SD card's boot partition.

Runs early on every boot (sms-appliance-firstboot.service, before the daemon and sshd).

* If `sms-appliance.toml` is on the boot partition, apply it: `hostname`, `[wifi]`,
  `[ssh]` and `[time]` (time zone, the LAN's NTP servers) configure the board; every other section (`[admin]`, `[demo]`,
  `[connections.*]`, `[users.*]`, `[http]`, `[store]`, `[[routes]]`) becomes
  /etc/sms-appliance/config.toml (mode 0640, root:sms-appliance), login passwords
  ([admin] and [users.*]) hashed with the appliance's scrypt format. The file is then
  overwritten and removed from the FAT partition; a note without secrets is left instead.
* Else, if the board has no config yet, write one with a random admin password and show
  the password on the console and in the journal, once.
* No password is ever a default, and SSH stays off unless the file gives a key.

Only the standard library of the image's python3 (bookworm: 3.11) is used, so it runs
before and without the appliance's venv. `--root DIR` works on a tree (tests, images):
then nothing is started, only files are written.
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

BOOT_FILE = "sms-appliance.toml"
NOTE_FILE = "sms-appliance-provisioned.txt"
ERROR_FILE = "sms-appliance-error.txt"
CONFIG = "etc/sms-appliance/config.toml"
VENV_CLI = "opt/sms-appliance/venv/bin/sms-appliance"
SERVICE_GROUP = "sms-appliance"
# Keys of the boot file that configure the board itself; the rest is the daemon's config.
BOARD_KEYS = ("hostname", "wifi", "ssh", "time")
SSH_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-")
HOSTNAME_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
ZONE_RE = re.compile(r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+){0,2}$")     # Europe/Budapest, UTC
NTP_SERVER_RE = re.compile(r"^[A-Za-z0-9.:_-]{1,253}$")                 # a name, IPv4 or IPv6
TIMESYNCD_DROPIN = "etc/systemd/timesyncd.conf.d/sms-appliance.conf"


class ProvisionError(Exception):
    """The boot file cannot be applied; the message says which key and why."""


def log(msg: str) -> None:
    print(f"sms-appliance-firstboot: {msg}", flush=True)


# --- TOML output (tomllib only reads) --------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else json.dumps(k, ensure_ascii=False)


def _value(v, path: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON string escapes are valid TOML
    if isinstance(v, list) and not any(isinstance(x, dict) for x in v):
        return "[" + ", ".join(_value(x, path) for x in v) + "]"
    raise ProvisionError(f"{path}: values of type {type(v).__name__} are not supported")


def dump_toml(data: dict) -> str:
    """Serialise the subset of TOML a config uses: tables, arrays of tables, scalars, lists."""
    out: list[str] = []
    _dump_table(data, [], out)
    return "\n".join(out).strip() + "\n"


def _dump_table(table: dict, prefix: list[str], out: list[str]) -> None:
    path = ".".join(prefix)
    scalars = {k: v for k, v in table.items() if not _is_table(v) and not _is_table_array(v)}
    if prefix and (scalars or not any(_is_table(v) or _is_table_array(v) for v in table.values())):
        out.append(f"\n[{'.'.join(_key(p) for p in prefix)}]")
    for k, v in scalars.items():
        out.append(f"{_key(k)} = {_value(v, f'{path}.{k}' if path else k)}")
    for k, v in table.items():
        if _is_table(v):
            _dump_table(v, prefix + [k], out)
        elif _is_table_array(v):
            for item in v:
                out.append(f"\n[[{'.'.join(_key(p) for p in prefix + [k])}]]")
                for ik, iv in item.items():
                    if _is_table(iv) or _is_table_array(iv):
                        raise ProvisionError(f"{path}.{k}: nested tables in arrays are not supported")
                    out.append(f"{_key(ik)} = {_value(iv, f'{k}.{ik}')}")


def _is_table(v) -> bool:
    return isinstance(v, dict)


def _is_table_array(v) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


# --- the board ----------------------------------------------------------------------------


class Board:
    """File and service changes on the root tree; `live` also applies them to the running system."""

    def __init__(self, root: Path, live: bool):
        self.root = root
        self.live = live

    def path(self, rel: str) -> Path:
        return self.root / rel.lstrip("/")

    def write(self, rel: str, text: str, mode: int, group: str | None = None) -> None:
        """Write atomically (temp file, fsync, rename) with mode and owner set before the rename."""
        target = self.path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, text.encode("utf-8"))
            os.fchmod(fd, mode)
            if group is not None and os.geteuid() == 0:
                os.fchown(fd, 0, self.gid(group))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        dfd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def gid(self, group: str) -> int:
        """The group's id in this tree's /etc/group (not the host's)."""
        for line in self.path("etc/group").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == group:
                return int(fields[2])
        raise ProvisionError(f"group {group!r} does not exist on this system")

    def enable(self, unit: str, template: str | None = None) -> None:
        """Enable for the next boots (the symlink systemctl would make) and start it now."""
        wants = self.path("etc/systemd/system/multi-user.target.wants")
        wants.mkdir(parents=True, exist_ok=True)
        link = wants / unit
        if not link.is_symlink():
            link.symlink_to(f"/lib/systemd/system/{template or unit}")
        self.run(["systemctl", "start", "--no-block", unit])

    def run(self, argv: list[str]) -> None:
        if not self.live:
            return
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log(f"warning: {' '.join(argv)} failed: {result.stderr.strip()}")


def check_hostname(name) -> str:
    if not isinstance(name, str) or not HOSTNAME_RE.match(name):
        raise ProvisionError("hostname: use 1-63 lower-case letters, digits and '-'")
    return name


def set_hostname(board: Board, name: str) -> str:
    board.write("etc/hostname", name + "\n", 0o644)
    hosts = board.path("etc/hosts")
    lines = hosts.read_text().splitlines() if hosts.exists() else ["127.0.0.1\tlocalhost"]
    lines = [ln for ln in lines if not ln.startswith("127.0.1.1")] + [f"127.0.1.1\t{name}"]
    board.write("etc/hosts", "\n".join(lines) + "\n", 0o644)
    board.run(["hostname", name])
    return f"hostname {name}"


def wifi_conf(wifi) -> tuple[str, str]:
    """The wpa_supplicant file for the [wifi] table, and a description without secrets."""
    if not isinstance(wifi, dict):
        raise ProvisionError("wifi: expected a table with ssid, psk and country")
    unknown = set(wifi) - {"ssid", "psk", "psk_hash", "country"}
    if unknown:
        raise ProvisionError(f"wifi.{sorted(unknown)[0]}: unknown key")
    ssid, country = wifi.get("ssid"), wifi.get("country", "")
    if not isinstance(ssid, str) or not 1 <= len(ssid.encode()) <= 32:
        raise ProvisionError("wifi.ssid: 1-32 bytes required")
    if not re.fullmatch(r"[A-Z]{2}", str(country)):
        raise ProvisionError("wifi.country: two capital letters (ISO 3166), e.g. \"HU\"")
    if "psk_hash" in wifi:
        psk = str(wifi["psk_hash"]).lower()
        if not re.fullmatch(r"[0-9a-f]{64}", psk):
            raise ProvisionError("wifi.psk_hash: 64 hex digits (wpa_passphrase output)")
    else:
        passphrase = wifi.get("psk")
        if not isinstance(passphrase, str) or not 8 <= len(passphrase) <= 63:
            raise ProvisionError("wifi.psk: a passphrase of 8-63 characters")
        # Store the derived key, never the passphrase (same as wpa_passphrase).
        psk = hashlib.pbkdf2_hmac("sha1", passphrase.encode(), ssid.encode(), 4096, 32).hex()
    conf = (
        "# Written by sms-appliance first boot.\n"
        "ctrl_interface=DIR=/run/wpa_supplicant GROUP=netdev\n"
        "update_config=0\n"
        f"country={country}\n"
        "network={\n"
        f"\tssid={ssid.encode().hex()}\n"
        f"\tpsk={psk}\n"
        "}\n"
    )
    return conf, f"Wi-Fi network {ssid!r} ({country})"


def set_wifi(board: Board, conf: str, description: str) -> str:
    board.write("etc/wpa_supplicant/wpa_supplicant-wlan0.conf", conf, 0o600)
    board.enable("wpa_supplicant@wlan0.service", template="wpa_supplicant@.service")
    return description


def ssh_keys(ssh) -> list[str]:
    if not isinstance(ssh, dict):
        raise ProvisionError("ssh: expected a table with authorized_keys")
    unknown = set(ssh) - {"authorized_keys"}
    if unknown:
        raise ProvisionError(f"ssh.{sorted(unknown)[0]}: unknown key")
    keys = ssh.get("authorized_keys", [])
    if isinstance(keys, str):
        keys = [keys]
    if not isinstance(keys, list):
        raise ProvisionError("ssh.authorized_keys: a list of public keys (strings)")
    for i, key in enumerate(keys):
        if not isinstance(key, str) or "\n" in key.strip() or not key.strip().startswith(SSH_KEY_TYPES):
            raise ProvisionError(f"ssh.authorized_keys[{i}]: not an OpenSSH public key line")
    return [k.strip() for k in keys]


def set_ssh(board: Board, keys: list[str]) -> str:
    ssh_dir = board.path("root/.ssh")
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(ssh_dir, 0o700)
    board.write("root/.ssh/authorized_keys", "".join(k + "\n" for k in keys), 0o600)
    # Host keys were removed from the image; every board makes its own.
    board.run(["ssh-keygen", "-A"])
    board.enable("ssh.service")
    return f"SSH on for root with {len(keys)} key(s)"


def time_settings(board: Board, table) -> tuple[str | None, list[str] | None]:
    """[time]: `zone` (the tz database name the APIs' local times are in; Ozeki's
    sendondate is server-local) and `ntp` (the LAN's NTP servers, for networks that block
    the public pool). Either may be left out; an empty `ntp` goes back to Debian's pool."""
    if not isinstance(table, dict):
        raise ProvisionError("time: expected a table with zone and ntp")
    unknown = set(table) - {"zone", "ntp"}
    if unknown:
        raise ProvisionError(f"time.{sorted(unknown)[0]}: unknown key")
    zone = table.get("zone")
    if zone is not None and not (isinstance(zone, str) and ZONE_RE.match(zone)
                                 and board.path(f"usr/share/zoneinfo/{zone}").is_file()):
        raise ProvisionError('time.zone: a zone of the tz database, e.g. "Europe/Budapest"')
    servers = table.get("ntp")
    if isinstance(servers, str):
        servers = [servers]
    if servers is not None and not (isinstance(servers, list) and all(
            isinstance(s, str) and NTP_SERVER_RE.match(s) for s in servers)):
        raise ProvisionError('time.ntp: a list of NTP server names or addresses, e.g. ["10.0.0.1"]')
    return zone, servers


def set_time(board: Board, zone: str | None, servers: list[str] | None) -> list[str]:
    done = []
    if zone:
        link, tmp = board.path("etc/localtime"), board.path("etc/.localtime.tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(f"/usr/share/zoneinfo/{zone}")
        os.replace(tmp, link)
        board.write("etc/timezone", zone + "\n", 0o644)
        done.append(f"time zone {zone}")
    if servers:
        board.write(TIMESYNCD_DROPIN, "# Written by sms-appliance first boot.\n[Time]\nNTP="
                    + " ".join(servers) + "\n", 0o644)
        done.append(f"NTP servers {', '.join(servers)}")
    elif servers is not None:
        board.path(TIMESYNCD_DROPIN).unlink(missing_ok=True)
        done.append("NTP servers: Debian's default pool")
    if servers is not None:     # before timesyncd on a first boot; a running one starts again
        board.run(["systemctl", "try-restart", "--no-block", "systemd-timesyncd.service"])
    return done


# --- the daemon's config ----------------------------------------------------------------


# The appliance's password format (appliance/auth.py), rebuilt here with the standard library
# because first boot runs before and without the venv. tests/test_firstboot.py checks that the
# appliance verifies what this writes.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R,
                            p=SCRYPT_P, dklen=32)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


MIN_PASSWORD = 8     # the appliance's own minimum (check-config, the Ansible role)


def check_login_passwords(config: dict) -> None:
    """What check-config says of a short login password, before it is hashed (a hash has no
    length to check, so `password = "1234"` passed and became the admin's password)."""
    tables = [("admin", config.get("admin"))]
    tables += [(f"users.{name}", table) for name, table in (config.get("users") or {}).items()]
    for where, table in tables:
        password = table.get("password") if isinstance(table, dict) else None
        if isinstance(password, str) and password and len(password) < MIN_PASSWORD:
            raise ProvisionError(f"{where}.password: must have at least {MIN_PASSWORD} "
                                 f"characters (got {len(password)} characters)")


def boot_file_problems(output: str, probe: Path) -> str:
    """check-config's lines about the probe file, without its path and line numbers: the
    operator never sees that file (board keys left out, passwords hashed, comments gone),
    and its line 12 is not line 12 of sms-appliance.toml. The key path says where."""
    lines = [re.sub(rf"^{re.escape(str(probe))}(:\d+)?: ", "", line)
             for line in output.strip().splitlines()]
    return "\n".join(line for line in lines if not re.fullmatch(r"\d+ problems?", line))


def hash_login_passwords(config: dict) -> dict:
    """`password` of [admin] and of each [users.*] becomes `password_hash`: /etc keeps no
    login password in clear. (SMPP and SIM secrets stay: the daemon must send them.)"""
    tables = [config.get("admin")] + list((config.get("users") or {}).values())
    for table in tables:
        if isinstance(table, dict) and isinstance(table.get("password"), str) \
                and table["password"]:
            table["password_hash"] = hash_password(table.pop("password"))
    return config


def random_password() -> str:
    return secrets.token_urlsafe(12)


def announce_password(password: str) -> None:
    banner = "=" * 64
    log(banner)
    log(f"admin password (shown once, write it down): {password}")
    log("user 'admin' on the HTTP API, port 9501. Change it: sms-appliance passwd")
    log(banner)


def existing_admin(board: Board) -> dict:
    try:
        data = tomllib.loads(board.path(CONFIG).read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    admin = data.get("admin", {})
    return {k: admin[k] for k in ("password", "password_hash") if admin.get(k)}


def write_config(board: Board, config: dict, origin: str) -> None:
    """Validate with the appliance's own check-config when installed, then write 0640."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = f"# sms-appliance configuration, written by first boot from {origin} on {stamp}.\n" + dump_toml(config)
    tomllib.loads(text)  # our own output must read back
    check_config(board, text)
    board.write(CONFIG, text, 0o640, group=SERVICE_GROUP)


def check_config(board: Board, text: str) -> None:
    cli = board.path(VENV_CLI)
    if not board.live or not os.access(cli, os.X_OK):
        return
    probe = board.path("run/sms-appliance-firstboot.toml") if board.path("run").is_dir() else Path("/tmp/sms-firstboot.toml")
    run_check_config(str(cli), text, probe)


def run_check_config(cli: str, text: str, probe: Path) -> None:
    """The appliance's own check-config on `text` (written to `probe`, 0600, then removed)."""
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.close(fd)
        result = subprocess.run([cli, "check-config", str(probe)], capture_output=True, text=True, check=False)
    finally:
        probe.unlink(missing_ok=True)
    if result.returncode == 1:
        raise ProvisionError("check-config: " + boot_file_problems(result.stderr or result.stdout,
                                                                    probe))


def default_config(board: Board) -> None:
    password = random_password()
    write_config(board, {"admin": {"password_hash": hash_password(password)}},
                 "defaults (no sms-appliance.toml)")
    announce_password(password)


def read_boot_file(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ProvisionError("not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProvisionError(f"not valid TOML: {exc}") from None


def daemon_part(data: dict) -> dict:
    """The boot file's sections that become the daemon's config.toml."""
    config = {k: v for k, v in data.items() if k not in BOARD_KEYS}
    if not isinstance(config.get("admin", {}), dict):
        raise ProvisionError("admin: expected a table")
    return config


def board_settings(board: Board, data: dict) -> tuple:
    """hostname, Wi-Fi, SSH keys, time zone and NTP servers, checked (None: not given)."""
    hostname = check_hostname(data["hostname"]) if "hostname" in data else None
    wifi = wifi_conf(data["wifi"]) if "wifi" in data else None
    keys = ssh_keys(data["ssh"]) if "ssh" in data else None
    zone, servers = time_settings(board, data["time"]) if "time" in data else (None, None)
    return hostname, wifi, keys, zone, servers


def provision(board: Board, boot_dir: Path) -> list[str]:
    data = read_boot_file(boot_dir / BOOT_FILE)
    config = daemon_part(data)
    admin = dict(config.get("admin", {}))
    new_password = None
    if not (admin.get("password") or admin.get("password_hash")):
        kept = existing_admin(board)
        if kept:
            admin.update(kept)
        else:
            new_password = admin["password"] = random_password()
    config = {"admin": admin, **{k: v for k, v in config.items() if k != "admin"}}
    check_login_passwords(config)
    config = hash_login_passwords(copy.deepcopy(config))

    # Validate everything before changing anything.
    hostname, wifi, keys, zone, servers = board_settings(board, data)
    done: list[str] = []
    write_config(board, config, BOOT_FILE)
    done.append(f"config with {len(config.get('connections', {}))} connection(s)"
                + (", demo mode" if config.get("demo", {}).get("enabled") else ""))
    if new_password:
        announce_password(new_password)
    if hostname:
        done.append(set_hostname(board, hostname))
    if wifi:
        done.append(set_wifi(board, *wifi))
    if keys:
        done.append(set_ssh(board, keys))
    elif keys is not None:
        done.append("SSH left off (no authorized_keys)")
    done += set_time(board, zone, servers)
    return done


def shred(path: Path) -> None:
    """Overwrite then delete: FAT reuses the clusters in place, so the secret is gone from the
    file system (flash wear levelling may still hold old blocks; see image/README.md)."""
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.write(b"\0" * size)
        fh.flush()
        os.fsync(fh.fileno())
    path.unlink()


def _mount(boot_dir: Path) -> bool:
    subprocess.run(["udevadm", "settle", "--timeout=10"], capture_output=True, check=False)
    return subprocess.run(["mount", str(boot_dir)], capture_output=True, check=False).returncode == 0


def in_fstab(board: Board, mount_point: str) -> bool:
    """Whether /etc/fstab mounts something on `mount_point` (else there is nothing to wait for)."""
    try:
        lines = board.path("etc/fstab").read_text().splitlines()
    except OSError:
        return False
    return any(len(f) > 1 and f[1] == mount_point
               for f in (line.split() for line in lines if not line.lstrip().startswith("#")))


def wait_for_boot_partition(boot_dir: Path, wait: float = 300.0, *, is_mounted=os.path.ismount,
                            try_mount=_mount, sleep=time.sleep, clock=time.monotonic) -> bool:
    """The FAT partition is a `nofail` mount, so systemd starts us even when it gave up on
    it (its label shows up late on a first boot that grew the root partition). A file on it
    that is not read leaves the board without the SSH key and password it was given, so
    mount it here (its fstab line) until it works or `wait` seconds have passed."""
    if is_mounted(boot_dir):
        return True
    log(f"{boot_dir} is not mounted yet: mounting it (waiting up to {wait:.0f} s)")
    deadline = clock() + wait
    while True:
        if try_mount(boot_dir) or is_mounted(boot_dir):
            log(f"{boot_dir} mounted")
            return True
        if clock() >= deadline:
            log(f"WARNING: {boot_dir} could not be mounted; a {BOOT_FILE} on it is read at the next boot")
            return False
        sleep(2.0)


def check_boot_file(path: Path, cli: str | None) -> list[str]:
    """What first boot would apply from `path`, checked as first boot checks it, changing
    nothing: on a PC before the card is written, or on a running board before a
    re-provisioning reboot. The time zone is looked up in this machine's tz database; the
    daemon's part goes through `cli check-config` when there is one."""
    data = read_boot_file(path)
    config = daemon_part(data)
    check_login_passwords(config)
    hostname, wifi, keys, zone, servers = board_settings(Board(Path("/"), live=False), data)
    said = [f"hostname {hostname}" if hostname else "",
            wifi[1] if wifi else "",
            f"SSH on with {len(keys)} key(s)" if keys else
            ("SSH left off (no authorized_keys)" if keys is not None else ""),
            f"time zone {zone}" if zone else "",
            f"NTP servers {', '.join(servers)}" if servers else ""]
    admin = config.get("admin", {})
    if not (admin.get("password") or admin.get("password_hash")):
        said.append("admin password: kept, or a random one shown once on a new board")
    if cli:
        text = dump_toml(hash_login_passwords(copy.deepcopy(config)))
        with tempfile.TemporaryDirectory() as tmp:
            run_check_config(cli, text, Path(tmp) / "sms-appliance-check.toml")
        said.append(f"config with {len(config.get('connections', {}))} connection(s), "
                    "passed check-config")
    else:
        said.append("the daemon's part NOT checked: no sms-appliance here (--cli PATH)")
    return [line for line in said if line]


def _check_main(path: Path, cli: str | None) -> int:
    cli = cli or shutil.which("sms-appliance")
    if cli is None and os.access(Path("/") / VENV_CLI, os.X_OK):
        cli = str(Path("/") / VENV_CLI)          # on a board
    try:
        said = check_boot_file(path, cli)
    except (OSError, ProvisionError) as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 1
    print(f"{path}: first boot would apply it:")
    for line in said:
        print(f"  - {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/", help="root of the system to provision (default /)")
    parser.add_argument("--boot", default=None, help="boot partition (default ROOT/boot/firmware)")
    parser.add_argument("--check", metavar="FILE", type=Path,
                        help="only check a sms-appliance.toml, change nothing")
    parser.add_argument("--cli", help="with --check: the sms-appliance command for check-config")
    args = parser.parse_args(argv)
    if args.check:
        return _check_main(args.check, args.cli)
    root = Path(args.root)
    board = Board(root, live=root.resolve() == Path("/"))
    boot_dir = Path(args.boot) if args.boot else board.path("boot/firmware")
    boot_file = boot_dir / BOOT_FILE
    if board.live and not args.boot and in_fstab(board, "/boot/firmware"):
        wait_for_boot_partition(boot_dir)

    if boot_file.exists():
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        try:
            done = provision(board, boot_dir)
        except ProvisionError as exc:
            log(f"ERROR in {boot_file}: {exc}")
            log("nothing applied; the file stays on the boot partition until it is fixed")
            (boot_dir / ERROR_FILE).write_text(
                f"{stamp}: {BOOT_FILE} was NOT applied:\n  {exc}\n"
                "Fix the file and boot again. See image/README.md for the format.\n")
            if not board.path(CONFIG).exists():
                default_config(board)
            return 1
        shred(boot_file)
        (boot_dir / ERROR_FILE).unlink(missing_ok=True)
        note = (f"{stamp}: {BOOT_FILE} was applied and removed from this partition.\n"
                + "".join(f"  - {item}\n" for item in done)
                + "Secrets now live in /etc/sms-appliance/config.toml (root:sms-appliance 0640).\n"
                "To provision again, put a new sms-appliance.toml here and reboot.\n")
        (boot_dir / NOTE_FILE).write_text(note)
        for item in done:
            log(f"applied {item}")
        return 0

    if not board.path(CONFIG).exists():
        log(f"no {BOOT_FILE} on the boot partition and no config yet: random admin password")
        default_config(board)
        return 0
    log("nothing to do")
    return 0


if __name__ == "__main__":
    sys.exit(main())
