"""ansible/monitoring: the alert rules and the Grafana dashboard name only metrics a board
really exports (checked against a live scrape), and the role's metrics variables render a
[metrics] section the daemon accepts."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest
import yaml

from test_ansible import RENDER, ROLE, needs_ansible, run, tool

MONITORING = Path(__file__).resolve().parents[1] / "ansible" / "monitoring"


def _metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(sms_[a-z0-9_]+)", expr))


def _exported(api) -> set[str]:
    with urllib.request.urlopen(api.base + "/metrics", timeout=30) as answer:
        text = answer.read().decode()
    names = set()
    for line in text.splitlines():      # declared families count even with no sample yet
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            suffixes = {"counter": [""], "histogram": ["_bucket", "_sum", "_count"]}
            names |= {name + s for s in suffixes.get(kind, [""])}
        elif line and not line.startswith("#"):
            names.add(line.split("{")[0].split(" ")[0])
    return names


def _rules() -> list[dict]:
    document = yaml.safe_load((MONITORING / "prometheus-alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] and dashboard["panels"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def test_alert_rules_cover_the_issue_and_are_well_formed():
    rules = _rules()
    names = {r["alert"] for r in rules}
    assert {"SmsModemDown", "SmsBalanceLow", "SmsQueueOld", "SmsCallbacksStuck",
            "SmsDiskLow"} <= names
    for rule in rules:
        assert rule["expr"] and rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
        assert rule["expr"].count("(") == rule["expr"].count(")")


def test_rules_and_dashboard_use_only_exported_metrics(with_traffic):
    exported = _exported(with_traffic)
    # a histogram exports _bucket/_sum/_count, a counter _total: both are what PromQL names
    used = set()
    for expr in [r["expr"] for r in _rules()] + _dashboard_exprs():
        used |= _metric_names(expr)
    missing = sorted(used - exported)
    assert not missing, f"not exported by /metrics: {missing}"


@pytest.fixture
def with_traffic(make_config, run_daemon):
    from conftest import Api
    from web_kit import demo_daemon_on_simulated_modems
    with demo_daemon_on_simulated_modems(make_config, run_daemon, modems=1) as (daemon, _network):
        api = Api(daemon.port)
        api.wait_state(api.send("+36201234567", "traffic"), 10)
        yield api


@needs_ansible
def test_role_renders_the_metrics_allow_list_and_credential(tmp_path: Path):
    secrets = tmp_path / "secrets.yml"
    secrets.write_text('vault_sms_appliance_admin_password: "admin-pass-1"\n'
                       'vault_metrics: "scrape-secret"\n')
    board = tmp_path / "board.yml"
    board.write_text('sms_appliance_metrics_allow: ["10.0.5.20", "10.0.6.0/24"]\n'
                     'sms_appliance_metrics_username: prometheus\n'
                     'sms_appliance_metrics_password: "{{ vault_metrics }}"\n')
    dest = tmp_path / "config.toml"
    play = tmp_path / "render.yml"
    play.write_text(RENDER.format(defaults=ROLE / "defaults" / "main.yml", board=board,
                                  secrets=secrets, template=ROLE / "templates" / "config.toml.j2",
                                  dest=dest))
    import sys
    result = run([tool("ansible-playbook"), "-i", "localhost,",
                  "-e", f"ansible_python_interpreter={sys.executable}",
                  "-e", f"role_path={ROLE}", str(play)])
    assert result.returncode == 0, result.stdout + result.stderr
    from appliance import config as appliance_config
    metrics = appliance_config.load(dest).metrics
    assert metrics.allow == ("10.0.5.20", "10.0.6.0/24")
    assert (metrics.username, metrics.password) == ("prometheus", "scrape-secret")
