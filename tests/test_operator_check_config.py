"""Issue 12 (7): check-config refuses what run would refuse, all at once, with line numbers;
run never dies with a traceback on a file that passed; run --demo --config FILE applies it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request

from appliance import config_check
from appliance.cli import main

BAD = """\
[http]
port = 70000

[admin]
password = "short"
phone = "call me"

[store]
default_validity_hours = -1

[connections.GSMModem0]
type = "GSMModem"
modemorport = "/dev/sms-appliance/slot1"
max_resets_per_hour = -2

[connections.GSMModem1]
type = "GSMModem"
modemorport = "/dev/sms-appliance/slot1"

[connections.SMPP0]
type = "SMPP"
host = "smpp.example.net"
port = 99999

[users.alerts]
password = "alerts-pass-1"
priority = "urgent"
originator = "AVeryLongSenderName"
"""

EXPECTED = [
    (2, "http.port"), (5, "admin.password"), (6, "admin.phone"),
    (9, "store.default_validity_hours"), (14, "connections.GSMModem0.max_resets_per_hour"),
    (18, "connections.GSMModem1.modemorport"), (23, "connections.SMPP0.port"),
    (27, "users.alerts.priority"), (28, "users.alerts.originator"),
]


def test_every_problem_is_reported_with_its_line_and_key(tmp_path, capsys):
    path = tmp_path / "config.toml"
    path.write_text(BAD)
    _, problems = config_check.check_file(path)
    assert [(p.line, p.key) for p in problems] == EXPECTED
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:2: http.port: must be a TCP port, 0..65535 (got 70000)" in err
    assert f"{path}: 9 problems" in err


def test_run_refuses_the_same_file_without_a_traceback(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(BAD)
    done = subprocess.run([sys.executable, "-m", "appliance", "run", "--config", str(path),
                           "--state-dir", str(tmp_path / "state")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "http.port" in done.stderr and "users.alerts.priority" in done.stderr


def test_a_good_file_passes(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[http]\nport = 9501\n\n[users.ops]\npassword = "ops-pass-12"\n'
                    'priority = "alert"\noriginator = "ACME"\n')
    config, problems = config_check.check_file(path)
    assert problems == [] and config.users[0].priority == "alert"


def test_toml_syntax_error_has_its_line(tmp_path, capsys):
    path = tmp_path / "config.toml"
    path.write_text("[http]\nport = 9501\nhost = \n")
    assert main(["check-config", str(path)]) == 1
    assert f"{path}:3: toml:" in capsys.readouterr().err


def test_run_demo_with_a_config_applies_the_file_and_adds_simulated_modems(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[demo]\nmodems = 1\nsend_seconds = 0.05\nreport_seconds = 0.05\n\n'
                    '[users.ops]\npassword = "ops-pass-12"\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "appliance", "run", "--demo", "--config", str(path),
         "--http-host", "127.0.0.1", "--http-port", "0", "--state-dir", str(tmp_path / "state"),
         "--admin-password", "admin-pass-12"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        banner = process.stdout.readline()
        assert "is running: http://" in banner, banner
        base = banner.split("is running: ")[1].strip().rsplit("/status", 1)[0]
        query = "action=getcredits&username=ops&password=ops-pass-12"
        with urllib.request.urlopen(f"{base}/api?{query}", timeout=30) as answer:
            assert "<balance>" in answer.read().decode()
        with urllib.request.urlopen(f"{base}/status", timeout=30) as answer:
            status = __import__("json").loads(answer.read())
        assert status["demo"] is True and len(status["modems"]) == 1
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        process.stdout.close()


def test_run_on_a_port_in_use_is_one_error_line_not_a_traceback(tmp_path):
    import socket
    path = tmp_path / "config.toml"
    path.write_text('[http]\nhost = "127.0.0.1"\n')
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        done = subprocess.run([sys.executable, "-m", "appliance", "run", "--config", str(path),
                               "--http-port", str(busy.getsockname()[1]),
                               "--state-dir", str(tmp_path / "state"),
                               "--admin-password", "admin-pass-12"],
                              capture_output=True, text=True, timeout=60)
    finally:
        busy.close()
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "cannot run" in done.stderr
    # which address (a helper: "[Errno 98] Address already in use" named none of http.port,
    # extra_ports, the SMTP listener or an HTTP Server connection)
    assert "cannot listen on 127.0.0.1:" in done.stderr and "[http] port" in done.stderr


def test_a_certificate_and_key_that_cannot_serve_https_are_a_problem(tmp_path, capsys):
    """Found by a helper: tls_cert = tls_key = a file that is no certificate passed
    check-config; `run` then stopped with '[SSL] PEM lib', naming no file."""
    junk = tmp_path / "hostname"
    junk.write_text("gw-01\n")
    path = tmp_path / "c.toml"
    path.write_text(f'[http]\ntls_cert = "{junk}"\ntls_key = "{junk}"\n')
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:2: http.tls_cert: {junk} with {junk} cannot serve HTTPS" in err


def test_metrics_and_phonesystem_sections_pass_and_are_checked(tmp_path, capsys):
    """Found by a helper: check-config (and so `run`, and the Ansible role's validate)
    refused both sections, so /metrics could not be locked down as the docs say."""
    path = tmp_path / "config.toml"
    path.write_text('[metrics]\nusername = "prom"\npassword = "scrape-pass-1"\n'
                    'allow = ["10.0.5.20"]\n\n[phonesystem]\nauth_required = false\n'
                    'allow = ["192.168.10.0/24"]\n')
    config, problems = config_check.check_file(path)
    assert problems == [] and config.metrics.allow == ("10.0.5.20",)
    path.write_text('[metrics]\nallow = ["not-a-net"]\n[bogus]\n')
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "metrics.allow: 'not-a-net' is not an address or network" in err
    assert "bogus: unknown section (expected http, store, admin, demo, phonesystem, metrics," \
        in err


def test_a_refused_password_is_never_printed(tmp_path, capsys):
    path = tmp_path / "config.toml"
    path.write_text('[users.shop]\npassword = "Vault7x"\n\n[admin]\npassword = "short"\n')
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "users.shop.password: must have at least 8 characters (got 7 characters)" in err
    assert "Vault7x" not in err and "short" not in err


def test_a_password_hash_that_can_never_verify_is_a_problem(tmp_path, capsys):
    """Found by a helper: `password_hash = "garbage"` (or the README's "scrypt$...") passed
    and locked the administrator out without a word."""
    path = tmp_path / "config.toml"
    assert main(["passwd", "--hash-only", "--password", "good-pass-12"]) == 0
    made = capsys.readouterr().out.strip()
    path.write_text(f'[admin]\npassword_hash = "{made}"\n')
    assert config_check.check_file(path)[1] == []
    for bad in ("garbage", "scrypt$...", "scrypt$16384$8$1$!!$abc"):
        path.write_text(f'[admin]\npassword_hash = "{bad}"\n')
        assert main(["check-config", str(path)]) == 1
        assert "admin.password_hash:" in capsys.readouterr().err


def test_the_default_engine_may_be_written_and_state_dir_must_be_absolute(tmp_path, capsys):
    """`engine = "loop"` is the default, yet writing it made check-config (so `run` and
    bench/ingest.py) refuse the file; `state_dir = 5` was taken as the relative path "5"."""
    path = tmp_path / "config.toml"
    path.write_text(f'[http]\nengine = "loop"\n[store]\nstate_dir = "{tmp_path}"\n')
    config, problems = config_check.check_file(path)
    assert problems == [] and config.http.engine == "loop"
    path.write_text('[http]\nengine = "tornado"\n[store]\nstate_dir = 5\n')
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "http.engine: must be one of loop, waitress, wsgiref" in err
    assert "store.state_dir: must be an absolute path (got 5)" in err


def test_demo_with_no_modems_is_a_choice(tmp_path, capsys):
    """Found by a helper: `--modems 0` started two modems (0 was taken as not given)."""
    import pytest
    from appliance import cli
    args = cli._parser().parse_args(["run", "--demo", "--modems", "0", "--state-dir",
                                     str(tmp_path)])
    assert cli.run_config(args).demo.modems == 0
    with pytest.raises(SystemExit):
        cli._parser().parse_args(["run", "--demo", "--modems", "-1"])
    assert "--modems: invalid choice" in capsys.readouterr().err


def test_routes_may_name_http_and_smtp_connections(tmp_path, capsys):
    """Found by a helper: check-config (so `run`) refused a route naming an HTTPClient,
    HTTPServer or SMTP connection: "no connection named 'HC'"."""
    path = tmp_path / "config.toml"
    path.write_text('[connections.HC]\ntype = "HTTPClient"\n'
                    'targeturl = "http://127.0.0.1:9/send?to=$recipient&text=$messagedata"\n'
                    '[connections.MAIL]\ntype = "SMTP"\nsmtpserver = "127.0.0.1"\n'
                    'mailto = "$recipient@sms.example.net"\n'
                    '[[routes]]\nprefix = "+36"\nconnections = ["HC", "MAIL"]\n'
                    '[[routes]]\nconnections = ["NOPE"]\n')
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "routes[1].connections: no connection named 'NOPE'" in err
    assert "'HC'" not in err and "'MAIL'" not in err


def test_resend_on_timeout_is_a_providers_choice(tmp_path, capsys):
    """docs/api.md 8: SUBMITTIMEOUTACTION `Resend` puts an unanswered part back in the
    queue; a helper found it refused for HTTP Client and SMTP connections."""
    path = tmp_path / "config.toml"
    path.write_text('[connections.HC]\ntype = "HTTPClient"\nsubmittimeoutaction = "Resend"\n'
                    'targeturl = "http://127.0.0.1:9/send?to=$recipient&text=$messagedata"\n'
                    '[connections.MAIL]\ntype = "SMTP"\nsmtpserver = "127.0.0.1"\n'
                    'mailto = "$recipient@sms.example.net"\nsubmittimeoutaction = "resend"\n')
    config, problems = config_check.check_file(path)
    assert problems == []
    assert [c.submittimeoutaction for c in config.connections] == ["Resend", "Resend"]
    path.write_text('[connections.GSMModem0]\ntype = "GSMModem"\nmodemorport = "/dev/ttyUSB0"\n'
                    'submittimeoutaction = "Resend"\n')
    assert main(["check-config", str(path)]) == 1
    assert "expected SubmitFailed or SubmitSuccess" in capsys.readouterr().err


def test_a_problem_in_a_provider_table_names_its_key_and_line(tmp_path, capsys):
    """Found by a helper: the problem was put on the table, without its key or line, and
    a route naming the connection was said to name no connection."""
    path = tmp_path / "config.toml"
    path.write_text('[connections.HC]\ntype = "HTTPClient"\n'
                    'targeturl = "http://127.0.0.1:9/send?to=$recipient"\n'
                    'requestmethod = "PUT"\n'
                    '[[routes]]\nconnections = ["HC"]\n')
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:4: connections.HC.requestmethod: expected one of get, post, got 'PUT'" \
        in err
    assert "no connection named" not in err


def test_a_daemon_that_answers_late_is_not_called_unreachable(capsys):
    """Found by a helper: `sms-appliance ussd` said "cannot reach the daemon" when its own
    90 s ran out while the daemon still waited for the modem."""
    import socket
    from appliance import cli
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)              # accepts the connection; nothing ever answers
    try:
        status, _ = cli._get(f"http://127.0.0.1:{server.getsockname()[1]}/admin/ussd?x=1",
                             timeout=0.5)
    finally:
        server.close()
    err = capsys.readouterr().err
    assert status == 0 and "did not answer within 0.5s" in err and "cannot reach" not in err


def test_every_integration_and_store_problem_is_reported_once_on_its_line(tmp_path, capsys):
    """Found by a helper: the integration sections stopped at their first problem (two bad
    rules and a bad hook: one line), a problem without ": " was said twice on line 1, and
    store.reroute_after_seconds = 0 was hidden behind keep_days."""
    path = tmp_path / "c.toml"
    path.write_text('[store]\nreroute_after_seconds = 0\nkeep_days = -1\n\n'
                    '[smtp]\nlisten = "127.0.0.1:2525"\ndomain = "sms.lan"\n'
                    'tls_cert = "/etc/x.pem"\n\n[hooks.json.a]\nrecipients = 5\n\n'
                    '[[rules]]\nforward_url = "ftp://x"\n\n'
                    '[[rules]]\nregex = "(("\nforward_url = "http://x/"\n')
    assert main(["check-config", str(path)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[0].rsplit(":", 1)[1] + " " + line.split(": ")[1]
            for line in lines[:-1]] == [
        "2 store.reroute_after_seconds", "3 store.keep_days", "8 smtp.tls_cert",
        "11 hooks.json.a.recipients", "14 rules[0].forward_url", "17 rules[1].regex"]
    assert "needs smtp.tls_key too" in lines[2] and lines[2].count("smtp.tls_cert") == 1
    assert lines[-1].endswith("6 problems")


def test_demo_modems_do_not_take_the_names_of_the_files_own_connections():
    """Found by a helper: `run --demo --config FILE` with the README's GSMModem0 (slot1)
    silently replaced that modem by a simulated one of the same name."""
    import dataclasses
    from appliance import config as cfg
    from appliance import demo
    mine = cfg.GSMModemConfig(name="GSMModem0", modemorport="/dev/ttyUSB2", slot="slot1")
    base = cfg.Config(connections=(mine,), demo=cfg.DemoConfig(enabled=True, modems=2))
    config, network, _ = demo.start(base)
    try:
        names = [c.name for c in config.connections]
        assert names == ["GSMModem0", "GSMModem1", "GSMModem2"]
        assert config.connections[0] == mine
        assert [c.slot for c in config.connections[1:]] == ["slot2", "slot3"]
    finally:
        network.close()


def test_an_https_port_of_its_own_is_checked(tmp_path):
    """`tls_port` needs a certificate, a port of its own, and the default engine."""
    path = tmp_path / "config.toml"
    path.write_text('[http]\nport = 9501\nextra_ports = [8080]\ntls_port = 8080\n'
                    'engine = "wsgiref"\n')
    _, problems = config_check.check_file(path)
    said = " | ".join(f"{p.key}: {p.text}" for p in problems)
    assert "http.tls_port: HTTPS needs tls_cert and tls_key" in said
    assert "http.tls_port: also a plain HTTP port (port or extra_ports)" in said
    assert 'http.tls_port: only the default engine ("loop")' in said
    path.write_text('[http]\ntls_port = 70000\n')
    _, problems = config_check.check_file(path)
    assert any(p.key == "http.tls_port" and "0..65535" in p.text for p in problems)
