"""ansible/: syntax check, ansible-lint (production profile), the role's defaults, and the
config template rendered by Ansible itself (with a vault-encrypted secret) and read back
by the daemon's own strict config parser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ANSIBLE = REPO / "ansible"
ROLE = ANSIBLE / "roles" / "sms_appliance"
PLAYBOOKS = ["site.yml", *sorted(str(p.relative_to(ANSIBLE)) for p in (ANSIBLE / "playbooks").glob("*.yml"))]


def tool(name: str) -> str | None:
    beside_python = Path(sys.executable).parent / name
    return str(beside_python) if beside_python.exists() else shutil.which(name)


ENV = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
       "ANSIBLE_LOCAL_TEMP": "/tmp/.ansible-test-tmp", "ANSIBLE_HOME": "/tmp/.ansible-test-home"}
needs_ansible = pytest.mark.skipif(tool("ansible-playbook") is None, reason="ansible-core missing (test extra)")


def run(argv, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, cwd=ANSIBLE, env=ENV, timeout=120, **kw)


@needs_ansible
def test_syntax_check():
    result = run([tool("ansible-playbook"), "--syntax-check", *PLAYBOOKS])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(tool("ansible-lint") is None, reason="ansible-lint missing (test extra)")
def test_ansible_lint_production_profile():
    result = run([tool("ansible-lint"), "--offline", "--profile", "production", "--nocolor"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Profile 'production' was required, and it passed" in result.stderr + result.stdout


def test_every_default_is_commented_and_prefixed():
    lines = (ROLE / "defaults" / "main.yml").read_text().splitlines()
    names = []
    for i, line in enumerate(lines):
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*):", line)
        if not m:
            continue
        names.append(m.group(1))
        assert m.group(1).startswith("sms_appliance_"), m.group(1)
        j = i - 1
        while j >= 0 and re.match(r"^sms_appliance_\w+:", lines[j]):  # a pair shares one comment
            j -= 1
        assert j >= 0 and lines[j].startswith("#"), f"{m.group(1)} has no comment above it"
    assert len(names) >= 15


def test_secrets_only_by_reference():
    """No literal password anywhere in the role or the example inventory."""
    for path in [*ROLE.rglob("*.yml"), *(ANSIBLE / "inventories").rglob("main.yml")]:
        for line in path.read_text().splitlines():
            m = re.match(r"^\s*(\w*(password|pincode|psk)\w*):\s*(.+)$", line)
            if m and not line.lstrip().startswith("#") and m.group(1) != "update_password" \
                    and m.group(3) != "\"!\"":  # "!" = locked account
                assert "{{" in m.group(3) and "vault_" in m.group(3), f"{path}: {line.strip()}"


def test_unit_and_rules_come_from_the_repository():
    """Same bytes as the image: the role copies systemd/ and udev/ instead of keeping copies."""
    assert not list(ROLE.rglob("*.service")) and not list(ROLE.rglob("*.rules"))
    install = (ROLE / "tasks" / "install.yml").read_text()
    assert "/systemd/sms-appliance.service" in install and "/udev/*.rules" in install


RENDER = """
- name: Render the role's config template
  hosts: localhost
  connection: local
  gather_facts: false
  vars_files:  # later files override earlier ones: role defaults, then this board's values
    - {defaults}
    - {board}
    - {secrets}
  tasks:
    - name: Render.
      ansible.builtin.template:
        src: {template}
        dest: {dest}
        mode: "0600"
"""

BOARD = """
sms_appliance_demo: true
sms_appliance_admin_phone: "+36201234567"
sms_appliance_modems:
  - name: slot1
    modemorport: /dev/sms-appliance/slot1
    pincode: "{{ vault_pin }}"
    power_pin: 26
    deliveryreport: false
    submittimeout: 12.5
sms_appliance_smpp_uplinks:
  - name: up.link
    host: smpp.example.net
    username: acct
    password: "{{ vault_smpp }}"
sms_appliance_users:
  - name: shop.eu
    password: "{{ vault_sms_appliance_admin_password }}x"
    ip_allow: [10.0.0.0/8, 192.168.1.5]
    credits: -1
