#!/bin/bash
# Boot the SD image under qemu-system-aarch64 and check that the appliance works.
#
#   image/boot-test.sh [--timeout SECONDS] [--then COMMAND] IMAGE.img[.xz]
#
# What it does, in bounded time (default 600 s for the whole run):
#   1. checks the .sha256 next to an .img.xz, unpacks a private sparse copy, adds 512 MiB
#      to it (so growroot has something to do) and takes the kernel and initrd from the
#      image's own FAT partition (mtools, no mount);
#   2. puts a first-boot file on the FAT, as a user would: demo mode (simulated modems),
#      a random admin password, hostname and an SSH key generated for this run;
#   3. boots it (-M virt, TCG, -snapshot) with networking restricted to two loopback-only
#      port forwards (HTTP and SSH on 127.0.0.1; restrict=on, the guest reaches nothing);
#   4. waits for GET /status, then over SSH for systemd to report the unit active and the
#      system running, checks first boot's results (file consumed, config 0640
#      root:sms-appliance, root grown, an unmounted boot partition mounted again by first
#      boot) and the unit's sandbox (a USB "authorized" write
#      works through it), and sends one SMS through a simulated modem;
#   5. runs COMMAND (if given) while the VM is up, with BOOT_TEST_HTTP_PORT,
#      BOOT_TEST_SSH_PORT, BOOT_TEST_SSH_KEY, BOOT_TEST_ADMIN_PASSWORD exported;
#   6. stops qemu by its PID. Prints the boot-to-answer time.
set -euo pipefail

TIMEOUT=600
THEN=
usage() { sed -n '2,21s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
	case $1 in
	--timeout) TIMEOUT=$2; shift 2 ;;
	--then) THEN=$2; shift 2 ;;
	-h | --help) usage 0 ;;
	-*) echo "unknown option: $1" >&2; usage 2 ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || usage 2
