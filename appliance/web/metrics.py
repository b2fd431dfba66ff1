"""GET /metrics (Prometheus text format) and GET /health (JSON checks).

The collector reads everything at scrape time: the journal's maintained counters
(store/counters.py), the channels' status(), the writer's and the HTTP layer's fixed-bucket
histograms. Nothing is added per message; a scrape costs the same at any queue depth.

/metrics may ask for its own Basic credential ([metrics] username/password) and may be
limited to an allow list of addresses; /health is open (it tells no secret) so a load
balancer, the watchdog's helper and Ansible can read it.
"""

from __future__ import annotations

import json
import logging
import time

import bottle

from appliance import __version__, auth, health
from appliance.accounts import in_networks
from appliance.channel_down import SENDING_STATES
from appliance.config import GSMModemConfig
from appliance.histogram import SECONDS_BUCKETS, Histogram
from appliance.store import counters
from appliance.web.params import client_address

log = logging.getLogger("appliance.web")

MODEM_STATES = ("probing", "ready", "recovering", "held", "failed", "wrong_modem", "stopped")
UPLINK_STATES = ("connecting", "bound", "backoff", "stopped")
_credential_cache = auth.CredentialCache(max_entries=16)


# --- HTTP latency by dialect (a bottle plugin: two clock reads and a bisect per request) ---


def dialect_of(request: bottle.BaseRequest) -> str:
    path = request.path
    if path == "/api":
        return _api_dialect(request)
    if path == "/":
        return _root_dialect(request)
    return _path_dialect(path)


def _api_dialect(request: bottle.BaseRequest) -> str:
    kind = request.content_type or ""
    return "ozeki_json" if "json" in kind else "ozeki"


def _root_dialect(request: bottle.BaseRequest) -> str:
    return "phonesystem" if request.method == "POST" or request.query_string else "dashboard"


def _path_dialect(path: str) -> str:
    """The dialect of every other path: the path alone decides."""
    if path.startswith("/bulksms/"):
        return "bulksms"
    if path in ("/metrics", "/health", "/status"):
        return "monitoring"
    if path.startswith("/ui") or path in ("/login", "/logout"):
        return "dashboard"
    if path.startswith(("/admin/", "/demo/")):
        return "admin"
    return "other"


def _route_dialect(rule: str):
    """`dialect_of` for the requests of one route, with what its rule already decides done
    once: a rule without wildcards is matched by that exact path only (bottle's static
    routes), so only /api and / still look at the request."""
    if "<" in rule or ":" in rule:
        return dialect_of
    if rule == "/api":
        return _api_dialect
    if rule == "/":
        return _root_dialect
    fixed = _path_dialect(rule)
    return lambda request: fixed


def latency_plugin(histograms: dict) -> "_LatencyPlugin":
    return _LatencyPlugin(histograms)


class _LatencyPlugin:
    """Times every route's handler into `histograms[dialect]` (made at its first request);
    bottle's plugin API 2 hands `apply` the route, so its rule is read once."""

    api = 2

    def __init__(self, histograms: dict):
        self.histograms = histograms

    def apply(self, callback, route):
        histograms, dialect_of_request = self.histograms, _route_dialect(route.rule)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return callback(*args, **kwargs)
            finally:
                dialect = dialect_of_request(bottle.request)
                histogram = histograms.get(dialect)
                if histogram is None:
                    histogram = histograms.setdefault(dialect, Histogram(SECONDS_BUCKETS))
                histogram.observe(time.perf_counter() - started)
        return timed


# --- the collector ------------------------------------------------------------------------


