"""Issue 12 (2): `sms-appliance passwd` next to a running daemon, and mistyped state dirs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_a_password_set_with_passwd_outlives_a_restart_until_the_file_changes(make_config,
                                                                               run_daemon):
    """Found by a helper: the config file's password was applied at every start, so a
    password rotated with `passwd` after a lost SD card came back with the next reboot."""
    import dataclasses
    from appliance import config as cfg
    config = make_config(admin=cfg.AdminConfig(password="file-pass-1"),
                         users=(cfg.UserConfig(name="shop", password="shop-pass-1"),))
    daemon = run_daemon(config, admin_password="")
    assert _login_ok(Api(daemon.port), "file-pass-1")
    for user, new in (("admin", "rotated-pass-9"), ("shop", "shop-pass-9")):
        done = _passwd("--state-dir", str(config.state_dir), "--user", user, "--password", new)
        assert done.returncode == 0, done.stderr
    daemon.stop()

    daemon = run_daemon(config, admin_password="")               # the same file
    again = Api(daemon.port)
    assert _login_ok(again, "rotated-pass-9") and not _login_ok(again, "file-pass-1")
    shop = again.get("/api", action="getcredits", username="shop", password="shop-pass-9")[1]
    assert "<balance>" in shop
    daemon.stop()

    changed = dataclasses.replace(config, admin=cfg.AdminConfig(password="file-pass-2"))
    later = Api(run_daemon(changed, admin_password="").port)     # the file's password changed
    assert _login_ok(later, "file-pass-2") and not _login_ok(later, "rotated-pass-9")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, as `sudo sms-appliance passwd`")
def test_passwd_run_as_root_leaves_the_state_to_the_service(tmp_path):
    """Found by a helper: run as root, passwd rewrote documents.json as root 0600 and the
    daemon (User=sms-appliance) could no longer read its own state."""
    import pwd
    import shutil
    import tempfile
    nobody = pwd.getpwnam("nobody")
    parent = Path(tempfile.mkdtemp(prefix="passwd-owner-"))     # one nobody can reach
    try:
        parent.chmod(0o755)
        state = parent / "state"
        assert _passwd("--state-dir", str(state), "--password", "first-pass-1",
                       "--create").returncode == 0
        for path in (state, *state.iterdir()):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        done = _passwd("--state-dir", str(state), "--password", "second-pass-2")
        assert done.returncode == 0, done.stderr
        assert {(p.name, p.stat().st_uid) for p in state.iterdir()} == \
            {(p.name, nobody.pw_uid) for p in state.iterdir()}
    finally:
        shutil.rmtree(parent)
