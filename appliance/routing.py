"""Which connection takes which part. Pure policy: no I/O, no threads.

Rules are tried in order; the first whose filters all match gives the candidate connections.
`failover` uses them in the listed order, `balance` spreads parts over them round robin.
Without rules every connection is a candidate, balanced. A part that failed transiently on a
connection tries the others first. Connections with no free slot are skipped, so a message
whose every route is down simply waits in the queue (store-and-forward).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from appliance.config import RouteConfig
from appliance.model import OutPart


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
        self._aliases = aliases or {}   # Ozeki OPERATOR names -> connection names

    def set_connections(self, connections: list[str]) -> None:
        self._default = _Rule(RouteConfig(connections=tuple(connections), mode="balance"),
                              self._default.counter)

    def set_routes(self, routes: tuple[RouteConfig, ...]) -> None:
        self._rules = [_Rule(r, itertools.count()) for r in routes]

    def candidates(self, part: OutPart) -> list[str]:
        """Connections that may carry `part`, best first."""
        if part.serviceprovider:
            return [self._aliases.get(part.serviceprovider, part.serviceprovider)]
        rule = next((r for r in self._rules if r.matches(part)), self._default)
        names = list(rule.config.connections)
        if rule.config.mode == "balance" and names:
            shift = next(rule.counter) % len(names)
            names = names[shift:] + names[:shift]
        return _tried_last(names, part.tried)

    def pick(self, part: OutPart, free: dict[str, int]) -> str | None:
        """The first candidate with a free slot, or None: the part waits."""
        for name in self.candidates(part):
            if free.get(name, 0) > 0:
                return name
        return None


def _tried_last(names: list[str], tried: tuple[str, ...]) -> list[str]:
    fresh = [n for n in names if n not in tried]
    return fresh + [n for n in names if n in tried]
