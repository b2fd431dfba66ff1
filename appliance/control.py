"""The control plane: everything the web layer may ask of the running daemon, with types.

The daemon builds one `ControlPlane` and hands it to the web layer inside `Services`
(`services.control`). Handlers start and stop channels, run USSD codes, change the route
table, the do-not-disturb list and the address book through it, and the dashboard,
`/metrics` and `/health` read the daemon's state through `monitor`. A bare `Services` (a unit
test without a daemon) gets an empty plane: every daemon-backed part is None and the
handlers answer "not available" in their own dialect.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Callable, Protocol

from appliance import routing
from appliance.config import ConnectionConfig, RouteConfig

log = logging.getLogger("appliance.control")

ADDRESSBOOK_TABLE = "addressbook"


class ChannelControl(Protocol):
    """The running connections (daemon.Channels): what runs, what is configured, and
    start/stop, which replace a running channel of the same name."""

    configs: dict[str, ConnectionConfig]
    running: dict[str, object]

    def start(self, conn: ConnectionConfig) -> None: ...

    def stop(self, name: str, forget: bool = False) -> bool: ...


class Monitored(Protocol):
    """What the dashboard, /metrics and /health read (the daemon, read-only)."""

    config: object
    journal: object
    channels: ChannelControl
    clock: object
    started: float

    def healthy(self) -> bool: ...


class RouteControl:
    """The outbound route table: the config file's, or one set through the API (persisted in
    the documents, winning over the file's until the file's routes change)."""

    def __init__(self, router, documents, file_routes: tuple[RouteConfig, ...],
                 connection_names: Callable[[], set[str]], wake: Callable[[], None]):
        self._router = router
        self._documents = documents
        self._file_routes = file_routes
        self._connection_names = connection_names
        self._wake = wake
        self._lock = threading.Lock()        # persist + apply of one table is not interleaved
        self.owner = "file"                  # or "api": see routing.effective_routes

    def routes(self) -> tuple[RouteConfig, ...]:
        return self._router.routes()

    def connection_names(self) -> set[str]:
        return self._connection_names()

    def apply_stored(self) -> None:
        """At start: the API's table when it was set for the file's current routes."""
        routes, owner = routing.effective_routes(self._file_routes, self._documents,
                                                 self._connection_names())
        with self._lock:
            self._router.set_routes(routes)
            self.owner = owner
        if owner == "api":
            log.info("daemon: %d routes set through the API are in use", len(routes))

    def set(self, routes: tuple[RouteConfig, ...]) -> None:
        with self._lock:
            routing.save_api_routes(self._documents, routes, self._file_routes)
            self._router.set_routes(routes)
            self.owner = "api"
        self._wake()

    def reset(self) -> None:
        with self._lock:
            self._documents.remove(routing.ROUTES_TABLE, routing.API_ROUTES)
            self._router.set_routes(self._file_routes)
            self.owner = "file"
        self._wake()


class AddressBook:
    """Contacts (`name`, `phone`, `description`, `groups`, `user`; `user` "" is shared) in the
    documents store."""

    def __init__(self, documents):
        self._documents = documents

    def all(self) -> list[dict]:
        return self._documents.all(ADDRESSBOOK_TABLE) if self._documents is not None else []

    def get(self, name: str) -> dict | None:
        return self._documents.get(ADDRESSBOOK_TABLE, name) if self._documents is not None \
            else None

    def put(self, contact: dict) -> None:
        self._require().put(ADDRESSBOOK_TABLE, contact)

    def remove(self, name: str) -> bool:
        return self._require().remove(ADDRESSBOOK_TABLE, name)

    def drop_user(self, owner: str) -> int:
        """A deleted user's private contacts go with it (shared ones stay)."""
        gone = [c["name"] for c in self.all() if c.get("user", "") == owner]
        for name in gone:
            self._documents.remove(ADDRESSBOOK_TABLE, name)
        return len(gone)

    def _require(self):
        if self._documents is None:
            raise LookupError("the address book is not available")
        return self._documents


