#!/bin/bash
# Turn a Debian arm64 root tree into the sms-appliance SD image's root (host side, files only).
#
#   image/customize-rootfs.sh ROOT            hostname, fstab, boot partition, network,
#                                             first boot, growroot, sshd (off), journald
#   image/customize-rootfs.sh --finish ROOT   last step: forget everything machine-specific
#
# Idempotent. Called by build-rootfs.sh as mmdebstrap customize hooks; usable on any
# tree with systemd in it. Bakes in no password, no key and no host identity.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FILES=$HERE/files
finish=false
if [ "${1:-}" = --finish ]; then finish=true; shift; fi
[ $# -eq 1 ] || { echo "usage: $0 [--finish] ROOT" >&2; exit 2; }
ROOT=$1
[ -x "$ROOT/usr/bin/systemctl" ] || { echo "$ROOT: no systemd in this tree" >&2; exit 1; }

if $finish; then
	# Each board gets its own machine-id and SSH host keys on first boot.
	: >"$ROOT/etc/machine-id"
	rm -f "$ROOT/var/lib/dbus/machine-id" "$ROOT"/etc/ssh/ssh_host_*
	rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb
	rm -rf "$ROOT"/var/log/journal/* "$ROOT"/tmp/* "$ROOT"/root/.cache
	[ ! -d "$ROOT/var/log" ] || find "$ROOT/var/log" -type f \( -name '*.log' -o -name 'lastlog' -o -name '[bw]tmp' \) -exec truncate -s 0 {} +
	exit 0
fi

echo sms-appliance >"$ROOT/etc/hostname"
cat >"$ROOT/etc/hosts" <<'HOSTS'
127.0.0.1	localhost
127.0.1.1	sms-appliance
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
HOSTS

# Partitions by label (image/mkimage.sh writes them). The FAT partition carries
# sms-appliance.toml with secrets until first boot has consumed it: root-only access.
# Its label appears only once udev has settled, after the first boot has grown the root
# partition (the kernel re-reads the table); on a slow board that took longer than
# systemd's default 90 s, the mount gave up and first boot ran without its file. Hence
# the longer device timeout (and firstboot.py mounts it itself if it is still missing).
cat >"$ROOT/etc/fstab" <<'FSTAB'
# <file system>   <mount point>   <type> <options>                                  <dump> <pass>
LABEL=RASPIROOT   /               ext4   rw,noatime,errors=remount-ro,commit=30     0      1
LABEL=RASPIFIRM   /boot/firmware  vfat   rw,noatime,fmask=0177,dmask=0077,nofail,x-systemd.device-timeout=5min 0 2
FSTAB
mkdir -p "$ROOT/boot/firmware"

# raspi-firmware writes cmdline.txt and config.txt; point them at the labelled root.
if [ -f "$ROOT/etc/default/raspi-firmware" ]; then
	sed -i -e 's/^#\?ROOTPART=.*/ROOTPART=LABEL=RASPIROOT/' \
		-e 's/^#\?CONSOLES=.*/CONSOLES="ttyS1,115200 tty0"/' "$ROOT/etc/default/raspi-firmware"
	grep -q '^ROOTPART=' "$ROOT/etc/default/raspi-firmware" ||
		echo 'ROOTPART=LABEL=RASPIROOT' >>"$ROOT/etc/default/raspi-firmware"
fi
if [ -f "$ROOT/boot/firmware/cmdline.txt" ]; then
	sed -i -E -e 's#root=[^ ]+#root=LABEL=RASPIROOT#' \
		-e 's#^console=tty0 #console=ttyS1,115200 console=tty0 #' "$ROOT/boot/firmware/cmdline.txt"
fi

install -D -m 0644 "$FILES/10-wired.network" "$ROOT/etc/systemd/network/10-wired.network"
install -D -m 0644 "$FILES/20-wireless.network" "$ROOT/etc/systemd/network/20-wireless.network"
install -D -m 0644 "$FILES/journald-sms-appliance.conf" "$ROOT/etc/systemd/journald.conf.d/sms-appliance.conf"
install -D -m 0644 "$FILES/sshd-sms-appliance.conf" "$ROOT/etc/ssh/sshd_config.d/sms-appliance.conf"
install -D -m 0755 "$HERE/firstboot.py" "$ROOT/usr/lib/sms-appliance-image/firstboot.py"
install -D -m 0755 "$FILES/growroot" "$ROOT/usr/lib/sms-appliance-image/growroot"
install -D -m 0644 "$FILES/sms-appliance-firstboot.service" "$ROOT/etc/systemd/system/sms-appliance-firstboot.service"
install -D -m 0644 "$FILES/sms-appliance-growroot.service" "$ROOT/etc/systemd/system/sms-appliance-growroot.service"
install -D -m 0644 "$FILES/sms-appliance.toml.example" "$ROOT/boot/firmware/sms-appliance.toml.example"
if [ -e "$ROOT/run/systemd/resolve" ] || [ -e "$ROOT/lib/systemd/systemd-resolved" ]; then
	ln -sf ../run/systemd/resolve/stub-resolv.conf "$ROOT/etc/resolv.conf"
fi

systemctl --root="$ROOT" --quiet enable systemd-networkd.service sms-appliance-firstboot.service sms-appliance-growroot.service
for unit in systemd-resolved.service systemd-timesyncd.service; do
	[ -e "$ROOT/lib/systemd/system/$unit" ] && systemctl --root="$ROOT" --quiet enable "$unit"
done
# SSH is off until first boot is given an authorized key; wpa_supplicant until given a network.
# No unattended apt downloads on an appliance (updates come as images or via Ansible).
for unit in ssh.service ssh.socket wpa_supplicant.service apt-daily.timer apt-daily-upgrade.timer; do
	if [ -e "$ROOT/lib/systemd/system/$unit" ]; then
		systemctl --root="$ROOT" --quiet disable "$unit"
	fi
done
# No account has a password: root stays locked (mmdebstrap leaves it as '*').
if grep -q '^root:[^*!:]' "$ROOT/etc/shadow"; then
	echo "refusing: root has a password in $ROOT/etc/shadow" >&2
	exit 1
fi
