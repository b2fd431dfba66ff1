"""The production WSGI server under bottle: waitress, a pool of worker threads.

Chosen over the stdlib's threading wsgiref server by bench/ingest.py (see docs/architecture.md
for the figures): waitress parses HTTP in its own event loop thread and keeps connections
alive, so the CPU left for our handlers is larger. Both are kept so the bench can compare.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import ssl
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from appliance.web.listen import listen_socket  # noqa: F401  (tests and benches import it here)

log = logging.getLogger("appliance.web")


class HttpServer:
    """Serves a WSGI app on already-bound sockets from a background thread."""

    def __init__(self, app, sockets: list[socket.socket], *, threads: int = 16,
                 engine: str = "waitress", tls: tuple[str, str] | None = None):
        self.sockets = sockets
        self.ports = [s.getsockname()[1] for s in sockets]
        self._engine = engine if not tls else "wsgiref"
        self._tls = tls
        self._server = self._build(app, threads)
        self._thread = threading.Thread(target=self._serve, name=f"http-{self._engine}",
                                        daemon=True)

    def _build(self, app, threads: int):
        if self._engine == "waitress":
            import waitress
            return waitress.create_server(app, sockets=self.sockets, threads=threads,
                                          connection_limit=1000, channel_timeout=60,
                                          ident="sms-appliance", clear_untrusted_proxy_headers=True)
        return _ThreadingWsgi(app, self.sockets[0], self._tls)

    def start(self) -> None:
        self._thread.start()

    def _serve(self) -> None:
        try:
            self._server.run() if self._engine == "waitress" else self._server.serve_forever()
        except Exception:  # the daemon's watchdog sees the dead thread
            log.exception("web: HTTP server stopped")

    def _close_in_loop(self) -> None:
        """Close the sockets from waitress's own loop thread (through its trigger), so the
        loop ends at once instead of after its select timeout and never polls a closed fd."""
        server = self._server
        trigger = getattr(server, "trigger", None)
        if trigger is None:       # MultiSocketServer: the trigger sits in the shared map
            trigger = next((d for d in getattr(server, "map", {}).values()
                            if type(d).__name__ == "trigger"), None)
        if trigger is None or not self._thread.is_alive():
            server.close()
            return
        try:
            trigger.pull_trigger(server.close)
        except OSError:
            server.close()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        if self._engine == "waitress":
            # Let running requests finish before the loop's trigger pipe is closed.
            self._server.task_dispatcher.shutdown(cancel_pending=False, timeout=5)
            self._close_in_loop()
        else:
            self._server.shutdown()
            self._server.server_close()
        self._thread.join(10)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):   # access logs are not events; keep the journal quiet
        pass


class _ThreadedWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


def _ThreadingWsgi(app, sock: socket.socket, tls):
    """The stdlib alternative (and the HTTPS path): one thread per connection."""
    host, port = sock.getsockname()[:2]
    sock.close()
    server = make_server(host, port, app, server_class=_ThreadedWSGIServer,
                         handler_class=_QuietHandler)
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    return server
