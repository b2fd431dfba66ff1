"""HttpServerChannel: a provider or LAN system delivers SMS and reports here (seed: HTTP server).

It listens at BASEURL (its own host and port; the seed's default is 127.0.0.1:9400). A GET or
POST with the PARAMNAME* parameters (`originator`, `recipient`, `msg`, `msgtype`, `senttime`,
`msgid`, `subject` by default) is an inbound SMS: it lands in the inbox like one a modem
received, fires the inbound callbacks, and is answered with RESPONSETEMPLATE (`$msgid` is the
inbox id; an SMS sent again, with the same msgid (or without one the same senttime), is
stored once and gets the first answer's id). A request whose message type is a report (`SMS:REPORT`, `DLR`, ...) or
that has a status but no text is a delivery report for the part REPORTCONNECTION submitted
under `msgid`.

A thread per request, at most MAX_CLIENTS at once (a request waits for its durable write,
so a sender that gets the answer knows the message is kept; one that sent nothing holds back
no other).
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import socketserver
import sys
import threading
import urllib.parse
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

from appliance.clock import SYSTEM_CLOCK, Clock
from appliance.gsm import alphabet
from appliance.model import InboundFragment, OutPart, Report, ReportStatus
from appliance.provider import templates
from appliance.provider.reports import status_of
from appliance.provider.settings import HTTPServerConfig

log = logging.getLogger("appliance.provider")

REPORT_TYPES = {"sms:report", "sms:deliveryreport", "sms:dlr", "dlr", "report",
                "deliveryreport"}
TEXT_TYPES = {"", "sms:text", "sms", "text"}
MAX_BODY = 64 * 1024
TOKEN_PARAM = "token"          # carries `accesstoken` when one is set
REQUEST_SECONDS = 10.0
BIND_RETRY = 5.0
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y.%m.%d %H:%M:%S",
                "%y%m%d%H%M%S")


class RequestError(ValueError):
    """A request we cannot take: answered 400 with this text."""


class HttpServerChannel:
    """A `model.Channel` that only receives: free_slots() is always 0."""

    def __init__(self, conn: HTTPServerConfig, sink, *, clock: Clock = SYSTEM_CLOCK):
        self.name = conn.name
        self.conn = conn
        self.sink = sink
        self.clock = clock
        self.state = "stopped"
        self.last_error = ""
        self.heartbeat = clock.monotonic()
        self.counts = dict.fromkeys(("inbound", "reports", "refused"), 0)
        url = urllib.parse.urlsplit(conn.baseurl)
        # an explicit :0 is any free port (tests); `or 80` made it port 80
        self._address = (url.hostname or "127.0.0.1", 80 if url.port is None else url.port)
        self._path = url.path.rstrip("/")
        self._server: HTTPServer | None = None
        self.port = self._address[1]
        self._networks = [ipaddress.ip_network(n, strict=False) for n in conn.ipallow]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the Channel interface ---

    def start(self) -> None:
        self.state = "starting"
        if self.conn.open_intake():
            log.warning("%s: %s", self.name, self.conn.open_intake())
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name=f"httpserver-{self.name}")
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
        if self._server:
            self._server.server_close()
        self.state = "stopped"

    def free_slots(self) -> int:
        return 0

    def submit(self, part: OutPart) -> None:
        self.sink.part_failed(part.id, self.name, "receive_only",
                              "an HTTPServer connection does not send", True)

    def alive(self) -> bool:
        fresh = self.clock.monotonic() - self.heartbeat < 30.0
        return bool(self._thread and self._thread.is_alive() and fresh)

    def status(self) -> dict:
        return {"name": self.name, "type": "HTTPServer", "state": self.state,
                "listen": f"{self._address[0]}:{self.port}",
                "last_error": self.last_error, "counts": dict(self.counts)}

    def _serve(self) -> None:
        while not self._stop.is_set():
            self.heartbeat = self.clock.monotonic()
            if self._server is None:
                self._listen()
                continue
            try:
                self._server.handle_request()
            except Exception:  # a broken request must not end the listener
                log.exception("%s: request failed", self.name)

    def _listen(self) -> None:
        """Bind BASEURL's address; a port in use is retried, it does not stop the daemon."""
        try:
            self._server = _Server(self._address, _handler_for(self), name=self.name)
        except OSError as exc:
            reason = f"cannot listen on {self._address[0]}:{self._address[1]}: {exc.strerror}"
            if reason != self.last_error:
                log.error("%s: %s; trying again every %gs", self.name, reason, BIND_RETRY)
            self.last_error, self.state = reason, "down"
            self.clock.wait(self._stop, BIND_RETRY)
            return
        self.port = self._server.server_address[1]
        self.state, self.last_error = "listening", ""
        log.info("%s: taking SMS at http://%s:%s%s/", self.name, self._address[0], self.port,
                 self._path)

    # --- requests ---

    def take(self, path: str, params: dict[str, str], caller: str = "127.0.0.1") -> str:
        """One request's parameters: store the SMS or apply the report; the answer text."""
        if self._path and not (path == self._path or path.startswith(self._path + "/")):
            raise LookupError(path)
        if not self._allowed(caller):
            raise PermissionError(f"{caller} may not call this connection (ipallow)")
        if self.conn.accesstoken and not secrets.compare_digest(
                params.get(TOKEN_PARAM, "").encode(), self.conn.accesstoken.encode()):
            raise PermissionError("wrong or missing token")
        if not self.conn.receive:
            raise PermissionError("receiving is switched off on this connection")
        kind = params.get(self.conn.paramnamemessagetype.lower(), "").strip().lower()
        has_text = self.conn.paramnamemessagedata.lower() in params
        if kind in REPORT_TYPES or (not has_text and self._status_param() in params):
            return self._report(params)
        return self._inbound(params, kind)

    def _allowed(self, caller: str) -> bool:
        if not self._networks:
            return True
        address = ipaddress.ip_address(caller)
        return any(address in network for network in self._networks)

    def _inbound(self, params: dict[str, str], kind: str) -> str:
        sender = self._param(params, "originator", required=True)
        recipient = self._param(params, "recipient") or self.conn.phonenumber
        text = self._param(params, "messagedata", required=True, strip=False)
        fragment = InboundFragment(
            connection=self.name, sender=sender, recipient=recipient,
            sent_at=_parse_time(self._param(params, "senttime")),
            received_at=self.clock.now(), **_body(kind, text))
        provider_id = self._param(params, "messageid")
        inbox_id, repeat = self.sink.inbound_once(fragment, provider_id)
        if repeat:      # the provider lost our answer: the same answer again, stored once
            log.info("%s: SMS from %s delivered again (msgid %r); answered with its id %s",
                     self.name, _mask(sender), provider_id[:40], inbox_id)
        else:
            self.counts["inbound"] += 1
            log.debug("%s: SMS received from %s", self.name, _mask(sender))
        return self._answer(inbox_id or provider_id, sender, recipient)

    def _report(self, params: dict[str, str]) -> str:
        if not self.conn.deliveryreport:
            raise PermissionError("delivery reports are switched off on this connection")
        if not self.conn.reportconnection:
            raise RequestError("this connection takes no delivery reports "
                               "(set reportconnection)")
        reference = self._param(params, "messageid", required=True)
        word = (params.get(self._status_param(), "")
                or self._param(params, "messagedata")).strip()
        status = status_of(word)
        self.sink.report(Report(self.conn.reportconnection, reference, status,
                                code=0 if status != ReportStatus.FAILED else 1,
                                detail=word[:100]))
        self.counts["reports"] += 1
        return self._answer(reference, "", "")

    def _answer(self, msgid: str, originator: str, recipient: str) -> str:
        fields = {"msgid": msgid or "", "messageid": msgid or "", "originator": originator,
                  "recipient": recipient}
        return templates.fill(self.conn.responsetemplate, fields)

    def _param(self, params: dict[str, str], field: str, *, required: bool = False,
               strip: bool = True) -> str:
        name = getattr(self.conn, f"paramname{field}").lower()
        value = params.get(name)
        if value is None or (required and not value.strip()):
            if required:
                raise RequestError(f"missing parameter {name}")
            return ""
        return value.strip() if strip else value

    def _status_param(self) -> str:
        return self.conn.paramnamestatus.lower()


