"""`check-config` and `run` share one validation: every key, its type, and the range or
meaning `run` depends on. All problems of a file are reported in one pass, each with the
line of the file and the key, so an administrator fixes them in one edit.

`config.from_dict` stays the structural parser (types, unknown keys); this module walks the
same tables key by key so that one mistake does not hide the next, then adds the rules
that make `run` fail later (ports, pins, lengths, phone numbers, duplicates).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import tomllib
import typing
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from appliance import config as cfg
from appliance.errors import ConfigError, ValidationError
from appliance.integrations import settings as integration_settings


@dataclass(frozen=True)
class Problem:
    line: int          # 0: not tied to one line
    key: str
    text: str

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        return f"{where}: {self.key}: {self.text}"


class ConfigProblems(ConfigError):
    """Every problem of a file; str() lists them one per line."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(p.render(source) for p in problems))


def load(path: str | Path) -> cfg.Config:
    """Read, validate and return the config; ConfigProblems lists everything wrong."""
    config, problems = check_file(path)
    if problems:
        raise ConfigProblems(str(path), problems)
    return config


def check_file(path: str | Path) -> tuple[cfg.Config | None, list[Problem]]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Problem(0, "file", "no such file")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(0, "file", f"cannot read it: {exc}")]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        return None, [Problem(int(match.group(1)) if match else 0, "toml",
                              f"not valid TOML: {exc}")]
    return check_data(data, text, str(path))


def check_data(data: dict, text: str = "", source: str = "") -> tuple[cfg.Config | None,
                                                                       list[Problem]]:
    checker = _Checker(line_index(text))
    checker.document(data)
    if checker.problems:
        return None, checker.sorted()
    try:                       # the structural parser must agree; anything left is reported
        config = cfg.from_dict(data, source=source)
    except ConfigError as exc:
        return None, [Problem(checker.line_of(str(exc).split(":")[0]), "config", str(exc))]
    return config, []


