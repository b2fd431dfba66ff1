"""Configuration: one TOML file read into frozen dataclasses. Strict: unknown keys are errors.

Connections use the lower-case keys of Ozeki's configdriver tables (seed 000), so the file
and the `configdriver` HTTP action share one vocabulary: `connection_from_table` parses both.
Values from the HTTP API arrive as strings; `coerce` turns "on"/"off", "19200" and the like
into the field's type, so a typo is an error with the key's name rather than a silent default.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from appliance.errors import ConfigError
from appliance.gsm.ussd import ussd_code_problem
from appliance.provider.settings import (HTTPClientConfig, HTTPServerConfig, SMTPConfig,
                                         without_ignored_keys)

DEFAULT_CONFIG_PATH = Path("/etc/sms-appliance/config.toml")
DEFAULT_STATE_DIR = Path("/var/lib/sms-appliance")
# SMPP `defaultalphabet` spellings -> the alphabet (uplink/codec.py applies it)
SMPP_ALPHABETS = {"gsm": "gsm", "gsm0338": "gsm", "gsm7": "gsm", "ascii": "ascii",
                  "ia5": "ascii", "us-ascii": "ascii", "latin1": "latin1", "latin-1": "latin1",
                  "iso-8859-1": "latin1", "iso8859-1": "latin1"}

_TRUE = {"true", "on", "yes", "1"}
_FALSE = {"false", "off", "no", "0"}


@dataclass(frozen=True)
class HttpConfig:
    host: str = "0.0.0.0"
    port: int = 9501
    extra_ports: tuple[int, ...] = ()
    tls_cert: str = ""
    tls_key: str = ""
    # HTTPS on this port beside plain HTTP on `port` and `extra_ports` (as Ozeki's 9508 beside
    # 9501: a UPS or a PLC that cannot do TLS keeps its URL); 0: tls_cert makes every port HTTPS
    tls_port: int = 0
    threads: int = 16
    engine: str = "loop"              # event loop (web/loop_server.py); or "waitress", "wsgiref"
    login_failures_per_minute: int = 10


@dataclass(frozen=True)
class MetricsConfig:
    """/metrics: open on the LAN by default; a credential of its own and an allow list."""
    username: str = ""
    password: str = ""
    password_hash: str = ""              # `sms-appliance` hash format, instead of password
    allow: tuple[str, ...] = ()          # CIDRs or addresses; empty = anyone who reaches the port


@dataclass(frozen=True)
class StoreConfig:
    state_dir: str = str(DEFAULT_STATE_DIR)
    default_validity_hours: float = 72.0
    dedupe_window_seconds: int = 0
    group_commit_max: int = 512
    keep_days: int = 30
    reroute_after_seconds: float = 300.0           # a channel stalled mid-message: resend whole
    inbound_partial_after_seconds: float = 3600.0  # a long inbound SMS still incomplete: show it

    def __post_init__(self):
        for key in ("reroute_after_seconds", "inbound_partial_after_seconds"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"store.{key}: must be more than 0 seconds")


@dataclass(frozen=True)
class AdminConfig:
    password: str = ""
    password_hash: str = ""
    phone: str = ""
    alert_url: str = ""


@dataclass(frozen=True)
class DemoConfig:
    enabled: bool = False
    modems: int = 2
    send_seconds: float = 1.0
    report_seconds: float = 1.0


@dataclass(frozen=True)
class PhoneSystemConfig:
    """Seed 002: Username/Password "are only required if office user authentication is set"."""

    auth_required: bool = True        # off: requests without credentials, from `allow` only
    allow: tuple[str, ...] = ()       # addresses/networks that may send without credentials
    user: str = "admin"               # the account such requests send as (credits, folders)
    extensions: tuple[int, ...] = ()  # ApiExtension numbers accepted; empty: any number


@dataclass(frozen=True)
class GSMModemConfig:
    """A modem slot. Ozeki keys first, then the appliance's own (power, USSD, budgets)."""

    name: str
    type: str = "GSMModem"
    modemorport: str = ""
    baudrate: int = 115200
    pincode: str = ""
    limittompm: int = 20
    submittimeout: float = 60.0
    deliveryreport: bool = True
    report_timeout_hours: float = 48.0  # a part without a report ends 'expired' after this
    smsservicecenteraddress: str = ""
    keepaliveperiod: float = 10.0
    send: bool = True
    receive: bool = True
    autoconnect: bool = True
    phonenumber: str = ""
    operator: str = ""
    slot: str = ""
    usb_device: str = ""
    power_pin: int = -1
    power_active_high: bool = True
    power_off_seconds: float = 3.0
    pwrkey_pin: int = -1
    pwrkey_seconds: float = 2.5
    pwrkey_active_high: bool = True
    boot_seconds: float = 20.0
    ussd_balance: str = ""
    ussd_interval_hours: float = 24.0
    balance_regex: str = r"(\d[\d.,]*\d|\d)"    # the first amount; "1,234.50" whole
    balance_low: float = -1.0
    daily_limit: int = 0
    random_delay_seconds: float = 0.0
    deregistered_timeout: float = 120.0
    max_failures: int = 3
    max_resets_per_hour: int = 4      # recovery resets per hour; past it the modem waits (0: no cap)
    imei: str = ""                    # if set, a port answering with another IMEI is refused
    iccid: str = ""                   # if set, a SIM with another ICCID is refused
    # seed 000 GSM modem keys with a behaviour here (docs/api.md "Drivers")
    gsmmodeminit: str = "AT"          # sent after the appliance's own init; "AT" = nothing
    gsmmodeminit2: str = ""
    gsmmodeminit3: str = ""
    keepaliverequest: bool = True     # off: no AT health poll every keepaliveperiod
    submittimeoutaction: str = "SubmitFailed"   # or SubmitSuccess (see docs/api.md)
    ussdmethod: str = "AT+CUSD"       # or ATD (dial the code)


