"""The composition root: builds every part from the config, runs them, stops them cleanly.

Threads and who owns what (docs/architecture.md has the picture):
- the store writer thread owns every write to the journal;
- one worker thread per modem owns its serial port (and its GPIO pins);
- one thread per SMPP uplink owns its socket;
- the dispatcher thread moves due parts to channels; the notifier thread calls LAN URLs;
- one event-loop thread serves HTTP (web/loop_server.py); the main thread supervises: sdnotify, signals, stats.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from typing import Callable

import sdnotify

from appliance import __version__
from appliance import hangup
from appliance import thread_priority
from appliance.accounts import Accounts
from appliance.clock import SYSTEM_CLOCK, Clock
from appliance import clock_sync
from appliance.config import Config, ConnectionConfig, GSMModemConfig, SMPPConfig
from appliance.channel_down import can_send, known_down
from appliance.control import ControlPlane, for_daemon
from appliance.dispatch import Dispatcher
from appliance.health import MODEM_FAIL_STATES
from appliance.inbound_owner import InboundOwners
from appliance.modem.pins import REFUSED_PINS
from appliance.notify import Notifier
from appliance.routing import Router
from appliance.state_dir import DaemonLock
from appliance.store.documents import Documents
from appliance.store import report_timeout
from appliance.store.journal import Journal
from appliance.web import callbacks
from appliance.web.app import make_app
from appliance.web.listen import listen_socket
from appliance.web.refusals import Refusals
from appliance.web.services import Services

log = logging.getLogger("appliance.daemon")

READY_WAIT_SECONDS = 60.0
STATS_SECONDS = 60.0


def build_channel(conn: ConnectionConfig, sink, clock: Clock, pin_factory=None, on_alert=None,
                  clock_synchronized=None, reset_budgets: dict | None = None):
    """The channel object for one connection; hardware libraries load only when used.
    `reset_budgets`: a modem's reset count per connection name, kept across restarts of
    its channel."""
    if isinstance(conn, GSMModemConfig):
        from appliance.modem.ladder import ResetBudget
        from appliance.modem.power import PowerControl
        from appliance.modem.worker import ModemWorker
        power = PowerControl.from_config(conn, pin_factory=pin_factory, clock=clock)
        resets = None if reset_budgets is None else reset_budgets.setdefault(
            conn.name, ResetBudget(clock, conn.max_resets_per_hour))
        return ModemWorker(conn, sink, clock=clock, power=power, on_alert=on_alert,
                           resets=resets)
    if isinstance(conn, SMPPConfig):
        from appliance.uplink.smpp import SmppChannel
        return SmppChannel(conn, sink, clock=clock, clock_synchronized=clock_synchronized)
    from appliance.provider.channels import build_provider_channel
    channel = build_provider_channel(conn, sink, clock)   # HTTP Client, HTTP Server, SMTP
    if channel is not None:
        return channel
    raise ValueError(f"{conn.name}: connections of type {conn.type} cannot send yet")


def _stop_channel(name: str, channel) -> None:
    try:
        channel.stop()
    except Exception:       # one channel's trouble must not keep the others running
        log.exception("channels: %s failed to stop cleanly", name)
        return
    log.info("channels: %s stopped", name)


class Channels:
    """The running connections by name; replaced atomically when a driver is reconfigured."""

    def __init__(self, daemon: "Daemon"):
        self._daemon = daemon
        self._lock = threading.Lock()
        self.configs: dict[str, ConnectionConfig] = {}
        self.running: dict[str, object] = {}
        self._reset_budgets: dict = {}      # modem resets per hour, across channel restarts

    def start(self, conn: ConnectionConfig) -> None:
        with self._lock:
            self._stop_locked(conn.name)
            self.configs[conn.name] = conn
            if conn.autoconnect:
                daemon = self._daemon
                channel = build_channel(conn, daemon.journal, daemon.clock, daemon.pin_factory,
                                        daemon.alert, daemon.clock_synchronized,
                                        self._reset_budgets)
                if hasattr(channel, "set_wake"):     # freed slots wake the dispatcher
                    channel.set_wake(self._daemon.dispatcher.wake)
                channel.start()
                self.running = {**self.running, conn.name: channel}
                log.info("channels: %s (%s) started", conn.name, conn.type)
            self._publish()

    def stop(self, name: str, forget: bool = False) -> bool:
        with self._lock:
            known = name in self.configs
            self._stop_locked(name)
            if forget:
                self.configs.pop(name, None)
            self._publish()
            return known

    def stop_all(self) -> None:
        """Every channel at once. A hung modem's worker can take its whole stop timeout
        (10 s); one after another, a few of them outlasted systemd's TimeoutStopSec."""
        with self._lock:
            stopping, self.running = self.running, {}
            self._daemon.dispatcher.set_channels(self.running)  # before the stops: see there
            threads = [threading.Thread(target=_stop_channel, args=(name, channel),
                                        name=f"stop-{name}") for name, channel in stopping.items()]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            self._publish()

    def _stop_locked(self, name: str) -> None:
        channel = self.running.get(name)
        if channel is None:
            return
        self.running = {k: v for k, v in self.running.items() if k != name}
        self._daemon.dispatcher.set_channels(self.running)     # before the stop: see there
        _stop_channel(name, channel)

    def _publish(self) -> None:
        self._daemon.dispatcher.set_channels(self.running)
        self._daemon.router.set_connections(list(self.configs))
        self._daemon.router.set_aliases({c.operator: c.name for c in self.configs.values()
                                         if getattr(c, "operator", "")})
        self._daemon.dispatcher.wake()