def warnings(config: cfg.Config, path: str | Path) -> list[Problem]:
    """What `run` accepts but an administrator should know: an SMPP bind field longer than
    the protocol allows (uplink/bind_fields.py; some SMSCs accept it, the rest refuse), an
    HTTP Server connection anyone on the network may deliver fake SMS and reports to."""
    from appliance.provider.settings import HTTPServerConfig
    from appliance.uplink import bind_fields

    try:
        index = line_index(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        index = {}
    found = []
    for conn in config.connections:
        if isinstance(conn, cfg.SMPPConfig):
            for key, note in bind_fields.over_limit_by_key(conn):
                found.append(Problem(index.get(("connections", conn.name, key), 0),
                                     f"connections.{conn.name}.{key}", note))
        if isinstance(conn, HTTPServerConfig) and conn.open_intake():
            found.append(Problem(index.get(("connections", conn.name, "baseurl"), 0),
                                 f"connections.{conn.name}.baseurl", conn.open_intake()))
    return found


# --- line numbers -------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*\[(\[)?\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*((?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+))*)\s*=""")


def _dotted(text: str) -> list[str]:
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([A-Za-z0-9_-]+)', text)
    return [a or b or c for a, b, c in parts]


def line_index(text: str) -> dict[tuple, int]:
    """(table..., key) -> the line where it is written; arrays of tables get their index."""
    index: dict[tuple, int] = {}
    table: tuple = ()
    counts: dict[tuple, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            parts = tuple(_dotted(header.group(2)))
            if header.group(1):
                counts[parts] = counts.get(parts, -1) + 1
                parts += (counts[parts],)
            table = parts
            index.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            index.setdefault(table + tuple(_dotted(key.group(1))), number)
    return index


def _path_tuple(path: str) -> tuple:
    out: list = []
    for piece in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        out.append(int(piece[1:-1]) if piece.startswith("[") else piece)
    return tuple(out)


# --- the rules --------------------------------------------------------------------------

def _port(value) -> str | None:
    return None if 0 <= value <= 65535 else "must be a TCP port, 0..65535"


def _port1(value) -> str | None:
    return None if 1 <= value <= 65535 else "must be a TCP port, 1..65535"


def _at_least(minimum):
    return lambda v: None if v >= minimum else f"must be {minimum} or more"


def _positive(value) -> str | None:
    return None if value > 0 else "must be more than 0"


def _between(low, high):
    return lambda v: None if low <= v <= high else f"must be {low}..{high}"


def _one_of(*choices):
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"


def _pin(value) -> str | None:
    return None if value == -1 or 0 <= value <= 27 else "must be a BCM GPIO pin 0..27, or -1"


def _number(value) -> str | None:
    if not value:
        return None
    from appliance.compose import normalize_recipient
    try:
        normalize_recipient(value)
    except ValidationError:
        return f"{value!r} is not a phone number"
    return None


def _originator(value) -> str | None:
    if not value:
        return None
    from appliance.compose import check_originator
    try:
        check_originator(value)
    except ValidationError:
        return f"{value!r} is not a sender: up to 11 letters/digits, or a phone number"
    return None


def _secret(key: str) -> bool:
    return any(word in key for word in ("password", "secret", "token")) or key == "pincode"


def _shown(key: str, raw) -> str:
    """A refused value as a problem line shows it: a secret by its length only (the line
    reaches terminals and Ansible's output)."""
    if _secret(key):
        return f"{len(str(raw))} characters"
    return repr(raw)


def _password_hash(value) -> str | None:
    from appliance.auth import hash_problem
    return hash_problem(value) if value else None


def _password(value) -> str | None:
    return None if not value or len(value) >= 8 else "must have at least 8 characters"


def _url(value) -> str | None:
    if not value:
        return None
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return f"{value!r} is not an http:// or https:// URL"
    return None


def _regex(value) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"is not a regular expression: {exc}"
    return None


def _priority(value) -> str | None:
    from appliance.priority import NAMES
    return None if value.lower() in NAMES else "must be alert, high, normal, bulk or low"


def _networks(values) -> str | None:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            return f"{value!r} is not an address or network"
    return None


def _absolute_path(value: str) -> str | None:
    # The service's working directory is not the config's: a relative path (or a bare
    # number such as `5`) would put the journal wherever the daemon happened to start.
    if not value.strip():
        return "must not be empty"
    return None if value.startswith("/") else "must be an absolute path"


def _ports(values) -> str | None:
    bad = [v for v in values if not 1 <= v <= 65535]
    return f"{bad[0]} is not a TCP port 1..65535" if bad else None


RULES: dict[type, dict[str, typing.Callable]] = {
    cfg.HttpConfig: {"port": _port, "extra_ports": _ports, "tls_port": _port,
                     "threads": _between(1, 256),
                     "engine": _one_of("loop", "waitress", "wsgiref"),
                     "login_failures_per_minute": _at_least(0)},
    cfg.StoreConfig: {"default_validity_hours": _at_least(0), "dedupe_window_seconds":
                      _at_least(0), "group_commit_max": _between(1, 100000),
                      "keep_days": _at_least(0),
                      "reroute_after_seconds": _positive,
                      "inbound_partial_after_seconds": _positive,
                      "state_dir": _absolute_path},
    cfg.AdminConfig: {"password": _password, "password_hash": _password_hash, "phone": _number,
                      "alert_url": _url},
    cfg.MetricsConfig: {"password": _password, "password_hash": _password_hash,
                        "allow": _networks},
    cfg.PhoneSystemConfig: {"allow": _networks},
    cfg.DemoConfig: {"modems": _between(0, 16), "send_seconds": _at_least(0),
                     "report_seconds": _at_least(0)},
    cfg.GSMModemConfig: {
        "baudrate": _positive, "limittompm": _at_least(0), "submittimeout": _positive,
        "keepaliveperiod": _positive, "phonenumber": _number,
        "smsservicecenteraddress": _number, "power_pin": _pin, "pwrkey_pin": _pin,
        "power_off_seconds": _at_least(0), "pwrkey_seconds": _at_least(0),
        "boot_seconds": _at_least(0), "ussd_interval_hours": _positive,
        "balance_regex": _regex, "daily_limit": _at_least(0),
        "random_delay_seconds": _at_least(0), "deregistered_timeout": _positive,
        "max_failures": _at_least(1), "max_resets_per_hour": _at_least(0)},
    cfg.SMPPConfig: {
        "port": _port1, "windowsize": _between(1, 1000), "keepaliveperiod": _positive,
        "mode": _one_of("transmitter", "receiver", "transceiver"),
        "protocolversion": _one_of("3.3", "3.4", "5.0"), "sourceaddrton": _between(-1, 6),
        "sourceaddrnpi": _between(-1, 18), "destaddrton": _between(0, 6),
        "destaddrnpi": _between(0, 18), "limittompm": _at_least(0), "submittimeout": _positive,
        "reconnectdelay": _positive, "reconnectmaxdelay": _positive,
        "messageidbase": _one_of("auto", "hex", "decimal", "hex-decimal", "decimal-hex")},
    cfg.UserConfig: {"password": _password, "password_hash": _password_hash,
                     "credits": _at_least(-1), "ip_allow": _networks,
                     "ip_deny": _networks, "reporturl": _url, "inbound_url": _url,
                     "originator": _originator, "priority": _priority},
    cfg.RouteConfig: {"mode": _one_of("failover", "balance")},
}


class _Checker:
    def __init__(self, index: dict[tuple, int]):
        self.index = index
        self.problems: list[Problem] = []

    def line_of(self, path: str) -> int:
        key = _path_tuple(path)
        while key:
            if key in self.index:
                return self.index[key]
            key = key[:-1]
        return 0

    def add(self, path: str, text: str) -> None:
        self.problems.append(Problem(self.line_of(path), path, text))

    def sorted(self) -> list[Problem]:
        return sorted(self.problems, key=lambda p: (p.line or 10**9, p.key))

    # --- walking the document ---

    def document(self, data: dict) -> None:
        sections = cfg.SECTIONS         # the structural parser's own list: one source
        values: dict = {}
        self.integrations(data)
        for key, body in data.items():
            if key in integration_settings.SECTIONS:
                continue
            if key in sections:
                values[key] = self.table(sections[key], body, key)
            elif key == "connections":
                values[key] = self.connections(body)
            elif key == "users":
                values[key] = self.users(body)
            elif key == "routes":
                values[key] = self.routes(body)
            else:
                known = [*sections, "connections", "users", "routes",
                         *integration_settings.SECTIONS]
                self.add(key, f"unknown section (expected {', '.join(known[:-1])} or"
                         f" {known[-1]})")
        self.across(values)

    def integrations(self, data: dict) -> None:
        """Hooks, mail and rules check themselves (templates, patterns, addresses)."""
        subset = {k: v for k, v in data.items() if k in integration_settings.SECTIONS}
        for problem in integration_settings.problems(subset):
            where, _, message = problem.partition(": ")
            self.add(where, message or problem)

    def table(self, cls, body, path: str, **fixed) -> dict:
        """Coerce every key of one table, collecting problems; returns the good values."""
        if not isinstance(body, dict):
            self.add(path, "expected a table")
            return {}
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values = dict(fixed)
        for key, raw in body.items():
            name = key.lower()
            where = f"{path}.{key}"
            if name not in fields or name in fixed:
                self.add(where, "unknown key")
                continue
            try:
                values[name] = cfg.coerce(where, hints[name], raw)
            except ConfigError as exc:
                self.add(where, str(exc).split(": ", 1)[-1])
                continue
            rule = RULES.get(cls, {}).get(name)
            error = rule(values[name]) if rule else None
            if error:
                self.add(where, error if "got" in error else f"{error} (got {_shown(name, raw)})")
        for name, f in fields.items():
            missing = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if missing and name not in values:
                self.add(f"{path}.{name}", "required key is missing")
        return values

    def connections(self, body) -> list[dict]:
        if not isinstance(body, dict):
            self.add("connections", "expected a table of connections")
            return []
        found = []
        for name, table in body.items():
            path = f"connections.{name}"
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", name):
                self.add(path, "name must be 1-40 letters, digits, '_', '.' or '-'")
            table = table if isinstance(table, dict) else {}
            kind = table.get("type")
            cls = cfg.CONNECTION_TYPES.get(kind)
            if cls not in RULES:         # a kind this checker has no rules for: parse it
                try:
                    cfg.connection_from_table(name, table, path)
                except ConfigError as exc:      # its key and line, as for other tables
                    where, _, message = str(exc).partition(": ")
                    self.add(where if where.startswith(path) else path, message or str(exc))
                found.append({"name": name, "type": kind})   # routes may name it all the same
                continue
            body_ = {k: v for k, v in table.items() if k != "type"}
            values = self.table(cls, body_, path, name=name, type=kind)
            self.connection_meaning(cls, values, path)
            found.append(values)
        return found

    def connection_meaning(self, cls, values: dict, path: str) -> None:
        if cls is cfg.GSMModemConfig and "modemorport" in values and not values["modemorport"]:
            self.add(f"{path}.modemorport", "required for a GSMModem connection")
        if cls is cfg.SMPPConfig:
            if not values.get("host"):
                self.add(f"{path}.host", "required for an SMPP connection")
            low, high = values.get("reconnectdelay", 1.0), values.get("reconnectmaxdelay", 60.0)
            if high < low:
                self.add(f"{path}.reconnectmaxdelay", "must not be less than reconnectdelay")

    def users(self, body) -> list[dict]:
        if not isinstance(body, dict):
            self.add("users", "expected a table of users")
            return []
        users = []
        for name, table in body.items():
            path = f"users.{name}"
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", name):
                self.add(path, "name must be 1-40 letters, digits, '_', '.' or '-'")
            users.append(self.table(cfg.UserConfig, table, path, name=name))
        return users

    def routes(self, body) -> list[dict]:
        if not isinstance(body, list):
            self.add("routes", "expected an array of tables ([[routes]])")
            return []
        return [self.table(cfg.RouteConfig, r, f"routes[{i}]") for i, r in enumerate(body)]

    # --- rules across tables ---

    def across(self, values: dict) -> None:
        connections = values.get("connections", [])
        self.shared_ports(connections)
        self.shared_pins(connections)
        names = {c["name"] for c in connections}
        demo = values.get("demo", {})
        if demo.get("enabled"):
            from appliance.sim.demo import demo_indexes
            taken = list(names) + [c.get("slot", "") for c in values.get("connections", [])]
            names |= {f"GSMModem{i}" for i in demo_indexes(demo.get("modems", 2), taken)}
        for i, route in enumerate(values.get("routes", [])):
            for name in route.get("connections", ()):
                if name not in names:
                    self.add(f"routes[{i}].connections", f"no connection named {name!r}")
        http = values.get("http", {})
        if bool(http.get("tls_cert")) != bool(http.get("tls_key")):
            self.add("http.tls_cert", "tls_cert and tls_key go together")
        missing = False
        for key in ("tls_cert", "tls_key"):
            if http.get(key) and not Path(http[key]).is_file():
                self.add(f"http.{key}", f"no such file: {http[key]}")
                missing = True
        if http.get("tls_cert") and http.get("tls_key") and not missing:
            self.tls_pair(http["tls_cert"], http["tls_key"])
        ports = [http.get("port", cfg.HttpConfig.port)] + list(http.get("extra_ports", ()))
        if len([p for p in ports if p]) != len({p for p in ports if p}):
            self.add("http.extra_ports", "a port is listed twice")
        if http.get("tls_port"):
            if not http.get("tls_cert"):
                self.add("http.tls_port", "HTTPS needs tls_cert and tls_key")
            if http["tls_port"] in ports:
                self.add("http.tls_port", "also a plain HTTP port (port or extra_ports)")
            if http.get("engine", cfg.HttpConfig.engine) != "loop":
                self.add("http.tls_port", "only the default engine (\"loop\") serves HTTP and"
                         " HTTPS at once")

    def tls_pair(self, cert: str, key: str) -> None:
        """What `run` does with them (files that exist but are no certificate and key, or
        a key of another certificate, passed here and stopped the daemon with '[SSL] PEM
        lib', naming no file)."""
        import ssl
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as exc:
            self.add("http.tls_cert", f"{cert} with {key} cannot serve HTTPS: "
                     f"{getattr(exc, 'reason', None) or exc}")

    def shared_ports(self, connections: list[dict]) -> None:
        owner: dict[str, str] = {}
        for conn in connections:
            port = conn.get("modemorport")
            if not port:
                continue
            if port in owner:
                self.add(f"connections.{conn['name']}.modemorport",
                         f"{port} is already the port of {owner[port]}: one worker per port")
            else:
                owner[port] = conn["name"]

    def shared_pins(self, connections: list[dict]) -> None:
        owner: dict[int, str] = {}
        for conn in connections:
            for key in ("power_pin", "pwrkey_pin"):
                pin = conn.get(key, -1)
                if pin == -1:
                    continue
                if pin in owner:
                    self.add(f"connections.{conn['name']}.{key}",
                             f"GPIO {pin} is already used by {owner[pin]}")
                else:
                    owner[pin] = f"{conn['name']}.{key}"
