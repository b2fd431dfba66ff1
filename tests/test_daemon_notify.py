"""systemd integration through a real NOTIFY_SOCKET: READY once HTTP listens, STATUS lines,
WATCHDOG pings while every worker is alive, STOPPING on SIGTERM."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from conftest import ADMIN_PASSWORD, Api


def test_daemon_talks_to_systemd_and_stops_cleanly(tmp_path):
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(30)
    config = tmp_path / "config.toml"
    config.write_text(f'[http]\nhost = "127.0.0.1"\nport = 0\n[store]\nstate_dir = "{tmp_path}"\n')
    env = {**os.environ, "NOTIFY_SOCKET": sock_path}
    proc = subprocess.Popen([sys.executable, "-m", "appliance", "run", "--config", str(config),
                             "--admin-password", ADMIN_PASSWORD], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        messages = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
                "WATCHDOG=1" in messages and any(m.startswith("STATUS=") for m in messages)):
            messages.append(sock.recv(4096).decode())
        assert messages[0] == "READY=1"
        assert any(m.startswith("STATUS=") and "waiting" in m for m in messages)
        assert "WATCHDOG=1" in messages
        banner = next(line for line in proc.stdout if "is running" in line)
        port = int(re.search(r"127\.0\.0\.1:(\d+)", banner).group(1))
        assert Api(port).send("+36201234567", "queued while no route exists")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        rest = []
        sock.settimeout(1)
        try:
            while True:
                rest.append(sock.recv(4096).decode())
        except socket.timeout:
            pass
        assert "STOPPING=1" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
