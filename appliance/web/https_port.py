"""Accepting on an HTTPS port, where a client that speaks plain HTTP gets a plain answer.

asyncio's TLS server treats `GET / HTTP/1.1` as a failed handshake: the client sees the
connection closed with no reply, and the log says nothing (asyncio logs an SSLError in debug
mode only). A UPS or a script pointed at http://box:9508/ looked dead. So this port accepts
by itself, peeks at the first byte before anything owns the socket (0x16 starts every TLS
handshake), hands TLS clients to asyncio with the context, and answers anyone else
`400 This port speaks HTTPS`, as nginx does, with one log line a minute.

The peek must come before a transport owns the socket: the loop refuses a second reader on
a transport's descriptor, and bytes a transport has read cannot be given to `start_tls`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl

from appliance import fd_budget

log = logging.getLogger("appliance.web")

TLS_HANDSHAKE = 0x16                   # the first byte of every TLS (and SSL 3) ClientHello
ACCEPT_RETRY_DELAY = 1.0               # out of descriptors: asyncio's own delay
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_UNREAD_LIMIT = 64 * 1024              # of a plain request, read and dropped before closing


def plain_http_answer(port: int) -> bytes:
    body = (f"400 This port speaks HTTPS: use https://<this box>:{port}/ "
            f"(plain HTTP has its own port)\n").encode()
    return (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)) + body


class HttpsPort:
    """Accepts on one listening socket; `protocol_factory` serves each TLS connection."""

    def __init__(self, loop, sock: socket.socket, context: ssl.SSLContext, protocol_factory,
                 *, handshake_timeout: float, max_waiting: int, monotonic):
        self._loop = loop
        self._sock = sock
        self._context = context
        self._factory = protocol_factory
        self._timeout = handshake_timeout
        self._max_waiting = max_waiting     # accepted, first byte not yet seen
        self._waiting: set[socket.socket] = set()
        self._sorting: set[asyncio.Task] = set()   # the loop keeps only weak references
        self._plain = fd_budget.Notice(monotonic, "plain", "refused")
        self._port = sock.getsockname()[1]
        self._task: asyncio.Task | None = None

    @property
    def waiting(self) -> int:
        """Connections accepted whose first byte has not come yet."""
        return len(self._waiting)

    def start(self) -> None:
        self._sock.setblocking(False)
        self._task = self._loop.create_task(self._accept_forever())

    def close(self) -> None:
        """Stops accepting (SIGTERM); connections already handed over drain with the rest."""
        for task in [self._task, *self._sorting]:
            if task is not None:
                task.cancel()
        for conn in list(self._waiting):    # a task cancelled before it ran closes nothing
            conn.close()

    async def _accept_forever(self) -> None:
        accepted = 0
        while True:
            accepted += 1
            if accepted % fd_budget.ACCEPTS_AT_ONCE == 0:
                # sock_accept returns without yielding while connections wait: a burst
                # would hold the loop, and every other connection, until the queue is empty
                await asyncio.sleep(0)
            try:
                conn, _ = await self._loop.sock_accept(self._sock)
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:    # said once a minute (fd_budget.py)
                    self._loop.call_exception_handler({
                        "message": fd_budget.ACCEPT_ERROR, "exception": exc,
                        "socket": self._sock})
                    await asyncio.sleep(ACCEPT_RETRY_DELAY)
                continue                              # ECONNABORTED and the like: next one
            if len(self._waiting) >= self._max_waiting:
                self._say("refused", None)
                conn.close()
                continue
            self._waiting.add(conn)             # now: the bound counts this burst too
            task = self._loop.create_task(self._sort(conn))
            self._sorting.add(task)
            task.add_done_callback(self._sorting.discard)

    async def _sort(self, conn: socket.socket) -> None:
        """TLS to the server's protocol; plain HTTP to its answer; silence to the bin."""
        conn.setblocking(False)
        try:
            try:
                first = await asyncio.wait_for(self._peek(conn), self._timeout)
            except (OSError, asyncio.TimeoutError):
                first = b""
            finally:
                self._waiting.discard(conn)
            if first and first[0] == TLS_HANDSHAKE:
                await self._hand_over(conn)
            elif first:
                await self._answer_plain(conn)
            else:
                conn.close()
        except asyncio.CancelledError:      # shutting down
            conn.close()
            raise

    async def _peek(self, conn: socket.socket) -> bytes:
        readable = self._loop.create_future()
        fd = conn.fileno()                  # -1 once a stop closed the socket
        self._loop.add_reader(fd, readable.set_result, None)
        try:
            await readable
        finally:
            self._loop.remove_reader(fd)
        return conn.recv(1, socket.MSG_PEEK)

    async def _hand_over(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(
                self._factory, conn, ssl=self._context, ssl_handshake_timeout=self._timeout)
        except (OSError, asyncio.TimeoutError):       # a failed handshake: as asyncio's own
            conn.close()

    async def _answer_plain(self, conn: socket.socket) -> None:
        self._say("plain", _peer(conn))     # before the client sees the close
        try:
            conn.send(plain_http_answer(self._port))   # small: fits an empty socket buffer
            conn.shutdown(socket.SHUT_WR)
            # read what the client sent before closing: closing with unread bytes sends a
            # reset, and the client may lose the answer
            await asyncio.wait_for(self._drop_rest(conn), self._timeout)
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            conn.close()

    async def _drop_rest(self, conn: socket.socket) -> None:
        dropped = 0
        while dropped < _UNREAD_LIMIT:
            data = await self._loop.sock_recv(conn, 16 * 1024)
            if not data:
                return
            dropped += len(data)

    def _say(self, kind: str, peer: str | None) -> None:
        said = self._plain.count(kind)
        if said is None:
            return
        if said["plain"]:
            log.warning("web: %d plain HTTP requests came to the HTTPS port %d since the last"
                        " line (the last from %s); answered 400", said["plain"], self._port,
                        peer or "a client")
        if said["refused"]:
            log.warning("web: %d connections to the HTTPS port %d closed unread since the"
                        " last line: %d were already waiting for their first byte",
                        said["refused"], self._port, self._max_waiting)


def _peer(conn: socket.socket) -> str:
    try:
        return str(conn.getpeername()[0])
    except OSError:
        return "a client that left"