@dataclass(frozen=True)
class SMPPConfig:
    """An upstream SMPP aggregator (seed 000 SMPP keys, lower case)."""

    name: str
    type: str = "SMPP"
    host: str = ""
    port: int = 2775
    username: str = ""
    password: str = ""
    systemtype: str = ""
    mode: str = "transceiver"
    windowsize: int = 20               # seed 000 default
    keepaliveperiod: float = 30.0
    protocolversion: str = "3.4"
    sourceaddrton: int = -1
    sourceaddrnpi: int = -1
    destaddrton: int = 1
    destaddrnpi: int = 1
    smscaccount: str = ""              # receipts match across its binds (default: username@host)
    defaultalphabet: str = "gsm"       # data_coding 0 on this link: gsm|ascii|latin1 (alt-charset)
    usesar: bool = False
    usetlvmessagepayload: bool = False
    deliveryreport: bool = True
    report_timeout_hours: float = 48.0  # a part without a report ends 'expired' after this
    autoconnect: bool = True
    limittompm: int = 0
    submittimeout: float = 60.0        # seed 000 default
    operator: str = ""
    reconnectdelay: float = 1.0        # first reconnect delay; doubles up to the max, jittered
    reconnectmaxdelay: float = 60.0
    messageidbase: str = "auto"        # how the SMSC writes ids: auto|hex|decimal|hex-decimal|...
    # seed 000 SMPP keys with a behaviour here (docs/api.md "Drivers")
    addressrange: str = ""             # bind address_range
    bindton: int = -1                  # bind addr_ton/npi; -1: sourceaddrton/npi as before
    bindnpi: int = -1
    send: bool = True                  # off: bound as receiver only
    receive: bool = True               # off: bound as transmitter only
    keepaliverequest: bool = True      # off: no enquire_link from our side
    submittimeoutaction: str = "SubmitFailed"   # or SubmitSuccess


