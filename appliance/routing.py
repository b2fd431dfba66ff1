"""Which connection takes which part. Pure policy: no I/O, no threads.

Rules are tried in order; the first whose filters all match gives the candidate connections.
`failover` uses the first of them that can send (a modem ready, an uplink bound, a provider
up) and waits for it while it is busy: a later one takes over only while the ones before it
cannot send (stopped, recovering, unbound, down), so a burst does not spill from a
flat-rate SIM onto a paid aggregator. `balance` spreads parts
over them round robin, skipping those with no free slot. Without rules every connection is
a candidate, balanced. A part that failed transiently on a connection tries the others
first. A rule whose connections are all gone (deleted drivers) is skipped, so its messages
fall through to the next rule or to every connection; so is a `serviceprovider` naming a
connection that is gone (taken out of the config file while its messages waited): the rules
route them. A message whose every route is down simply waits in the queue
(store-and-forward).

Route tables have two owners (docs/api.md, `setroutes`): the config file's `[[routes]]`, and
a table set through the Ozeki API, kept in the documents table `routes` together with a
fingerprint of the file's routes at that moment. The API table wins until the file's routes
change; then the file wins again and the API table is dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import logging
from dataclasses import dataclass

from appliance.config import ConfigError, RouteConfig, build
from appliance.model import OutPart

log = logging.getLogger("appliance.routing")

ROUTES_TABLE = "routes"
API_ROUTES = "api"          # the one document of that table
ROUTE_MODES = ("failover", "balance")


@dataclass
class _Rule:
    config: RouteConfig
    counter: itertools.count

    def matches(self, part: OutPart) -> bool:
        c = self.config
        return (part.recipient.startswith(c.prefix) if c.prefix else True) \
            and (not c.user or c.user == part.user) \
            and (not c.messagetype or part.messagetype.upper().startswith(c.messagetype.upper())) \
            and (not c.serviceprovider or c.serviceprovider == part.serviceprovider)


class Router:
    def __init__(self, routes: tuple[RouteConfig, ...], connections: list[str],
                 aliases: dict[str, str] | None = None):
        self._rules = [_Rule(r, itertools.count()) for r in routes]
        self._default = _Rule(RouteConfig(connections=tuple(connections), mode="balance"),
                              itertools.count())
        self._known = frozenset(connections)
        self._gone_said: set[str] = set()    # serviceprovider names logged as gone
        self._aliases: dict[str, str] = {}   # Ozeki OPERATOR names -> connection names
        self.set_aliases(aliases or {})

    def set_connections(self, connections: list[str]) -> None:
        self._default = _Rule(RouteConfig(connections=tuple(connections), mode="balance"),
                              self._default.counter)
        self._known = frozenset(connections)
        self._aliases = {a: n for a, n in self._aliases.items() if a not in connections}
        self._gone_said = set()

    def set_routes(self, routes: tuple[RouteConfig, ...]) -> None:
        self._rules = [_Rule(r, itertools.count()) for r in routes]

    def needs_down(self) -> bool:
        """Whether `pick` wants to know which connections are down: only a failover rule of
        several connections does (the dispatcher asks the channels only then)."""
        return any(r.config.mode == "failover" and len(r.config.connections) > 1
                   for r in self._rules)

    def set_aliases(self, aliases: dict[str, str]) -> None:
        """A connection's own name wins over another connection's OPERATOR alias: the seed's
        default OPERATOR, `GSMModem0`, is our first modem's name, and a second modem set up
        from that table took over every message meant for the first."""
        names = set(self._default.config.connections)
        for alias, name in aliases.items():
            if alias in names and alias != name and self._aliases.get(alias) != name:
                log.warning("routing: %s's OPERATOR %r is the name of another connection;"
                            " messages for %r go to that connection", name, alias, alias)
        self._aliases = {alias: name for alias, name in aliases.items() if alias not in names}

    def routes(self) -> tuple[RouteConfig, ...]:
        return tuple(r.config for r in self._rules)

    def _only_connection(self, part: OutPart) -> str | None:
        """The one candidate when no rule, alias or earlier failure can matter: no route
        rules and a single connection (what `candidates` would return, rotation and all)."""
        if self._rules or part.serviceprovider or len(self._default.config.connections) != 1:
            return None
        return self._default.config.connections[0]

    def candidates(self, part: OutPart) -> list[str]:
        """Connections that may carry `part`, best first. A `serviceprovider` names one
        connection (or its operator alias), unless route rules match on it: then the
        rules choose, as for a message without one."""
        return self._candidates(part)[0]

    def _candidates(self, part: OutPart) -> tuple[list[str], str]:
        """(connections, the rule's mode)."""
        if part.serviceprovider and not self._routes_on(part.serviceprovider):
            name = self._aliases.get(part.serviceprovider, part.serviceprovider)
            if name in self._known:
                return [name], "balance"
            self._say_gone(part.serviceprovider)
        rule = next((r for r in self._rules if r.matches(part) and self._lives(r)),
                    self._default)
        names = [n for n in rule.config.connections if n in self._known]
        if rule.config.mode == "balance" and names:
            shift = next(rule.counter) % len(names)
            names = names[shift:] + names[:shift]
        return _tried_last(names, part.tried), rule.config.mode

    def _lives(self, rule: _Rule) -> bool:
        """A rule naming only connections that are gone is skipped (a driver deleted
        through the API: its messages waited, queued, for the whole validity)."""
        return any(name in self._known for name in rule.config.connections)

    def _say_gone(self, serviceprovider: str) -> None:
        """Once per name (until the connections change): intake refuses a name no
        connection has, so this is a message that waited while its connection was removed."""
        if serviceprovider not in self._gone_said and len(self._gone_said) < 64:
            self._gone_said.add(serviceprovider)
            log.warning("routing: messages for %r, which is not a connection any more, go by"
                        " the routing table", serviceprovider)

    def _routes_on(self, serviceprovider: str) -> bool:
        return any(rule.config.serviceprovider == serviceprovider for rule in self._rules)

    def pick(self, part: OutPart, free: dict[str, int],
             down: frozenset = frozenset()) -> str | None:
        """The connection for `part` now, or None: the part waits. Balance: the first
        candidate with a free slot. Failover: the first candidate that can send (not in
        `down`, and running: in `free`), and only if it has a free slot."""
        only = self._only_connection(part)
        if only is not None:                 # the common case, without a list per part
            return only if free.get(only, 0) > 0 else None
        names, mode = self._candidates(part)
        if mode == "failover" and len(names) > 1:
            name = next((n for n in names if n in free and n not in down), None)
            return name if name is not None and free[name] > 0 else None
        for name in names:
            if free.get(name, 0) > 0:
                return name
        return None


def _tried_last(names: list[str], tried: tuple[str, ...]) -> list[str]:
    fresh = [n for n in names if n not in tried]
    return fresh + [n for n in names if n in tried]


# --- route tables: validation and ownership ------------------------------------------------


def routes_from_tables(items: list[dict], known: set[str]) -> tuple[RouteConfig, ...]:
    """Validate route tables as the config file's `[[routes]]` are; every connection must be
    one of `known`. Raises ConfigError naming the rule and key."""
    routes = tuple(build(RouteConfig, item, f"routes[{i}]") for i, item in enumerate(items))
    for i, route in enumerate(routes):
        if route.mode not in ROUTE_MODES:
            raise ConfigError(f"routes[{i}].mode: expected failover or balance")
        if not route.connections:
            raise ConfigError(f"routes[{i}].connections: at least one connection is needed")
        for name in route.connections:
            if name not in known:
                raise ConfigError(f"routes[{i}].connections: no connection named {name!r}"
                                  f" (known: {', '.join(sorted(known)) or 'none'})")
    return routes


def route_tables(routes: tuple[RouteConfig, ...]) -> list[dict]:
    return [{**dataclasses.asdict(r), "connections": list(r.connections)} for r in routes]


def fingerprint(routes: tuple[RouteConfig, ...]) -> str:
    text = json.dumps(route_tables(routes), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def effective_routes(file_routes: tuple[RouteConfig, ...], documents,
                     known: set[str]) -> tuple[tuple[RouteConfig, ...], str]:
    """(routes, owner) at start: the API table while the file's routes are unchanged since it
    was set, otherwise the file's (a stale API table is removed)."""
    doc = documents.get(ROUTES_TABLE, API_ROUTES) if documents is not None else None
    if doc is None:
        return file_routes, "file"
    if doc.get("file_fingerprint") != fingerprint(file_routes):
        log.warning("routing: the config file's routes changed since the API set the table;"
                    " using the file's")
        documents.remove(ROUTES_TABLE, API_ROUTES)
        return file_routes, "file"
    tables = doc.get("routes", [])
    gone = {name for item in tables if isinstance(item, dict)
            for name in item.get("connections") or [] if name not in known}
    if gone:    # deleted drivers: their rules are skipped while they are gone, not the table
        log.warning("routing: the API route table names connections that are gone (%s);"
                    " rules with none left are skipped", ", ".join(sorted(map(str, gone))))
    try:
        return routes_from_tables(tables, known | gone), "api"
    except ConfigError as exc:
        log.error("routing: the API route table is not usable (%s); using the file's", exc)
        return file_routes, "file"


def save_api_routes(documents, routes: tuple[RouteConfig, ...],
                    file_routes: tuple[RouteConfig, ...]) -> None:
    documents.put(ROUTES_TABLE, {"name": API_ROUTES, "routes": route_tables(routes),
                                 "file_fingerprint": fingerprint(file_routes)})