class ApplianceCollector:
    """prometheus_client custom collector over the daemon's live state."""

    def __init__(self, daemon, http_histograms: dict):
        self.daemon = daemon
        self.http = http_histograms

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily
        daemon = self.daemon
        yield _gauge("sms_up", "1 while the daemon answers", 1)
        info = GaugeMetricFamily("sms_build_info", "Firmware version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        yield _gauge("sms_uptime_seconds", "Seconds since the daemon started",
                     round(daemon.clock.monotonic() - daemon.started, 1))
        synchronized = daemon.clock_synchronized()
        if synchronized is not None:
            yield _gauge("sms_clock_synchronized", "1 while NTP keeps the system clock"
                         " synchronized", int(synchronized))
        yield from self._messages()
        yield from self._channels()
        yield from self._callbacks()
        yield from self._store()
        yield from self._health()
        yield _histogram("sms_http_request_duration_seconds",
                         "HTTP request handling time by API dialect", ["dialect"],
                         {(d,): h for d, h in sorted(self.http.items())})

    def _messages(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
        journal = self.daemon.journal
        accepted = CounterMetricFamily("sms_messages_accepted", "Messages accepted for sending",
                                       labels=["dialect", "user"])
        received = CounterMetricFamily("sms_messages_received", "Inbound messages stored "
                                       "(long ones once, reassembled)", labels=["user"])
        for direction, dialect, user, n in counters.accepted(journal):
            if direction == "out":
                accepted.add_metric([dialect or "unknown", user], n)
            else:
                received.add_metric([user], n)
        yield accepted
        yield received
        refused = CounterMetricFamily("sms_refused", "Requests and messages refused (bad input,"
                                      " credit, do-not-disturb, logins), by source",
                                      labels=["source"])
        for source, n in sorted(self.daemon.services.refusals.by_source().items()):
            refused.add_metric([source], n)
        yield refused
        by_state = counters.parts_by_state(journal)
        parts = GaugeMetricFamily("sms_parts", "Outbound parts by state", labels=["state"])
        for state, n in sorted(by_state.items()):
            parts.add_metric([state], n)
        yield parts
        yield _gauge("sms_queue_depth", "Parts waiting to be sent (queued or being sent)",
                     by_state.get("queued", 0) + by_state.get("sending", 0))
        yield _gauge("sms_queue_scheduled", "Parts scheduled for later", by_state.get("scheduled", 0))
        created = counters.oldest_waiting(journal)
        age = 0.0 if created is None else max(0.0, self.daemon.clock.now() - created)
        yield _gauge("sms_queue_oldest_age_seconds", "Age of the oldest waiting part (0 if none)",
                     round(age, 1))

    def _channels(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
        modem = _Families("sms_modem", ["slot", "name"], {
            "signal_dbm": ("gauge", "Signal strength in dBm (absent when unknown)"),
            "registered": ("gauge", "1 when registered on the network"),
            "balance": ("gauge", "SIM balance from the last USSD read"),
            "balance_read_timestamp_seconds": ("gauge", "When the balance was read (unix time)"),
            "sent": ("counter", "Parts sent since start"),
            "failed": ("counter", "Parts that failed since start"),
            "received": ("counter", "SMS received since start"),
            "reports": ("counter", "Delivery reports received since start"),
            "resets_last_hour": ("gauge", "Resets (power or radio) in the last hour"),
            "sent_today": ("gauge", "Parts sent today (counts against the daily limit)"),
            "daily_limit": ("gauge", "The daily budget of parts (0 = none)"),
        })
        modem_state = GaugeMetricFamily("sms_modem_state", "1 for the modem's current state",
                                        labels=["slot", "name", "state"])
        recoveries = CounterMetricFamily("sms_modem_recoveries", "Recovery steps run, by step",
                                         labels=["slot", "name", "step"])
        uplink = _Families("sms_uplink", ["name"], {
            "up": ("gauge", "1 while the uplink is bound"),
            "window_in_use": ("gauge", "Submits awaiting their response"),
            "window_size": ("gauge", "The configured window"),
        })
        uplink_state = GaugeMetricFamily("sms_uplink_state", "1 for the uplink's current state",
                                         labels=["name", "state"])
        uplink_counts = CounterMetricFamily("sms_uplink_events", "Uplink counters (submitted, "
                                            "receipts, failed, ...)", labels=["name", "event"])
        stopped = GaugeMetricFamily("sms_connection_stopped", "1 for a connection stopped by "
                                    "the operator", labels=["name"])
        configs = self.daemon.channels.configs
        for name, channel in sorted(self.daemon.channels.running.items()):
            status = channel.status()
            if isinstance(configs.get(name), GSMModemConfig):
                labels = [str(status.get("slot") or name), name]
                _modem_values(modem, labels, status)
                for state in sorted({*MODEM_STATES, status.get("state", "")} - {""}):
                    modem_state.add_metric([*labels, state], float(state == status.get("state")))
                for step, n in sorted((status.get("recoveries") or {}).items()):
                    recoveries.add_metric([*labels, str(step)], n)
            else:
                _uplink_values(uplink, uplink_state, uplink_counts, name, status)
        for name in sorted(set(configs) - set(self.daemon.channels.running)):
            stopped.add_metric([name], 1)
            conn = configs[name]
            if isinstance(conn, GSMModemConfig):
                # a modem the operator stopped keeps its state series: they vanished, and
                # an alert on sms_modem_state{state="ready"} == 0 resolved by itself
                labels = [str(getattr(conn, "slot", "") or name), name]
                for state in MODEM_STATES:
                    modem_state.add_metric([*labels, state], float(state == "stopped"))
        yield from modem.all()
        yield from (modem_state, recoveries)
        yield from uplink.all()
        yield from (uplink_state, uplink_counts, stopped)

    def _callbacks(self):
        from prometheus_client.core import CounterMetricFamily
        events = counters.events_by_state(self.daemon.journal)
        settled = counters.events_settled(self.daemon.journal)      # never decreasing
        yield _gauge("sms_callbacks_pending", "Callback events not yet delivered",
                     events.get("pending", 0))
        done = CounterMetricFamily("sms_callbacks_delivered", "Callback events delivered")
        done.add_metric([], settled.get("done", 0))
        yield done
        dead = CounterMetricFamily("sms_callbacks_given_up", "Callback events given up on")
        dead.add_metric([], settled.get("dead", 0))
        yield dead

    def _store(self):
        import shutil
        from prometheus_client.core import CounterMetricFamily
        writer = self.daemon.journal._writer
        commits = CounterMetricFamily("sms_store_commits", "Group commits (fsyncs) of the journal")
        commits.add_metric([], writer.commits)
        yield commits
        yield _histogram("sms_store_commit_batch_size", "Writes per group commit", [],
                         {(): writer.batch_sizes})
        yield _histogram("sms_store_commit_seconds", "Time of one commit's fsync of the WAL", [],
                         {(): writer.commit_seconds})
        usage = shutil.disk_usage(self.daemon.config.state_dir)
        yield _gauge("sms_store_disk_free_bytes", "Free bytes where the journal lives", usage.free)
        yield _gauge("sms_store_disk_size_bytes", "Size of the journal's file system", usage.total)

    def _health(self):
        from prometheus_client.core import GaugeMetricFamily
        family = GaugeMetricFamily("sms_health_status", "Health check: 0 pass, 1 warn, 2 fail",
                                   labels=["component"])
        for check in health.run_checks(self.daemon):
            family.add_metric([check.component], health.RANK[check.status])
        yield family


class _Families:
    """One metric family per field, labelled alike (sms_modem_sent_total{slot,name}, ...)."""

    def __init__(self, prefix: str, labels: list[str], fields: dict):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
        self.families = {}
        for field, (kind, text) in fields.items():
            cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            self.families[field] = cls(f"{prefix}_{field}", text, labels=labels)

    def add(self, field: str, labels: list[str], value) -> None:
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, (int, float)):
            self.families[field].add_metric(labels, value)

    def all(self):
        return self.families.values()


def _modem_values(modem: _Families, labels: list[str], status: dict) -> None:
    modem.add("signal_dbm", labels, (status.get("signal") or {}).get("dbm"))
    modem.add("registered", labels, bool(status.get("registered")))
    modem.add("balance", labels, status.get("balance"))
    modem.add("balance_read_timestamp_seconds", labels, status.get("balance_at"))
    for field in ("sent", "failed", "received", "reports", "resets_last_hour", "sent_today",
                  "daily_limit"):
        modem.add(field, labels, status.get(field))


def _uplink_values(uplink: _Families, states, counts, name: str, status: dict) -> None:
    state = status.get("state", "")
    uplink.add("up", [name], state in SENDING_STATES)
    window = status.get("window") or {}
    uplink.add("window_in_use", [name], window.get("in_use"))
    uplink.add("window_size", [name], window.get("size"))
    for known in sorted({*UPLINK_STATES, state} - {""}):
        states.add_metric([name, known], float(known == state))
    for event, n in sorted((status.get("counts") or {}).items()):
        if isinstance(n, (int, float)):
            counts.add_metric([name, event], n)


def _gauge(name: str, text: str, value):
    from prometheus_client.core import GaugeMetricFamily
    return GaugeMetricFamily(name, text, value=value)


def _histogram(name: str, text: str, labels: list[str], histograms: dict):
    from prometheus_client.core import HistogramMetricFamily
    family = HistogramMetricFamily(name, text, labels=labels)
    for values, histogram in histograms.items():
        buckets, total = histogram.snapshot()
        family.add_metric(list(values), buckets, total)
    return family


# --- access -------------------------------------------------------------------------------


def metrics_denied(config, request, throttle) -> tuple[int, str] | None:
    """(status, text) when the scrape is refused, else None. Wrong credentials count
    against the same per-address login throttle as the APIs."""
    settings = config.metrics
    address = client_address(request)
    if settings.allow and not in_networks(address, settings.allow):
        return 403, "address not allowed to read /metrics"
    if not settings.username:
        return None
    auth_pair = request.auth
    if not auth_pair:
        return 401, "metrics credential required"
    if throttle.blocked(address):
        return 429, "too many failed logins; try later"
    if auth_pair[0] != settings.username or not _password_ok(settings, auth_pair[1]):
        throttle.failed(address)
        return 401, "metrics credential required"
    return None


def _password_ok(settings, password: str) -> bool:
    if settings.password_hash:
        return _credential_cache.check(settings.username, password, settings.password_hash)
    import hmac
    return bool(settings.password) and hmac.compare_digest(password.encode(),
                                                           settings.password.encode())


def register(app: bottle.Bottle, services) -> None:
    daemon = services.control.monitor
    histograms = services.control.http_latency
    app.install(latency_plugin(histograms))
    if daemon is None:          # a bare app in a unit test: no daemon, no metrics
        return
    counters.ensure(daemon.journal)
    registry = []      # made at the first scrape: prometheus_client is ~2 MiB of RSS

    @app.route("/metrics", method="GET")
    def metrics():
        denied = metrics_denied(services.config, bottle.request, services.accounts.throttle)
        if denied:
            status, text = denied
            log.warning("metrics: refused %s: %s", client_address(bottle.request), text)
            headers = {"WWW-Authenticate": 'Basic realm="metrics"'} if status == 401 else {}
            raise bottle.HTTPResponse(f"{status} {text}\n", status=status, headers=headers,
                                      content_type="text/plain; charset=utf-8")
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        if not registry:
            registry.append(CollectorRegistry(auto_describe=False))
            registry[0].register(ApplianceCollector(daemon, histograms))
        bottle.response.content_type = CONTENT_TYPE_LATEST
        return generate_latest(registry[0])

    @app.route("/health", method="GET")
    def health_json():
        status, body = health.report(daemon)
        bottle.response.status = status
        bottle.response.content_type = "application/json"
        return json.dumps(body)