@dataclass(frozen=True)
class UserConfig:
    name: str
    password: str = ""
    password_hash: str = ""
    admin: bool = False
    credits: int = 1000               # starting balance (seed 003); see docs/api.md "Credits"
    unlimited: bool = False           # sending not limited by the balance
    allowrouteoverride: bool = False
    ip_allow: tuple[str, ...] = ()
    ip_deny: tuple[str, ...] = ()
    reporturl: str = ""
    inbound_url: str = ""
    originator: str = ""
    priority: str = "normal"


@dataclass(frozen=True)
class RouteConfig:
    connections: tuple[str, ...]
    prefix: str = ""
    user: str = ""
    messagetype: str = ""
    serviceprovider: str = ""
    mode: str = "failover"


ConnectionConfig = (GSMModemConfig | SMPPConfig | HTTPClientConfig | HTTPServerConfig
                    | SMTPConfig)

CONNECTION_TYPES: dict[str, type] = {
    "GSMModem": GSMModemConfig,
    "SMPP": SMPPConfig,
    "HTTPClient": HTTPClientConfig,
    "HTTPServer": HTTPServerConfig,
    "SMTP": SMTPConfig,
}

# Driver types of the Ozeki seed that the appliance does not run: refused by name.
UNSUPPORTED_CONNECTION_TYPES = ("CIMD2", "UCP", "EAIF", "MM7", "VoIP")


