"""Outbound HTTP callbacks to the LAN with durable retry.

The journal records an event whenever a message with a callback changes state, and for every
inbound SMS. This thread only delivers them: the renderer it is given (by default
`web/callbacks.render`, the table of each dialect's renderers) turns an event into an HTTP
request, 2xx means done, anything else is retried with backoff across restarts, in order per
message, for up to `GIVE_UP_SECONDS`.

Requests are coroutines on one event loop thread (`notify-io`), not a thread each: an
endpoint that hangs costs a socket, so a new receiver is not queued behind hanging ones.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from appliance.callback_url import basic_login, destination_of, request_target
from appliance.clock import SYSTEM_CLOCK, Clock
from appliance.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_headers
from appliance.web.callback_kit import FORM, Call

log = logging.getLogger("appliance.notify")

BACKOFF = (10, 30, 60, 120, 300, 600, 900)
GIVE_UP_SECONDS = 3 * 24 * 3600
TIMEOUT_SECONDS = 10     # a whole request: connect, send, the answer's head
CONNECT_SECONDS = 5      # name lookup, TCP and TLS handshake
# Destinations served at once, one connection (a coroutine, not a thread) each. With eight
# threads, a dozen new hosts that hang held every worker for the whole timeout and a new
# healthy receiver waited behind them (found by a helper); a hanging request now costs a
# socket and a batch of at most 100 events, so 64 stay cheap and bounded.
MAX_WORKERS = 64
# Slots kept from destinations that did not answer, for when more than MAX_WORKERS hang:
# one for destinations that answered their last call (known from the journal after a
# restart), a second one from those that are failing.
RESERVED_FOR_ANSWERING = 1
RESERVED_FROM_FAILING = 2
KNOWN_ANSWERING = 1024   # destinations remembered as answering (a LAN has a handful)
SWEEP_SECONDS = 60
MAX_REDIRECTS = 4        # as urllib followed them
MAX_HEAD_LINES = 100     # of an answer's head; the body is not read
MAX_LINE = 65536         # of a head's line, as http.client took it (a big cookie is ~20 kB)


@dataclass
class Destination:
    """Backoff state of an endpoint that failed (in memory: events keep their own retry)."""

    failures: int = 0
    last_error: str = ""
    until: float = 0.0


class Notifier:
    """Delivers events, isolated per destination (scheme://host:port).

    The loop fetches due events, leaving out destinations that are busy or backing off, and
    hands each destination's events to a coroutine of its own on the `notify-io` loop (at
    most `max_workers` at once), which sends them in order and stops at the first failure:
    that destination then waits `BACKOFF[n]` while every other one keeps flowing. Events
    still pending after `give_up_seconds` are given up (state dead), counted in /status.
    """

    def __init__(self, journal, accounts=None, *, clock: Clock = SYSTEM_CLOCK,
                 idle_seconds: float = 1.0, opener=None, max_workers: int = MAX_WORKERS,
                 give_up_seconds: float = GIVE_UP_SECONDS, timeout: float = TIMEOUT_SECONDS,
                 connect_timeout: float = CONNECT_SECONDS,
                 render: Callable[[dict, object], Call | None] | None = None,
                 proxies: dict | None = None):
        if render is None:
            from appliance.web.callbacks import render
        self._render_event = render          # event, accounts -> Call | None
        self.journal = journal
        self.accounts = accounts
        self.clock = clock
        self.idle_seconds = idle_seconds
        self.max_workers = max_workers
        self.give_up_seconds = give_up_seconds
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self._open = opener    # (url, method, body, headers) -> awaitable (status, location)
        # http_proxy / https_proxy / no_proxy, as urllib (the notifier's first client) used them
        self.proxies = environment_proxies() if proxies is None else proxies
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._busy: dict[str, None] = {}        # destinations with a batch in flight
        self._loop: asyncio.AbstractEventLoop | None = None     # started by the first batch
        self._io_thread: threading.Thread | None = None
        self._loop_lock = threading.Lock()
        self._failing: dict[str, Destination] = {}        # destination -> backoff state
        self._answering: dict[str, None] = {}   # destinations whose last call succeeded
        self._last_sweep = 0.0
        self.heartbeat = clock.monotonic()
        self.delivered = 0

    def start(self) -> None:
        # who answered before the restart still counts as answering (the latest events)
        recent = getattr(self.journal, "recent_event_outcomes", None)
        for destination, state in (recent() if recent else []):
            if state == "done":
                self._answering.setdefault(destination, None)
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(self.timeout + 2)
        self._stop_loop()

    def alive(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def idle(self) -> bool:
        """No destination's batch is in flight (tests and shutdown use it)."""
        with self._lock:
            return not self._busy

    def _run(self) -> None:
        while not self._stop.is_set():
            self.heartbeat = self.clock.monotonic()
            try:
                started = self.step()
            except Exception:
                log.exception("notify: step failed; retrying")
                started = 0
            if not started:
                self._wake.wait(self.idle_seconds)
                self._wake.clear()

    def step(self) -> int:
        """One pass: give up old events, then start a worker per free destination.
        Returns how many events were handed out or settled."""
        self._sweep()
        skip = self._unavailable()
        if len(self._busy) >= self.max_workers:
            return 0
        events = self.journal.due_events(limit=100, skip_destinations=skip)
        batches: dict[str, list] = {}
        learned: list[tuple[int, str]] = []
        handled = 0
        for event in events:
            call = self._render(event)
            if call is None:                    # nothing to tell this client
                self.journal.event_skipped(event["event_id"])
                handled += 1
                continue
            destination = destination_of(call.url)
            if destination != event["destination"]:
                learned.append((event["event_id"], destination))
            if destination not in skip:
                batches.setdefault(destination, []).append((event, call))
        if learned:
            # An inbound SMS's URL is its user's (it may change), unknown when the event was
            # written: recorded now, so the query leaves it out while that endpoint fails.
            # Without it, 100 inbound events for one dead URL filled every fetch and no other
            # client was told anything (found by a helper).
            self.journal.set_event_destinations(learned)
        for destination, batch in batches.items():
            started = self._start_worker(destination, batch)
            if started is None:
                break                           # every worker is busy
            handled += len(batch) if started else 0
        return handled

    def status(self) -> dict:
        """Counts from the journal, and the destinations that are failing now."""
        health = self.journal.event_health()
        now = self.clock.monotonic()
        with self._lock:
            failing = [{"destination": name, "failures": d.failures, "last_error": d.last_error,
                        "retry_in": max(0, round(d.until - now))}
                       for name, d in sorted(self._failing.items())]
        health["failing_destinations"] = failing
        health["ok"] = not (health["stuck"] or health["given_up_24h"])
        return health

    # --- per destination ---

    def _unavailable(self) -> list[str]:
        now = self.clock.monotonic()
        with self._lock:
            backing_off = [n for n, d in self._failing.items() if d.until > now]
            return sorted(set(self._busy) | set(backing_off))

    def _start_worker(self, destination: str, batch: list) -> bool | None:
        """True when started; False when this destination must wait (it has not answered
        lately and the workers left are reserved); None when no worker is free."""
        loop = self._io_loop()
        with self._lock:
            if len(self._busy) >= self.max_workers:
                return None
            if destination not in self._answering and not self._may_take_a_worker(destination):
                return False
            self._busy[destination] = None
        asyncio.run_coroutine_threadsafe(self._deliver_batch(destination, batch), loop)
        return True

    # --- the event loop the requests run on ---

    def _io_loop(self) -> asyncio.AbstractEventLoop:
        with self._loop_lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                # Name lookups block a thread each. asyncio's default pool has cpu + 4 (six
                # on a Pi): six hosts whose lookup hangs made a healthy receiver's lookup
                # wait past its connect time (found by a helper). One per slot, made lazily.
                self._loop.set_default_executor(ThreadPoolExecutor(
                    self.max_workers + RESERVED_FROM_FAILING, thread_name_prefix="notify-lookup"))
                self._io_thread = threading.Thread(target=self._loop.run_forever,
                                                   name="notify-io", daemon=True)
                self._io_thread.start()
            return self._loop

    def _stop_loop(self) -> None:
        """Requests in flight are dropped: their events stay pending for the next start."""
        with self._loop_lock:
            loop, thread, self._loop = self._loop, self._io_thread, None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(_cancel_tasks(), loop).result(5)
        except Exception:
            log.exception("notify: requests in flight did not end")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        if not thread.is_alive():
            loop.close()

    def _may_take_a_worker(self, destination: str) -> bool:
        """For a destination that has not answered lately (call under _lock)."""
        unproven = sum(1 for d in self._busy if d not in self._answering)
        if unproven >= self.max_workers - min(RESERVED_FOR_ANSWERING, self.max_workers - 1):
            return False
        if destination not in self._failing:
            return True
        failing = sum(1 for d in self._busy if d in self._failing)
        return failing < self.max_workers - min(RESERVED_FROM_FAILING, self.max_workers - 1)

    async def _deliver_batch(self, destination: str, batch: list) -> None:
        try:
            for event, call in batch:
                if self._stop.is_set():
                    break
                sign = self._signer(event)
                error = await self._send(sign(call) if sign else call, sign)
                if not self._settle(destination, event, error):
                    break
        except Exception:
            log.exception("notify: worker for %s failed", destination)
        finally:
            with self._lock:
                self._busy.pop(destination, None)
            self._wake.set()

    def _settle(self, destination: str, event: dict, error: str | None) -> bool:
        """Record one event's outcome; True when it is settled and the next one may go."""
        if error is None:
            self.delivered += 1
            self.journal.event_done(event["event_id"])
            with self._lock:
                self._answering[destination] = None
                while len(self._answering) > KNOWN_ANSWERING:
                    del self._answering[next(iter(self._answering))]
                if self._failing.pop(destination, None):
                    log.info("notify: %s answers again", destination)
            return True
        delay = self._destination_failed(destination, error)
        give_up = self.clock.now() - event["at"] > self.give_up_seconds
        log.warning("notify: %s for %s to %s failed (%s); %s", event["kind"], event["id"],
                    destination, error, "giving up" if give_up else f"retry in {delay}s")
        self.journal.event_retry(event["event_id"], error, delay, give_up)
        return False

    def _destination_failed(self, destination: str, error: str) -> float:
        with self._lock:
            self._answering.pop(destination, None)
            state = self._failing.setdefault(destination, Destination())
            state.failures += 1
            state.last_error = error
            delay = BACKOFF[min(state.failures - 1, len(BACKOFF) - 1)]
            state.until = self.clock.monotonic() + delay
        return delay

    def _sweep(self) -> None:
        now = self.clock.monotonic()
        if now - self._last_sweep < SWEEP_SECONDS:
            return
        self._last_sweep = now
        given_up = self.journal.give_up_events(self.give_up_seconds)
        if given_up:
            log.warning("notify: gave up %d callback events older than %.0f h", given_up,
                        self.give_up_seconds / 3600)

    # --- one request ---

    def _render(self, event: dict) -> Call | None:
        return self._render_event(event, self.accounts)

    def _signer(self, event: dict):
        """Signs a Call with its user's `callback_secret`, or None without one. It signs
        the URL requested (login taken out, text percent-encoded): the one the receiver sees;
        a redirect on the same origin is signed again for its own URL."""
        user = self.accounts.get(event.get("user", "")) if self.accounts else None
        secret = (user.settings or {}).get("callback_secret", "") if user else ""
        if not secret:
            return None
        stamp = self.clock.now()

        def sign(call: Call) -> Call:
            requested, _ = request_target(call.url)
            headers = sign_headers(secret, stamp, call.method, requested, call.body)
            return Call(call.url, call.method, call.body, {**call.headers, **headers})
        return sign

    async def _send(self, call: Call, sign=None) -> str | None:
        """None when the endpoint answered 2xx, else why not. The whole request, redirects
        included, has `timeout` seconds: urllib's timeout was per socket read, so an endpoint
        that trickled its answer held the request for ever."""
        try:
            return await asyncio.wait_for(self._exchange(call, sign), self.timeout)
        except TimeoutError as exc:
            return str(exc) or f"no answer in {self.timeout:g} s"
        except (OSError, ValueError, UnicodeError) as exc:
            return f"{type(exc).__name__}: {exc}"[:200]

    async def _exchange(self, call: Call, sign=None) -> str | None:
        url, auth = request_target(call.url)
        method, body = call.method, call.body
        headers = {"User-Agent": "sms-appliance", **auth, **call.headers}
        for _ in range(MAX_REDIRECTS + 1):
            status, location = await (self._open or self._request)(url, method, body, headers)
            if not (location and _follows(status, method)):
                return None if 200 <= status < 300 else f"HTTP {status}"
            # as urllib's redirect handler: a Location with spaces or non-ASCII text is
            # percent-encoded, or it broke the request line (a 400 for ever)
            target, _ = request_target(urllib.parse.urljoin(url, location))
            if _is_downgrade(url, target):
                return f"HTTP {status} to http:// refused (it would leave TLS)"
            same_origin = destination_of(target) == destination_of(url)
            if not same_origin:
                headers = _without_credentials(headers)
                log.info("notify: %s redirects to %s; sent without credentials or signature",
                         destination_of(url), destination_of(target))
            url = target
            if method not in ("GET", "HEAD"):   # 301/302/303 after a POST: a GET (urllib's)
                method, body = "GET", None
                headers = {k: v for k, v in headers.items()
                           if k.lower() not in ("content-type", "content-length")}
            if same_origin and sign:
                # the first signature covers the URL (and method, body) first requested; the
                # receiver verifies against what it was asked now
                headers = sign(Call(url, method, body, headers)).headers
        return f"HTTP {status} (more than {MAX_REDIRECTS} redirects)"

    async def _request(self, url: str, method: str, body: bytes | None,
                       headers: dict) -> tuple[int, str]:
        """One HTTP/1.1 request on a connection of its own: (status, Location)."""
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url[:80]!r}")
        tls = _tls_context() if scheme == "https" else None
        port = parts.port or (443 if tls else 80)
        proxy = self._proxy_for(scheme, parts.hostname)
        try:
            reader, writer = await asyncio.wait_for(
                self._connect(parts.hostname, port, tls, proxy), self.connect_timeout)
        except TimeoutError:
            raise TimeoutError(f"no connection in {self.connect_timeout:g} s") from None
        try:
            if proxy and not tls:       # a plain request goes to the proxy in absolute form
                head = _request_head(parts, method, body, {**headers, **_proxy_login(proxy)},
                                     absolute=True)
            else:
                head = _request_head(parts, method, body, headers)
            writer.write(head + (body or b""))
            await writer.drain()
            return await _read_answer_head(reader)
        finally:
            writer.close()

    async def _connect(self, host: str, port: int, tls, proxy):
        """(reader, writer) to the receiver: straight, through an http proxy, or (https)
        through the proxy's CONNECT tunnel with TLS to the receiver inside it."""
        if proxy is None:
            return await asyncio.open_connection(
                host, port, ssl=tls, server_hostname=host if tls else None, limit=MAX_LINE)
        reader, writer = await asyncio.open_connection(
            proxy.hostname, proxy.port or 80, limit=MAX_LINE)
        if tls is None:
            return reader, writer
        try:
            authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}",
                     *(f"{k}: {v}" for k, v in _proxy_login(proxy).items())]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            await writer.drain()
            status, _ = await _read_answer_head(reader)
            if not 200 <= status < 300:
                raise ConnectionError(f"proxy {proxy.hostname} refused CONNECT: HTTP {status}")
            await writer.start_tls(tls, server_hostname=host)
        except BaseException:
            writer.close()
            raise
        return reader, writer

    def _proxy_for(self, scheme: str, host: str):
        """The proxy URL (split) a request to this host goes through, or None."""
        proxy = self.proxies.get(scheme)
        if not proxy or _bypassed(host, self.proxies):
            return None
        return urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)

    # --- alerts to the administrator ---

    def admin_alert(self, admin, slot: str, text: str) -> None:
        """A POST to the admin's alert_url (the alert SMS goes through `intake.alert_sms`)."""
        if admin.alert_url:
            body = urllib.parse.urlencode({"slot": slot, "alert": text}).encode()
            asyncio.run_coroutine_threadsafe(self._alert(Call(admin.alert_url, "POST", body, FORM)),
                                             self._io_loop())

    async def _alert(self, call: Call) -> None:
        error = await self._send(call)
        if error:
            log.warning("notify: alert to %s failed (%s)", destination_of(call.url), error)


