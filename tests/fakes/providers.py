"""A web SMS provider and an e-mail-to-SMS gateway on 127.0.0.1, port 0, for the provider
channels' tests. Both record what they were sent and answer what the test tells them.

`start(listen=False)` binds the port without listening: connections are refused (the
provider is down) until `listen()`, and the port stays the same.
"""

from __future__ import annotations

import email
import email.policy
import socketserver
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn

import pytest

from conftest import Api


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class _ThreadingHTTP(ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _BoundServer:
    """Start, listen and stop for a fake whose `server` is bound but not yet listening."""

    server: socketserver.BaseServer
    _thread: threading.Thread | None = None

    def start(self, listen: bool = True):
        if listen:
            self.listen()
        return self

    def listen(self) -> None:
        self.server.server_activate()
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread:
            self.server.shutdown()
        self.server.server_close()


class WebProvider(_BoundServer):
    """Answers each request with `answer(request) -> (status, body[, headers])`; keeps every
    request as a dict: method, path, query (dict), body (dict for forms), headers, version.
    A request through it as a proxy has the absolute URL in `target`."""

    def __init__(self, answer=None, port: int = 0):
        self.requests: list[dict] = []
        self.answer = answer or (lambda request: (200, "OK"))
        self.delay = 0.0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8")
                url = urllib.parse.urlsplit(self.path)
                request = {"method": self.command, "path": url.path, "target": self.path,
                           "query": dict(urllib.parse.parse_qsl(url.query)),
                           "raw_query": url.query, "raw_body": raw,
                           "body": dict(urllib.parse.parse_qsl(raw)),
                           "headers": dict(self.headers), "version": self.request_version}
                provider.requests.append(request)
                if provider.delay:
                    time.sleep(provider.delay)
                status, text, *extra = provider.answer(request)
                data = text.encode("utf-8")
                try:
                    self.send_response(status)
                    for name, value in (extra[0] if extra else {}).items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

            do_GET = do_POST = _handle

            def log_message(self, *args):
                pass

        self.server = _ThreadingHTTP(("127.0.0.1", port), Handler, bind_and_activate=False)
        self.server.server_bind()
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"


class SmtpSink(_BoundServer):
    """A small SMTP server: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT. Keeps each
    mail as an `email.message.EmailMessage` with its envelope; `refuse` maps a recipient
    address to the (code, text) answered to its RCPT."""

    def __init__(self):
        self.mails: list[tuple[str, list[str], object]] = []
        self.logins: list[str] = []
        self.refuse: dict[str, tuple[int, str]] = {}
        self.sessions = 0
        self.idle_close: float | None = None    # close a session idle this long (seconds)
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                sink.sessions += 1
                self.request.settimeout(sink.idle_close)
                self.reply("220 sink ESMTP")
                sender, recipients = "", []
                while True:
                    try:
                        line = self.rfile.readline()
                    except TimeoutError:        # idle too long: closed, as many servers do
                        return
                    if not line:
                        return
                    verb, _, arg = line.decode("utf-8").rstrip("\r\n").partition(" ")
                    verb = verb.upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250-sink\r\n250-AUTH PLAIN\r\n250 8BITMIME")
                    elif verb == "AUTH":
                        sink.logins.append(arg)
                        self.reply("235 ok")
                    elif verb == "MAIL":
                        sender, recipients = arg.split(":", 1)[1].strip(" <>"), []
                        self.reply("250 ok")
                    elif verb == "RCPT":
                        address = arg.split(":", 1)[1].strip(" <>")
                        refused = sink.refuse.get(address)
                        if refused:
                            self.reply(f"{refused[0]} {refused[1]}")
                        else:
                            recipients.append(address)
                            self.reply("250 ok")
                    elif verb == "DATA":
                        self.reply("354 go on")
                        data = self.read_data()
                        sink.mails.append((sender, recipients, email.message_from_bytes(
                            data, policy=email.policy.default)))
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:                       # RSET, NOOP
                        self.reply("250 ok")

            def read_data(self) -> bytes:
                lines = []
                while True:
                    line = self.rfile.readline()
                    if line in (b".\r\n", b".\n", b""):
                        return b"".join(lines)
                    lines.append(line[1:] if line.startswith(b"..") else line)

            def reply(self, text: str) -> None:
                self.wfile.write(text.encode() + b"\r\n")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.server.server_bind()
        self.port = self.server.server_address[1]


@pytest.fixture
def start(make_config, run_daemon):
    """`start(*connections)` runs the daemon with these connections: (daemon, Api)."""
    def run(*connections):
        daemon = run_daemon(make_config(connections=tuple(connections)))
        return daemon, Api(daemon.port)
    return run
