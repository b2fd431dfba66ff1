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


def _notices(sock, until, timeout: float = 60.0) -> list[str]:
    got, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline and not until(got):
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            pass
    return got


def _notify_socket(tmp_path, timeout: float = 1.0) -> tuple[socket.socket, str]:
    """A NOTIFY_SOCKET as systemd offers one: a datagram socket the daemon writes to."""
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(timeout)
    return sock, sock_path


def _start_daemon(config, sock_path: str, log) -> subprocess.Popen:
    """`sms-appliance run` as systemd starts it, its output in `log`."""
    return subprocess.Popen([sys.executable, "-m", "appliance", "run", "--config", str(config),
                             "--admin-password", ADMIN_PASSWORD],
                            env={**os.environ, "NOTIFY_SOCKET": sock_path},
                            stdout=log, stderr=subprocess.STDOUT,
                            cwd=Path(__file__).resolve().parents[1])


def test_sighup_restarts_in_place_with_the_config_read_again(tmp_path):
    """Found by a helper: SIGHUP (an operator's "reload") killed the daemon mid-send, with
    no clean stop, and systemd took it for a clean exit and left the gateway down. Now it
    stops cleanly and starts again in the same process with the file read again; a file
    with a problem is refused and the running daemon stays."""
    sock, sock_path = _notify_socket(tmp_path)
    port = _free_port()
    config = tmp_path / "config.toml"
    base = f'[http]\nhost = "127.0.0.1"\nport = {port}\n[store]\nstate_dir = "{tmp_path}"\n'
    config.write_text(base)
    log = open(tmp_path / "daemon.log", "w")
    proc = _start_daemon(config, sock_path, log)
    try:
        assert "READY=1" in _notices(sock, lambda got: "READY=1" in got)
        message_id = Api(port).send("+36201234567", "queued across the reload")
        config.write_text(base + '[users.shop]\npassword = "shop-password-1"\n')
        proc.send_signal(signal.SIGHUP)
        got = _notices(sock, lambda got: "READY=1" in got)
        assert got.index("RELOADING=1") < got.index("READY=1") and "STOPPING=1" not in got
        assert proc.poll() is None                                # the same process
        assert Api(port).state(message_id) == 0                   # still queued
        assert Api(port, "shop", "shop-password-1").send("+36201234567", "from the new user")

        # two reloads in a row (a handler and a hand): the second comes while the new
        # process starts; it killed it (SIGHUP's default action) before
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        proc.send_signal(signal.SIGHUP)
        # a daemon up again within the 0.3 s takes the second as a reload of its own: wait
        # for it to have handled both and to be ready after the last (waiting for the first
        # READY only, the test asked the daemon that the second reload then stopped)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
                _ready_after_hangups(tmp_path / "daemon.log", 3) and _answers(port)):
            time.sleep(0.05)
        assert proc.poll() is None and Api(port).state(message_id) == 0

        busy = socket.socket()                    # a port another program holds: refused
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        config.write_text(base.replace(f"port = {port}", f"port = {busy.getsockname()[1]}"))
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while "cannot listen on" not in (tmp_path / "daemon.log").read_text() \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        busy.close()
        assert proc.poll() is None and Api(port).state(message_id) == 0

        config.write_text(base + "[users.shop]\npasword = 1\n")   # a typo: refused
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while "users.shop" not in (tmp_path / "daemon.log").read_text() \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "not restarting" in (tmp_path / "daemon.log").read_text().split("users.shop")[0]
        assert Api(port).state(message_id) == 0                   # the running one stays
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        _clean_up(proc, sock, log)


def _clean_up(proc, sock, log) -> None:
    if proc.poll() is None:
        proc.kill()
    sock.close()
    log.close()


def _ready_after_hangups(log_path: Path, count: int) -> bool:
    """The daemon logged `count` SIGHUPs (each is a line, whether it came while running or
    during a start-up) and said it was ready after the last one."""
    text = log_path.read_text()
    lines = [i for i, line in enumerate(text.splitlines())
             if "SIGHUP: restarting" in line or "SIGHUP came during start-up" in line]
    return len(lines) >= count and "daemon: ready at" in "\n".join(
        text.splitlines()[lines[-1]:])


def _answers(port: int) -> bool:
    try:
        return Api(port).get("/status")[0] == 200
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_sighup_during_start_up_is_held_then_acted_on(tmp_path):
    """Found by a helper: SIGHUP's default action ended the daemon until `run` installed its
    handler (after the config was read and the state opened), so a `systemctl reload` right
    after a start killed it. Now `run` holds SIGHUP from its first import and restarts with
    the configuration read again before starting. The config is a FIFO at first: the daemon
    waits in its first read while the signal comes; a file with a new user replaces it."""
    sock, sock_path = _notify_socket(tmp_path)
    port = _free_port()
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    base = f'[http]\nhost = "127.0.0.1"\nport = {port}\n[store]\nstate_dir = "{tmp_path}"\n'
    newer = base + '[users.shop]\npassword = "shop-password-1"\n'
    log = open(tmp_path / "daemon.log", "w")
    proc = _start_daemon(fifo, sock_path, log)
    try:
        opened = os.open(fifo, os.O_WRONLY)    # blocks until the daemon opens its config
        proc.send_signal(signal.SIGHUP)        # ... and comes while it reads it
        with os.fdopen(opened, "w") as pipe:
            pipe.write(base)
            (tmp_path / "newer.toml").write_text(newer)
            os.replace(tmp_path / "newer.toml", fifo)    # what any later read finds
        got = _notices(sock, lambda got: "READY=1" in got or proc.poll() is not None)
        assert proc.poll() is None, f"the daemon ended ({proc.returncode})"
        assert "READY=1" in got                                   # the same process
        assert "SIGHUP came during start-up" in (tmp_path / "daemon.log").read_text()
        assert Api(port, "shop", "shop-password-1").send("+36201234567", "the new config")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        _clean_up(proc, sock, log)


def test_a_sighup_while_stopping_does_not_turn_the_stop_into_a_restart(make_config,
                                                                        run_daemon, caplog):
    """Found by a helper: SIGTERM, then a SIGHUP while the daemon stopped its channels (a
    reload racing `systemctl stop`), and the daemon exec'd itself again instead of ending;
    systemd waited for its kill timeout. A stop under way ignores SIGHUP."""
    caplog.set_level("INFO", "appliance.daemon")
    daemon = run_daemon(make_config())
    daemon.request_stop()                       # SIGTERM's handler
    daemon.request_restart()                    # SIGHUP's
    assert not daemon.restart_requested
    assert "SIGHUP ignored: stopping" in caplog.text
