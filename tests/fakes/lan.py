"""A web server on the LAN side: the endpoint callbacks, webhooks and rule forwards reach."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Endpoint:
    """A LAN web server answering `status`; records method, path, headers and body."""

    def __init__(self, status: int = 200):
        self.status = status
        calls = self.calls = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self):
                length = int(self.headers.get("Content-Length") or 0)
                calls.append((self.command, self.path, dict(self.headers),
                              self.rfile.read(length)))
                self.send_response(endpoint.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _record

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
