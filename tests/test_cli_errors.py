"""The CLI's client commands and `passwd` say what is wrong in one line and exit 1, never a
traceback (found by a helper): an URL that is not one, a server that is not the appliance,
a trailing slash, a state directory that cannot be one, a simulator without modems."""

from __future__ import annotations

import http.server
import threading

import pytest

from appliance import cli
from conftest import ADMIN_PASSWORD


def test_status_with_a_trailing_slash_reaches_the_daemon(make_config, run_daemon, capsys):
    daemon = run_daemon(make_config())
    assert cli.main(["status", "--url", f"http://127.0.0.1:{daemon.port}/"]) == 0
    assert '"healthy"' in capsys.readouterr().out


def test_status_from_a_server_that_is_not_the_appliance(capsys):
    class Html(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>a router's login page</html>")

        def log_message(self, *args):
            pass
    server = http.server.HTTPServer(("127.0.0.1", 0), Html)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert cli.main(["status", "--url", f"http://127.0.0.1:{server.server_port}"]) == 1
        assert "not with the appliance's /status" in capsys.readouterr().err
    finally:
        server.shutdown()


def test_an_url_that_is_not_one(capsys):
    assert cli.main(["status", "--url", "http://[::1"]) == 1
    assert "Invalid IPv6 URL" in capsys.readouterr().err


def test_passwd_on_a_path_that_cannot_be_a_state_directory(tmp_path, capsys):
    afile = tmp_path / "not-a-dir"
    afile.write_text("x")
    assert cli.main(["passwd", "--state-dir", str(afile), "--create",
                     "--password", ADMIN_PASSWORD]) == 1
    assert "cannot open the state directory" in capsys.readouterr().err


def test_sim_needs_a_modem():
    with pytest.raises(SystemExit) as exit_:
        cli.main(["sim", "--modems", "0"])
    assert exit_.value.code == 2


def test_status_and_send_reach_a_board_that_serves_https(tmp_path, make_config, run_daemon,
                                                        capsys):
    """Found by a helper: status/send/ussd could not reach a board deployed with TLS (a
    self-signed certificate for the board's name): no way to trust it or skip the check."""
    import dataclasses
    import subprocess
    from appliance.cli import main
    from conftest import ADMIN_PASSWORD
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=gw-01.lan", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    config = make_config()
    daemon = run_daemon(dataclasses.replace(config, http=dataclasses.replace(
        config.http, tls_cert=str(cert), tls_key=str(key))))
    url = f"https://127.0.0.1:{daemon.port}"
    assert main(["status", "--url", url, "--password", ADMIN_PASSWORD]) == 1
    assert "CERTIFICATE_VERIFY_FAILED" in capsys.readouterr().err
    assert main(["status", "--url", url, "--password", ADMIN_PASSWORD,
                 "--cacert", str(cert)]) == 0
    assert '"healthy"' in capsys.readouterr().out
    assert main(["send", "+36201234567", "over https", "--url", url,
                 "--password", ADMIN_PASSWORD, "-k"]) == 0
