#!/bin/bash -e
# pi-gen (host side): stage what the shared installer needs inside the image's /tmp,
# and the first-boot provisioning (sms-appliance.toml on the boot partition).
# Needs the wheelhouse: run image/build-wheelhouse.sh image/out/wheelhouse first.
REPO=$(cd ../../../.. && pwd)
WHEELHOUSE=${SMS_APPLIANCE_WHEELHOUSE:-${REPO}/image/out/wheelhouse}
if ! compgen -G "${WHEELHOUSE}/sms_appliance-*.whl" >/dev/null; then
	echo "no wheelhouse at ${WHEELHOUSE}: run image/build-wheelhouse.sh first" >&2
	exit 1
fi
STAGING="${ROOTFS_DIR}/tmp/sms-appliance"
rm -rf "${STAGING}"
mkdir -p "${STAGING}/image/files" "${STAGING}/systemd" "${STAGING}/udev" "${STAGING}/wheelhouse"
install -m 0755 "${REPO}/image/install-appliance.sh" "${STAGING}/image/"
install -m 0644 "${REPO}/image/files/60-sms-appliance-access.rules" "${STAGING}/image/files/"
install -m 0644 "${REPO}/systemd/sms-appliance.service" "${STAGING}/systemd/"
for rules in "${REPO}"/udev/*.rules; do
	if [ -e "${rules}" ]; then install -m 0644 "${rules}" "${STAGING}/udev/"; fi
done
install -m 0644 "${WHEELHOUSE}"/*.whl "${STAGING}/wheelhouse/"

# First boot: the same script and unit as the Debian image (Pi OS grows the root itself).
install -D -m 0755 "${REPO}/image/firstboot.py" "${ROOTFS_DIR}/usr/lib/sms-appliance-image/firstboot.py"
install -D -m 0644 "${REPO}/image/files/sms-appliance-firstboot.service" \
	"${ROOTFS_DIR}/etc/systemd/system/sms-appliance-firstboot.service"
install -D -m 0644 "${REPO}/image/files/sms-appliance.toml.example" \
	"${ROOTFS_DIR}/boot/firmware/sms-appliance.toml.example"