IMAGE=$1
T0=$(date +%s)
DEADLINE=$((T0 + TIMEOUT))
log() { echo "boot-test: [$(($(date +%s) - T0))s] $*"; }
# The reason comes last, after the console and the journal, so a log cut to its tail keeps it.
die() {
	if [ -f "${WORK:-}/serial.log" ]; then
		echo "---- last 60 lines of the serial console ----" >&2
		tail -n 60 "$WORK/serial.log" >&2
	fi
	if [ ${#SSH[@]} -gt 0 ]; then
		echo "---- journal of the board (last 80 lines) ----" >&2
		timeout 60 "${SSH[@]}" journalctl -b --no-pager -n 80 >&2 ||
			echo "(no journal: SSH did not answer within 60 s)" >&2
	fi
	if [ -f "${WORK:-}/serial.log" ] && grep -q 'sms-appliance-firstboot:' "$WORK/serial.log"; then
		echo "---- what first boot did (serial console) ----" >&2
		grep -a 'sms-appliance-firstboot:' "$WORK/serial.log" | grep -v 'shown once' | tail -n 8 >&2
	fi
	echo "boot-test: FAILED after $(($(date +%s) - T0))s of ${TIMEOUT}s: $*" >&2
	exit 1
}
left() { echo $((DEADLINE - $(date +%s))); }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/boot-test.XXXXXX")
SSH=()
QEMU_PID=
cleanup() {
	if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
		kill "$QEMU_PID" 2>/dev/null || true
		for _ in $(seq 1 20); do kill -0 "$QEMU_PID" 2>/dev/null || break; sleep 0.5; done
		kill -9 "$QEMU_PID" 2>/dev/null || true
	fi
	if [ -n "${KEEP_WORK:-}" ]; then echo "boot-test: work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# 1. A private, sparse, slightly larger copy of the image.
DISK=$WORK/disk.img
case $IMAGE in
*.xz)
	if [ -f "$IMAGE.sha256" ]; then
		(cd "$(dirname "$IMAGE")" && sha256sum --quiet -c "$(basename "$IMAGE").sha256") || die "checksum mismatch"
		log "checksum ok"
	fi
	xz -dc -T0 "$IMAGE" | dd of="$DISK" bs=1M conv=sparse status=none
	;;
*) cp --sparse=always "$IMAGE" "$DISK" ;;
esac
truncate -s +512M "$DISK"
boot_start=$(sfdisk -d "$DISK" | sed -n 's/^.*1 : start= *\([0-9]*\),.*/\1/p')
[ -n "$boot_start" ] || die "no partition table in $IMAGE"
FAT="$DISK@@$((boot_start * 512))"
kernel=$(mdir -b -i "$FAT" ::/ | sed -n 's#^::/\(vmlinuz-.*\)#\1#p' | sort -V | tail -1)
initrd=$(mdir -b -i "$FAT" ::/ | sed -n 's#^::/\(initrd.img-.*\)#\1#p' | sort -V | tail -1)
if [ -z "$kernel" ] || [ -z "$initrd" ]; then die "no vmlinuz/initrd on the boot partition"; fi
mcopy -i "$FAT" "::/$kernel" "$WORK/vmlinuz"
mcopy -i "$FAT" "::/$initrd" "$WORK/initrd"
log "unpacked; kernel $kernel"

# 2. The first-boot file, as a user would put it on the card.
ssh-keygen -q -t ed25519 -N '' -C boot-test -f "$WORK/id_ed25519"
PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
cat >"$WORK/sms-appliance.toml" <<EOF
hostname = "sms-boot-test"

[admin]
password = "$PASSWORD"

[demo]
enabled = true
modems = 2

[ssh]
authorized_keys = ["$(cat "$WORK/id_ed25519.pub")"]
EOF
mcopy -i "$FAT" "$WORK/sms-appliance.toml" ::/sms-appliance.toml

# 3. Boot, reachable only through two forwards bound to 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
HTTP_PORT=$(free_port)
SSH_PORT=$(free_port)
qemu-system-aarch64 -M virt -accel tcg,thread=multi -cpu cortex-a72 -smp 2 -m 1024 \
	-kernel "$WORK/vmlinuz" -initrd "$WORK/initrd" \
	-append "root=LABEL=RASPIROOT rw console=ttyAMA0 net.ifnames=0" \
	-drive "file=$DISK,if=none,format=raw,id=hd0" -snapshot -device virtio-blk-pci,drive=hd0 \
	-netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$HTTP_PORT-:9501,hostfwd=tcp:127.0.0.1:$SSH_PORT-:22" \
	-device virtio-net-pci,netdev=n0,romfile= -device qemu-xhci -device usb-kbd \
	-display none -serial "file:$WORK/serial.log" -monitor none -no-reboot &
QEMU_PID=$!
QEMU_T0=$(date +%s)
log "qemu started, PID $QEMU_PID, HTTP 127.0.0.1:$HTTP_PORT, SSH 127.0.0.1:$SSH_PORT"

URL=http://127.0.0.1:$HTTP_PORT
alive() { kill -0 "$QEMU_PID" 2>/dev/null || die "qemu exited"; }
until curl -fsS --max-time 5 "$URL/status" -o "$WORK/status.json" 2>/dev/null; do
	alive
	[ "$(left)" -gt 0 ] || die "no answer on /status within ${TIMEOUT}s"
	sleep 2
done
ANSWER_S=$(($(date +%s) - QEMU_T0))
log "/status answered ${ANSWER_S}s after qemu started: $(cat "$WORK/status.json")"

# 4. Over SSH: unit, system, first boot, sandbox.
SSH=(ssh -q -i "$WORK/id_ed25519" -p "$SSH_PORT" -o BatchMode=yes -o IdentitiesOnly=yes
	-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10 root@127.0.0.1)
# sshd starts beside the daemon, right after first boot: long after /status answers, it
# will not come (first boot did not apply the file's key, say), so do not wait for the deadline.
SSH_BY=$(($(date +%s) + 600))
until "${SSH[@]}" true 2>/dev/null; do
	alive
	[ "$(left)" -gt 0 ] || die "no SSH within ${TIMEOUT}s"
	[ "$(date +%s)" -lt "$SSH_BY" ] || die "no SSH 600s after /status answered"
	sleep 2
done
guest() { timeout "$(left)" "${SSH[@]}" "$@"; }
[ "$(guest systemctl is-active sms-appliance.service)" = active ] || die "unit not active"
state=$(guest systemctl is-system-running --wait) || true
if [ "$state" != running ]; then
	failed=$(guest systemctl --failed --no-legend --plain) || true
	# What each failed unit said, and when, beside the boot partition's units and growroot:
	# the console's tail rarely holds it.
	units=$(echo "$failed" | awk '{printf " -u %c%s%c", 39, $1, 39}')  # quoted: \x2d in names
	echo "---- journal of the failed units ----" >&2
	guest "journalctl -b --no-pager -o short-monotonic $units -u boot-firmware.mount \
		-u sms-appliance-growroot.service -u sms-appliance-firstboot.service" >&2 || true
	die "system is $state: $failed"
fi
log "unit active, system $state"
# The clock as the daemon sees it from its sandbox (ProtectClock= refuses adjtimex, so it
# reads timesyncd's flag) agrees with timedatectl, read before and after (it may sync between).
ntp_before=$(guest timedatectl show -p NTPSynchronized --value)
synced=$(curl -fsS --max-time 10 "$URL/status" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["clock"]["synchronized"])')
ntp_after=$(guest timedatectl show -p NTPSynchronized --value)
case "$synced" in
True) [ "$ntp_after" = yes ] ;;
False) [ "$ntp_before" = no ] ;;
*) false ;;
esac || die "/status says clock synchronized=$synced, timedatectl NTPSynchronized=$ntp_before/$ntp_after"
log "clock: /status synchronized=$synced, timedatectl NTPSynchronized=$ntp_after"
guest test ! -e /boot/firmware/sms-appliance.toml || die "first-boot file still on the FAT"
guest test -e /boot/firmware/sms-appliance-provisioned.txt || die "no provisioning note"
[ "$(guest "stat -c '%a %U:%G' /etc/sms-appliance/config.toml")" = "640 root:sms-appliance" ] ||
	die "config.toml has the wrong mode or owner"
