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
