#!/bin/bash
# Install sms-appliance into a root tree: the one installer behind the SD image and the
# pi-gen stage. The Ansible role lays down the same files (same wheelhouse, unit, rules).
#
#   image/install-appliance.sh --wheelhouse DIR [--no-enable] ROOT
#
# ROOT is "/" on a running board (or inside pi-gen's chroot) or the path of a root tree
# (then commands run through chroot; the tree's arm64 binaries need qemu-user on x86).
# DIR holds the sms_appliance wheel and every dependency (image/build-wheelhouse.sh);
# nothing is downloaded. What it does:
#   - group gpio and system user sms-appliance (groups dialout, gpio; no login, no password)
#   - /etc/sms-appliance (root:sms-appliance 0750) and /var/lib/sms-appliance (0750)
#   - venv /opt/sms-appliance/releases/RELEASE from the wheels, kept in
#     /opt/sms-appliance/wheels/RELEASE; /opt/sms-appliance/venv points at the release.
#     RELEASE is VERSION-<first 12 hex of the wheel's sha256>, so a rebuilt wheel with an
#     unchanged version is still a new release, and the previous one stays for rollback.
#   - systemd/sms-appliance.service, enabled; udev/*.rules and the device access rules
# It writes no config file: first boot or Ansible does, so no password is ever baked in.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
WHEELHOUSE=
ENABLE=true
PREFIX=/opt/sms-appliance
SERVICE_USER=sms-appliance

usage() { sed -n '2,17s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
	case $1 in
	--wheelhouse) WHEELHOUSE=$2; shift 2 ;;
	--no-enable) ENABLE=false; shift ;;
	-h | --help) usage 0 ;;
	-*) echo "unknown option: $1" >&2; usage 2 ;;
	*) break ;;
	esac
done
if [ $# -ne 1 ] || [ -z "$WHEELHOUSE" ]; then usage 2; fi
ROOT=$(cd "$1" && pwd)
WHEELHOUSE=$(cd "$WHEELHOUSE" && pwd)

# Run a command inside the target root, with a clean environment (no host PIP_* or
# PYTHONDONTWRITEBYTECODE leaking into the board's venv).
CLEAN_ENV=(/usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8)
in_root() {
	if [ "$ROOT" = / ]; then "${CLEAN_ENV[@]}" "$@"; else chroot "$ROOT" "${CLEAN_ENV[@]}" "$@"; fi
}
log() { echo "install-appliance: $*"; }

shopt -s nullglob
wheels=("$WHEELHOUSE"/sms_appliance-*.whl)
[ ${#wheels[@]} -eq 1 ] || { echo "$WHEELHOUSE: expected exactly one sms_appliance wheel" >&2; exit 1; }
VERSION=$(basename "${wheels[0]}" | cut -d- -f2)
[ -x "$ROOT/usr/bin/python3" ] || { echo "$ROOT: no /usr/bin/python3" >&2; exit 1; }
RELEASE=$VERSION-$(sha256sum "${wheels[0]}" | cut -c1-12)
log "release $RELEASE into $ROOT"

# Service identity.
in_root getent group gpio >/dev/null || in_root groupadd --system gpio
if ! in_root getent passwd "$SERVICE_USER" >/dev/null; then
	in_root useradd --system --user-group --no-create-home --home-dir /var/lib/sms-appliance \
		--shell /usr/sbin/nologin --groups dialout,gpio --comment "SMS gateway appliance" "$SERVICE_USER"
else
	in_root usermod --append --groups dialout,gpio "$SERVICE_USER"
fi
install -d -m 0750 "$ROOT/etc/sms-appliance" "$ROOT/var/lib/sms-appliance"
in_root chown "root:$SERVICE_USER" /etc/sms-appliance
in_root chown "$SERVICE_USER:$SERVICE_USER" /var/lib/sms-appliance

# The release: wheels kept beside the venv, so a rollback needs no network.
release=$PREFIX/releases/$RELEASE
wheeldir=$PREFIX/wheels/$RELEASE
install -d -m 0755 "$ROOT$wheeldir" "$ROOT$PREFIX/releases"
install -m 0644 "$WHEELHOUSE"/*.whl "$ROOT$wheeldir/"
extras=
if compgen -G "$ROOT$wheeldir/lgpio-*aarch64*.whl" >/dev/null &&
	[ "$(in_root uname -m)" = aarch64 ]; then
	extras='[pi]'
fi
if [ ! -x "$ROOT$release/bin/sms-appliance" ]; then
	rm -rf "${ROOT:?}$release"
	in_root /usr/bin/python3 -m venv "$release"
	in_root "$release/bin/python" -m pip install --quiet --no-index --no-cache-dir \
		--disable-pip-version-check --find-links "$wheeldir" \
		"sms-appliance${extras}==$VERSION"
fi
ln -sfn "releases/$RELEASE" "$ROOT$PREFIX/venv"
in_root "$PREFIX/venv/bin/python" -c 'import appliance; print("install-appliance: appliance", appliance.__version__)'

# systemd unit and udev rules: the repository's bytes, unchanged.
install -D -m 0644 "$REPO/systemd/sms-appliance.service" "$ROOT/etc/systemd/system/sms-appliance.service"
install -D -m 0644 "$HERE/files/60-sms-appliance-access.rules" "$ROOT/etc/udev/rules.d/60-sms-appliance-access.rules"
for rules in "$REPO"/udev/*.rules; do
	install -D -m 0644 "$rules" "$ROOT/etc/udev/rules.d/$(basename "$rules")"
done
if $ENABLE; then
	systemctl --root="$ROOT" --quiet enable sms-appliance.service
fi
log "done"