_tls = None


def _tls_context():
    global _tls
    if _tls is None:
        import ssl
        _tls = ssl.create_default_context()
    return _tls


def _follows(status: int, method: str) -> bool:
    """Whether urllib followed this redirect (307/308 only for a GET or HEAD)."""
    if status in (301, 302, 303):
        return True
    return status in (307, 308) and method in ("GET", "HEAD")


def _is_downgrade(url: str, target: str) -> bool:
    """An https callback sent on to plain http: its URL (a GET report's values) and
    credentials would cross the network in clear."""
    return (urllib.parse.urlsplit(url).scheme.lower() == "https"
            and urllib.parse.urlsplit(target).scheme.lower() != "https")


# Headers meant for the configured receiver only. The signature is made anew only on the same
# origin; not for another host: it would vouch for a URL the operator never gave, and the one made for the configured
# URL could be replayed to it (within its 5 minutes) by whoever receives it.
_CREDENTIALS = {"authorization", "proxy-authorization", "cookie",
                TIMESTAMP_HEADER.lower(), SIGNATURE_HEADER.lower()}


def _without_credentials(headers: dict) -> dict:
    """Headers for a redirect to another scheme, host or port, as browsers, curl and
    requests do: without Authorization (from the URL's user:password@) or the signature."""
    return {k: v for k, v in headers.items() if k.lower() not in _CREDENTIALS}


