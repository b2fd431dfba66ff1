#!/bin/bash
# The Ansible half of the slow image test, against the booted image (run by boot-test.sh
# --then, which exports BOOT_TEST_SSH_PORT, BOOT_TEST_SSH_KEY, BOOT_TEST_ADMIN_PASSWORD,
# BOOT_TEST_HTTP_PORT). Only 127.0.0.1 is ever contacted.
#
#   image/test-image-ssh.sh OUTDIR
#
#   1. the role over SSH (deploy.yml)
#   2. the rolling upgrade with the same release, which runs the role a second time: it
#      passes the health gate and changes nothing but its rollback copy of the config
#   3. the rolling upgrade to a release that cannot start: the health gate fails, the
#      board is rolled back to the previous release and answers again, the run fails
#   4. credential rotation: a new admin password is accepted, the old one refused
#   5. the fleet status report (JSON and table)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
OUT=$1
METRICS=$OUT/metrics.txt
: "${BOOT_TEST_SSH_PORT:?run me through boot-test.sh --then}"
cd "$REPO/ansible"

cat >"$OUT/inventory-vm.yml" <<EOF
all:
  children:
    sms_appliances:
      hosts:
        sms-vm:
          ansible_host: 127.0.0.1
          ansible_port: $BOOT_TEST_SSH_PORT
          ansible_user: root
          ansible_become: false
          ansible_ssh_private_key_file: $BOOT_TEST_SSH_KEY
          ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ServerAliveInterval=15 -o ServerAliveCountMax=8
          ansible_python_interpreter: /usr/bin/python3
          sms_appliance_wheelhouse: $OUT/wheelhouse
          sms_appliance_demo: true
          sms_appliance_report_dir: $OUT/report
          # test only: in a real inventory this comes from an ansible-vault file
          vault_sms_appliance_admin_password: "$BOOT_TEST_ADMIN_PASSWORD"
EOF
# Each run is bounded, so a hung SSH connection fails that run by name instead of eating the
# boot test's whole deadline.
PLAY_TIMEOUT=${PLAY_TIMEOUT:-900}
CURRENT=setup
fail() {
	echo "test-image-ssh: FAILED in $CURRENT: $*" | tee "$OUT/ssh-failure.txt" >&2
	exit 1
}
trap 'fail "exit $? at line $LINENO"' ERR
play() {
	local log=$1
	shift
	CURRENT=$log
	timeout "$PLAY_TIMEOUT" ansible-playbook -i "$OUT/inventory-vm.yml" "$@" 2>&1 | tee "$OUT/$log"
}
# The names of the tasks and handlers that reported "changed" in a run's log.
changed_tasks() {
	awk '/^(TASK|RUNNING HANDLER) \[/ { t = $0; sub(/^[^[]*\[/, "", t); sub(/\] \**$/, "", t) }
	     /^changed: / { print t }' "$OUT/$1" | sort -u
}
status() { curl -fsS --max-time 10 "http://127.0.0.1:$BOOT_TEST_HTTP_PORT/status"; }

t=$(date +%s)
play ssh-1.log playbooks/deploy.yml || fail "the role did not deploy"
echo "ansible_ssh_first_run_seconds=$(($(date +%s) - t))" >>"$METRICS"

# The role's second run over SSH (the chroot run already proved it idempotent without
# services): the upgrade playbook includes it, so one run checks both.
t=$(date +%s)
play upgrade-same.log playbooks/upgrade.yml -e sms_appliance_health_timeout=120 ||
	fail "the upgrade to the same release failed"
echo "ansible_ssh_upgrade_same_seconds=$(($(date +%s) - t))" >>"$METRICS"
grep -q -E '^sms-vm +: ok=.* failed=0' "$OUT/upgrade-same.log" || fail "no clean PLAY RECAP"
unexpected=$(changed_tasks upgrade-same.log | grep -v -x -F 'Keep a copy of the current configuration for rollback.' || true)
[ -z "$unexpected" ] || fail "the role's second run changed: $(echo "$unexpected" | tr '\n' ';')"

# A release whose daemon cannot start (its check-config passes, `run` exits 1): a wheel
# written by hand, so no build tools or network are needed.
broken=$OUT/broken-wheelhouse
rm -rf "$broken"
mkdir -p "$broken"
python3 - "$broken" <<'EOF'
import base64, hashlib, sys, zipfile
info = "sms_appliance-0.0.0+broken.dist-info"
files = {
    "appliance/__init__.py": '__version__ = "0.0.0+broken"\n',
    "appliance/cli.py": "import sys\n\n\ndef main():\n"
                        "    if sys.argv[1:2] == ['check-config']:\n        return 0\n"
                        "    print('broken release for the rollback test', file=sys.stderr)\n    return 1\n",
    f"{info}/METADATA": "Metadata-Version: 2.1\nName: sms-appliance\nVersion: 0.0.0+broken\n",
    f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test-image-ssh\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    f"{info}/entry_points.txt": "[console_scripts]\nsms-appliance = appliance.cli:main\n",
}
def digest(body):
    raw = hashlib.sha256(body.encode()).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
record = "".join(f"{name},sha256={digest(body)},{len(body.encode())}\n" for name, body in files.items())
files[f"{info}/RECORD"] = record + f"{info}/RECORD,,\n"
with zipfile.ZipFile(f"{sys.argv[1]}/sms_appliance-0.0.0+broken-py3-none-any.whl", "w") as zf:
    for name, body in files.items():
        zf.writestr(name, body)
EOF
CURRENT="the broken wheel"
before=$(status | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
t=$(date +%s)
if play upgrade-broken.log playbooks/upgrade.yml -e "sms_appliance_wheelhouse=$broken" \
	-e sms_appliance_health_timeout=45; then
	fail "the upgrade to a broken release did not fail"
fi
echo "ansible_rollback_seconds=$(($(date +%s) - t))" >>"$METRICS"
grep -q 'was rolled back to releases/' "$OUT/upgrade-broken.log" ||
	fail "no rollback message: $(grep -E '^fatal:' "$OUT/upgrade-broken.log" | tail -1)"
after=$(status | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])') ||
	fail "no /status after the rollback"
[ "$after" = "$before" ] || fail "version after rollback is $after, not $before"
echo "test-image-ssh: broken release rolled back, board answers with $after again"

NEW_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
t=$(date +%s)
play rotate.log playbooks/rotate-credentials.yml -e "vault_sms_appliance_admin_password=$NEW_PASSWORD" \
	-e "sms_appliance_previous_admin_password=$BOOT_TEST_ADMIN_PASSWORD" || fail "the rotation failed"
echo "ansible_rotation_seconds=$(($(date +%s) - t))" >>"$METRICS"
grep -q -E '^sms-vm +: ok=.* failed=0' "$OUT/rotate.log" || fail "no clean PLAY RECAP"

play status.log playbooks/status.yml -e "sms_appliance_report_dir=$OUT/report" || fail "the status report failed"
python3 - "$OUT/report/fleet-status.json" <<'EOF' || fail "the fleet report is wrong"
import json, sys
rows = json.load(open(sys.argv[1]))
assert len(rows) == 1 and rows[0]["reachable"], rows
assert rows[0]["modems_total"] == 2 and rows[0]["modems_registered"] == 2, rows
assert rows[0]["version"] not in ("", "-"), rows
EOF
cat "$OUT/report/fleet-status.txt"
