"""The event-loop HTTP front (web/loop_server.py) over real sockets on port 0, in front of a
real daemon's bottle app and SQLite journal: keep-alive and pipelining, limits, slow and idle
clients (FakeClock), answers only after their commit, store failures in the dialect's format,
and the SIGTERM drain."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import socket
import threading
import time
import urllib.parse

import pytest

from appliance.clock import FakeClock
from appliance.web.app import make_app
from appliance.web.loop_server import Limits, LoopServer
from appliance.web.server import listen_socket
from conftest import ADMIN_PASSWORD
from test_modem_kit import wait_until


def send_query(recipient: str = "+36201234567", text: str = "hello", **extra) -> str:
    return "/api?" + urllib.parse.urlencode({
        "action": "sendmessage", "username": "admin", "password": ADMIN_PASSWORD,
        "recipient": recipient, "messagetype": "SMS:TEXT", "messagedata": text, **extra})


@pytest.fixture
def front(appliance):
    """A second loop server on the daemon's app, with small limits and a FakeClock."""
    daemon, _ = appliance
    clock = FakeClock()
    limits = Limits(max_body=4096, max_header_bytes=2048, max_headers=20, idle_timeout=30,
                    request_timeout=10, drain_timeout=5)
    server = LoopServer(make_app(daemon.services), [listen_socket("127.0.0.1", 0)],
                        limits=limits, clock=clock)
    server.start()
    yield daemon, server, clock
    server.stop()


def raw(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def message_ids(body: str) -> list[str]:
    return re.findall(r"<messageid>([^<]+)</messageid>", body)


def test_keep_alive_connection_serves_many_requests_each_durable(front):
    daemon, server, _ = front
    conn = http.client.HTTPConnection("127.0.0.1", server.ports[0], timeout=10)
    ids = []
    for i in range(3):
        conn.request("GET", send_query(text=f"keep-alive {i}"))
        answer = conn.getresponse()
        assert answer.status == 200 and answer.getheader("Connection") is None
        ids += message_ids(answer.read().decode())
    conn.close()
    assert len(set(ids)) == 3
    assert all(daemon.journal.get_message(i)["state"] == "queued" for i in ids)


def test_pipelined_requests_are_answered_in_order(front):
    _, server, _ = front
    sock = raw(server.ports[0])
    requests = b"".join(f"GET {send_query(text=f'pipe {i}', recipient=f'+3620123456{i}')}"
                        f" HTTP/1.1\r\nHost: x\r\n{'Connection: close' if i == 2 else 'X: y'}"
                        f"\r\n\r\n".encode() for i in range(3))
    sock.sendall(requests)
    answers = read_all(sock).decode()
    sock.close()
    assert answers.count("HTTP/1.1 200 OK") == 3
    assert re.findall(r"<recipient>([^<]+)</recipient>", answers) == [
        "+36201234560", "+36201234561", "+36201234562"]


def test_concurrent_clients_share_commits_and_never_get_each_others_answer(front):
    """Handlers suspended on the same group commit keep their own bottle request."""
    daemon, server, _ = front
    errors, before = [], daemon.journal.commits
    barrier = threading.Barrier(16)

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.ports[0], timeout=30)
        barrier.wait()
        for i in range(5):
            recipient = f"+3630{n:03d}{i:04d}"
            conn.request("GET", send_query(recipient=recipient, text=f"c{n} m{i}"))
            body = conn.getresponse().read().decode()
            if f"<recipient>{recipient}</recipient>" not in body or not message_ids(body):
                errors.append(body)
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == []
    assert daemon.journal.accepted >= 80
    assert daemon.journal.commits - before < 80          # the loop batches commits