def environment_proxies() -> dict:
    """{scheme: proxy, "no": hosts} from the environment, as urllib read it. urllib.request
    (a few MiB) is imported only on a box that has a proxy set."""
    if not any(name.lower() in ("http_proxy", "https_proxy") for name in os.environ):
        return {}
    import urllib.request
    return urllib.request.getproxies_environment()


def _bypassed(host: str, proxies: dict) -> bool:
    if not proxies.get("no"):
        return False
    import urllib.request
    return bool(urllib.request.proxy_bypass_environment(host, proxies))


def _proxy_login(proxy) -> dict:
    """Proxy-Authorization from a proxy URL's user:password@, else nothing."""
    return {} if proxy.username is None else {"Proxy-Authorization": basic_login(proxy)}


def _request_head(parts, method: str, body: bytes | None, headers: dict, *,
                  absolute: bool = False) -> bytes:
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if absolute:                      # through a proxy: it needs the whole URL
        target = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{target}"
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}"]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in headers.items()
              if name.lower() not in ("host", "content-length", "connection")]
    lines.append("Connection: close")
    if any("\r" in line or "\n" in line for line in lines):
        raise ValueError("a header holds a line break")    # as http.client refused it
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_answer_head(reader) -> tuple[int, str]:
    """(status, Location) from the final answer's head; its body is not read. An interim
    answer (100 Continue, 103 Early Hints) comes before it, head only: http.client skipped
    a 100, and taking it for the answer failed a callback the server then took (found by
    a helper)."""
    for _ in range(MAX_HEAD_LINES):
        status, location = await _read_one_head(reader)
        if not 100 <= status < 200 or status == 101:
            return status, location
    raise ValueError(f"more than {MAX_HEAD_LINES} interim answers")


async def _read_one_head(reader) -> tuple[int, str]:
    line = await reader.readline()
    version, _, rest = line.decode("latin-1").partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/") or not code.isdigit():
        raise ValueError(f"no HTTP answer: {line[:60]!r}" if line else "closed without an answer")
    location = ""
    for _ in range(MAX_HEAD_LINES):
        header = (await reader.readline()).decode("latin-1").strip()
        if not header:
            break
        name, _, value = header.partition(":")
        if name.strip().lower() == "location":
            location = value.strip()
    return int(code), location


async def _cancel_tasks() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