def _empty_dnd():
    from appliance.web.gate import DndList       # the policy object lives beside the gate
    return DndList(None)


@dataclass
class ControlPlane:
    channels: ChannelControl | None = None   # start/stop connections, what runs
    routes: RouteControl | None = None       # listroutes / setroutes / resetroutes
    documents: object | None = None          # store.documents.Documents: drivers' tables
    monitor: Monitored | None = None         # the daemon, read by dashboard/metrics/health
    dnd: object = field(default_factory=_empty_dnd)             # web.gate.DndList
    addressbook: AddressBook = field(default_factory=lambda: AddressBook(None))
    sim: object | None = None                # demo mode's simulated network (sim.network)
    hook_gate: object | None = None          # webhooks' dedupe and rate state, for /status
    http_latency: dict = field(default_factory=dict)   # dialect -> latency histogram
    report_tokens: object | None = None      # provider.report_token.ReportTokens

    def modem(self, wanted: str):
        """The running channel `wanted` names, or None: its connection name or slot
        (`GSMModem0`, `slot1`, in any case), or a slot's number as users type it (`1`)."""
        if self.channels is None:
            return None
        wanted = wanted.strip()
        return self.channels.running.get(self._connection_named(wanted) or wanted)

    def _connection_named(self, wanted: str) -> str | None:
        """The connection whose name or slot is `wanted`: exactly first, then the forms a
        user types (the dashboard, docs and the simulator say both `slot1` and `1`)."""
        named = [(name, getattr(conn, "slot", "") or "")
                 for name, conn in self.channels.configs.items()]
        for name, slot in named:
            if wanted in (name, slot):
                return name
        forms = {wanted.casefold()} | ({f"slot{int(wanted)}"} if wanted.isdigit() else set())
        for name, slot in named:
            if forms & {name.casefold(), slot.casefold()}:
                return name
        return None

    def slot_of(self, wanted: str) -> str:
        """The slot of the connection `wanted` names (as modem() reads it), or `wanted`."""
        name = self._connection_named(wanted.strip()) if self.channels is not None else None
        if name is None:
            return wanted
        return getattr(self.channels.configs[name], "slot", "") or wanted

    def ussd_modems(self) -> list[str]:
        """The running modems that can run a USSD code, as `slot (name)`: for an error."""
        running = self.channels.running if self.channels is not None else {}
        return [f"{getattr(worker, 'slot', name)} ({name})" for name, worker in running.items()
                if hasattr(worker, "run_ussd")]

    def knows_serviceprovider(self, name: str) -> bool:
        """Whether a message may ask for `name` (`serviceprovider`, `to_connection`): a
        connection the daemon has, running, stopped or API-created, the operator name of
        one, or the `serviceprovider` of a route rule. Any other name would leave the
        message queued until its validity ends, so the dialects refuse it. Without a
        daemon nothing can be checked: any name."""
        if self.routes is None or self.channels is None:
            return True
        return (name in self.routes.connection_names()
                or any(getattr(c, "operator", "") == name for c in self.channels.configs.values())
                or any(route.serviceprovider == name for route in self.routes.routes()))

    def ussd_modem(self, wanted: str):
        """The running modem that can run a USSD code, by name or slot, or None."""
        worker = self.modem(wanted)
        return worker if worker is not None and hasattr(worker, "run_ussd") else None


def for_daemon(daemon) -> ControlPlane:
    """The plane over a running daemon's parts (called once, in Daemon.__init__)."""
    from appliance.web.gate import DndList
    routes = RouteControl(daemon.router, daemon.documents, daemon.config.routes,
                          daemon.connection_names, daemon.dispatcher.wake)
    dnd = DndList(daemon.documents, on_added=daemon.journal.withhold_from)
    daemon.journal.withheld = dnd.blocks       # a part handed back to a number now listed
    from appliance.provider.report_token import ReportTokens
    return ControlPlane(channels=daemon.channels, routes=routes, documents=daemon.documents,
                        monitor=daemon, dnd=dnd,
                        addressbook=AddressBook(daemon.documents),
                        report_tokens=ReportTokens(daemon.documents))
