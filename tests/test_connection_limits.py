"""Clients that open connections and keep them cannot take the daemon's file descriptors:
the HTTP front holds at most what the descriptor limits leave after the modems, links and
store (fd_budget.py), closes the longest idle keep-alive connection for a new client, and
refuses one only when every connection has a request under way; SMTP answers 421 past its
session limit; running out anyway is one log line a minute, not a traceback per try.

Real sockets on port 0; the flood runs the daemon as a process under systemd's default
descriptor limit (1024), as on the box."""

from __future__ import annotations

import asyncio
import logging
import re
import resource
import socket
import smtplib
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance import fd_budget
from appliance.clock import FakeClock
from appliance.integrations import settings
from appliance.web.app import make_app
from appliance.web.loop_server import Limits, LoopServer
from appliance.web.server import listen_socket
from conftest import ADMIN_PASSWORD, Api
from test_loop_server import read_all, send_query, writer_held
from test_modem_kit import wait_until

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def small_front(appliance):
    """A loop server on the daemon's app allowing 4 connections, on a FakeClock."""
    daemon, _ = appliance
    clock = FakeClock()
    server = LoopServer(make_app(daemon.services), [listen_socket("127.0.0.1", 0)],
                        limits=Limits(max_connections=4, idle_timeout=600), clock=clock)
    server.start()
    yield server, clock
    server.stop()


def _request(sock: socket.socket, target: str) -> bytes:
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: appliance\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(65536)
        assert data, "closed without an answer"
        head += data
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    body = head.split(b"\r\n\r\n", 1)[1]
    while len(body) < length:
        body += sock.recv(65536)
    return head.split(b"\r\n", 1)[0]


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_at_the_limit_a_new_client_closes_the_longest_idle_connection(small_front, caplog):
    server, clock = small_front
    port = server.ports[0]
    clients = []
    for i in range(4):                      # four keep-alive clients, each idle after a request
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        assert _request(sock, send_query(text=f"idle {i}")).endswith(b"200 OK")
        clients.append(sock)
        clock.advance(1.0)
    with caplog.at_level(logging.WARNING, logger="appliance.web"):
        newcomer = socket.create_connection(("127.0.0.1", port), timeout=10)
        assert _request(newcomer, send_query(text="the alert that must get in")) \
            .endswith(b"200 OK")
    assert _closed_by_server(clients[0])            # the one idle longest
    for sock in clients[1:]:                        # the others still serve
        assert _request(sock, send_query(text="still here")).endswith(b"200 OK")
    lines = [r.getMessage() for r in caplog.records if "most allowed" in r.getMessage()]
    assert len(lines) == 1 and "closed the longest idle one for a new client 1 times" in lines[0]
    for sock in clients + [newcomer]:
        sock.close()


def test_at_the_limit_with_every_connection_mid_request_a_new_client_is_refused(small_front):
    server, _ = small_front
    port = server.ports[0]
    halfway = []
    for _ in range(4):                      # each has sent part of its request line
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /api?action=sendmessage")
        halfway.append(sock)
    wait_until(lambda: len(server._connections) == 4, what="four connections")
    wait_until(lambda: all(c.receiving_since is not None for c in server._connections),
               what="four requests under way")
    refused = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert _closed_by_server(refused)
    halfway[0].sendall(b"&username=admin HTTP/1.1\r\nHost: appliance\r\n\r\n")   # not cut off
    assert halfway[0].recv(12) == b"HTTP/1.1 200"
    for sock in halfway + [refused]:
        sock.close()