def _body(kind: str, text: str) -> dict:
    if kind in TEXT_TYPES:
        encoding = "gsm7" if alphabet.is_gsm7(text) else "ucs2"
        return {"encoding": encoding, "text": text}
    if kind == "sms:binary":
        try:
            return {"encoding": "8bit", "text": None, "data": bytes.fromhex(text.strip())}
        except ValueError:
            raise RequestError("SMS:BINARY data must be hexadecimal") from None
    raise RequestError(f"unsupported message type {kind[:40]!r} (SMS:TEXT, SMS:BINARY or a "
                       "report)")


def _parse_time(value: str) -> float | None:
    if not value:
        return None
    for pattern in TIME_FORMATS:
        try:
            return datetime.strptime(value, pattern).timestamp()
        except ValueError:
            continue
    raise RequestError(f"senttime {value[:40]!r} is not yyyy-MM-dd HH:mm:ss")


def _mask(number: str) -> str:
    return number[:-4] + "****" if len(number) > 4 else "****"


MAX_CLIENTS = 16                   # requests read at once; more are refused at once


class _Server(socketserver.ThreadingMixIn, HTTPServer):
    """One thread per connection, at most MAX_CLIENTS: one at a time, a client that opened
    a connection and sent nothing held every inbound SMS back by REQUEST_SECONDS."""
    timeout = 0.5                  # handle_request returns so the thread sees stop
    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False

    def __init__(self, *args, name: str = "", **kwargs):
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        self.name = name
        super().__init__(*args, **kwargs)

    def handle_error(self, request, client_address) -> None:
        """socketserver printed a traceback to stderr, past the log, for every client that
        hung up before its answer (a broken pipe): that is one DEBUG line; anything else one
        ERROR line with its traceback."""
        exc = sys.exc_info()[1]
        peer = client_address[0] if client_address else "?"
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("%s: %s went away before its answer (%s)", self.name, peer,
                      type(exc).__name__)
        else:
            log.exception("%s: a request from %s failed", self.name, peer)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def server_bind(self):
        # HTTPServer.server_bind asks DNS for the host's name: it can hang on a Pi offline
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def _handler_for(channel: HttpServerChannel):
    class Handler(BaseHTTPRequestHandler):
        timeout = REQUEST_SECONDS
        server_version = "sms-appliance"
        # a request the stdlib refuses (bad request line, unknown method, headers too long)
        # is answered in this connection's own format, not the stdlib's HTML page
        error_message_format = "error: %(message)s"
        error_content_type = "text/plain; charset=utf-8"
        # until a request's version is read the stdlib takes it for HTTP/0.9 and refuses it
        # with a bare body, no status line: no sender speaks 0.9
        default_request_version = "HTTP/1.0"

        def parse_request(self) -> bool:
            """A request line without a version (0.9 to the stdlib) is one cut short: 400."""
            if not super().parse_request():
                return False
            if len(self.requestline.split()) == 2:
                self.send_error(400, "the request line has no HTTP version")
                return False
            return True

        def do_GET(self):
            self._take(urllib.parse.urlsplit(self.path).query)

        def do_POST(self):
            try:
                body = self._body()
            except ValueError as exc:
                self._send(400, f"error: {exc}")
                return
            if body is None:
                self._send(413, "request too large")
                return
            body = body.decode("latin-1")
            query = urllib.parse.urlsplit(self.path).query
            self._take(f"{query}&{body}" if query else body)

        def _body(self) -> bytes | None:
            """The request body (None: over MAX_BODY), by Content-Length or chunked (a
            client without a length sends it chunked: it was read as empty)."""
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return _read_chunked(self.rfile)
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                raise ValueError("bad Content-Length") from None
            return None if length > MAX_BODY else self.rfile.read(length)

        def _take(self, query: str) -> None:
            path = urllib.parse.urlsplit(self.path).path.rstrip("/")
            try:
                params = _params(query)
                answer = channel.take(path, params, self.client_address[0])
            except LookupError:
                self._send(404, "not found")
            except PermissionError as exc:
                log.info("%s: refused: %s", channel.name, exc)
                self._send(403, f"error: {exc}")
            except RequestError as exc:
                channel.counts["refused"] += 1
                log.info("%s: request refused: %s", channel.name, exc)
                self._send(400, f"error: {exc}")
            except Exception:  # the store refused: the sender must try again
                log.exception("%s: could not keep the request", channel.name)
                self._send(503, "error: not stored, try again")
            else:
                # kept: a client gone meanwhile is the server's handle_error (one DEBUG
                # line), not "could not keep" (it was kept, and sent again is stored once)
                self._send(200, answer)

        def _send(self, status: int, text: str) -> None:
            data = text.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:      # our own log lines say what matters
            pass
    return Handler


def _read_chunked(stream) -> bytes | None:
    """A chunked body (RFC 9112 §7.1), None when it grows past MAX_BODY."""
    body = b""
    while True:
        line = stream.readline(1024)
        try:
            size = int(line.split(b";")[0].strip() or b"x", 16)
        except ValueError:
            raise ValueError("bad chunked body") from None
        if size == 0:
            while stream.readline(1024) not in (b"\r\n", b"\n", b""):
                pass                   # trailer fields, then the blank line
            return body
        if len(body) + size > MAX_BODY:
            return None
        body += stream.read(size)
        stream.readline(1024)          # the CRLF after the chunk


def _params(query: str) -> dict[str, str]:
    """Lower-case names; UTF-8 values, refused (not replaced) when they are not UTF-8."""
    params = {}
    for name, value in urllib.parse.parse_qsl(query.encode("latin-1").decode("latin-1"),
                                              keep_blank_values=True, encoding="latin-1"):
        try:
            params[name.strip().lower()] = value.encode("latin-1").decode("utf-8")
        except UnicodeError:
            raise RequestError(f"parameter {name[:40]} is not valid UTF-8") from None
    return params
