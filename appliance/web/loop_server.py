"""The event-loop HTTP front: one thread, no thread per request.

asyncio (the stdlib loop) accepts and reads; httptools parses; bottle stays the router
and every dialect's handler runs unchanged, each request in its own greenlet on the loop's
thread. When a handler waits for the journal (`GroupWriter.call` -> `suspend.wait`), its
greenlet hands the Future back here and the loop serves other connections; the writer thread
wakes the loop once per group commit and the handler resumes with its ids (or the store's
error, which it answers in its own dialect's format). So the answer leaves only after the
commit holding its rows, and the batch of a commit is whatever arrived during the previous one.

Bounded: request line + headers, body size, pipelined requests per connection, connections;
slow clients and idle keep-alive connections are closed; SIGTERM drains (in-flight requests
are answered, nothing is acknowledged without its commit, nothing new is started).
"""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import operator
import ssl
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import formatdate
from urllib.parse import unquote_to_bytes

import bottle
import greenlet
import httptools

from appliance import fd_budget, memory
from appliance.clock import SYSTEM_CLOCK, Clock
from appliance.suspend import Suspendable, after_settling
from appliance.web.https_port import HttpsPort

log = logging.getLogger("appliance.web")

# Proxy headers are not trusted (there is no proxy on an appliance); waitress cleared them too.
_UNTRUSTED = {"HTTP_FORWARDED", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST",
              "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_BY"}