class Daemon:
    def __init__(self, config: Config, *, clock: Clock = SYSTEM_CLOCK, admin_password: str = "",
                 pin_factory=None, notifier=None, clock_synchronized=None):
        self.config = config
        self.clock = clock
        # () -> bool | None: is NTP keeping the system clock right (clock_sync.py)
        self.clock_synchronized = clock_synchronized or clock_sync.synchronized
        self.pin_factory = pin_factory
        self.started = clock.monotonic()
        self._stop = threading.Event()
        self.restart_requested = False       # SIGHUP: stop, then start again (cli re-executes)
        self.restart_check: Callable[[], str] | None = None   # the new config's problem, or ""
        self._notify = notifier or sdnotify.SystemdNotifier()
        self._state_lock = DaemonLock(config.state_dir)     # before anything reads the queue
        try:
            self._open_state(config, clock, admin_password)
        except BaseException:
            self._state_lock.release()
            raise
        self.router = Router(config.routes, [c.name for c in config.connections],
                             aliases={c.operator: c.name for c in config.connections
                                      if getattr(c, "operator", "")})
        self.journal.inbound_owner = InboundOwners(self.accounts, self.router)
        self.dispatcher = Dispatcher(self.journal, {}, self.router, clock=clock,
                                     reroute_after=config.store.reroute_after_seconds)
        self.channels = Channels(self)
        self.notifier = Notifier(self.journal, self.accounts, clock=clock,
                                 render=callbacks.with_own_numbers(self._own_number))
        self.control: ControlPlane = for_daemon(self)    # what the web layer may ask of us
        self.services = Services(config=config, journal=self.journal, accounts=self.accounts,
                                 wake=self.dispatcher.work_arrived, status=self.status, clock=clock,
                                 control=self.control, refusals=Refusals(clock))
        self.app = None                  # the bottle app (web/app.py), built at start
        self.http = None                 # web.loop_server.LoopServer or web.server.HttpServer
        self.mail = None                  # integrations.mail.MailListener, with [smtp] listen
        self.rules = None                 # integrations.rules.RuleRunner

    def _open_state(self, config: Config, clock: Clock, admin_password: str) -> None:
        """The journal, the documents and the accounts in them (what may fail to open)."""
        self.journal = Journal.open(config.state_dir, clock=clock,
                                    max_batch=config.store.group_commit_max,
                                    dedupe_window=config.store.dedupe_window_seconds,
                                    fragment_timeout=config.store.inbound_partial_after_seconds)
        self.journal.report_timeouts = report_timeout.timeouts_from_config(config.connections)
        self.documents = Documents(config.state_dir)
        REFUSED_PINS.keep_in(self.documents)      # a restart does not spend another try
        self.accounts = Accounts(self.documents, self.journal,
                                 failures_per_minute=config.http.login_failures_per_minute)
        self.generated_password = self.accounts.provision(config, admin_password)

    # --- life cycle ---

    def start(self) -> None:
        requeued = self.journal.requeue_inflight()
        if requeued:
            log.info("daemon: %d messages were being sent at the last stop; sending again",
                     requeued)
        self.notifier.start()
        from appliance.web.drivers import effective_connections
        connections = effective_connections(self.config.connections, self.documents)
        self.control.report_tokens.adopt([conn for conn, _ in connections],
                                         in_use=self.journal.in_use())
        for conn, owner in connections:
            if owner == "file":
                self.channels.start(conn)
                continue
            try:           # a driver created through the API must not stop the daemon
                self.channels.start(conn)
            except Exception:
                log.exception("daemon: API-created connection %s could not start", conn.name)
        self._apply_stored_routes()
        # only now: with some connections or the API's routes still to come, a part pinned
        # to a later one, or routed by an API rule, would have been routed as if it were gone
        self.dispatcher.start()
        self._start_mail()       # before HTTP answers: /status counts its threads as workers
        self._start_http()

    def _own_number(self, connection: str) -> str:
        """The phone number a connection sends as (its `phonenumber`), "" when not known."""
        return getattr(self.channels.configs.get(connection), "phonenumber", "") or ""

    def connection_names(self) -> set[str]:
        """Every connection a route may name: running, stopped, or API-created."""
        from appliance.web.drivers import TABLE
        return set(self.channels.configs) | {d["name"] for d in self.documents.all(TABLE)}

    def _apply_stored_routes(self) -> None:
        self.control.routes.apply_stored()

    def _start_http(self) -> None:
        http = self.config.http
        sockets = [listen_socket(http.host, http.port)]
        sockets += [listen_socket(http.host, p) for p in http.extra_ports]
        tls = (http.tls_cert, http.tls_key) if http.tls_cert else None
        tls_sockets = None                        # None: every socket, when tls is set
        if tls and http.tls_port:
            tls_sockets = [listen_socket(http.host, http.tls_port)]
            sockets += tls_sockets
        self.app = make_app(self.services, self.control)   # also what in-process tests call
        if http.engine == "loop":
            from appliance.web.loop_server import LoopServer
            self.http = LoopServer(self.app, sockets, tls=tls, tls_sockets=tls_sockets)
        else:
            from appliance.web.server import HttpServer     # wsgiref/waitress: only if chosen
            self.http = HttpServer(self.app, sockets, threads=http.threads, tls=tls,
                                   engine=http.engine)
        self.http.start()
        log.info("daemon: HTTP API on %s port %s", http.host, ", ".join(self._port_words()))

    def _port_words(self) -> list[str]:
        """'9501' for each port, '9508 (HTTPS)' where only some ports are HTTPS."""
        secure = set(getattr(self.http, "tls_ports", ()))
        mixed = 0 < len(secure) < len(self.http.ports)
        return [f"{p} (HTTPS)" if mixed and p in secure else str(p) for p in self.http.ports]

    def _start_mail(self) -> None:
        from appliance.integrations import settings as integration_settings
        integrations = integration_settings.of(self.config)
        if integrations.smtp.listen:
            from appliance.integrations.mail import MailListener
            self.mail = MailListener(self.services, integrations.smtp)
            self.mail.start()
        if integrations.rules or integrations.inbound.stop_words:
            from appliance.integrations.rules import RuleRunner
            self.rules = RuleRunner(self.services, integrations, clock=self.clock)
            self.rules.start()

    @property
    def port(self) -> int:
        return self.http.ports[0] if self.http else 0

    def stop(self) -> None:
        """Stop intake first, then the queue, then the channels, then the store."""
        log.info("daemon: stopping")
        if self.http:
            self.http.stop()
        if self.mail:
            self.mail.stop()
        if self.rules:
            self.rules.stop()
        self.dispatcher.stop()
        self.channels.stop_all()
        self.notifier.stop()
        self.journal.close()
        self.documents.close()
        self._state_lock.release()
        log.info("daemon: stopped")

    def request_stop(self, *_args) -> None:
        self._stop.set()

    def request_restart(self, *_args) -> None:
        """SIGHUP (`systemctl reload`): stop cleanly and start again with the configuration
        read again, unless it has a problem: then this one keeps running and says why.
        Before, SIGHUP killed the daemon mid-send and systemd took that for a clean exit."""
        if self._stop.is_set() and not self.restart_requested:
            # a stop (SIGTERM) is under way: a reload now restarted the daemon instead of
            # ending it, and `systemctl stop` waited for its kill timeout (found by a helper)
            log.info("daemon: SIGHUP ignored: stopping")
            return
        problem = self.restart_check() if self.restart_check else ""
        if problem:
            log.error("daemon: SIGHUP: not restarting, the configuration has a problem (the "
                      "running one stays): %s", problem)
            return
        log.info("daemon: SIGHUP: restarting with the configuration read again")
        self.restart_requested = True
        self._notify.notify("RELOADING=1")
        self._stop.set()

    def wait_ready(self, timeout: float = READY_WAIT_SECONDS) -> bool:
        """True once every modem finished its start-up (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stop.is_set():
            if all(_initialised(ch) for ch in self.channels.running.values()):
                return True
            self._stop.wait(0.2)
        return False

    def supervise(self) -> None:
        """The main thread's loop: watchdog only while every worker is alive, STATUS lines."""
        self._notify.notify("READY=1")
        last_stats, last_accepted = 0.0, 0
        while not self._stop.wait(2.0):
            thread_priority.name_for_os()        # threads started since (recoveries, links)
            healthy = self.healthy()
            if healthy:
                self._notify.notify("WATCHDOG=1")
            self._notify.notify(f"STATUS={self.status_line()}")
            if time.monotonic() - last_stats >= STATS_SECONDS:
                last_stats = time.monotonic()
                accepted, last_accepted = self.journal.accepted - last_accepted, self.journal.accepted
                refused = self.services.refusals.since_last()
                log.info("daemon: %s, %d accepted%s since the last line%s", self.status_line(),
                         accepted, f", {refused} refused" if refused else "",
                         "" if healthy else " (UNHEALTHY)")
        if not self.restart_requested:       # a restart in place says READY=1 again instead
            self._notify.notify("STOPPING=1")

    def healthy(self) -> bool:
        workers = [self.journal, self.dispatcher, self.notifier, self.http]
        workers += [w for w in (self.mail, self.rules) if w is not None]
        workers += list(self.channels.running.values())
        return all(w is not None and w.alive() for w in workers)

    def failing_connections(self) -> list[str]:
        """Connections that say they are failing (an SMSC refusing the bind, a provider down
        whose probe failed too), and modems in a state /health fails (held by the reset
        cap, failed, the wrong modem: /status said healthy while /health was 503). The
        process is fine, so the watchdog goes on (a restart would not help), but /status is
        not healthy."""
        failing = []
        for name, channel in self.channels.running.items():
            status = channel.status()
            if status.get("failing") or status.get("state") in MODEM_FAIL_STATES:
                failing.append(name)
        return sorted(failing)

    def alert(self, slot: str, text: str) -> None:
        """A modem failed for good or its balance is low: tell the administrator."""
        log.warning("alert: %s: %s", slot, text)
        if self.config.admin.phone:
            from appliance import intake
            intake.alert_sms(self.services, self.config.admin.phone,
                             f"sms-appliance {slot}: {text}")
        self.notifier.admin_alert(self.config.admin, slot, text)

    # --- status ---

    def status(self) -> dict:
        stats = self.journal.stats()
        channels = self.channels.running
        failing = self.failing_connections()
        callbacks = self.notifier.status()
        return {
            "version": __version__,
            "uptime": round(self.clock.monotonic() - self.started, 1),
            "clock": {"synchronized": self.clock_synchronized(),
                      "now": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock.now()))},
            # failing uplinks and stuck or given-up callbacks make the appliance unhealthy,
            # without failing the watchdog (a restart cures neither)
            "healthy": self.healthy() and not failing and callbacks["ok"],
            "failing_connections": failing,
            "callbacks": callbacks,
            "queue": stats["parts_by_state"],
            "waiting": stats["waiting"],
            "scheduled": stats["scheduled"],
            "oldest_queued_age": stats["oldest_waiting_age"],
            "callbacks_pending": self.journal.pending_events(),
            "modems": [c.status() for n, c in channels.items() if _is_modem(self, n)],
            "uplinks": [c.status() for n, c in channels.items() if not _is_modem(self, n)],
            "stopped_connections": sorted(set(self.channels.configs) - set(channels)),
            "demo": self.config.demo.enabled,
            "integrations": self._integrations_status(),
            "whole_messages": self.journal.routes_summary(),
        }

    def _integrations_status(self) -> dict:
        gate = self.control.hook_gate
        result = {"hooks": {"duplicates": dict(gate.duplicates) if gate else {},
                            "rate_limited": dict(gate.suppressed) if gate else {}}}
        if self.mail:
            result["smtp"] = {"port": self.mail.port, "accepted": self.mail.handler.accepted,
                              "refused": self.mail.handler.refused}
        if self.rules:
            result["inbound"] = self.rules.status()
        return result

    def status_line(self) -> str:
        stats = self.journal.stats()
        running = self.channels.running
        # ready = able to send (busy or idle): a burst must not read as every modem down
        ready = sum(1 for c in running.values() if can_send(c))
        down = [f"{name} {why.removeprefix('is ')}" for name, c in sorted(running.items())
                if (why := known_down(c))]
        age = stats["oldest_waiting_age"]
        return (f"{stats['waiting']} waiting"
                + (f" (oldest {age:.0f}s)" if age is not None else "")
                + f", {ready}/{len(running)} channels ready"
                + (f"; {', '.join(down)}" if down else ""))


