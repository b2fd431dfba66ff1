"""image/mkimage.sh on a tiny root tree; the result is read back without mounting anything
(sfdisk, mtools, debugfs, e2fsck on the image file itself)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MKIMAGE = REPO / "image" / "mkimage.sh"
TOOLS = ["sfdisk", "mkfs.vfat", "mcopy", "mdir", "mtype", "mke2fs", "debugfs", "e2fsck", "xz", "sha256sum"]
MISSING = [t for t in TOOLS if not shutil.which(t) and not os.access(f"/usr/sbin/{t}", os.X_OK)
           and not os.access(f"/sbin/{t}", os.X_OK)]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"missing {MISSING}: run make test-deps-image")
ENV = {**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"}
MIB = 1024 * 1024


def sh(*argv, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=True, env=ENV, timeout=120, **kw)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mkimage")
    tree = tmp / "rootfs"
    fw = tree / "boot" / "firmware"
    (fw / "overlays").mkdir(parents=True)
    (fw / "config.txt").write_text("arm_64bit=1\nupstream_kernel=1\n")
    (fw / "cmdline.txt").write_text("console=tty0 root=LABEL=RASPIROOT rw rootwait\n")
    (fw / "overlays" / "disable-bt.dtbo").write_bytes(b"\xd0\x0d\xfe\xed" + bytes(60))
    (tree / "etc").mkdir()
    (tree / "etc" / "hostname").write_text("sms-appliance\n")
    secret = tree / "etc" / "sms-appliance"
    secret.mkdir()
    (secret / "config.toml").write_text("[admin]\n")
    if os.geteuid() == 0:
        os.chown(secret / "config.toml", 0, 4242)
    os.chmod(secret / "config.toml", 0o640)
    (tree / "usr" / "bin").mkdir(parents=True)
    (tree / "usr" / "bin" / "python3").symlink_to("python3.11")
    img = tmp / "out" / "sms-appliance.img"
    img.parent.mkdir()
    result = sh(str(MKIMAGE), "--boot-mib", "64", "--root-mib", "32", str(tree), str(img))
    return tree, img, result.stdout


def partitions(img: Path) -> list[dict]:
    return json.loads(sh("sfdisk", "-J", str(img)).stdout)["partitiontable"]["partitions"]


def test_partition_table(built):
    _, img, _ = built
    p1, p2 = partitions(img)
    assert (p1["start"], p1["size"], p1["type"], p1.get("bootable")) == (4 * MIB // 512, 64 * MIB // 512, "c", True)
    assert (p2["start"], p2["size"], p2["type"]) == (68 * MIB // 512, 32 * MIB // 512, "83")
    assert img.stat().st_size == (4 + 64 + 32) * MIB


def test_fat_holds_the_boot_files(built):
    _, img, _ = built
    fat = f"{img}@@{4 * MIB}"
    listing = sh("mdir", "-b", "-i", fat, "-/", "::/").stdout.split()
    assert {"::/config.txt", "::/cmdline.txt", "::/overlays/disable-bt.dtbo"} <= set(listing)
    assert sh("mtype", "-i", fat, "::/cmdline.txt").stdout.startswith("console=tty0 root=LABEL=RASPIROOT")
    assert "RASPIFIRM" in sh("mdir", "-i", fat, "::/").stdout


def test_ext4_root_without_the_boot_files(built, tmp_path: Path):
    _, img, _ = built
    part = tmp_path / "root.ext4"
    with open(img, "rb") as src, open(part, "wb") as dst:
        src.seek(68 * MIB)
        dst.write(src.read(32 * MIB))
    sh("e2fsck", "-f", "-n", str(part))  # raises if the file system is not clean
    stats = sh("debugfs", "-R", "stats", str(part)).stdout
    assert "Filesystem volume name:   RASPIROOT" in stats
    assert sh("debugfs", "-R", "cat /etc/hostname", str(part)).stdout == "sms-appliance\n"
    # /boot/firmware is an empty mount point in the ext4; its files live on the FAT.
    names = sh("debugfs", "-R", "ls -p /boot/firmware", str(part)).stdout.split("\n")
    assert [n.split("/")[5] for n in names if n.count("/") >= 6] == [".", ".."]
    stat = sh("debugfs", "-R", "stat /etc/sms-appliance/config.toml", str(part)).stdout
    assert "Mode:  0640" in stat
    if os.geteuid() == 0:
        assert "User:     0   Group:  4242" in stat
    assert "Fast link dest: \"python3.11\"" in sh("debugfs", "-R", "stat /usr/bin/python3", str(part)).stdout


def test_tree_is_left_as_it_was(built):
    tree, _, _ = built
    assert sorted(p.name for p in (tree / "boot" / "firmware").iterdir()) == ["cmdline.txt", "config.txt", "overlays"]
    assert not any(p.name.startswith(".mkimage") for p in tree.parent.joinpath("out").iterdir())


def test_xz_and_checksum(built):
    _, img, _ = built
    xz = img.with_name(img.name + ".xz")
    sh("xz", "-t", str(xz))
    sums = img.with_name(img.name + ".xz.sha256")
    assert sums.read_text().split()[1] == xz.name  # relative name: checkable anywhere
    sh("sha256sum", "-c", sums.name, cwd=img.parent)
    unpacked = subprocess.run(["xz", "-dc", str(xz)], capture_output=True, check=True).stdout
    assert hashlib.sha256(unpacked).digest() == hashlib.sha256(img.read_bytes()).digest()
