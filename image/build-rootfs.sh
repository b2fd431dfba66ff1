#!/bin/bash
# Build the arm64 Debian bookworm root tree of the SD image with mmdebstrap.
#
#   image/build-rootfs.sh [--wheelhouse DIR] [--initramfs list|most] [--mirror URL] OUTDIR
#
# Runs as root on any Debian-like host with qemu-user-static registered in binfmt_misc
# (image/image.mk's test-deps-image sets that up). Needs no loop device; mmdebstrap
# mounts /proc, /sys and /dev only inside its own chroot while it works.
#
# The initramfs is built exactly once, in the last hook: update-initramfs is diverted
# to a no-op while packages install (otherwise linux-image and the initramfs-tools
# trigger each build one, about 11 minutes apiece under emulation). With
# --initramfs list (default) it holds a short module list for SD/virtio boot and zstd;
# --initramfs most is Debian's default and costs about 11 minutes more. The list has
# been booted under qemu only: see image/README.md before releasing.
#
# With --wheelhouse, image/install-appliance.sh installs the appliance into the tree.
# Package downloads are retried by apt (Acquire::Retries) and the whole debootstrap
# is retried up to 3 times.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SUITE=bookworm
MIRROR=${MIRROR:-http://deb.debian.org/debian}
INITRAMFS=list
WHEELHOUSE=
ATTEMPTS=3

usage() { sed -n '2,20s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
	case $1 in
	--wheelhouse) WHEELHOUSE=$(cd "$2" && pwd); shift 2 ;;
	--initramfs) INITRAMFS=$2; shift 2 ;;
	--mirror) MIRROR=$2; shift 2 ;;
	-h | --help) usage 0 ;;
	-*) echo "unknown option: $1" >&2; usage 2 ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || usage 2
OUT=$1
case $INITRAMFS in list | most) ;; *) echo "--initramfs must be list or most" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "build-rootfs.sh must run as root" >&2; exit 1; }
arch-test arm64 >/dev/null || {
	echo "arm64 binaries cannot run here: install qemu-user-static and mount binfmt_misc" >&2
	exit 1
}

# One list, one place: what the appliance image contains besides Debian's essentials.
PACKAGES=(
	# boot: Debian's way of booting a Raspberry Pi (kernel + firmware, no Pi OS archive)
	linux-image-arm64 raspi-firmware firmware-brcm80211 wireless-regdb zstd
	# system
	systemd systemd-sysv systemd-timesyncd systemd-resolved udev dbus kmod tzdata
	iproute2 netbase ca-certificates wpasupplicant iw
	# first boot: grow the root partition, read the FAT partition
	fdisk e2fsprogs dosfstools
	# appliance runtime (the venv is built on python3-venv) and Ansible's apt module
	python3 python3-venv python3-apt usb-modeswitch
	# remote administration, off until first boot is given a key
	openssh-server
)

# The initramfs module list (MODULES=list): root on SD (Pi 3/4), USB mass storage, virtio (qemu).
MODULES_LIST=(ext4 crc32c_generic mmc_block sdhci_iproc bcm2835 sdhci_pltfm
	virtio_blk virtio_pci virtio_mmio usb_storage uas dwc2 xhci_pci pcie_brcmstb reset_raspberrypi)

HOOK_DIR=$(mktemp -d)
trap 'rm -rf "$HOOK_DIR"' EXIT
printf '%s\n' "${MODULES_LIST[@]}" >"$HOOK_DIR/modules"
printf 'MODULES=%s\nCOMPRESS=zstd\n' "$( [ "$INITRAMFS" = list ] && echo list || echo most)" >"$HOOK_DIR/initramfs.conf"

cat >"$HOOK_DIR/essential.sh" <<'EOF'
#!/bin/sh
# Before any package with a kernel or initramfs is installed: configure and defer the initramfs.
set -eu
root=$1; hooks=$2
mkdir -p "$root/etc/initramfs-tools/conf.d" "$root/usr/share/initramfs-tools/modules.d"
cp "$hooks/initramfs.conf" "$root/etc/initramfs-tools/conf.d/sms-appliance.conf"
cp "$hooks/modules" "$root/usr/share/initramfs-tools/modules.d/sms-appliance"
chroot "$root" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs
printf '#!/bin/sh\nexit 0\n' >"$root/usr/sbin/update-initramfs"
chmod 755 "$root/usr/sbin/update-initramfs"
EOF

cat >"$HOOK_DIR/initramfs.sh" <<'EOF'
#!/bin/sh
# After everything is installed and customised: build the one initramfs.
set -eu
root=$1
rm "$root/usr/sbin/update-initramfs"
chroot "$root" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs
chroot "$root" update-initramfs -c -k all
rm -f "$root"/boot/*.dpkg-bak "$root"/boot/firmware/*.dpkg-bak
EOF
chmod 755 "$HOOK_DIR"/*.sh

include=$(IFS=,; echo "${PACKAGES[*]}")
args=(
	--arch=arm64 --variant=apt --components="main non-free-firmware"
	--include="$include"
	--aptopt='Acquire::Retries "5"'
	--aptopt='Acquire::http::Timeout "60"'
	--aptopt='APT::Install-Recommends "false"'
	--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*'
	--dpkgopt='path-exclude=/usr/share/info/*'
	--essential-hook="$HOOK_DIR/essential.sh \"\$1\" $HOOK_DIR"
	--customize-hook="$HERE/customize-rootfs.sh \"\$1\""
)
if [ -n "$WHEELHOUSE" ]; then
	args+=(--customize-hook="$HERE/install-appliance.sh --wheelhouse $WHEELHOUSE \"\$1\"")
fi
args+=(
	--customize-hook="$HOOK_DIR/initramfs.sh \"\$1\""
	--customize-hook="$HERE/customize-rootfs.sh --finish \"\$1\""
)

start=$(date +%s)
for attempt in $(seq 1 "$ATTEMPTS"); do
	rm -rf "$OUT"
	if mmdebstrap "${args[@]}" "$SUITE" "$OUT" "$MIRROR"; then
		echo "build-rootfs: $OUT built in $(($(date +%s) - start)) s, $(du -sh "$OUT" | cut -f1)"
		exit 0
	fi
	echo "build-rootfs: attempt $attempt of $ATTEMPTS failed" >&2
	sleep $((attempt * 15))
done
exit 1
