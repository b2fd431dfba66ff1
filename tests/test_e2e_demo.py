"""End to end: the real daemon process in demo mode, pty modems, a real HTTP socket.

The daemon is started as `python -m appliance run --config FILE` with a demo section, so the
same code path runs as on a board; only the modems are simulated (on ptys).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ADMIN_PASSWORD, Api, xml_values

DELIVERED, FAILED = 10, 11


class DemoProcess:
    def __init__(self, tmp_path: Path, modems: int = 2):
        self.state = tmp_path / "state"
        self.config = tmp_path / "config.toml"
        self.config.write_text(
            '[http]\nhost = "127.0.0.1"\nport = 0\n'
            f'[demo]\nenabled = true\nmodems = {modems}\nsend_seconds = 0.2\n'
            'report_seconds = 0.2\n')
        self.proc: subprocess.Popen | None = None
        self.api: Api | None = None

    def start(self, password: str | None = ADMIN_PASSWORD) -> Api:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", "run", "--config", str(self.config),
             "--state-dir", str(self.state),
             *(["--admin-password", password] if password else [])],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            cwd=Path(__file__).resolve().parents[1])
        self.log: list[str] = []
        port = self._port_from_banner()
        self.api = Api(port)
        return self.api

    def _port_from_banner(self) -> int:
        lines = self.banner = []
        for line in self.proc.stdout:
            lines.append(line)
            match = re.search(r"is running: http://127\.0\.0\.1:(\d+)/status", line)
            if match:
                for line in self.proc.stdout:       # the rest of the banner
                    lines.append(line)
                    if line.startswith("then follow it"):
                        break
                # Keep reading: a full pipe would block the daemon's logging (and its workers).
                threading.Thread(target=self._drain, daemon=True).start()
                return int(match.group(1))
        self.kill()
        raise AssertionError("demo daemon did not start:\n" + "".join(lines[-40:]))

    def _drain(self) -> None:
        for line in self.proc.stdout:
            self.log.append(line)

    def kill(self, sig=signal.SIGKILL) -> int:
        if self.proc and self.proc.poll() is None:
            # a daemon killed -9 cannot remove its simulated modems' links (/tmp/sms-sim-*)
            links = self._sim_link_dirs() if sig == signal.SIGKILL else set()
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait(10)
            finally:
                for path in links:
                    shutil.rmtree(path, ignore_errors=True)
        return self.proc.returncode if self.proc else 0

    def _sim_link_dirs(self) -> set[str]:
        try:
            status, body = self.api.get("/status") if self.api else (0, "")
        except OSError:
            return set()
        if status != 200:
            return set()
        return {os.path.dirname(m["port"]) for m in json.loads(body)["modems"]
                if os.path.basename(os.path.dirname(m["port"])).startswith("sms-sim-")}


@pytest.fixture
def demo(tmp_path):
    process = DemoProcess(tmp_path)
    yield process
    process.kill(signal.SIGTERM)
    print("".join(process.log[-120:]))   # pytest shows it only when the test failed


def test_a_kept_state_directory_says_where_the_admin_password_is(demo):
    """`make run` keeps the demo's state in .demo/: the password is shown at the first start
    only, and a later start said nothing of it (its curl line read password=PASSWORD)."""
    demo.start(password=None)
    assert re.search(r"admin password \(shown once\): \S{8,}", "".join(demo.banner))
    demo.kill(signal.SIGTERM)
    demo.start(password=None)
    assert (f"admin password: the one set before in {demo.state} (shown at its first start);"
            f" another: sms-appliance passwd --state-dir {demo.state}") in "".join(demo.banner)


def test_a_first_start_with_a_given_password_says_so(demo):
    """A fresh state directory started with --admin-password was told its password was "the
    one set before in DIR (shown at its first start)": this was that first start."""
    demo.start()
    banner = "".join(demo.banner)
    assert "admin password: the one given with --admin-password\n" in banner
    assert "set before" not in banner and ADMIN_PASSWORD not in banner