@pytest.fixture
def soft_descriptor_limit():
    """Sets this process's soft RLIMIT_NOFILE for the test (restored after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def set_soft(value: int) -> None:
        if hard != resource.RLIM_INFINITY and value > hard:
            pytest.skip(f"the hard descriptor limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (value, hard))
    yield set_soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_connection_budget_stays_below_both_descriptor_limits(soft_descriptor_limit):
    soft_descriptor_limit(512)
    assert fd_budget.connection_budget(1000) == 512 - fd_budget.RESERVED
    soft_descriptor_limit(260)
    assert fd_budget.connection_budget(1000) == fd_budget.MIN_CONNECTIONS
    soft_descriptor_limit(1024)             # systemd's default
    assert fd_budget.connection_budget(1000) == 1024 - fd_budget.RESERVED
    soft_descriptor_limit(4096)             # raised by hand: select() still stops at 1024
    assert fd_budget.connection_budget(1000) == fd_budget.FD_SETSIZE - fd_budget.RESERVED
    assert fd_budget.connection_budget(100) == 100      # a limit set lower by hand is kept


def test_running_out_of_descriptors_is_one_line_a_minute(caplog):
    clock = FakeClock()
    loop = asyncio.new_event_loop()
    try:
        fd_budget.quiet_accept_errors(loop, "web", clock)
        error = OSError(24, "Too many open files")
        with caplog.at_level(logging.WARNING):
            for _ in range(1024):           # what asyncio reports in one second
                loop.call_exception_handler({"message": fd_budget.ACCEPT_ERROR,
                                             "exception": error})
            clock.advance(fd_budget.NOTICE_EVERY)
            loop.call_exception_handler({"message": fd_budget.ACCEPT_ERROR,
                                         "exception": error})
            loop.call_exception_handler({"message": "something else entirely"})
    finally:
        loop.close()
    lines = [r for r in caplog.records if "cannot accept" in r.getMessage()]
    assert [r.getMessage().split("(")[1].split(" ")[0] for r in lines] == ["1", "1024"]
    assert all(r.exc_info is None for r in lines)           # no traceback
    assert any("something else entirely" in r.getMessage() for r in caplog.records)


def test_a_flood_of_idle_connections_under_the_default_limit_locks_no_alert_out(
        tmp_path, soft_descriptor_limit):
    """The defect: 1,100 idle connections ran the daemon out of descriptors; a new alert
    waited 10 s unanswered while asyncio logged 1,024 tracebacks a second (190 MB in 40 s)."""
    soft_descriptor_limit(1400)             # this test's own 1,100 sockets
    config = tmp_path / "config.toml"
    config.write_text(f'[http]\nhost = "127.0.0.1"\nport = 0\n[store]\nstate_dir = "{tmp_path}"\n')
    log_path = tmp_path / "daemon.log"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", "run", "--config", str(config),
             "--admin-password", ADMIN_PASSWORD], stdout=log_file, stderr=subprocess.STDOUT,
            cwd=ROOT, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE,
                                                            (1024, 1024)))
    flood: list[socket.socket] = []
    try:
        wait_until(lambda: "is running" in log_path.read_text(), timeout=30, what="start")
        port = int(re.search(r"127\.0\.0\.1:(\d+)", log_path.read_text()).group(1))
        for _ in range(1100):
            flood.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        wait_until(lambda: "most allowed" in log_path.read_text(), what="the limit reached")
        started = time.monotonic()
        assert Api(port).send("+36201234567", "UPS on battery")
        assert time.monotonic() - started < 5
        open_now = len(list(Path(f"/proc/{proc.pid}/fd").iterdir()))
        assert open_now < fd_budget.FD_SETSIZE - fd_budget.RESERVED // 2, open_now
        text = log_path.read_text()
        assert "Too many open files" not in text
        assert "Traceback" not in text
    finally:
        for sock in flood:
            sock.close()
        proc.terminate()
        proc.wait(30)


@pytest.fixture
def mail_daemon(make_config, run_daemon):
    config = make_config(integrations=settings.parse({"smtp": {
        "listen": "127.0.0.1:0", "domain": "sms.lan", "allow_senders": ["*@ups.lan"]}}))
    return run_daemon(config)


def _banner(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(1024)
        if not chunk:
            break
        data += chunk
    return data


def test_smtp_past_its_session_limit_answers_421_and_takes_mail_again_after(mail_daemon,
                                                                             caplog):
    port = mail_daemon.mail.port
    sessions = []
    for _ in range(fd_budget.MAX_SMTP_SESSIONS):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        assert _banner(sock).startswith(b"220 ")
        sessions.append(sock)
    with caplog.at_level(logging.WARNING, logger="appliance.integrations"):
        busy = socket.create_connection(("127.0.0.1", port), timeout=10)
        assert _banner(busy).startswith(b"421 4.3.2")
        assert _closed_by_server(busy)
    assert sum("refused 1 new ones with 421" in r.getMessage() for r in caplog.records) == 1
    sessions.pop().close()
    wait_until(lambda: len(mail_daemon.mail._sessions) < fd_budget.MAX_SMTP_SESSIONS,
               what="a session closed")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("alarm@ups.lan", ["+36201234567@sms.lan"],
                        b"Subject: UPS on battery\r\n\r\nInput power lost.\r\n")
    for sock in sessions:
        sock.close()


@pytest.fixture
def body_budget_front(appliance):
    """Bodies up to 4,000 bytes each, 6,000 held at once over all connections."""
    daemon, _ = appliance
    server = LoopServer(make_app(daemon.services), [listen_socket("127.0.0.1", 0)],
                        limits=Limits(max_body=4000, max_bodies_held=6000))
    server.start()
    yield server
    server.stop()


def _post_head(length: int) -> bytes:
    return (f"POST /api HTTP/1.1\r\nHost: appliance\r\nContent-Length: {length}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n\r\n").encode()


def _form(length: int, text: str) -> bytes:
    form = (f"action=sendmessage&username=admin&password={ADMIN_PASSWORD}"
            f"&recipient=%2B36201234567&messagetype=SMS:TEXT&messagedata={text}&pad=").encode()
    return form + b"x" * (length - len(form))


def test_request_bodies_held_at_once_are_bounded_and_a_lone_large_one_always_fits(
        body_budget_front):
    server = body_budget_front
    port = server.ports[0]
    first = socket.create_connection(("127.0.0.1", port), timeout=10)
    first.sendall(_post_head(4000) + _form(4000, "first")[:3500])      # held, not finished
    wait_until(lambda: server.bodies_held == 3500, what="the first body held")
    second = socket.create_connection(("127.0.0.1", port), timeout=10)
    second.sendall(_post_head(4000))            # 3,500 + 4,000 > 6,000: refused at once
    answer = read_all(second)                   # to the end: the server closes
    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable")
    assert b"busy with other large requests" in answer
    chunked = socket.create_connection(("127.0.0.1", port), timeout=10)
    chunked.sendall(b"POST /api HTTP/1.1\r\nHost: appliance\r\nTransfer-Encoding: chunked\r\n"
                    b"\r\n" + b"bb8\r\n" + _form(3000, "chunked") + b"\r\n")  # no length ahead
    assert read_all(chunked).startswith(b"HTTP/1.1 503 Service Unavailable")
    wait_until(lambda: server.bodies_held == 3500, what="only the first body held")
    first.sendall(_form(4000, "first")[3500:])
    assert first.recv(64).startswith(b"HTTP/1.1 200 OK")
    wait_until(lambda: server.bodies_held == 0, what="the first body released")
    again = socket.create_connection(("127.0.0.1", port), timeout=10)
    again.sendall(_post_head(4000) + _form(4000, "second"))     # alone again: it fits
    assert again.recv(64).startswith(b"HTTP/1.1 200 OK")
    for sock in (first, second, chunked, again):
        sock.close()
    wait_until(lambda: server.bodies_held == 0, what="nothing held after the clients left")


def test_bodies_pipelined_on_one_connection_count_against_the_bound_too(
        appliance, body_budget_front):
    """A request alone always fits; a second one queued behind it on the same connection is
    another request, not a free ride (16 pipelined bodies of max_body each)."""
    daemon, _ = appliance
    server = body_budget_front
    sock = socket.create_connection(("127.0.0.1", server.ports[0]), timeout=10)
    with writer_held(daemon):               # the first stays running, waiting for its commit
        sock.sendall(_post_head(4000) + _form(4000, "first"))
        wait_until(lambda: server.bodies_held == 4000, what="the first body held")
        sock.sendall(_post_head(4000) + _form(4000, "second"))
        time.sleep(0.2)                     # nothing to wait for: the 503 needs the writer
    answers = read_all(sock)
    assert answers.startswith(b"HTTP/1.1 200 OK")           # the first, after its commit
    assert b"HTTP/1.1 503 Service Unavailable" in answers  # the second, refused
    sock.close()
    wait_until(lambda: server.bodies_held == 0, what="nothing held")
