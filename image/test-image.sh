#!/bin/bash
# The slow image test (make test-image): build everything a user gets and check it works.
#
#   image/test-image.sh [OUTDIR]        (default image/out; run as root)
#
#   1. wheelhouse of this checkout            image/build-wheelhouse.sh
#   2. arm64 root tree with the appliance     image/build-rootfs.sh --wheelhouse
#   3. the Ansible role through the chroot connection (no services), twice: the second
#      run must report changed=0
#   4. the SD image, xz + sha256              image/mkimage.sh
#   5. boot it under qemu and check it        image/boot-test.sh, and while it runs:
#      the role over SSH twice (changed=0 the second time), the rolling-upgrade playbook
#      (health gate) and the fleet status report
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
step() {
	local now
	now=$(date +%s)
	echo "test-image: ==== $* ($((now - T0)) s so far)"
	step_t=$now
}
record() { echo "$1=$2" | tee -a "$METRICS"; }
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
		echo "test-image: the second run changed something or failed:" >&2
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
(cd "$REPO/ansible" && ansible-playbook -i "$OUT/inventory-chroot.yml" playbooks/deploy.yml | tee "$OUT/chroot-1.log")
took chroot_first_run
step "role through the chroot connection, again"
(cd "$REPO/ansible" && ansible-playbook -i "$OUT/inventory-chroot.yml" playbooks/deploy.yml | tee "$OUT/chroot-2.log")
assert_no_change "$OUT/chroot-2.log"
took chroot_second_run
"$HERE/customize-rootfs.sh" --finish "$OUT/rootfs"

step "SD image"
"$HERE/mkimage.sh" "$OUT/rootfs" "$OUT/sms-appliance.img"
took mkimage
record image_mib "$(($(stat -c %s "$OUT/sms-appliance.img") / 1048576))"
record image_xz_mib "$(($(stat -c %s "$OUT/sms-appliance.img.xz") / 1048576))"
rm -f "$OUT/sms-appliance.img"

step "boot under qemu, then Ansible over SSH"
cat >"$OUT/over-ssh.sh" <<EOF
#!/bin/bash
# Runs inside boot-test.sh while the VM is up (ports and key come from its environment).
set -euo pipefail
cd "$REPO/ansible"
cat >"$OUT/inventory-vm.yml" <<INV
all:
  children:
    sms_appliances:
      hosts:
        sms-vm:
          ansible_host: 127.0.0.1
          ansible_port: \$BOOT_TEST_SSH_PORT
          ansible_user: root
          ansible_become: false
          ansible_ssh_private_key_file: \$BOOT_TEST_SSH_KEY
          ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
          ansible_python_interpreter: /usr/bin/python3
          sms_appliance_wheelhouse: $OUT/wheelhouse
          sms_appliance_demo: true
          sms_appliance_report_dir: $OUT/report
          # test only: in a real inventory this comes from an ansible-vault file
          vault_sms_appliance_admin_password: "\$BOOT_TEST_ADMIN_PASSWORD"
INV
t=\$(date +%s)
ansible-playbook -i "$OUT/inventory-vm.yml" playbooks/deploy.yml | tee "$OUT/ssh-1.log"
echo "ansible_ssh_first_run_seconds=\$((\$(date +%s) - t))" >>"$METRICS"
t=\$(date +%s)
ansible-playbook -i "$OUT/inventory-vm.yml" playbooks/deploy.yml | tee "$OUT/ssh-2.log"
echo "ansible_ssh_second_run_seconds=\$((\$(date +%s) - t))" >>"$METRICS"
if grep -E '^sms-vm +: ok=' "$OUT/ssh-2.log" | grep -v -E 'changed=0 .*failed=0'; then
	echo "second run over SSH was not changed=0" >&2; exit 1
fi
ansible-playbook -i "$OUT/inventory-vm.yml" playbooks/upgrade.yml | tee "$OUT/upgrade.log"
ansible-playbook -i "$OUT/inventory-vm.yml" playbooks/status.yml | tee "$OUT/status.log"
python3 -c 'import json,sys; rows=json.load(open(sys.argv[1])); assert rows[0]["reachable"] and rows[0]["modems_total"] == 2, rows' "$OUT/report/fleet-status.json"
cat "$OUT/report/fleet-status.txt"
EOF
chmod 755 "$OUT/over-ssh.sh"
BOOT_TEST_METRICS=$OUT/boot.metrics "$HERE/boot-test.sh" --timeout 1500 --then "$OUT/over-ssh.sh" "$OUT/sms-appliance.img.xz"
cat "$OUT/boot.metrics" >>"$METRICS"
took boot_and_ansible

record total_seconds $(($(date +%s) - T0))
echo "test-image: PASSED"
cat "$METRICS"