def test_make_run_keeps_the_demo_state_between_starts():
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    assert "sms-appliance run --demo --state-dir .demo\n" in makefile


def test_send_reaches_delivered_state(demo):
    api = demo.start()
    body = api.action("sendmessage", recipient="+36201234567", messagetype="SMS:TEXT",
                      messagedata="Hello world")
    assert xml_values(body, "statuscode") == ["0"]
    [message_id] = xml_values(body, "messageid")
    api.wait_state(message_id, DELIVERED)
    info = api.action("getmessagebyid", msgID=message_id)
    assert xml_values(info, "folder") == ["SENT"]
    assert xml_values(info, "operatorname")[0].startswith("GSMModem")


def test_long_and_unicode_messages_are_delivered(demo):
    api = demo.start()
    long_id = api.send("+36201234567", "Lorem ipsum dolor sit amet " * 12)   # 3 parts
    emoji_id = api.send("+36201234568", "Riasztás a szerverteremben 🔥 hőmérséklet 45°C")
    for message_id in (long_id, emoji_id):
        api.wait_state(message_id, DELIVERED)


def test_batch_of_fifty_is_accepted_and_delivered(demo):
    api = demo.start()
    fields = {"action": "sendmessage", "username": "admin", "password": ADMIN_PASSWORD,
              "messagecount": "50", "messagetype": "SMS:TEXT"}
    for i in range(50):
        fields[f"recipient{i}"] = f"+3620{i:07d}"
        fields[f"messagedata{i}"] = f"Batch {i}"
    import urllib.parse
    status, body = api.post("/api", urllib.parse.urlencode(fields))
    assert status == 200
    ids = [xml_values(body, f"messageid{i}")[0] for i in range(50)]
    assert all(xml_values(body, f"statuscode{i}") == ["0"] for i in range(50))
    for message_id in ids:
        api.wait_state(message_id, DELIVERED, timeout=60)


def test_message_survives_sigkill_right_after_it_was_accepted(demo):
    api = demo.start()
    message_id = api.send("+36201234567", "survive the crash")
    demo.kill(signal.SIGKILL)
    api = demo.start()
    api.wait_state(message_id, DELIVERED)


@pytest.mark.parametrize("params, code", [
    ({"recipient": "", "messagedata": "x"}, None),
    ({"recipient": "+36201234567", "messagedata": ""}, None),
    ({"recipient": "not-a-number", "messagedata": "x"}, None),
])
def test_bad_submissions_are_refused_per_recipient(demo, params, code):
    api = demo.start()
    body = api.action("sendmessage", **params)
    assert xml_values(body, "statuscode") != ["0"] and xml_values(body, "statusmessage")


def test_request_errors_use_the_ozeki_envelope_and_the_daemon_keeps_serving(demo):
    api = demo.start()
    status, body = api.get("/api", action="sendmessage", username="admin", password="wrong",
                           recipient="+36201234567", messagedata="x")
    assert status == 200 and "<action>error</action>" in body and "<errorcode>4<" in body
    status, body = api.get("/api", action="dance", username="admin", password=ADMIN_PASSWORD)
    assert "<errorcode>1<" in body
    status, body = api.get("/api", action="sendmessage", username="admin",
                           password=ADMIN_PASSWORD, messagecount="lots")
    assert "<errorcode>3<" in body and "Traceback" not in body
    assert api.send("+36201234567", "still serving")


def test_an_admin_password_from_the_config_file_is_named_as_such(tmp_path):
    from appliance import cli
    from appliance.config import AdminConfig, Config
    config = Config(admin=AdminConfig(password="from-the-file"))
    line = cli._password_line(config, str(tmp_path), None, "")
    assert line.startswith("admin password: the one in the config file's [admin] section;")
    assert "from-the-file" not in line
    assert cli._password_line(Config(), str(tmp_path), None, "").startswith(
        f"admin password: the one set before in {tmp_path}")