# A header's name -> its environ key, or None for a header the environ leaves out. Clients send
# the same few names again and again; the cache is bounded (the names come from clients).
_ENVIRON_KEYS: dict[bytes, str | None] = {}
_MAX_ENVIRON_KEYS = 256
_UNSEEN = object()
_REASONS = {400: "Bad Request", 408: "Request Timeout", 413: "Payload Too Large",
            414: "URI Too Long", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass(frozen=True)
class Limits:
    max_body: int = 32 * 1024 * 1024       # a 20,000-message messagecount POST fits
    # request bodies held at once over all connections (received, queued or running): a
    # Pi has 512 MB-1 GB, and 768 connections at max_body each would be 24 GiB
    max_bodies_held: int = 64 * 1024 * 1024
    max_header_bytes: int = 64 * 1024      # request line and all headers together
    max_headers: int = 100
    max_pipelined: int = 16                # parsed requests waiting behind the running one
    max_connections: int = 1000
    idle_timeout: float = 60.0             # keep-alive connection with nothing to do
    request_timeout: float = 30.0          # first byte of a request to its last (slowloris)
    drain_timeout: float = 10.0            # SIGTERM: in-flight requests get this long
    # a request and its answer this large leave their freed memory in the heap's holes:
    # it is handed back to the kernel (memory.trim) once the loop has been quiet this long
    trim_after_bytes: int = 256 * 1024
    trim_delay: float = 1.0


LISTEN_QUEUE = 1024

# Request greenlets kept between requests: one per request in flight is reused; more than
# this many idle ones (after a burst on many connections) are let go.
MAX_IDLE_TASKS = 64


class _Refuse(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class _Task(greenlet.greenlet, Suspendable):
    """Runs request handlers one after another; `executor` serves suspend.offload.

    Reused from request to request (`LoopServer._idle`): a new greenlet per request cost an
    mmap and an munmap of its frame stack (16 KiB, CPython's per-greenlet data stack) and
    their page faults, every request, on the loop's thread."""

    server = None         # the LoopServer it serves (set once, when made)
    executor = None
    conn = None           # the connection of the request it serves, None while idle
    gather = None         # LoopServer.gather: writes held until the end of the iteration
    saved = None          # bottle's thread-local request/response while suspended
    reply = None          # the answer, from _serve to the loop
    waiting = None        # the Future it waits for
    # clock.monotonic() after which the wait times out, or None. The timeout sweep checks
    # it, so a wait may last up to one sweep period (idle/request timeout / 4) longer.
    deadline = None
    timeout = None        # the wait's own timeout (seconds), to extend a commit in progress
    overdue = 0           # sweeps that found its commit in progress past the deadline

    def woken(self, future) -> None:
        """The Future's done-callback, from the writer thread (a bound method: no closure
        per request). Through `server`, not `conn`: a commit that lands after its request
        timed out finds the greenlet idle (no connection) or serving another request, and
        `_resume_ready` drops it."""
        self.server._wake(self, future)


@dataclass
class _Reply:
    status: str
    headers: list
    body: bytes


_ANSWERED = object()     # what a _Task hands the loop when its reply is in `task.reply`
_PARKED = object()       # what a new _Task hands the loop when it waits for its first request


def _serve() -> None:
    """A _Task's body: answer a request, hand the reply to the loop, wait for the next one.
    The reply goes through `task.reply`, and nothing of the request stays bound while the
    greenlet waits (a 20,000-message batch's environ is tens of MiB). It starts with no
    arguments and receives each request by a switch: the arguments a greenlet is started
    with stay referenced by its run call for its whole life, and each pooled task kept its
    first request's environ for good (+22 MiB after one such batch, measured). A crash past
    bottle (which answers a handler's exception itself) is answered here, so the greenlet
    stays usable; GreenletExit (the server closing) ends it."""
    task = greenlet.getcurrent()
    parent = task.parent
    app, environ = parent.switch(_PARKED)
    while True:
        try:
            task.reply = _call_app(app, environ)
        except Exception:
            log.exception("web: request handler crashed")
            task.reply = _plain_reply(500, "internal error")
        app = environ = None
        app, environ = parent.switch(_ANSWERED)


def _call_app(app, environ) -> _Reply:
    started: list = []

    def start_response(status, headers, exc_info=None):
        started[:] = [status, headers]
        return lambda data: None       # the legacy write() callable: unused by bottle

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return _Reply(started[0], started[1], body)


# bottle keeps the current request and response in thread-locals; greenlets share the loop's
# thread, so a suspended handler's copy is saved and put back around every switch.
# Once per suspension: one attrgetter call reads the response's fields (no generator and
# getattr per field), and plain assignments put them back.
_REQUEST, _RESPONSE = bottle.request, bottle.response
_response_fields = operator.attrgetter("_status_line", "_status_code", "_cookies", "_headers",
                                       "body")


def _save_locals() -> tuple:
    return _REQUEST.environ, _response_fields(_RESPONSE)


def _restore_locals(saved: tuple) -> None:
    environ, (status_line, status_code, cookies, headers, body) = saved
    _REQUEST.environ = environ
    _RESPONSE._status_line = status_line
    _RESPONSE._status_code = status_code
    _RESPONSE._cookies = cookies
    _RESPONSE._headers = headers
    _RESPONSE.body = body


def _forget_locals() -> None:
    """A finished request's environ (with its parsed parameters: a 20,000-message batch is
    tens of MiB) and its answer are not kept until the next request binds its own."""
    _REQUEST.environ = {}
    _RESPONSE.body = ""


class _Date:
    """The Date header, formatted once a second."""

    def __init__(self):
        self._second = 0
        self._value = b""

    def header(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = f"Date: {formatdate(now, usegmt=True)}\r\n".encode()
        return self._value


class LoopServer:
    """Serves a WSGI app (bottle) on already-bound sockets from one event-loop thread."""

    def __init__(self, app, sockets, *, tls: tuple[str, str] | None = None,
                 tls_sockets: list | None = None, limits: Limits = Limits(),
                 clock: Clock = SYSTEM_CLOCK, trim=memory.trim):
        """`tls`: (cert, key) files; they serve `tls_sockets` (all of `sockets` if None)
        over HTTPS, the others over plain HTTP. `trim` returns freed heap memory to the
        kernel after large requests (tests count its calls)."""
        self.app = app
        self._trim = trim
        self._trim_timer: asyncio.TimerHandle | None = None
        self.clock = clock              # idle and slow-client timeouts (tests use a FakeClock)
        self.sockets = sockets
        self.ports = [s.getsockname()[1] for s in sockets]
        self.limits = limits
        # below the descriptor limits the modems, links and store need too (fd_budget.py)
        self.max_connections = fd_budget.connection_budget(limits.max_connections)
        self.bodies_held = 0                  # bytes, over all connections (_Connection.held)
        self._full = fd_budget.Notice(self.clock.monotonic, "evicted", "refused")
        self.draining = False
        self.in_flight = 0
        self.requests = 0
        self._ssl = _ssl_context(tls) if tls else None
        secure = sockets if tls_sockets is None else tls_sockets
        self._tls_fds = {s.fileno() for s in secure} if tls else set()
        self.tls_ports = [s.getsockname()[1] for s in secure] if tls else []
        self._connections: set[_Connection] = set()
        self._servers: list = []
        self.https_ports: list[HttpsPort] = []
        self.date_header = _Date().header     # b"Date: ...\r\n" for every reply
        self._executor: ThreadPoolExecutor | None = None
        self._ready: deque = deque()          # (task, future) settled by the writer thread
        self._waiting: set[_Task] = set()     # suspended with a deadline (swept, no timers)
        self._idle: list[_Task] = []          # request greenlets between two requests
        self._wake_scheduled = False
        self._gathered: dict = {}             # put_many -> writes this iteration held
        self._idle_event: asyncio.Event | None = None
        self._loop = _new_loop()
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="http-loop", daemon=True)

    # --- life cycle (called from other threads) ---

    def start(self) -> None:
        self._thread.start()
        self._started.wait(30)
        if self._start_error is not None:
            raise self._start_error
        # Everything made until now (modules, routes, config) lives as long as the daemon:
        # out of the collector's sight, a full collection under load scans only what requests
        # made, instead of pausing every connection for the whole heap.
        gc.freeze()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Drain: stop accepting, answer what is in flight, close the rest."""
        if self._thread.is_alive():
            done = asyncio.run_coroutine_threadsafe(self._drain(), self._loop)
            try:
                done.result(self.limits.drain_timeout + 5)
            except Exception:
                log.exception("web: draining the HTTP server failed")
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        for sock in self.sockets:
            sock.close()

    # --- the loop thread ---

    def _run(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        fd_budget.quiet_accept_errors(loop, "web", self.clock)
        try:
            loop.run_until_complete(self._listen())
        except BaseException as exc:      # a bad certificate, a port in use: start() says so
            self._start_error = exc
            self._started.set()
            return
        self._started.set()
        sweep = loop.create_task(self._sweep())
        try:
            loop.run_forever()
        except Exception:                 # the daemon's watchdog sees the dead thread
            log.exception("web: HTTP loop stopped")
        finally:
            sweep.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()
            self._idle.clear()            # ended by GreenletExit here, on their own thread

    async def _listen(self) -> None:
        self._idle_event = asyncio.Event()
        self._idle_event.set()
        for sock in self.sockets:
            # asyncio accepts up to `backlog` connections in one go before any is admitted
            # (or turned away) here: with 1024, a burst at the connection limit opened up to
            # 1024 descriptors at once and ran the process out of them (fd_budget.py). So it
            # takes fd_budget.ACCEPTS_AT_ONCE; the kernel's queue of waiting connections stays
            # long. An HTTPS port accepts by itself (https_port.py), as many at once.
            if sock.fileno() in self._tls_fds:
                server = HttpsPort(self._loop, sock, self._ssl, lambda: _Connection(self),
                                   handshake_timeout=self.limits.request_timeout,
                                   max_waiting=self.max_connections,
                                   monotonic=self.clock.monotonic)
                server.start()
                self.https_ports.append(server)
            else:
                server = await self._loop.create_server(
                    lambda: _Connection(self), sock=sock, backlog=fd_budget.ACCEPTS_AT_ONCE)
            sock.listen(LISTEN_QUEUE)
            self._servers.append(server)

    async def _sweep(self) -> None:
        """Close idle keep-alive connections and clients too slow to send their request."""
        period = max(0.05, min(self.limits.idle_timeout, self.limits.request_timeout) / 4)
        while True:
            await asyncio.sleep(period)
            self._check_timeouts()

    def _check_timeouts(self) -> None:
        now = self.clock.monotonic()
        for conn in list(self._connections):
            conn.check_timeouts(now)
        for task in [t for t in self._waiting if t.deadline <= now]:
            if task.waiting.cancel():       # withdrawn before the writer took it: not stored
                self._resume(task, task.throw, TimeoutError("the store did not answer"))
            else:                           # being committed: its real answer is coming
                if task.overdue == 0:
                    log.warning("web: a request has waited over %.0f s for a commit in"
                                " progress (a stalled disk?); it keeps waiting for it",
                                task.timeout)
                task.overdue += 1
                task.deadline = now + task.timeout

    def check_timeouts(self) -> None:
        """Run the timeout sweep now, from any thread (tests advance a FakeClock first)."""
        async def sweep():
            self._check_timeouts()
        asyncio.run_coroutine_threadsafe(sweep(), self._loop).result(10)

    async def _drain(self) -> None:
        self.draining = True
        for server in self._servers:
            server.close()
        for conn in list(self._connections):
            if not conn.busy():
                conn.close()
        try:
            await asyncio.wait_for(self._idle_event.wait(), self.limits.drain_timeout)
        except asyncio.TimeoutError:
            log.warning("web: %d requests still waiting for the store at shutdown; their "
                        "clients get no answer (nothing was acknowledged)", self.in_flight)
        for conn in list(self._connections):
            conn.abort()

    # --- running handlers ---

    def run_request(self, conn: "_Connection", environ: dict) -> None:
        task = self._idle.pop() if self._idle else self._new_task()
        task.conn = conn
        if self.in_flight == 0:
            self._idle_event.clear()
        self.in_flight += 1
        self.requests += 1
        self._step(task, task.switch, self.app, environ)

    def _new_task(self) -> _Task:
        task = _Task(_serve)
        task.server = self
        task.executor = self._executor or self._offload_pool()
        task.gather = self.gather
        task.switch()                     # parked: its first request comes by a switch too
        return task

    def _step(self, task: _Task, resume, *args) -> None:
        """Run the handler until it answers or suspends; `resume` is the greenlet's switch
        (or throw) and `args` what it hands the handler (no closure per request)."""
        try:
            outcome = resume(*args)
        except BaseException:             # _serve answers handler errors; this is a bug here
            log.exception("web: request greenlet died")
            self._finish(task, _plain_reply(500, "internal error"))
            return
        if outcome is _ANSWERED:
            reply, task.reply = task.reply, None
            self._finish(task, reply)
            return
        future, timeout = outcome
        task.saved = _save_locals()
        task.waiting = future
        if timeout is not None:           # the sweep ends the wait (no timer per request)
            task.deadline = self.clock.monotonic() + timeout
            task.timeout, task.overdue = timeout, 0
            self._waiting.add(task)
        future.add_done_callback(task.woken)

    def gather(self, put_many, item) -> None:
        """From a request greenlet: hold a write for the journal's writer until every event
        of this loop iteration has been handled, then hand them over in one `put_many`.
        One wake-up of the writer thread per iteration instead of one per request, and the
        group commit holds every request the iteration read (no timer: the writer still
        takes whatever has arrived when its previous commit ends)."""
        held = self._gathered.get(put_many)
        if held is not None:
            held.append(item)
            return
        if not self._gathered:
            self._loop.call_soon(self._hand_over_gathered)
        self._gathered[put_many] = [item]

    def _hand_over_gathered(self) -> None:
        gathered, self._gathered = self._gathered, {}
        for put_many, items in gathered.items():
            put_many(items)

    def _wake(self, task: _Task, future) -> None:
        """From the writer thread: queue the resume; one loop wake-up per group commit.
        deque.append/popleft are atomic; the flag is cleared before the queue is emptied,
        so an append after the emptying always schedules a new wake-up."""
        self._ready.append((task, future))
        if not self._wake_scheduled:
            self._wake_scheduled = True
            after_settling(self._schedule_resume)

    def _schedule_resume(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._resume_ready)
        except RuntimeError:
            if not self._loop.is_closed():
                raise
            # Shut down: the drain gave up on this request unanswered, nothing to resume.

    def _resume_ready(self) -> None:
        self._wake_scheduled = False
        ready = self._ready
        while ready:
            task, future = ready.popleft()
            if task.waiting is not future:
                continue               # it timed out already
            try:
                value = future.result()
            except BaseException as error:    # the handler's to answer (a cancel too)
                self._resume(task, task.throw, error)
            else:
                self._resume(task, task.switch, value)

    def _resume(self, task: _Task, resume, value) -> None:
        task.waiting = None
        if task.deadline is not None:
            task.deadline = None
            self._waiting.discard(task)
        _restore_locals(task.saved)
        task.saved = None
        self._step(task, resume, value)

    def _finish(self, task: _Task, reply: _Reply) -> None:
        _forget_locals()
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle_event.set()
        conn, task.conn = task.conn, None
        if not task.dead and len(self._idle) < MAX_IDLE_TASKS:
            self._idle.append(task)
        conn.reply(reply)

    def after_large(self, size: int) -> None:
        """A request and its answer of `size` bytes were served: trim the heap once the loop
        is quiet (one timer however many large requests come)."""
        if size >= self.limits.trim_after_bytes and self._trim_timer is None:
            self._trim_timer = self._loop.call_later(self.limits.trim_delay, self._trim_if_quiet)

    def _trim_if_quiet(self) -> None:
        if self.in_flight or self.bodies_held:      # still busy: the memory is in use
            self._trim_timer = self._loop.call_later(self.limits.trim_delay,
                                                     self._trim_if_quiet)
            return
        self._trim_timer = None
        took = self._trim()
        if took is not None:
            log.debug("web: heap trimmed after a large request in %.1f ms", 1000 * took)

    def _offload_pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            # one worker: offloaded calls (scrypt, 16 MiB each) run one at a time
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="http-offload")
        return self._executor

    # --- helpers for connections ---

    def admit(self) -> bool:
        """Room for one more connection: at the limit, the one idle longest between two
        requests is closed for it (a keep-alive client may be closed at any time and
        reconnects), so clients that leak idle connections cannot lock a new one out; when
        every connection has a request under way, the new one is refused."""
        if len(self._connections) < self.max_connections:
            return True
        idle = [conn for conn in self._connections if conn.idle()]
        if idle:
            min(idle, key=lambda conn: conn.last_active).close()
        said = self._full.count("evicted" if idle else "refused")
        if said is not None:
            log.warning("web: %d connections open, the most allowed: closed the longest idle"
                        " one for a new client %d times, refused a new client %d times (every"
                        " one busy) since the last line", len(self._connections),
                        said["evicted"], said["refused"])
        return bool(idle)

    def base_environ(self, conn: "_Connection") -> dict:
        return {"SCRIPT_NAME": "", "SERVER_NAME": conn.local[0], "SERVER_PORT": str(conn.local[1]),
                "REMOTE_ADDR": conn.peer[0], "REMOTE_PORT": str(conn.peer[1]),
                "wsgi.version": (1, 0), "wsgi.url_scheme": conn.scheme, "wsgi.errors": sys.stderr,
                "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False}


def _environ_key(name: bytes) -> str | None:
    """The environ key of a request header (remembered), or None if it is left out."""
    key: str | None = None
    if b"_" not in name:                          # Foo_Bar would pose as Foo-Bar (waitress too)
        key = name.decode("latin-1").upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH", "TRANSFER_ENCODING"):
            key = "HTTP_" + key
            if key in _UNTRUSTED:
                key = None
        elif key != "CONTENT_TYPE":
            key = None            # CONTENT_LENGTH is the (de-chunked) body's own length
    if len(_ENVIRON_KEYS) < _MAX_ENVIRON_KEYS:
        _ENVIRON_KEYS[name] = key
    return key


def _plain_reply(status: int, text: str) -> _Reply:
    body = f"{status} {text}\n".encode()
    return _Reply(f"{status} {_REASONS.get(status, '')}",
                  [("Content-Type", "text/plain; charset=utf-8")], body)


class _Connection(asyncio.Protocol):
    """One client connection: parse, queue (bounded), run one request at a time, reply."""

    def __init__(self, server: LoopServer):
        self.server = server
        self.limits = server.limits
        self.transport = None
        self.parser = httptools.HttpRequestParser(self)
        self.pending: deque = deque()      # complete requests waiting behind the running one
        self.running = False
        self.closing = False
        self.receiving_since: float | None = None
        self.last_active = 0.0
        self.held = 0                      # body bytes received and not yet answered
        self.refusal: _Reply | None = None  # for a request behind one still running
        self.running_size = 0              # of those, the running request's
        self._reset_request()

    # --- asyncio.Protocol ---

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.last_active = self.server.clock.monotonic()
        peer = transport.get_extra_info("peername") or ("", 0)
        local = transport.get_extra_info("sockname") or ("", 0)
        self.scheme = "https" if transport.get_extra_info("sslcontext") else "http"
        self.peer, self.local = (str(peer[0]), peer[1]), (str(local[0]), local[1])
        self.base_environ = self.server.base_environ(self)    # copied for each request
        if self.server.draining or not self.server.admit():
            transport.abort()
            return
        self.server._connections.add(self)

    def connection_lost(self, exc) -> None:
        self.closing = True
        self.pending.clear()
        self.server._connections.discard(self)
        self._release(self.held)

    def data_received(self, data: bytes) -> None:
        if self.closing or self.refusal is not None:
            return
        if self.receiving_since is None:
            self.receiving_since = self.server.clock.monotonic()
        try:
            self.parser.feed_data(data)
        except _Refuse as exc:
            self._refuse(exc.status, str(exc))
        except httptools.HttpParserUpgrade:
            self._refuse(400, "protocol upgrades are not supported")
        except httptools.HttpParserError as exc:
            cause = exc.__context__ or exc.__cause__
            if isinstance(cause, _Refuse):
                self._refuse(cause.status, str(cause))
            else:
                self._refuse(400, "malformed HTTP request")

    def pause_writing(self) -> None:       # a client that does not read its answers
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        if not self.closing:
            self.transport.resume_reading()

    # --- httptools callbacks ---

    def _reset_request(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_bytes = 0
        self.body: list[bytes] = []
        self.body_bytes = 0

    def on_message_begin(self) -> None:
        # the previous message's state was reset when it completed (or this is the first)
        if self.receiving_since is None:
            self.receiving_since = self.server.clock.monotonic()

    # The request line and the headers count against one limit (max_header_bytes).

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.header_bytes += len(url)
        if self.header_bytes > self.limits.max_header_bytes:
            raise _Refuse(414, "the request URL is too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self.headers
        headers.append((name, value))
        self.header_bytes += len(name) + len(value) + 4
        if self.header_bytes > self.limits.max_header_bytes:
            raise _Refuse(431, "request headers are too large")
        if len(headers) > self.limits.max_headers:
            raise _Refuse(431, "too many request headers")

    def on_headers_complete(self) -> None:
        length = expect = b""
        for name, value in self.headers:         # the last one of a name counts
            lname = name.lower()
            if lname == b"content-length":
                length = value.strip()
            elif lname == b"expect":
                expect = value.strip()
        if length.isdigit() and int(length) > self.limits.max_body:
            raise _Refuse(413, "the request body is too large")      # before any 100 Continue
        if length.isdigit() and not self._room_for(int(length), 0):
            raise _Refuse(503, "busy with other large requests; try again")
        if expect.lower() == b"100-continue":
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        if self.body_bytes > self.limits.max_body:
            raise _Refuse(413, "the request body is too large")
        if not self._room_for(len(body), self.body_bytes - len(body)):   # chunked: no length
            raise _Refuse(503, "busy with other large requests; try again")
        self.held += len(body)
        self.server.bodies_held += len(body)
        self.body.append(body)

    def _room_for(self, size: int, current: int) -> bool:
        """Whether `size` more body bytes fit in max_bodies_held, this request's body holding
        `current` so far. Only other requests' bodies (of other connections, or queued on
        this one) can leave no room: a request alone up to max_body always fits, so two
        large ones never wait for each other."""
        others = self.server.bodies_held - current
        return others == 0 or self.server.bodies_held + size <= self.limits.max_bodies_held

    def _release(self, size: int) -> None:
        size = min(size, self.held)
        self.held -= size
        self.server.bodies_held -= size

    def on_message_complete(self) -> None:
        environ, size = self._environ(), self.body_bytes
        self.receiving_since = None
        self._reset_request()
        self.pending.append((environ, self.parser.should_keep_alive(), size))
        if len(self.pending) > self.limits.max_pipelined:
            self.transport.pause_reading()       # resumed when the queue has room again
        self._next()

    # --- requests ---

    def _environ(self) -> dict:
        environ = self.base_environ.copy()
        url = self.url
        if not url.startswith(b"/"):              # absolute-form (a proxy-style request)
            parsed = httptools.parse_url(url)
            url = (parsed.path or b"/") + (b"?" + parsed.query if parsed.query else b"")
        path, _, query = url.partition(b"?")
        if b"%" in path:
            path = unquote_to_bytes(path)
        environ["REQUEST_METHOD"] = self.parser.get_method().decode("latin-1")
        environ["PATH_INFO"] = path.decode("latin-1")
        environ["QUERY_STRING"] = query.decode("latin-1")
        environ["SERVER_PROTOCOL"] = "HTTP/" + self.parser.get_http_version()
        for name, value in self.headers:
            key = _ENVIRON_KEYS.get(name, _UNSEEN)
            if key is _UNSEEN:
                key = _environ_key(name)
            if key is None:
                continue
            text = value.decode("latin-1").strip()
            if key in environ and key != "CONTENT_TYPE":      # repeated: joined, as in HTTP
                environ[key] += "," + text
            else:
                environ[key] = text
        body = b"".join(self.body) if self.body else b""
        environ["CONTENT_LENGTH"] = str(len(body)) if body else "0"   # chunked: de-chunked
        environ["wsgi.input"] = io.BytesIO(body)
        return environ

    def _next(self) -> None:
        if self.running or not self.pending or self.closing:
            return
        if self.server.draining:                 # not started, so not acknowledged: refuse
            self.close()
            return
        environ, keep_alive, self.running_size = self.pending.popleft()
        if len(self.pending) == self.limits.max_pipelined:
            self.transport.resume_reading()
        self.running = True
        self.keep_alive = keep_alive
        self.server.run_request(self, environ)

    def reply(self, reply: _Reply) -> None:
        self.running = False
        self.last_active = self.server.clock.monotonic()
        self._release(self.running_size)
        self.server.after_large(self.running_size + len(reply.body))
        self.running_size = 0
        if self.closing:
            return
        keep = self.keep_alive and not self.server.draining
        self.transport.write(self._head(reply, keep) + reply.body)
        if keep and self.pending:                # a pipelined request is waiting
            self._next()
        elif keep and self.refusal is not None:  # the request behind this one was refused
            refusal, self.refusal = self.refusal, None
            self.transport.write(self._head(refusal, False) + refusal.body)
            self.close()
        elif not keep:
            self.close()

    def _head(self, reply: _Reply, keep: bool) -> bytes:
        lines = [f"HTTP/1.1 {reply.status}\r\n"]
        has_length = False
        for name, value in reply.headers:
            lname = name.lower()
            if lname in ("connection", "transfer-encoding", "date", "server"):
                continue
            has_length = has_length or lname == "content-length"
            lines.append(f"{name}: {value}\r\n")
        if not has_length:
            lines.append(f"Content-Length: {len(reply.body)}\r\n")
        lines.append("Server: sms-appliance\r\n")
        if not keep:
            lines.append("Connection: close\r\n")
        elif self.parser.get_http_version() == "1.0":
            lines.append("Connection: keep-alive\r\n")
        return "".join(lines).encode("latin-1") + self.server.date_header() + b"\r\n"

    def _refuse(self, status: int, message: str) -> None:
        """A malformed or oversized request: answer it plainly and close (no body is read).
        Behind a request still running (pipelined), the refusal waits for its answer and
        those of the requests queued before it: closing at once dropped answers for
        requests already committed, and their clients sent them again."""
        log.info("web: refused a request from %s: %s", self.peer[0], message)
        reply = _plain_reply(status, message)
        if self.running:
            self.refusal = reply
            self.transport.pause_reading()
            return
        self.transport.write(self._head(reply, False) + reply.body)
        self.close()

    # --- timeouts and closing ---

    def busy(self) -> bool:
        return self.running

    def idle(self) -> bool:
        """Between two requests: nothing running, queued or half received."""
        return not (self.running or self.pending or self.closing
                    or self.receiving_since is not None)

    def check_timeouts(self, now: float) -> None:
        if self.running:
            return            # the server is working on it; not the client's fault
        if self.receiving_since is not None:
            if now - self.receiving_since > self.limits.request_timeout:
                self._refuse(408, "the request took too long to arrive")
        elif now - self.last_active > self.limits.idle_timeout:
            self.close()

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.transport.close()

    def abort(self) -> None:
        self.closing = True
        self.transport.abort()


def _ssl_context(tls: tuple[str, str]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(*tls)
    return context


def _new_loop() -> asyncio.AbstractEventLoop:
    """The stdlib loop. uvloop was measured against it (same run, 2 cores, c=8 and c=32):
    the stdlib loop accepted 7-29 % more messages per second at less CPU per message and
    ~2 MiB less RSS, so uvloop is not used (docs/architecture.md, HTTP server)."""
    return asyncio.new_event_loop()
