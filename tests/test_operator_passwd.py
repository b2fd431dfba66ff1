"""Issue 12 (2): `sms-appliance passwd` next to a running daemon, and mistyped state dirs."""

from __future__ import annotations

import subprocess
import sys

from conftest import ADMIN_PASSWORD, Api


def _passwd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance", "passwd", *args],
                          capture_output=True, text=True, timeout=60)


def _login_ok(api: Api, password: str) -> bool:
    status, body = api.get("/api", action="getcredits", username="admin", password=password)
    return status == 200 and "<balance>" in body


def test_passwd_on_a_running_daemon_takes_effect_at_once(make_config, run_daemon):
    config = make_config()
    daemon = run_daemon(config)
    api = Api(daemon.port)
    assert _login_ok(api, ADMIN_PASSWORD)        # the old password is now cached
    done = _passwd("--state-dir", str(config.state_dir), "--password", "rotated-pass-9")
    assert done.returncode == 0, done.stderr
    assert _login_ok(api, "rotated-pass-9")
    assert not _login_ok(api, ADMIN_PASSWORD)


def test_passwd_of_an_api_user_takes_effect_at_once(make_config, run_daemon):
    config = make_config()
    daemon = run_daemon(config)
    api = Api(daemon.port)
    api.action("createuser", name="alice", userpassword="alice-pass-1")
    alice = Api(daemon.port, "alice", "alice-pass-1")
    assert "<balance>" in alice.action("getcredits")
    done = _passwd("--state-dir", str(config.state_dir), "--user", "alice",
                   "--password", "alice-pass-2")
    assert done.returncode == 0, done.stderr
    status, _ = alice.get("/api", action="getcredits", username="alice", password="alice-pass-1")
    assert "<balance>" not in _
    assert "<balance>" in Api(daemon.port, "alice", "alice-pass-2").action("getcredits")


def test_passwd_refuses_a_directory_without_appliance_state(tmp_path):
    typo = tmp_path / "var-lib-sms-appliace"
    done = _passwd("--state-dir", str(typo), "--password", "new-pass-123")
    assert done.returncode == 1
    assert "holds no appliance state" in done.stderr
    assert not typo.exists()
    created = _passwd("--state-dir", str(typo), "--password", "new-pass-123", "--create")
    assert created.returncode == 0, created.stderr
    assert (typo / "documents.json").is_file()
