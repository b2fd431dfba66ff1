"""An in-process client for handler tests: the same calls as conftest.Api, answered by
calling the daemon's bottle app with a WSGI environ (no socket, no server thread).

What it cannot show, the real-socket tests keep: keep-alive, request size limits, slow
clients, TLS, redirects followed by a real HTTP client.
"""

from __future__ import annotations

import base64
import io
import urllib.parse

from conftest import Api


class WsgiApi(Api):
    """conftest.Api over `app(environ, start_response)`; `remote_addr` is the caller."""

    def __init__(self, app, username: str = "admin", password: str | None = None,
                 remote_addr: str = "127.0.0.1"):
        super().__init__(0, username, *([password] if password is not None else []))
        self.app = app
        self.remote_addr = remote_addr
        self.base = "http://127.0.0.1"     # only its path part is used below

    def as_user(self, username: str, password: str) -> "WsgiApi":
        return WsgiApi(self.app, username, password, self.remote_addr)

    def _open(self, request) -> tuple[int, str]:
        status, _headers, body = self.call(request.get_method(), request.full_url,
                                           request.data, dict(request.header_items()))
        return status, body.decode("utf-8")

    def call(self, method: str, url: str, body: bytes | None = None,
             headers: dict | None = None) -> tuple[int, dict, bytes]:
        """One request: (status, headers with lower-case names, body bytes)."""
        parts = urllib.parse.urlsplit(url)
        body = body or b""
        environ = {
            "REQUEST_METHOD": method, "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote(parts.path or "/", "latin-1"),
            "QUERY_STRING": parts.query, "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": self.remote_addr,
            "CONTENT_LENGTH": str(len(body)), "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(), "wsgi.multithread": False,
            "wsgi.multiprocess": False, "wsgi.run_once": False,
        }
        for name, value in (headers or {}).items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = value
            else:
                environ["HTTP_" + key] = value
        answer: dict = {}

        def start_response(status, response_headers, exc_info=None):
            answer["status"] = int(status.split(" ", 1)[0])
            answer["headers"] = {k.lower(): v for k, v in response_headers}

        chunks = self.app(environ, start_response)
        try:
            data = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        return answer["status"], answer["headers"], data


def basic_auth(username: str, password: str) -> dict:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}
