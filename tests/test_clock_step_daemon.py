"""The real daemon process follows a real step of its wall clock (tests/test_clock_step.py
has the cases on the journal and the dispatcher).

libfaketime (Debian's `faketime`, installed by `make test`) steps CLOCK_REALTIME for the
daemon alone, read from a file at every call, and leaves the monotonic clock alone: what NTP
does to a Pi that booted with the time it saved at shutdown. The alert waits because the
only way out, an SMPP uplink, is down.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ADMIN_PASSWORD, Api, xml_values

LIBFAKETIME = next(Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1"),
                   Path("/nonexistent"))     # the multiarch directory of this machine
QUEUED = "0"

pytestmark = pytest.mark.skipif(not LIBFAKETIME.exists(), reason="needs libfaketime")


class SteppedDaemon:
    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.offset = tmp_path / "faketime"
        self.offset.write_text("+0\n")
        self.log: list[str] = []
        (tmp_path / "config.toml").write_text(
            '[http]\nhost = "127.0.0.1"\nport = 0\n'
            '[connections.SMPP0]\ntype = "SMPP"\nhost = "127.0.0.1"\nport = 9\n'
            'username = "u"\npassword = "p"\nreconnectdelay = 1\nreconnectmaxdelay = 2\n')
        env = dict(os.environ, LD_PRELOAD=str(LIBFAKETIME), FAKETIME_NO_CACHE="1",
                   FAKETIME_TIMESTAMP_FILE=str(self.offset), FAKETIME_DONT_FAKE_MONOTONIC="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", "run", "--config", str(tmp_path / "config.toml"),
             "--state-dir", str(tmp_path / "state"), "--admin-password", ADMIN_PASSWORD],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            cwd=Path(__file__).resolve().parents[1])

    def api(self) -> Api:
        for line in self.proc.stdout:
            self.log.append(line)
            match = re.search(r"is running: http://127\.0\.0\.1:(\d+)/status", line)
            if match:
                threading.Thread(target=lambda: self.log.extend(self.proc.stdout),
                                 daemon=True).start()
                return Api(int(match.group(1)))
        raise AssertionError("the daemon did not start:\n" + "".join(self.log[-40:]))

    def step(self, offset: str) -> None:
        self.offset.write_text(offset + "\n")

    def wait_log(self, pattern: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.log):
                if re.search(pattern, line):
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no log line like {pattern!r}:\n" + "".join(self.log[-40:]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def stepped(tmp_path):
    daemon = SteppedDaemon(tmp_path)
    yield daemon
    daemon.stop()
    print("".join(daemon.log[-80:]))


def state_of(api: Api, message_id: str) -> str:
    return xml_values(api.action("getmessagebyid", msgID=message_id), "state")[0]


def test_an_alert_waiting_for_the_uplink_survives_ntp_stepping_the_clock(stepped):
    api = stepped.api()
    alert = api.send("+36201234567", "UPS on battery")        # valid 72 h by default
    stepped.step("+4d")
    stepped.wait_log(r"clock stepped forward by 4 d; 1 messages accepted before keep")
    stepped.step("-1d")                  # and back: five days, measured from the new time
    # a later pass: the expiry check of the pass that saw the step forward has run
    stepped.wait_log(r"clock stepped back by 5 d")
    assert state_of(api, alert) == QUEUED
    assert not any("expired" in line for line in stepped.log)
