"""An HTTPS port (web/https_port.py) over real sockets: TLS clients are served, a client
speaking plain HTTP gets a plain 400 that says so (it got an empty reply before), a client
that says nothing is closed, and a flood of silent connections is bounded."""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import time

import bottle
import pytest

from appliance.web.loop_server import Limits, LoopServer
from appliance.web.server import listen_socket
from test_modem_kit import wait_until


def https_server(https_files, sock=None, **limits) -> LoopServer:
    app = bottle.Bottle()

    @app.get("/hello")
    def hello():
        return "hello over " + bottle.request.urlparts.scheme

    cert, key = https_files
    server = LoopServer(app, [sock or listen_socket("127.0.0.1", 0)], tls=(str(cert), str(key)),
                        limits=Limits(**limits))
    server.start()
    return server


def client_context(https_files) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(https_files[0]))
    context.check_hostname = False
    return context


def plain_answer(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
        return b"".join(chunks)


@pytest.fixture
def tls_front(https_files):
    server = https_server(https_files, request_timeout=0.5)
    yield server, server.ports[0], client_context(https_files)
    server.stop()


def test_plain_http_to_the_https_port_gets_a_400_that_says_so(tls_front, caplog):
    server, port, _ = tls_front
    caplog.set_level(logging.WARNING, "appliance.web")
    for _ in range(3):
        answer = plain_answer(port, b"GET /hello HTTP/1.1\r\nHost: box\r\n\r\n")
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert b"Connection: close" in head
        assert body.decode() == (f"400 This port speaks HTTPS: use https://<this box>:{port}/"
                                 f" (plain HTTP has its own port)\n")
    lines = [r.getMessage() for r in caplog.records if "plain HTTP" in r.getMessage()]
    assert lines == [f"web: 1 plain HTTP requests came to the HTTPS port {port} since the last"
                     f" line (the last from 127.0.0.1); answered 400"], "once a minute"


def test_a_plain_post_with_a_body_still_gets_its_answer(tls_front):
    """The body is read and dropped before the close: closing a socket with unread bytes
    resets the connection, and the client could lose the 400."""
    _, port, _ = tls_front
    body = b"x" * 200_000
    answer = plain_answer(port, b"POST /api HTTP/1.1\r\nHost: box\r\nContent-Length: %d\r\n\r\n"
                          % len(body) + body)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_tls_clients_are_served_with_keep_alive_beside_plain_ones(tls_front):
    _, port, context = tls_front
    plain_answer(port, b"GET / HTTP/1.0\r\n\r\n")
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    for _ in range(2):
        conn.request("GET", "/hello")
        answer = conn.getresponse()
        assert (answer.status, answer.read()) == (200, b"hello over https")
    conn.close()


def test_a_client_that_says_nothing_is_closed_without_a_word(tls_front, caplog):
    _, port, _ = tls_front
    caplog.set_level(logging.WARNING, "appliance.web")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        started = time.monotonic()
        assert sock.recv(100) == b""                  # closed by the server, nothing said
        assert time.monotonic() - started < 8
    assert not [r for r in caplog.records if "HTTPS port" in r.getMessage()]


def test_silent_connections_beyond_the_connection_limit_are_closed_at_once(https_files, caplog):
    """Accepted connections waiting for their first byte hold descriptors: a flood of them
    is bounded by the connection limit, and a TLS client still gets in once they are gone."""
    caplog.set_level(logging.WARNING, "appliance.web")
    server = https_server(https_files, max_connections=2, request_timeout=30)
    port = server.ports[0]
    try:
        silent = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
        [https] = server.https_ports
        wait_until(lambda: https.waiting == 2, timeout=5, what="both accepted")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as third:
            assert third.recv(100) == b""             # closed at once, not after 30 s
        assert any("closed unread" in r.getMessage() for r in caplog.records)
        for sock in silent:
            sock.close()
        wait_until(lambda: https.waiting == 0, timeout=5, what="the two seen gone")
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10,
                                           context=client_context(https_files))
        conn.request("GET", "/hello")
        assert conn.getresponse().read() == b"hello over https"
        conn.close()
    finally:
        server.stop()


def test_stopping_with_a_silent_connection_and_a_tls_one_is_clean(https_files, caplog):
    caplog.set_level(logging.DEBUG, "asyncio")
    server = https_server(https_files, request_timeout=30)
    port = server.ports[0]
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10,
                                       context=client_context(https_files))
    conn.request("GET", "/hello")
    assert conn.getresponse().read() == b"hello over https"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as silent:
        [https] = server.https_ports
        wait_until(lambda: https.waiting == 1, timeout=5, what="the silent one accepted")
        server.stop()
        assert silent.recv(100) == b""
    conn.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


CLIENTS = r"""
import socket, sys, threading
sys.stdin.readline()                        # the server's process is out of descriptors
answers = [None] * 3
def ask(i):
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        answers[i] = sock.recv(100)[:24]
threads = [threading.Thread(target=ask, args=(i,)) for i in range(3)]
for t in threads: t.start()
for t in threads: t.join()
print(answers)
"""


def test_out_of_descriptors_the_https_port_says_so_once_and_accepts_again(https_files, caplog):
    import os
    import resource
    import subprocess
    import sys
    caplog.set_level(logging.WARNING, "appliance.web")
    server = https_server(https_files, request_timeout=30)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    clients = subprocess.Popen([sys.executable, "-c", CLIENTS, str(server.ports[0])],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        # no descriptor left (listdir counts its own, closed after): the first accept fails
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) - 1, hard))
        clients.stdin.write("go\n")
        clients.stdin.flush()
        wait_until(lambda: any("cannot accept" in r.getMessage() for r in caplog.records),
                   timeout=10, what="the accept error said")
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        answers, _ = clients.communicate(timeout=30)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        clients.kill()
        server.stop()
    assert answers.strip() == str([b"HTTP/1.1 400 Bad Request"] * 3)
    assert len([r for r in caplog.records if "cannot accept" in r.getMessage()]) == 1


def test_a_burst_of_connections_is_bounded_and_the_loop_keeps_serving(https_files):
    """sock_accept returns at once while connections wait, so a burst was accepted whole
    before any was sorted: the bound on silent connections did not count it."""
    listening = listen_socket("127.0.0.1", 0)
    port = listening.getsockname()[1]
    # the whole burst waits in the kernel's queue before the server takes the first one
    burst = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(200)]
    server = https_server(https_files, listening, max_connections=20, request_timeout=30)
    [https] = server.https_ports
    try:
        closed = set()

        def turned_away() -> int:
            for sock in burst:
                if sock not in closed:
                    sock.setblocking(False)
                    try:
                        if sock.recv(1) == b"":
                            closed.add(sock)
                    except BlockingIOError:
                        pass
            return len(closed)
        wait_until(lambda: turned_away() == 180, timeout=10, what="the rest turned away")
        assert https.waiting == 20
    finally:
        for sock in burst:
            sock.close()
        server.stop()