@dataclass(frozen=True)
class Config:
    http: HttpConfig = field(default_factory=HttpConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    phonesystem: PhoneSystemConfig = field(default_factory=PhoneSystemConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    connections: tuple[ConnectionConfig, ...] = ()
    users: tuple[UserConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    source: str = ""
    integrations: object = None     # integrations.settings.Integrations (hooks, smtp, rules)

    @property
    def state_dir(self) -> Path:
        return Path(self.store.state_dir)


# --- coercion ------------------------------------------------------------------------


def coerce(path: str, annotation, value):
    """Turn a TOML or HTTP-string value into the field's type, or raise ConfigError."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(path, typing.get_args(annotation), value)
    if origin is tuple:
        return _coerce_tuple(path, typing.get_args(annotation)[0], value)
    return _coerce_scalar(path, annotation, value)


def _coerce_union(path, args, value):
    for arg in args:
        try:
            return coerce(path, arg, value)
        except ConfigError:
            continue
    raise ConfigError(f"{path}: {value!r} has the wrong type")


def _coerce_tuple(path, item_type, value):
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{path}: expected a list, got {type(value).__name__}")
    return tuple(coerce(f"{path}[{i}]", item_type, v) for i, v in enumerate(value))


def _coerce_scalar(path, annotation, value):
    if annotation is bool:
        return _coerce_bool(path, value)
    if annotation in (int, float):
        return _coerce_number(path, annotation, value)
    if annotation is str:
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{path}: expected a string, got {type(value).__name__}")
    raise ConfigError(f"{path}: unsupported type {annotation}")


def _coerce_bool(path, value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(f"{path}: expected true or false (on/off), got {value!r}")


def _coerce_number(path, kind, value):
    if isinstance(value, bool):
        raise ConfigError(f"{path}: expected a number, got a boolean")
    if isinstance(value, (int, float)) and (kind is float or isinstance(value, int)):
        return kind(value)
    if isinstance(value, str):
        try:
            return kind(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"{path}: expected {'an integer' if kind is int else 'a number'}, got {value!r}")


# --- tables -> dataclasses --------------------------------------------------------------


def build(cls, table: dict, path: str, **fixed):
    """Build dataclass `cls` from `table`; every key must be a field, every value its type."""
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: expected a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = dict(fixed)
    for key, value in table.items():
        name = key.lower()
        if name not in fields or name in fixed:
            raise ConfigError(f"{path}.{key}: unknown key")
        values[name] = coerce(f"{path}.{key}", hints[name], value)
    _require(cls, fields, values, path)
    return cls(**values)


def _require(cls, fields, values, path):
    for name, f in fields.items():
        missing = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if missing and name not in values:
            raise ConfigError(f"{path}.{name}: required key is missing")


def connection_from_table(name: str, table: dict, path: str | None = None) -> ConnectionConfig:
    """Parse one `[connections.NAME]` table (or a configdriver key set) into its dataclass."""
    path = path or f"connections.{name}"
    _check_name(name, path)
    kind = table.get("type")
    if kind in UNSUPPORTED_CONNECTION_TYPES:
        raise ConfigError(f"{path}.type: {kind} connections are not supported by this appliance "
                          f"(supported: {', '.join(CONNECTION_TYPES)})")
    if kind not in CONNECTION_TYPES:
        raise ConfigError(f"{path}.type: expected one of {', '.join(CONNECTION_TYPES)}, got {kind!r}")
    body = {k: v for k, v in table.items() if k != "type"}
    body = without_ignored_keys(kind, body)     # provider kinds: seed keys with no meaning
    conn = normalize_connection(build(CONNECTION_TYPES[kind], body, path, name=name, type=kind))
    _check_connection(conn, path)
    return conn


def _check_name(name: str, path: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", name or ""):
        raise ConfigError(f"{path}: name must be 1-40 letters, digits, '_', '.' or '-'")


SUBMIT_TIMEOUT_ACTIONS = {"submitfailed": "SubmitFailed", "submitsuccess": "SubmitSuccess",
                          "resend": "Resend"}      # Resend: web and e-mail providers only
USSD_METHODS = {"at+cusd": "AT+CUSD", "atd": "ATD"}


def normalize_connection(conn):
    """Seed spellings (`MODE=Transceiver`, `SubmitFailed`, protocol `34`) in one form."""
    changes = {}
    if hasattr(conn, "submittimeoutaction"):
        changes["submittimeoutaction"] = SUBMIT_TIMEOUT_ACTIONS.get(
            conn.submittimeoutaction.strip().lower().replace(" ", ""), conn.submittimeoutaction)
    if isinstance(conn, GSMModemConfig):
        changes["ussdmethod"] = USSD_METHODS.get(conn.ussdmethod.strip().lower(), conn.ussdmethod)
    if isinstance(conn, SMPPConfig):
        changes["mode"] = _smpp_mode(conn)
        version = conn.protocolversion.strip()
        changes["protocolversion"] = {"34": "3.4", "33": "3.3"}.get(version, version)
    return dataclasses.replace(conn, **changes)


def _smpp_mode(conn) -> str:
    """MODE, narrowed by the seed's SEND/RECEIVE switches."""
    mode = conn.mode.strip().lower()
    if not conn.send and mode in ("transceiver", "transmitter"):
        mode = "receiver" if mode == "transceiver" else "off"
    if not conn.receive and mode in ("transceiver", "receiver"):
        mode = "transmitter" if mode == "transceiver" else "off"
    return mode


# Values that go inside an AT command are checked here (a quote or a CR in them would end
# the command and start another; the drivers API sets them too): a SIM PIN is 4-8 digits
# (TS 22.022 / 27.007 +CPIN), an SMSC address a number.
_PIN = re.compile(r"[0-9]{4,8}")
_SMSC_ADDRESS = re.compile(r"\+?[0-9]{3,20}")


def _check_modem_values(conn, path: str) -> None:
    if conn.pincode and not _PIN.fullmatch(conn.pincode):
        raise ConfigError(f"{path}.pincode: expected 4 to 8 digits")
    if conn.smsservicecenteraddress and not _SMSC_ADDRESS.fullmatch(conn.smsservicecenteraddress):
        raise ConfigError(f"{path}.smsservicecenteraddress: expected a number such as"
                          " +36209300099")
    if conn.ussd_balance and (problem := ussd_code_problem(conn.ussd_balance)):
        raise ConfigError(f"{path}.ussd_balance: {problem}")


def _check_bind_text(conn, path: str) -> None:
    """A bind carries its text fields as single bytes (C-Octet Strings); smpplib sends them
    as Latin-1, and a character outside it failed every bind with a traceback."""
    for key in ("username", "password", "systemtype", "addressrange"):
        try:
            getattr(conn, key).encode("latin-1")
        except UnicodeEncodeError as exc:
            raise ConfigError(f"{path}.{key}: a character an SMPP bind cannot carry"
                              f" (position {exc.start + 1}); only Latin-1 letters,"
                              " digits and signs") from None


def _check_smpp_numbers(conn, path: str) -> None:
    """What check-config's rules say for a file, for a driver set through the API too: a
    port out of range was saved, shown `running`, and retried with a traceback forever."""
    if not 1 <= conn.port <= 65535:
        raise ConfigError(f"{path}.port: must be a TCP port, 1..65535 (got {conn.port})")
    if conn.protocolversion not in ("3.3", "3.4", "5.0"):
        raise ConfigError(f"{path}.protocolversion: expected 3.4 (34), 3.3 (33) or 5.0")
    for key in ("keepaliveperiod", "submittimeout", "reconnectdelay"):
        if not getattr(conn, key) > 0:
            raise ConfigError(f"{path}.{key}: must be positive")
    if conn.reconnectmaxdelay < conn.reconnectdelay:
        raise ConfigError(f"{path}.reconnectmaxdelay: must not be less than reconnectdelay")
    for key, low, high in _SMPP_ADDRESS_RANGES:   # one octet each in the PDUs (-1: not set)
        value = getattr(conn, key)
        if not low <= value <= high:
            raise ConfigError(f"{path}.{key}: must be {low}..{high} (got {value})")


# SMPP 3.4 §5.2.5/§5.2.6: TON 0..6, NPI 0..18 (-1: the connection's default)
_SMPP_ADDRESS_RANGES = (("sourceaddrton", -1, 6), ("sourceaddrnpi", -1, 18),
                        ("destaddrton", 0, 6), ("destaddrnpi", 0, 18),
                        ("bindton", -1, 6), ("bindnpi", -1, 18))


def _check_connection(conn, path: str) -> None:
    if isinstance(conn, GSMModemConfig) and not conn.modemorport:
        raise ConfigError(f"{path}.modemorport: required for a GSMModem connection")
    # providers check their own (provider/settings.py: Resend as well)
    if isinstance(conn, (GSMModemConfig, SMPPConfig)) and \
            conn.submittimeoutaction not in ("SubmitFailed", "SubmitSuccess"):
        raise ConfigError(f"{path}.submittimeoutaction: expected SubmitFailed or SubmitSuccess")
    if isinstance(conn, GSMModemConfig) and conn.ussdmethod not in USSD_METHODS.values():
        raise ConfigError(f"{path}.ussdmethod: expected AT+CUSD or ATD")
    if isinstance(conn, GSMModemConfig):
        _check_modem_values(conn, path)
    if isinstance(conn, SMPPConfig) and conn.mode == "off":
        raise ConfigError(f"{path}: send and receive are both off for this bind")
    if isinstance(conn, SMPPConfig):
        if not conn.host:
            raise ConfigError(f"{path}.host: required for an SMPP connection")
        _check_bind_text(conn, path)
        _check_smpp_numbers(conn, path)
        if conn.mode not in ("transmitter", "receiver", "transceiver"):
            raise ConfigError(f"{path}.mode: expected transmitter, receiver or transceiver")
        if not 1 <= conn.windowsize <= 1000:
            raise ConfigError(f"{path}.windowsize: expected 1..1000")
        if conn.defaultalphabet.lower() not in SMPP_ALPHABETS:
            raise ConfigError(f"{path}.defaultalphabet: expected gsm, ascii (ia5) or latin1")
        if conn.report_timeout_hours <= 0:
            raise ConfigError(f"{path}.report_timeout_hours: must be positive")
        if conn.messageidbase not in ("auto", "hex", "decimal", "hex-decimal", "decimal-hex"):
            raise ConfigError(f"{path}.messageidbase: expected auto, hex, decimal, hex-decimal"
                              " or decimal-hex")
    if getattr(conn, "limittompm", 0) < 0:
        raise ConfigError(f"{path}.limittompm: must not be negative")
    if hasattr(conn, "check"):            # provider kinds check their own keys
        conn.check(path)


def _users(table: dict) -> tuple[UserConfig, ...]:
    users = []
    for name, body in table.items():
        _check_name(name, f"users.{name}")
        user = build(UserConfig, body, f"users.{name}", name=name)
        if not -2**31 <= user.credits <= 2**31 - 1:      # seed 003: an "int value"
            raise ConfigError(f"users.{name}.credits: must be between {-2**31} and {2**31 - 1}")
        _check_user_urls(user, f"users.{name}")
        users.append(user)
    return tuple(users)


def _check_user_urls(user: UserConfig, path: str) -> None:
    from appliance.callback_url import callback_url_problem
    for key in ("reporturl", "inbound_url"):
        value = getattr(user, key)
        if value and callback_url_problem(value):
            raise ConfigError(f"{path}.{key}: {callback_url_problem(value)}")


def _routes(items) -> tuple[RouteConfig, ...]:
    if not isinstance(items, list):
        raise ConfigError("routes: expected an array of tables ([[routes]])")
    routes = tuple(build(RouteConfig, r, f"routes[{i}]") for i, r in enumerate(items))
    for i, r in enumerate(routes):
        if r.mode not in ("failover", "balance"):
            raise ConfigError(f"routes[{i}].mode: expected failover or balance")
    return routes


SECTIONS = {"http": HttpConfig, "store": StoreConfig, "admin": AdminConfig, "demo": DemoConfig,
            "phonesystem": PhoneSystemConfig, "metrics": MetricsConfig}


def from_dict(data: dict, source: str = "") -> Config:
    """Validate a parsed TOML document into a Config."""
    from appliance.integrations import settings as integration_settings
    values: dict = {"source": source,
                    "integrations": integration_settings.parse(data)}
    for key, body in data.items():
        if key in integration_settings.SECTIONS:
            continue
        if key in SECTIONS:
            values[key] = build(SECTIONS[key], body, key)
        elif key == "connections":
            values[key] = _connections(body)
        elif key == "users":
            values[key] = _users(_table(body, "users"))
        elif key == "routes":
            values[key] = _routes(body)
        else:
            raise ConfigError(f"{key}: unknown section")
    config = Config(**values)
    _check_routes_name_connections(config)
    return config


def _table(body, path):
    if not isinstance(body, dict):
        raise ConfigError(f"{path}: expected a table")
    return body


def _connections(body) -> tuple[ConnectionConfig, ...]:
    return tuple(connection_from_table(name, t if isinstance(t, dict) else {}, f"connections.{name}")
                 for name, t in _table(body, "connections").items())


def _check_routes_name_connections(config: Config) -> None:
    names = {c.name for c in config.connections}
    if config.demo.enabled:
        names |= {f"GSMModem{i}" for i in range(config.demo.modems)}
    for i, route in enumerate(config.routes):
        for name in route.connections:
            if name not in names:
                raise ConfigError(f"routes[{i}].connections: no connection named {name!r}")


def load(path: str | Path) -> Config:
    """Read and validate a config file. Errors name the file and the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return from_dict(data, source=str(path))


def replace(config: Config, **changes) -> Config:
    return dataclasses.replace(config, **changes)