def _initialised(channel) -> bool:
    state = channel.status().get("state", "")
    return state not in ("probing", "starting", "init", "initialising")


def _is_modem(daemon: Daemon, name: str) -> bool:
    return isinstance(daemon.channels.configs.get(name), GSMModemConfig)


RESTART = 75        # what `run` answers after SIGHUP: the caller starts the daemon again


def run(config: Config, *, admin_password: str = "", pin_factory=None, on_started=None,
        restart_check: Callable[[], str] | None = None) -> int:
    """Run until SIGTERM/SIGINT (0) or SIGHUP (RESTART). `on_started(daemon)` prints the demo
    banner and the like; `restart_check()` says what is wrong with the configuration a
    restart would read ("" when nothing)."""
    from appliance.memory import tune_malloc
    tune_malloc()                        # before the first thread: see memory.py
    daemon = Daemon(config, admin_password=admin_password, pin_factory=pin_factory)
    daemon.restart_check = restart_check
    signal.signal(signal.SIGTERM, daemon.request_stop)
    signal.signal(signal.SIGINT, daemon.request_stop)
    signal.signal(signal.SIGHUP, daemon.request_restart)
    if hangup.arrived():
        log.info("daemon: SIGHUP came during start-up; restarting before starting (the "
                 "configuration may have changed after it was read)")
        daemon.request_restart()
    try:
        if not daemon.restart_requested:
            daemon.start()
            lowered = thread_priority.step_aside(daemon.journal.background_threads()
                                                 + daemon.dispatcher.background_threads())
            log.debug("daemon: at nice %d: %s", thread_priority.BACKGROUND_NICE,
                      ", ".join(lowered) or "none")
            thread_priority.name_for_os()        # before the banner: top -H shows them
            daemon.wait_ready()
            if on_started:
                on_started(daemon)
            daemon.supervise()
    finally:
        daemon.stop()
    return RESTART if daemon.restart_requested else 0


def with_connections(config: Config, connections) -> Config:
    return dataclasses.replace(config, connections=tuple(config.connections) + tuple(connections))
