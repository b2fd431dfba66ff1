#!/bin/bash
# Make a flashable SD card image from a root tree, without loop devices or mounts.
#
#   image/mkimage.sh [--boot-mib N] [--root-mib N] [--no-xz] ROOTFS OUT.img
#
# Layout (MBR, like Debian's raspi images):
#   p1  4 MiB ..        FAT32 "RASPIFIRM", bootable, type 0x0c: ROOTFS/boot/firmware
#   p2  after p1        ext4 "RASPIROOT": ROOTFS without the contents of /boot/firmware
# The root partition is made just big enough (used space + 30% + 200 MiB, or --root-mib)
# and grows to fill the card on first boot (sms-appliance-growroot.service).
# The FAT is filled with mtools, the ext4 with `mke2fs -d`; the partitions are written
# into the image with dd. Writes OUT.img, and unless --no-xz OUT.img.xz and
# OUT.img.xz.sha256 (sha256sum format, checked with `sha256sum -c`).
set -euo pipefail

BOOT_MIB=256
ROOT_MIB=
XZ=true
OFFSET_MIB=4
usage() { sed -n '2,14s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
	case $1 in
	--boot-mib) BOOT_MIB=$2; shift 2 ;;
	--root-mib) ROOT_MIB=$2; shift 2 ;;
	--no-xz) XZ=false; shift ;;
	-h | --help) usage 0 ;;
	-*) echo "unknown option: $1" >&2; usage 2 ;;
	*) break ;;
	esac
done
[ $# -eq 2 ] || usage 2
ROOTFS=$(cd "$1" && pwd)
IMG=$2
for tool in sfdisk mkfs.vfat mcopy mke2fs; do
	command -v "$tool" >/dev/null || { echo "mkimage: $tool is missing (make test-deps-image)" >&2; exit 1; }
done
start=$(date +%s)
work=$(mktemp -d "$(dirname "$IMG")/.mkimage.XXXXXX")
fw=$ROOTFS/boot/firmware
put_back() {
	# Return the boot files to the tree if they were moved aside.
	if [ -d "$work/firmware" ]; then
		rmdir "$fw"
		mv "$work/firmware" "$fw"
	fi
}
trap 'put_back; rm -rf "$work"' EXIT

# FAT boot partition.
mkfs.vfat -F 32 -n RASPIFIRM -C "$work/boot.vfat" $((BOOT_MIB * 1024)) >/dev/null
if [ -d "$fw" ] && [ -n "$(ls -A "$fw")" ]; then
	mcopy -s -p -m -i "$work/boot.vfat" "$fw"/* ::/
fi

# ext4 root: the tree minus the contents of /boot/firmware (the FAT's mount point).
if [ -d "$fw" ]; then
	mv "$fw" "$work/firmware"
	mkdir -m 0755 "$fw"
fi
if [ -z "$ROOT_MIB" ]; then
	used_mib=$(du -s --block-size=1M "$ROOTFS" | cut -f1)
	ROOT_MIB=$(((used_mib * 13 / 10 + 200 + 63) / 64 * 64))
fi
mke2fs -q -F -t ext4 -L RASPIROOT -E root_owner=0:0 -d "$ROOTFS" "$work/root.ext4" "${ROOT_MIB}M"
put_back

# The disk: MBR, p1 FAT32 LBA (0x0c, bootable) at 4 MiB, p2 Linux right after it.
rm -f "$IMG"
truncate -s $(((OFFSET_MIB + BOOT_MIB + ROOT_MIB) * 1024 * 1024)) "$IMG"
sfdisk -q "$IMG" <<EOF
label: dos
start=${OFFSET_MIB}MiB, size=${BOOT_MIB}MiB, type=c, bootable
start=$((OFFSET_MIB + BOOT_MIB))MiB, size=${ROOT_MIB}MiB, type=83
EOF
dd if="$work/boot.vfat" of="$IMG" bs=1M seek="$OFFSET_MIB" conv=notrunc,sparse status=none
dd if="$work/root.ext4" of="$IMG" bs=1M seek=$((OFFSET_MIB + BOOT_MIB)) conv=notrunc,sparse status=none
echo "mkimage: $IMG $((OFFSET_MIB + BOOT_MIB + ROOT_MIB)) MiB (root ${ROOT_MIB} MiB, $(du -h "$IMG" | cut -f1) allocated)"

if $XZ; then
	xz -T0 -3 -f -k "$IMG"
	(cd "$(dirname "$IMG")" && sha256sum "$(basename "$IMG").xz" >"$(basename "$IMG").xz.sha256")
	echo "mkimage: $IMG.xz $(du -h "$IMG.xz" | cut -f1), sha256 in $IMG.xz.sha256"
fi
echo "mkimage: done in $(($(date +%s) - start)) s"