def test_oversized_body_headers_and_url_are_refused_and_closed(front):
    _, server, _ = front
    cases = [
        (b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", b" 413 "),
        (b"GET /api HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n", b" 431 "),
        (b"GET /api?" + b"a" * 3000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b" 414 "),
        (b"GET /api HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(30)) + b"\r\n",
         b" 431 "),
        (b"NOT HTTP AT ALL\r\n\r\n", b" 400 "),
    ]
    for request, status in cases:
        sock = raw(server.ports[0])
        sock.sendall(request)
        answer = read_all(sock)           # the server closes: read_all returns
        sock.close()
        assert answer.startswith(b"HTTP/1.1" + status), answer[:80]
        assert b"Connection: close" in answer


def test_chunked_post_body_reaches_the_handler(front):
    daemon, server, _ = front
    body = urllib.parse.urlencode({"action": "sendmessage", "username": "admin",
                                   "password": ADMIN_PASSWORD, "recipient": "+36201234567",
                                   "messagedata": "chunked"}).encode()
    sock = raw(server.ports[0])
    sock.sendall(b"POST /api HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 b"Content-Type: application/x-www-form-urlencoded\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n"
                 + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    answer = read_all(sock).decode()
    sock.close()
    [mid] = message_ids(answer)
    assert daemon.journal.get_message(mid)["body"] == "chunked"


def test_a_slow_client_gets_408_and_an_idle_one_is_closed(front):
    _, server, clock = front
    slow = raw(server.ports[0])
    slow.sendall(b"GET /api?action=sendmessage HTTP/1.1\r\nHost: x\r\n")    # never finishes
    idle = raw(server.ports[0])
    idle.sendall(f"GET {send_query()} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert b"200 OK" in idle.recv(65536)
    server.check_timeouts()
    clock.advance(11)
    server.check_timeouts()
    assert read_all(slow).startswith(b"HTTP/1.1 408 ")
    clock.advance(20)                   # 31 s since the idle one's answer
    server.check_timeouts()
    assert read_all(idle) == b""        # closed without a word
    slow.close()
    idle.close()


def test_a_store_failure_is_answered_in_the_dialects_own_format(front):
    daemon, server, _ = front
    daemon.journal._writer.stop()          # the store is gone: commits cannot happen
    conn = http.client.HTTPConnection("127.0.0.1", server.ports[0], timeout=10)
    conn.request("GET", send_query())
    answer = conn.getresponse()
    body = answer.read().decode()
    assert answer.status == 200 and "<errorcode>" in body
    assert "not available" in body and not message_ids(body)
    conn.request("GET", send_query(responseformat="urlencoded"))
    body = conn.getresponse().read().decode()
    assert body.startswith("errorcode=") and "not+available" in body
    conn.close()


def test_a_commit_its_disk_could_not_sync_is_answered_as_a_store_failure(front):
    """fdatasync failing (EIO: a dying SD card) after COMMIT: the client is told the store
    failed, in the dialect's format and without a message id, not "accepted". The row is
    committed and may be sent: a retry may send it twice, never an acknowledged loss."""
    import errno
    daemon, server, _ = front

    def failing(fd):
        raise OSError(errno.EIO, "Input/output error")
    sync = daemon.journal._writer._sync
    sync._fdatasync = failing
    conn = http.client.HTTPConnection("127.0.0.1", server.ports[0], timeout=10)
    try:
        conn.request("GET", send_query(text="not synced"))
        answer = conn.getresponse()
        body = answer.read().decode()
        assert answer.status == 200 and "<errorcode>" in body
        assert "not available" in body and not message_ids(body)
        sync._fdatasync = os.fdatasync      # the disk is back: accepted again
        conn.request("GET", send_query(text="synced"))
        [mid] = message_ids(conn.getresponse().read().decode())
    finally:
        sync._fdatasync = os.fdatasync
        conn.close()
    assert daemon.journal.get_message(mid)["state"] == "queued"


def test_sigterm_drain_answers_in_flight_requests_after_their_commit(front):
    daemon, server, _ = front
    hold, holding = threading.Event(), threading.Event()

    def stall(conn):                       # keeps the writer busy: the next commit waits
        holding.set()
        hold.wait(10)
    stalled = daemon.journal._writer.submit(stall)
    holding.wait(10)
    answers: list[bytes] = []
    sock = raw(server.ports[0])
    sock.sendall(f"GET {send_query(text='in flight')} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    reader = threading.Thread(target=lambda: answers.append(read_all(sock)))
    reader.start()
    while server.in_flight == 0:           # the handler is suspended on its commit
        threading.Event().wait(0.01)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    while not server.draining:
        threading.Event().wait(0.01)
    with pytest.raises(OSError):           # no new connections while draining
        socket.create_connection(("127.0.0.1", server.ports[0]), timeout=2).close()
    assert answers == []                   # nothing acknowledged before the commit
    hold.set()
    stalled.result(10)
    stopper.join(20)
    reader.join(10)
    sock.close()
    [answer] = answers
    assert answer.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in answer
    [mid] = message_ids(answer.decode())
    assert daemon.journal.get_message(mid)["body"] == "in flight"
    assert not server.alive()


def test_scrypt_runs_off_the_loop_once_for_a_burst_of_fresh_connections(front, monkeypatch):
    """A cache miss is verified on the offload thread, one at a time; the burst's other
    requests with the same credentials find the cache filled."""
    from appliance import auth
    daemon, server, _ = front
    daemon.accounts._cache = auth.CredentialCache()          # as after a restart
    calls, real = [], auth.verify_password
    monkeypatch.setattr(auth, "verify_password", lambda password, stored: (
        calls.append(threading.current_thread().name), real(password, stored))[1])
    barrier = threading.Barrier(8)
    bodies = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.ports[0], timeout=30)
        barrier.wait()
        conn.request("GET", send_query())
        bodies.append(conn.getresponse().read().decode())
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(bodies) == 8 and all(message_ids(b) for b in bodies)
    assert calls and all(name.startswith("http-offload") for name in calls)
    assert len(calls) == 1


def test_expect_100_continue_is_granted_only_to_a_body_that_fits(front):
    daemon, server, _ = front
    big = raw(server.ports[0])
    big.sendall(b"POST /api HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                b"Content-Length: 9999\r\n\r\n")
    answer = read_all(big)
    big.close()
    assert answer.startswith(b"HTTP/1.1 413 ") and b"100 Continue" not in answer
    body = urllib.parse.urlencode({"action": "sendmessage", "username": "admin",
                                   "password": ADMIN_PASSWORD, "recipient": "+36201234567",
                                   "messagedata": "after continue"}).encode()
    small = raw(server.ports[0])
    small.sendall(b"POST /api HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\n"
                  b"Content-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
    assert small.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    small.sendall(body)
    answer = read_all(small).decode()
    small.close()
    [mid] = message_ids(answer)
    assert daemon.journal.get_message(mid)["body"] == "after continue"


@contextlib.contextmanager
def writer_held(daemon):
    """The journal's writer thread is busy inside a write until the block ends; whatever
    is submitted meanwhile waits for its commit."""
    gate, entered = threading.Event(), threading.Event()

    def hold(conn):
        entered.set()
        gate.wait(30)

    held = daemon.journal._writer.submit(hold)
    assert entered.wait(10)
    try:
        yield
    finally:
        gate.set()
        held.result(30)


def test_a_request_waiting_too_long_for_its_commit_is_answered_busy_by_the_sweep(front):
    """No timer per request: the timeout sweep ends a store wait past its deadline (FakeClock),
    and the answer is the dialect's own error."""
    daemon, server, clock = front
    with writer_held(daemon):
        sock = raw(server.ports[0])
        sock.sendall(f"GET {send_query(text='stuck')} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        wait_until(lambda: server._waiting, what="the handler suspended on its commit")
        server.check_timeouts()                       # not yet due
        assert server._waiting
        clock.advance(61)
        server.check_timeouts()
        answer = sock.recv(65536).decode()
        assert answer.startswith("HTTP/1.1 200 ") and "<errorcode>8</errorcode>" in answer
        assert "busy" in answer and not server._waiting
        sock.close()
    # told "busy; retry", the client must not find it sent: the write was withdrawn
    daemon.journal._write(lambda conn: None)
    assert daemon.journal.query("SELECT count(*) FROM messages WHERE body='stuck'")[0][0] == 0


def test_a_request_whose_commit_is_in_progress_at_its_deadline_gets_the_commit_answer(front):
    """Found by a helper with fsfreeze: a request past its deadline was answered "busy;
    retry" while its write was being committed, and the message then left anyway. Now the
    sweep withdraws only a write the writer has not started; one in progress is waited for
    and answered as committed."""
    daemon, server, clock = front
    writer = daemon.journal._writer
    gate, inside = threading.Event(), threading.Event()
    run_alone = writer._run_alone

    def slow(conn, fn):           # the request's own write, taken, held inside its commit
        inside.set()
        gate.wait(30)
        return run_alone(conn, fn)
    writer._run_alone = slow
    try:
        sock = raw(server.ports[0])
        sock.sendall(f"GET {send_query(text='slow disk')} HTTP/1.1\r\nHost: x\r\n\r\n"
                     .encode())
        assert inside.wait(10)
        clock.advance(61)
        server.check_timeouts()
        assert server._waiting                        # still waiting: not answered busy
        clock.advance(61)
        server.check_timeouts()
        assert server._waiting
    finally:
        writer._run_alone = run_alone
        gate.set()
    answer = sock.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 200 ") and "<statuscode>0</statuscode>" in answer
    [mid] = message_ids(answer)
    assert daemon.journal.get_message(mid)["body"] == "slow disk"
    sock.close()


def test_requests_read_in_one_loop_iteration_share_one_group_commit(front):
    """Eight requests that are all readable when the loop looks are handled in one iteration:
    their writes reach the writer in one hand-over (one wake-up of its thread) and are
    committed by one fsync."""
    daemon, server, _ = front
    warm = raw(server.ports[0])          # the password's scrypt check, done once beforehand
    warm.sendall(f"GET {send_query()} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                 .encode())
    assert message_ids(read_all(warm).decode())
    writer = daemon.journal._writer
    sizes: list[int] = []
    apply = writer._apply
    writer._apply = lambda batch: (sizes.append(len(batch)), apply(batch))[1]
    handed: list[int] = []             # writes per hand-over to the writer's queue
    submit = writer.submit
    writer.submit = lambda fn: (handed.append(1), submit(fn))[1]
    put_many = getattr(writer, "put_many", None)
    if put_many is not None:
        writer.put_many = lambda items: (handed.append(len(items)), put_many(items))[1]
    socks = [raw(server.ports[0]) for _ in range(8)]
    deadline = time.monotonic() + 10
    while len(server._connections) < 8 and time.monotonic() < deadline:   # all accepted
        time.sleep(0.01)
    held, release = threading.Event(), threading.Event()
    server._loop.call_soon_threadsafe(lambda: (held.set(), release.wait(10)))
    assert held.wait(10)               # the loop thread is busy: nothing is read meanwhile
    for i, sock in enumerate(socks):
        sock.sendall(f"GET {send_query(text=f'together {i}')} HTTP/1.1\r\n"
                     "Host: x\r\nConnection: close\r\n\r\n".encode())
    release.set()
    bodies = [read_all(sock).decode() for sock in socks]
    assert all(len(message_ids(body)) == 1 for body in bodies)
    assert 8 in handed, handed
    assert 8 in sizes, sizes


def test_request_greenlets_are_reused_and_outlive_a_crash_past_bottle():
    """One greenlet serves a keep-alive client's requests one after another, across a
    suspension on a Future and a handler error bottle lets through (answered 500 by the
    loop server, the greenlet kept)."""
    from concurrent.futures import Future

    import bottle
    import greenlet

    from appliance import suspend

    seen = []
    app = bottle.Bottle()
    app.config["catchall"] = False            # /boom's error leaves bottle

    @app.get("/<name>")
    def answer(name):
        seen.append(greenlet.getcurrent())
        if name == "boom":
            raise RuntimeError("a bug past bottle")
        if name == "wait":
            future = Future()
            threading.Timer(0.05, future.set_result, ("later",)).start()
            return suspend.wait(future)
        return "now"

    server = LoopServer(app, [listen_socket("127.0.0.1", 0)])
    server.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.ports[0], timeout=10)
        answers = []
        for path in ("/a", "/wait", "/boom", "/b", "/wait"):
            conn.request("GET", path)
            answer = conn.getresponse()
            answers.append((answer.status, answer.read()))
        conn.close()
    finally:
        server.stop()
    assert answers == [(200, b"now"), (200, b"later"), (500, b"500 internal error\n"),
                       (200, b"now"), (200, b"later")]
    assert all(g is seen[0] for g in seen), "a new greenlet per request"


def test_no_answered_request_stays_in_ram_with_its_greenlet():
    """Found measuring a 20,000-message batch: RSS stayed 40 MiB above idle after it. A
    pooled greenlet was started with its first request's (app, environ) as arguments, and
    a greenlet's run call keeps those for its whole life: every task kept the first
    request it served, parsed form and body included."""
    import gc

    import bottle

    app = bottle.Bottle()

    @app.post("/<name>")
    def answer(name):
        return str(len(bottle.request.forms))

    server = LoopServer(app, [listen_socket("127.0.0.1", 0)])
    server.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.ports[0], timeout=10)
        body = urllib.parse.urlencode({f"key{i}": "value" for i in range(1000)})
        for path in ("/first-request", "/second-request"):
            conn.request("POST", path, body=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            answer = conn.getresponse()
            assert (answer.status, answer.read()) == (200, b"1000")
        conn.close()

        def kept() -> list[str]:       # the loop may still be returning from the last one
            gc.collect()
            return [o["PATH_INFO"] for o in gc.get_objects() if isinstance(o, dict)
                    and str(o.get("PATH_INFO", "")).endswith("-request")]
        wait_until(lambda: kept() == [], timeout=5, what="no request kept")
    finally:
        server.stop()


def test_a_commit_that_lands_after_its_request_timed_out_is_dropped_quietly(front, caplog):
    """The request was answered busy and its greenlet went back to the pool; when the held
    commit lands later, its wake-up finds nothing to resume and logs no error, and the
    greenlet serves the next request."""
    daemon, server, clock = front
    conn = http.client.HTTPConnection("127.0.0.1", server.ports[0], timeout=10)
    with writer_held(daemon):
        conn.request("GET", send_query(text="late commit"))
        wait_until(lambda: server._waiting, what="the handler suspended on its commit")
        clock.advance(61)
        server.check_timeouts()
        answer = conn.getresponse().read().decode()
        assert "<errorcode>8</errorcode>" in answer
    # a write queued after the late one: once it is settled, so is the late commit
    daemon.journal._writer.submit(lambda conn: None).result(30)
    conn.request("GET", send_query(text="after the late commit"))
    answer = conn.getresponse()
    assert answer.status == 200 and len(message_ids(answer.read().decode())) == 1
    conn.close()
    failed = [r for r in caplog.records if r.levelname == "ERROR" and "callback" in r.getMessage()]
    assert failed == []


def test_a_wait_that_ends_after_shutdown_logs_no_error(caplog):
    """SIGTERM's drain gave up on a request still waiting (nothing was acknowledged); when
    its Future settles after the loop closed, there is nothing to resume and nothing to
    report as an error."""
    from concurrent.futures import Future

    import bottle

    from appliance import suspend

    future, entered = Future(), threading.Event()
    app = bottle.Bottle()

    @app.get("/wait")
    def wait():
        entered.set()
        return suspend.wait(future)

    server = LoopServer(app, [listen_socket("127.0.0.1", 0)], limits=Limits(drain_timeout=0.1))
    server.start()
    sock = raw(server.ports[0])
    sock.sendall(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
    assert entered.wait(10)
    server.stop()
    future.set_result("too late")
    assert read_all(sock) == b""                      # never acknowledged
    sock.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= 40]
    assert errors == []


def test_a_bad_request_pipelined_behind_a_running_one_leaves_that_ones_answer(front):
    """The refusal closed the connection at once and dropped the answer of the request
    before it, already committed: its client sent the message again."""
    daemon, server, _ = front
    sock = raw(server.ports[0])
    with writer_held(daemon):               # the first stays running, waiting for its commit
        sock.sendall(f"GET {send_query(text='committed')} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        wait_until(lambda: server.in_flight == 1, what="the first running")
        sock.sendall(b"GARBAGE / HTTP/9.9\r\n\r\n")
        time.sleep(0.2)                     # the parser has refused it meanwhile
    answers = read_all(sock)
    assert answers.startswith(b"HTTP/1.1 200 OK") and b"<messageid>" in answers
    assert answers.count(b"HTTP/1.1 400 Bad Request") == 1
    sock.close()


def test_the_heap_is_trimmed_once_the_loop_is_quiet_after_a_large_request():
    """A large request's freed memory goes back to the kernel (memory.trim) once nothing is
    in flight; small requests never cost a trim, and a request still running puts it off."""
    from concurrent.futures import Future

    import bottle

    from appliance import suspend

    trims, held = [], Future()
    app = bottle.Bottle()

    @app.get("/small")
    def small():
        return "ok"

    @app.post("/large")
    def large():
        return "x" * len(bottle.request.body.read())

    @app.get("/wait")
    def wait():
        return suspend.wait(held)

    server = LoopServer(app, [listen_socket("127.0.0.1", 0)],
                        limits=Limits(trim_after_bytes=64 * 1024, trim_delay=0.01),
                        trim=lambda: trims.append(server.in_flight) or 0.0)
    server.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.ports[0], timeout=10)
        for _ in range(20):
            conn.request("GET", "/small")
            assert conn.getresponse().read() == b"ok"
        assert server._trim_timer is None and trims == []     # set before an answer leaves

        waiting = http.client.HTTPConnection("127.0.0.1", server.ports[0], timeout=10)
        waiting.request("GET", "/wait")
        wait_until(lambda: server.in_flight == 1, timeout=5, what="a request in flight")
        conn.request("POST", "/large", body=b"y" * 40_000)
        assert len(conn.getresponse().read()) == 40_000      # 80 kB in and out: large
        first = server._trim_timer
        assert first is not None
        wait_until(lambda: server._trim_timer is not first, timeout=5, what="put off")
        assert trims == []                                    # busy: not trimmed yet

        held.set_result("done")
        assert waiting.getresponse().read() == b"done"
        wait_until(lambda: trims == [0], timeout=5, what="trimmed once, nothing in flight")
        assert server._trim_timer is None
        conn.close()
        waiting.close()
    finally:
        server.stop()