[ "$(guest hostname)" = sms-boot-test ] || die "hostname not applied"
grown=$(guest lsblk -b -n -o SIZE /dev/vda2)
if [ "$grown" -le $((512 * 1024 * 1024)) ] || ! guest test -e /var/lib/sms-appliance-image/growroot.done; then
	die "root partition did not grow"
fi
log "first boot ok: file consumed, config 640 root:sms-appliance, root partition $((grown / 1048576)) MiB"
# When systemd gave up on the boot partition (its label late on a slow first boot), first
# boot mounts it itself through its fstab line: unmounted, a run must bring it back.
guest "umount /boot/firmware && /usr/bin/python3 /usr/lib/sms-appliance-image/firstboot.py" \
	>"$WORK/remount.log" 2>&1 || die "first boot failed on an unmounted boot partition: $(tail -n 3 "$WORK/remount.log")"
if ! guest mountpoint -q /boot/firmware || ! grep -q '/boot/firmware mounted' "$WORK/remount.log"; then
	die "first boot did not mount the boot partition itself: $(tail -n 3 "$WORK/remount.log")"
fi
log "first boot mounts an unmounted boot partition itself"
exposure=$(guest systemd-analyze security sms-appliance.service --no-pager | sed -n 's/.*Overall exposure level for sms-appliance.service: \([0-9.]*\).*/\1/p')
log "systemd-analyze security on the board: $exposure"

# The unit's own sandbox, with ExecStart swapped for a write to a USB device's "authorized"
# file (the udev rule grants group gpio only for modem vendors; qemu's keyboard is not one,
# so the group is set by hand here). The control run drops /sys/devices from
# ReadWritePaths= and must fail: /sys/bus/usb/devices/* are symlinks into /sys/devices.
# shellcheck disable=SC2016 # expanded by the guest's shell
sandbox_check='set -e
dev=$(cd /sys/bus/usb/devices && ls -d [0-9]*-* | grep -v : | head -1)
attr=/sys/bus/usb/devices/$dev/authorized
chgrp gpio "$attr"; chmod g+w "$attr"
sed -e "s#^ExecStart=.*#ExecStart=/bin/sh -c \"echo 1 > $attr\"#" \
    -e "s/^Type=.*/Type=oneshot/" -e "/^WatchdogSec=/d" -e "/^NotifyAccess=/d" -e "/^Restart=/d" \
    -e "s#^ReadWritePaths=.*#ReadWritePaths=$RW#" \
    /etc/systemd/system/sms-appliance.service > /run/systemd/system/sandbox-check.service
systemctl daemon-reload
systemctl start sandbox-check.service'
guest "RW='/sys/bus/usb/devices /sys/devices'; $sandbox_check" ||
	die "the unit's sandbox cannot write a USB device's authorized file"
if guest "RW=/sys/bus/usb/devices; $sandbox_check" 2>/dev/null; then
	die "control: the write worked without /sys/devices in ReadWritePaths (check is broken)"
fi
log "unit sandbox: USB re-authorize write allowed (and refused without /sys/devices)"

# One SMS through a simulated modem.
reply=$(curl -sS --max-time 30 "$URL/api?action=sendmessage&username=admin&password=$PASSWORD&recipient=%2B36201234567&messagetype=SMS:TEXT&messagedata=Hello+from+boot-test") ||
	die "sendmessage: no answer"
echo "$reply" | grep -q '<statuscode>0</statuscode>' || die "sendmessage refused: $reply"
msgid=$(echo "$reply" | sed -n 's#.*<messageid>\([^<]*\)</messageid>.*#\1#p')
[ -n "$msgid" ] || die "no messageid in: $reply"
until curl -fsS --max-time 10 "$URL/api?action=getmessagebyid&username=admin&password=$PASSWORD&messageid=$msgid" |
	grep -q -i -E '<folder>sent</folder>|<status>(submitted|delivered)'; do
	alive
	[ "$(left)" -gt 0 ] || die "message $msgid was not sent within ${TIMEOUT}s"
	sleep 2
done
log "message $msgid sent through a simulated modem"

# 5. Anything else that needs the running board (the Ansible runs of make test-image).
if [ -n "$THEN" ]; then
	export BOOT_TEST_HTTP_PORT=$HTTP_PORT BOOT_TEST_SSH_PORT=$SSH_PORT \
		BOOT_TEST_SSH_KEY=$WORK/id_ed25519 BOOT_TEST_ADMIN_PASSWORD=$PASSWORD
	log "running: $THEN"
	timeout "$(left)" bash -c "$THEN" || die "'$THEN' failed"
	curl -fsS --max-time 10 "$URL/status" >/dev/null || die "/status stopped answering"
fi

log "PASSED: boot to /status answer ${ANSWER_S}s, total $(($(date +%s) - T0))s"
echo "boot_to_answer_seconds=$ANSWER_S" >"${BOOT_TEST_METRICS:-/dev/null}"
