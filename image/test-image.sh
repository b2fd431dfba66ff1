#!/bin/bash
# The slow image test (make test-image): build everything a user gets and check it works.
#
#   image/test-image.sh [OUTDIR]        (default image/out; run as root)
#
#   1. wheelhouse of this checkout            image/build-wheelhouse.sh
#   2. arm64 root tree with the appliance     image/build-rootfs.sh --wheelhouse
#   3. the Ansible role through the chroot connection (no services) on that tree: it must
#      report changed=0, i.e. install-appliance.sh and the role lay down the same bytes
#   4. the SD image, xz + sha256              image/mkimage.sh
#   5. boot it under qemu and check it        image/boot-test.sh, and while it runs
#      image/test-image-ssh.sh: the role over SSH twice (changed=0 the second time), the
#      rolling upgrade (health gate, and rollback from a release that cannot start),
#      credential rotation and the fleet status report
# Every address used is 127.0.0.1. Timings and sizes go to OUTDIR/metrics.txt.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
OUT=$(mkdir -p "${1:-$HERE/out}" && cd "${1:-$HERE/out}" && pwd)
PY=${PYTHON:-$REPO/.venv/bin/python}
BIN=$(dirname "$PY")
ANSIBLE_COLLECTION=${ANSIBLE_COLLECTION:-ansible==12.3.0}
METRICS=$OUT/metrics.txt
: >"$METRICS"
T0=$(date +%s)
step_t=$T0
STEP=start
step() {
	local now
	now=$(date +%s)
	echo "test-image: ==== $* ($((now - T0)) s so far)"
	step_t=$now
	STEP=$*
}
# On failure, the last lines say where it stopped, how long each step took, and why the
# Ansible half failed (a log cut to its tail keeps them).
failed() {
	[ "$1" -ne 0 ] || return 0
	echo "test-image: FAILED in step '$STEP' after $(($(date +%s) - T0)) s; $(tr '\n' ' ' <"$METRICS")" >&2
	if [ -s "$OUT/ssh-failure.txt" ]; then cat "$OUT/ssh-failure.txt" >&2; fi
}
trap 'failed $?' EXIT
record() { echo "$1=$2" | tee -a "$METRICS"; }
rm -f "$OUT/ssh-failure.txt"
took() { record "$1_seconds" $(($(date +%s) - step_t)); }

step "wheelhouse"
"$HERE/build-wheelhouse.sh" "$OUT/wheelhouse" >/dev/null
took wheelhouse

step "root file system"
"$HERE/build-rootfs.sh" --wheelhouse "$OUT/wheelhouse" "$OUT/rootfs"
took rootfs
record rootfs_mib "$(du -s --block-size=1M "$OUT/rootfs" | cut -f1)"

step "Ansible collection for the chroot connection"
# Only community.general is needed (its chroot connection). Galaxy is not reachable from
# CI, so take it out of the 'ansible' package from PyPI instead of installing all of it.
if [ ! -d "$OUT/collections/ansible_collections/community/general" ]; then
	rm -rf "$OUT/collections" "$OUT/dl"
	"$PY" -m pip download --quiet --retries 5 --no-deps --dest "$OUT/dl" "$ANSIBLE_COLLECTION"
	"$PY" - "$OUT/dl" "$OUT/collections" <<'EOF'
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("ansible-*.whl"))
with zipfile.ZipFile(wheel) as zf:
    members = [m for m in zf.namelist() if m.startswith("ansible_collections/community/general/")]
    zf.extractall(sys.argv[2], members)
EOF
	rm -rf "$OUT/dl"
fi
export ANSIBLE_CONFIG=$REPO/ansible/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH=$OUT/collections
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1
export PATH=$BIN:$PATH

# changed=0 in the PLAY RECAP of every host of a run's log.
assert_no_change() {
	if grep -E '^[^ ].* : ok=' "$1" | grep -v -E 'changed=0 .*failed=0'; then
		echo "test-image: the run changed something or failed:" >&2
		grep -E 'changed:|failed:|fatal:' "$1" >&2 || true
		exit 1
	fi
}

step "role through the chroot connection"
cat >"$OUT/inventory-chroot.yml" <<EOF
all:
  children:
    sms_appliances:
      hosts:
        $OUT/rootfs:
          ansible_connection: community.general.chroot
          ansible_become: false
          ansible_python_interpreter: /usr/bin/python3
          sms_appliance_wheelhouse: $OUT/wheelhouse
          sms_appliance_manage_service: false
          sms_appliance_manage_config: false
EOF
(cd "$REPO/ansible" && ansible-playbook -i "$OUT/inventory-chroot.yml" playbooks/deploy.yml | tee "$OUT/chroot.log")
assert_no_change "$OUT/chroot.log"
took ansible_chroot_run
"$HERE/customize-rootfs.sh" --finish "$OUT/rootfs"

step "SD image"
"$HERE/mkimage.sh" "$OUT/rootfs" "$OUT/sms-appliance.img"
took mkimage
record image_mib "$(($(stat -c %s "$OUT/sms-appliance.img") / 1048576))"
record image_xz_mib "$(($(stat -c %s "$OUT/sms-appliance.img.xz") / 1048576))"
rm -f "$OUT/sms-appliance.img"

step "boot under qemu, then Ansible over SSH"
BOOT_TEST_METRICS=$OUT/boot.metrics "$HERE/boot-test.sh" --timeout 2400 \
	--then "$HERE/test-image-ssh.sh $OUT" "$OUT/sms-appliance.img.xz"
cat "$OUT/boot.metrics" >>"$METRICS"
took boot_and_ansible

record total_seconds $(($(date +%s) - T0))
echo "test-image: PASSED"
cat "$METRICS"
