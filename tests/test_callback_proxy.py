"""Callbacks through the environment's proxy (http_proxy, https_proxy, no_proxy), as urllib
sent them before the notifier had its own HTTP client: a box whose callbacks leave the LAN
through a proxy lost them all after that rewrite (left undone in the last note)."""

from __future__ import annotations

import base64
import socket
import threading

from appliance import notify
from appliance.model import ReportStatus
from fakes.lan import Endpoint
from test_callbacks import (RawAnswer, drain, https_server, rig,  # noqa: F401 (rig: fixture)
                            send, submit_and_report, template)


class TunnelProxy:
    """An http proxy that takes CONNECT host:port, answers 200 and pipes both ways."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connects: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            head = b""
            while b"\r\n\r\n" not in head:
                head += client.recv(4096)
            self.connects.append(head)
            host, port = head.split(b" ")[1].decode().rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.sock.close()


def test_an_http_callback_goes_through_the_proxy_with_its_login(rig):
    clock, journal, notifier = rig
    proxy = RawAnswer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    notifier.proxies = {"http": proxy.url.replace("//", "//bob:p%40ss@")}
    try:
        message_id = send(journal, template("http://receiver.invalid:8081", "r"))
        submit_and_report(journal, message_id, ReportStatus.DELIVERED, "1")
        drain(notifier)
        assert journal.pending_events() == 0
        assert len(proxy.requests) == 2                       # submitted, delivered
        for request in proxy.requests:
            assert request.startswith(b"GET http://receiver.invalid:8081/r?id=")
            assert b"\r\nHost: receiver.invalid:8081\r\n" in request
            login = base64.b64encode(b"bob:p@ss")
            assert b"\r\nProxy-Authorization: Basic " + login + b"\r\n" in request
    finally:
        notifier.stop()
        proxy.close()


def test_no_proxy_hosts_are_called_straight(rig):
    clock, journal, notifier = rig
    proxy = RawAnswer(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
    good = Endpoint()
    notifier.proxies = {"http": proxy.url, "no": "localhost,127.0.0.1"}
    try:
        message_id = send(journal, template(good.url, "r"))
        submit_and_report(journal, message_id, ReportStatus.DELIVERED, "1")
        drain(notifier)
        assert journal.pending_events() == 0
        assert len(good.calls) == 2 and proxy.requests == []
    finally:
        notifier.stop()
        proxy.close()
        good.close()


def test_an_https_callback_goes_through_the_proxys_tunnel(rig, tmp_path, monkeypatch):
    """CONNECT to the receiver, then TLS with the receiver (its certificate checked) inside
    the tunnel: the proxy sees neither the URL nor the values of the report."""
    from http.server import BaseHTTPRequestHandler
    paths: list[str] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_GET(self):
            paths.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    secure = https_server(tmp_path, monkeypatch, Receiver)
    proxy = TunnelProxy()
    clock, journal, notifier = rig
    notifier.proxies = {"https": proxy.url}
    try:
        port = secure.server_address[1]
        message_id = send(journal, template(f"https://127.0.0.1:{port}", "r"))
        submit_and_report(journal, message_id, ReportStatus.DELIVERED, "1")
        drain(notifier)
        assert journal.pending_events() == 0
        assert len(paths) == 2 and all(p.startswith("/r?id=") for p in paths)
        assert [c.split(b"\r\n")[0] for c in proxy.connects] == \
            [f"CONNECT 127.0.0.1:{port} HTTP/1.1".encode()] * 2
    finally:
        notifier.stop()
        proxy.close()
        secure.shutdown()
        secure.server_close()


def test_a_proxy_refusing_the_tunnel_fails_the_callback_which_is_kept(rig):
    clock, journal, notifier = rig
    proxy = RawAnswer(b"HTTP/1.1 403 Forbidden\r\n\r\n")
    notifier.proxies = {"https": proxy.url}
    try:
        message_id = send(journal, template("https://receiver.invalid", "r"))
        submit_and_report(journal, message_id, ReportStatus.DELIVERED, "1")
        drain(notifier)
        [failing] = notifier.status()["failing_destinations"]
        assert "refused CONNECT: HTTP 403" in failing["last_error"]
        assert journal.pending_events() == 2
    finally:
        notifier.stop()
        proxy.close()


def test_the_proxies_come_from_the_environment_and_only_then_load_urllib(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy",
                 "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert notify.environment_proxies() == {}
    monkeypatch.setenv("https_proxy", "http://proxy.lan:3128")
    monkeypatch.setenv("no_proxy", "nas.lan")
    assert notify.environment_proxies() == {"https": "http://proxy.lan:3128", "no": "nas.lan"}