sms_appliance_routes:
  - connections: [slot1, up.link]
    prefix: "+36"
"""


@needs_ansible
def test_config_template_renders_what_the_daemon_accepts(tmp_path: Path):
    vault_pw = tmp_path / "vault-pass"
    vault_pw.write_text("test-only-vault-password\n")
    # quotes, a backslash, Latin-1 and a character beyond the BMP (JSON's \\ud83d\\udd11
    # surrogate escapes are not TOML); names with a dot are quoted keys, not nested tables
    tricky = 'pa"ss\\word with ünïcode 🔑'
    encrypted = run([tool("ansible-vault"), "encrypt_string", "--vault-password-file", str(vault_pw),
                     tricky, "--name", "vault_sms_appliance_admin_password"])
    assert encrypted.returncode == 0, encrypted.stderr
    secrets = tmp_path / "secrets.yml"
    secrets.write_text(encrypted.stdout.rstrip("\n") + '\nvault_pin: "0000"\nvault_smpp: "smpp-secret"\n')
    board = tmp_path / "board.yml"
    board.write_text(BOARD)
    dest = tmp_path / "config.toml"
    play = tmp_path / "render.yml"
    play.write_text(RENDER.format(defaults=ROLE / "defaults" / "main.yml", board=board, secrets=secrets,
                                  template=ROLE / "templates" / "config.toml.j2", dest=dest))
    result = run([tool("ansible-playbook"), "-i", "localhost,", "--vault-password-file", str(vault_pw),
                  "-e", f"ansible_python_interpreter={sys.executable}",
                  "-e", f"role_path={ROLE}", str(play)])
    assert result.returncode == 0, result.stdout + result.stderr
    text = dest.read_text()
    assert "$ANSIBLE_VAULT" not in text and "__ansible_vault" not in text

    from appliance import config as appliance_config

    cfg = appliance_config.load(dest)
    assert cfg.admin.password == tricky and cfg.admin.phone == "+36201234567"
    assert cfg.demo.enabled and cfg.demo.modems == 2 and cfg.http.port == 9501
    slot1, uplink = cfg.connections
    assert (slot1.name, slot1.pincode, slot1.power_pin, slot1.deliveryreport, slot1.submittimeout) == \
        ("slot1", "0000", 26, False, 12.5)
    assert (uplink.name, uplink.type, uplink.host, uplink.password) == \
        ("up.link", "SMPP", "smpp.example.net", "smpp-secret")
    assert cfg.users[0].name == "shop.eu"
    assert cfg.users[0].password == tricky + "x" and cfg.users[0].ip_allow == ("10.0.0.0/8", "192.168.1.5")
    assert cfg.routes[0].connections == ("slot1", "up.link") and cfg.routes[0].prefix == "+36"


@needs_ansible
def test_role_refuses_to_run_without_the_vault_password(tmp_path: Path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  children:\n    sms_appliances:\n      hosts:\n        board:\n"
                         "          ansible_connection: local\n"
                         "          ansible_python_interpreter: " + sys.executable + "\n")
    result = run([tool("ansible-playbook"), "-i", str(inventory), "playbooks/deploy.yml", "--check",
                  "-e", "sms_appliance_install=false", "-e", "sms_appliance_manage_service=false"])
    assert result.returncode != 0
    assert "vault_sms_appliance_admin_password" in result.stdout + result.stderr


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_ansible
def test_status_report_from_a_running_demo_daemon(tmp_path: Path):
    """playbooks/status.yml against a real daemon (demo modems) on 127.0.0.1."""
    import json
    import time
    import urllib.request

    port = free_port()
    daemon = subprocess.Popen(
        [sys.executable, "-m", "appliance", "run", "--demo", "--http-host", "127.0.0.1", "--http-port", str(port),
         "--state-dir", str(tmp_path / "state"), "--admin-password", "status-test-pw"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2))
                if all(m.get("registered") for m in status["modems"]) and status["modems"]:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "demo daemon did not come up"
            time.sleep(0.3)
        inventory = tmp_path / "hosts.yml"
        inventory.write_text(
            "all:\n  children:\n    sms_appliances:\n      hosts:\n        demo-board:\n"
            "          ansible_connection: local\n"
            f"          ansible_python_interpreter: {sys.executable}\n"
            f"          sms_appliance_http_port: {port}\n"
            "  hosts:\n    localhost:\n      ansible_connection: local\n"
            f"      ansible_python_interpreter: {sys.executable}\n")
        report = tmp_path / "report"
        result = run([tool("ansible-playbook"), "-i", str(inventory), "playbooks/status.yml",
                      "-e", f"sms_appliance_report_dir={report}"])
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    rows = json.loads((report / "fleet-status.json").read_text())
    assert len(rows) == 1
    row = rows[0]
    assert row["host"] == "demo-board" and row["reachable"] and row["version"] == status["version"]
    assert row["modems_total"] == len(status["modems"]) == row["modems_registered"]
    assert row["queue_depth"] == 0 and row["oldest_queued_age"] is None
    table = (report / "fleet-status.txt").read_text().splitlines()
    assert table[0].split()[:4] == ["host", "version", "healthy", "modems"]
    assert table[1].split()[0] == "demo-board" and f"{row['modems_registered']}/{row['modems_total']}" in table[1]


def test_the_rollback_check_waits_its_own_time_whatever_the_gate_was_given():
    """upgrade.yml's rollback check passes its own wait to health.yml; an operator's
    `-e sms_appliance_health_timeout=45` (to judge a new release quickly) must not cut the
    previous release's check short. The retries expressions are the role's own, rendered
    by Jinja2 with the variables Ansible hands each call (an extra var beats play vars, but
    the private `__sms_appliance_gate_timeout` is set only by the rollback's include)."""
    import jinja2
    import yaml
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    health = yaml.safe_load((ROLE / "tasks" / "health.yml").read_text())
    upgrade = yaml.safe_load((ANSIBLE / "playbooks" / "upgrade.yml").read_text())
    rescue = upgrade[0]["tasks"][-1]["rescue"]
    [check] = [t for t in rescue if t["name"] == "Check that the previous release is healthy again."]
    assert check["ansible.builtin.include_role"]["tasks_from"] == "health.yml"

    def retries(task_vars: dict) -> list[int]:
        env = jinja2.Environment()
        context = {**defaults, "sms_appliance_health_timeout": 45}      # the operator's -e
        context.update({k: env.from_string(str(v)).render(context) for k, v in task_vars.items()})
        return [int(env.from_string(t["retries"]).render(context)) for t in health if "retries" in t]

    assert retries({}) == [9, 9]                                 # the gate: 45 s, as asked
    assert retries(check.get("vars", {})) == [120, 120]          # the rollback: its own 600 s
    assert defaults["sms_appliance_rollback_health_timeout"] == 600


TIME_PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: sms_appliance
        tasks_from: time.yml
"""


def run_time_tasks(tmp_path: Path, **extra) -> subprocess.CompletedProcess:
    """The role's time.yml on this machine in check mode (--check --diff: nothing written)."""
    import json
    play = tmp_path / "time.yml"
    play.write_text(TIME_PLAY)
    return run([tool("ansible-playbook"), "-i", "localhost,", "--check", "--diff",
                "-e", f"ansible_python_interpreter={sys.executable}",
                "-e", json.dumps({"sms_appliance_manage_service": False, **extra}), str(play)])


@needs_ansible
@pytest.mark.skipif(not Path("/usr/share/zoneinfo/Europe/Budapest").is_file(), reason="no tzdata")
def test_time_zone_and_ntp_servers_for_a_fleet(tmp_path: Path):
    result = run_time_tasks(tmp_path, sms_appliance_timezone="Europe/Budapest",
                            sms_appliance_ntp_servers=["10.0.0.1", "ntp.corp.lan"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "+NTP=10.0.0.1 ntp.corp.lan" in result.stdout        # the drop-in it would write
    zone_task = result.stdout.split("TASK [sms_appliance : Set the time zone.]")[1].split("TASK")[0]
    assert ('"src": "/usr/share/zoneinfo/Europe/Budapest"' in zone_task
            or os.path.realpath("/etc/localtime").endswith("Europe/Budapest"))

    for bad in ({"sms_appliance_timezone": "Mars/Olympus_Mons"},
                {"sms_appliance_timezone": "../../etc/passwd"},
                {"sms_appliance_ntp_servers": ["10.0.0.1 evil"]},
                {"sms_appliance_ntp_servers": "10.0.0.1"}):
        result = run_time_tasks(tmp_path, **bad)
        assert result.returncode != 0, bad
        assert "must be a zone of the tz database" in result.stdout, bad


PROXY_PLAY = TIME_PLAY.replace("tasks_from: time.yml", "tasks_from: proxy.yml")


@needs_ansible
def test_the_lans_proxies_reach_the_service_in_a_drop_in(tmp_path: Path):
    """The daemon's callbacks honour http_proxy/https_proxy/no_proxy; a fleet sets them
    through the role. Check mode on this machine: nothing is written, the diff shows it."""
    import json
    play = tmp_path / "proxy.yml"
    play.write_text(PROXY_PLAY)

    def check(**extra):
        return run([tool("ansible-playbook"), "-i", "localhost,", "--check", "--diff",
                    "-e", f"ansible_python_interpreter={sys.executable}",
                    "-e", json.dumps({"sms_appliance_manage_service": False, **extra}),
                    str(play)])

    result = check(sms_appliance_https_proxy="http://gw:p%40ss@proxy.lan:3128",
                   sms_appliance_no_proxy="localhost,.lan")
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Environment="https_proxy=http://gw:p%%40ss@proxy.lan:3128"' in result.stdout
    assert 'Environment="no_proxy=localhost,.lan"' in result.stdout
    assert "http_proxy=" not in result.stdout.replace("https_proxy=", "")
    result = check()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Set the service's proxy environment." in result.stdout
    assert "Environment=" not in result.stdout                # nothing set: no drop-in
    result = check(sms_appliance_http_proxy='http://proxy" evil=1')
    assert result.returncode != 0
    assert "strings without spaces, quotes or backslashes" in result.stdout


def test_tasks_on_the_board_reach_the_daemon_where_it_listens():
    """Found by a helper: the health gate, status.yml and rotate-credentials.yml asked
    http://127.0.0.1 whatever the role configured; with a certificate the gate failed
    after its wait and upgrade.yml rolled back. One expression, rendered by Jinja2 with
    the role's variables; the playbooks carry the same one."""
    import jinja2
    import yaml
    template = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())["sms_appliance_local_url"]
    for playbook in ("status.yml", "rotate-credentials.yml"):
        plays = yaml.safe_load((ANSIBLE / "playbooks" / playbook).read_text())
        assert plays[0]["vars"]["board_url"] == template, playbook
    render = jinja2.Environment().from_string(template).render
    assert render(sms_appliance_tls_cert="", sms_appliance_http_host="0.0.0.0",
                  sms_appliance_http_port=9501) == "http://127.0.0.1:9501"
    assert render(sms_appliance_tls_cert="/etc/sms-appliance/tls.crt",
                  sms_appliance_http_host="0.0.0.0",
                  sms_appliance_http_port=9443) == "https://127.0.0.1:9443"
    assert render(sms_appliance_tls_cert="", sms_appliance_http_host="10.0.0.5",
                  sms_appliance_http_port=9501) == "http://10.0.0.5:9501"
    assert render() == "http://127.0.0.1:9501"                  # the playbooks' defaults
    # an HTTPS port of its own (sms_appliance_tls_port) keeps the HTTP port plain
    assert render(sms_appliance_tls_cert="/etc/sms-appliance/tls.crt", sms_appliance_tls_port=9508,
                  sms_appliance_http_port=9501) == "http://127.0.0.1:9501"
    health = (ROLE / "tasks" / "health.yml").read_text()
    assert "{{ sms_appliance_local_url }}/status" in health and "127.0.0.1" not in health
