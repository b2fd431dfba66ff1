"""Ozeki §9 driver actions on the daemon's running connections (through the control plane,
`services.control`), persisted in the documents.

A driver is a connection (`config.connection_from_table` vocabulary). Keys arrive under
their seed 000 names and are mapped by `driver_keys` to connection fields, or kept as ignored
keys. Documents table `connections` keeps, per name:
`{"name", "owner": "api"|"file", "table": {...}, "ignored": {...}}` -- for API-created drivers
the whole key set, for file-provisioned ones only the keys changed through the API, laid over
the file's values at every start. A change takes effect at once: the running channel is
replaced.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import typing

from appliance import suspend
from appliance.config import (CONNECTION_TYPES, UNSUPPORTED_CONNECTION_TYPES, ConfigError,
                              coerce, connection_from_table)
from appliance.provider.settings import SEED_IGNORED_KEYS
from appliance.web import driver_keys
from appliance.web import ozeki_xml as X
from appliance.web.ozeki import ApiError, Ctx

log = logging.getLogger("appliance.web")

TABLE = "connections"
# Keys of kinds without a seed table (HTTPClient until its module registers one) that have no
# meaning here: accepted, ignored.
IGNORED_KEYS = {"databits", "parity", "stopbits", "hwhandshake", "swhandshake", "logdirectory",
                "logcommunication", "loghistorycount", "loglinesbeforechecksize",
                "logmaxfilesize", "logmessages", "protocol", "charsethandling",
                "preferedcharset", "methodtouse", "sendmethod", "slowmodem", "cbaddresshiding",
                "cbslowcommunication", "usbdevice_ozeki"}
_RESERVED = {"action", "username", "password", "name", "type", "_charset_", "responseformat"}
_TYPE_NAMES = {t.lower(): t for t in (*CONNECTION_TYPES, *UNSUPPORTED_CONNECTION_TYPES)}
# The seed's PROTOCOL names and table titles for the same kinds.
_TYPE_NAMES.update({"gsm": "GSMModem", "gsmmodem": "GSMModem", "gsm/gprs modem": "GSMModem",
                    "gsm/gprs modem connection": "GSMModem", "http client": "HTTPClient",
                    "http server": "HTTPServer", "httpclient": "HTTPClient",
                    "eaifmms": "EAIF", "mm7mms": "MM7", "ozvoip": "VoIP",
                    "voip autodialer": "VoIP", "e-mail to sms": "SMTP",
                    "smtp (e-mail to sms)": "SMTP"})


def _file_table(conn) -> dict:
    table = dataclasses.asdict(conn)
    table.pop("name")
    return table


def effective_connections(file_connections, documents) -> list[tuple[object, str]]:
    """(connection, owner) for every connection to run at start: the file's with their API
    overrides, then the API-created ones that are complete. Bad stored entries are logged."""
    docs = {d["name"]: d for d in documents.all(TABLE)} if documents is not None else {}
    result = []
    file_names = set()
    for conn in file_connections:
        file_names.add(conn.name)
        doc = docs.get(conn.name)
        if doc and doc.get("owner") == "file" and doc.get("table"):
            try:
                conn = connection_from_table(conn.name, {**_file_table(conn), **doc["table"]})
            except ConfigError as exc:
                log.error("drivers: ignoring stored changes of %s: %s", conn.name, exc)
        result.append((conn, "file"))
    for name, doc in docs.items():
        if doc.get("owner") != "api" or name in file_names:
            continue
        try:
            result.append((connection_from_table(name, doc["table"]), "api"))
        except ConfigError as exc:
            log.info("drivers: %s is not complete yet: %s", name, exc)
    return result


# --- the actions ---------------------------------------------------------------------------


def _control(ctx: Ctx):
    """The control plane, with the channels and documents drivers need."""
    control = ctx.services.control
    if control.channels is None or control.documents is None:
        raise ApiError(X.E_INTERNAL, "driver handling is not available")
    return control


def _kind(raw: str) -> str:
    name = raw.strip().lower()
    kind = _TYPE_NAMES.get(name)
    if kind is None and name.endswith(" connection"):    # a seed table title:
        kind = _TYPE_NAMES.get(name[:-len(" connection")].strip())   # "SMPP connection"
    if kind in UNSUPPORTED_CONNECTION_TYPES:
        raise ApiError(X.E_UNSUPPORTED, f"{kind} drivers are not supported by this appliance "
                       f"(supported: {', '.join(CONNECTION_TYPES)})")
    if kind is None:
        raise ApiError(X.E_INVALID_PARAMETER, f"type must be one of {', '.join(CONNECTION_TYPES)}")
    return kind


def _keys(ctx: Ctx, kind: str) -> tuple[dict, dict]:
    """configdriver KEY=value pairs -> (applied keys by field name, ignored keys as given)."""
    fields = {f.name for f in dataclasses.fields(CONNECTION_TYPES[kind])} - {"name", "type"}
    hints = typing.get_type_hints(CONNECTION_TYPES[kind])
    keys, ignored = {}, {}
    for key, value in ctx.params.items():
        if key in _RESERVED:
            continue
        field, value = _field_of(kind, key, fields), value.strip()
        if field is driver_keys.IGNORED:
            ignored[key] = value[:200]
            continue
        if value == "" and field in driver_keys.EMPTY_MEANS_AUTOMATIC:
            value = driver_keys.EMPTY_MEANS_AUTOMATIC[field]
        try:      # a value of the wrong type is refused now, not saved
            coerce(key, hints[field], value)
        except ConfigError as exc:
            raise ApiError(X.E_INVALID_PARAMETER, str(exc)) from None
        _check_choice(kind, key, field, value)
        keys[field] = value
    return keys, ignored


_CHOICES = {"submittimeoutaction": ("SubmitFailed", "SubmitSuccess"),
            "ussdmethod": ("AT+CUSD", "ATD"),
            "mode": ("Transmitter", "Receiver", "Transceiver")}
# web and e-mail providers may also send again after a timeout (seed 000, docs/api.md §8)
_PROVIDER_CHOICES = {"submittimeoutaction": ("SubmitFailed", "Resend", "SubmitSuccess")}
_PROVIDER_KINDS = ("HTTPClient", "SMTP")


def _check_choice(kind: str, key: str, field: str, value: str) -> None:
    choices = (_PROVIDER_CHOICES if kind in _PROVIDER_KINDS else {}).get(field) \
        or _CHOICES.get(field)
    normal = value.lower().replace(" ", "")
    if choices and normal not in {c.lower() for c in choices}:
        raise ApiError(X.E_INVALID_PARAMETER, f"{key}: expected {' or '.join(choices)}")


def _field_of(kind: str, key: str, fields: set) -> str | None:
    """The connection field a key sets, or IGNORED; ApiError for a key nobody defines."""
    known, field = driver_keys.lookup(kind, key)
    if known:
        return field
    if key in SEED_IGNORED_KEYS.get(kind, ()):
        return driver_keys.IGNORED       # provider kinds: seed keys that mean nothing here
    if key in fields:
        return key                       # the appliance's own keys (power_pin, slot, ...)
    if kind not in driver_keys.KIND_KEYS and (key in IGNORED_KEYS or key.startswith("log")):
        return driver_keys.IGNORED
    raise ApiError(X.E_INVALID_PARAMETER, f"{key[:40]}: unknown key for a {kind} driver")


def _state(control, name: str) -> str:
    if name in control.channels.running:
        return "running"
    return "stopped" if name in control.channels.configs else "not configured"


def _answer(ctx: Ctx, action_name: str, name: str, *, note: str = "", ignored=()) -> str:
    control = _control(ctx)
    rows = [X.element("name", name), X.element("state", _state(control, name))]
    if note:
        rows.append(X.element("note", note))
    rows += [X.element("ignoredkey", k) for k in ignored]
    return X.envelope(action_name, "<driver>\n" + "\n".join(rows) + "\n</driver>\n")


def _apply(ctx: Ctx, name: str, owner: str, table: dict, full: dict,
           ignored: dict | None = None) -> str:
    """Persist `table` (and the ignored keys); run `full` when it is a complete connection.
    Returns a note."""
    control = _control(ctx)
    doc = {"name": name, "owner": owner, "table": table,
           "ignored": {**_stored_ignored(control, name), **(ignored or {})}}
    try:
        conn = connection_from_table(name, full)
    except ConfigError as exc:
        if owner == "file":
            raise ApiError(X.E_INVALID_PARAMETER, str(exc)) from None
        bad = _bad_value(name, full)
        if bad:             # its own words, not the missing HOST the incomplete table names
            raise ApiError(X.E_INVALID_PARAMETER, bad) from None
        control.documents.put(TABLE, doc)
        _off_the_loop(control.channels.stop, name, True)
        return f"saved, not running until complete: {exc}"
    control.documents.put(TABLE, doc)
    try:
        _off_the_loop(control.channels.start, conn)    # replaces a running channel of that name
    except Exception as exc:  # noqa: BLE001 - a driver that cannot start is reported, not fatal
        log.error("drivers: %s could not start: %s", name, exc)
        return f"saved, but the connection could not start: {str(exc)[:200]}"
    return "saved and applied"


# What a driver needs before it can run; a table without it is saved as incomplete.
_REQUIRED_PLACEHOLDERS = {"host": "incomplete.invalid", "modemorport": "/dev/null",
                          "targeturl": "http://incomplete.invalid/", "smtpserver":
                          "incomplete.invalid", "baseurl": "http://incomplete.invalid/"}


def _bad_value(name: str, full: dict) -> str:
    """What is wrong with the table, not just missing: with its required keys filled in, it
    still fails on one key's value (a port out of range, an unknown protocol version); ""
    when nothing is. Such a value is refused, not saved to wait for the rest (a driver
    switched off whole, send and receive both off, stays a saved table)."""
    kind = CONNECTION_TYPES.get(full.get("type"))
    known = {f.name for f in dataclasses.fields(kind)} if kind else set()
    filled = {**full, **{k: v for k, v in _REQUIRED_PLACEHOLDERS.items()
                         if k in known and not full.get(k)}}
    try:
        connection_from_table(name, filled)
    except ConfigError as exc:
        return str(exc) if str(exc).startswith(f"connections.{name}.") else ""
    return ""


def _stored_ignored(control, name: str) -> dict:
    doc = control.documents.get(TABLE, name)
    return dict(doc.get("ignored", {})) if doc else {}


def _existing(ctx: Ctx) -> tuple[str, str, dict, dict]:
    """(name, owner, stored table, full table) of an existing driver."""
    control = _control(ctx)
    name = ctx.require("name")
    doc = control.documents.get(TABLE, name)
    file_conn = next((c for c in ctx.services.config.connections if c.name == name), None)
    if file_conn is not None:
        overrides = dict(doc["table"]) if doc and doc.get("owner") == "file" else {}
        return name, "file", overrides, {**_file_table(file_conn), **overrides}
    if doc is None:
        raise ApiError(X.E_NOT_FOUND, f"No driver named {name[:40]}")
    return name, "api", dict(doc["table"]), dict(doc["table"])


def createdriver(ctx: Ctx) -> str:
    return _one_at_a_time(lambda: _createdriver(ctx))


def _createdriver(ctx: Ctx) -> str:
    control = _control(ctx)
    kind = _kind(ctx.require("type"))
    name = ctx.get("name").strip() or ctx.get("operator").strip()
    if not name:
        taken = set(control.channels.configs) | {d["name"]
                                                 for d in control.documents.all(TABLE)}
        name = next(f"{kind}{i}" for i in range(1000) if f"{kind}{i}" not in taken)
    if control.documents.get(TABLE, name) or name in control.channels.configs:
        raise ApiError(X.E_INVALID_PARAMETER, f"A driver named {name[:40]} already exists")
    keys, ignored = _keys(ctx, kind)
    table = {"type": kind, **keys}          # seed 000: AUTOCONNECT defaults to on
    try:
        connection_from_table(name, {"type": kind})   # the name itself must be valid
    except ConfigError as exc:
        if "name" in str(exc):
            raise ApiError(X.E_INVALID_PARAMETER, str(exc)) from None
    note = _apply(ctx, name, "api", table, table, ignored)
    return _answer(ctx, "createdriver", name, note=note, ignored=ignored)


def configdriver(ctx: Ctx) -> str:
    return _one_at_a_time(lambda: _configdriver(ctx))


def _configdriver(ctx: Ctx) -> str:
    name, owner, stored, full = _existing(ctx)
    keys, ignored = _keys(ctx, full["type"])
    if not keys and not ignored:
        raise ApiError(X.E_MISSING_PARAMETER, "configdriver needs at least one KEY=value")
    note = _apply(ctx, name, owner, {**stored, **keys}, {**full, **keys}, ignored)
    return _answer(ctx, "configdriver", name, note=note, ignored=ignored)


def _switch(ctx: Ctx, on: bool, action_name: str) -> str:
    name, owner, stored, full = _existing(ctx)
    value = "on" if on else "off"
    table = {**stored, "autoconnect": value}
    control = _control(ctx)
    if on and name in control.channels.running:
        # created with AUTOCONNECT on (the seed default): running already, no second bind
        control.documents.put(TABLE, {"name": name, "owner": owner, "table": table,
                                     "ignored": _stored_ignored(control, name)})
        return _answer(ctx, action_name, name, note="already running")
    if on:
        note = _apply(ctx, name, owner, table, {**full, "autoconnect": value})
    else:
        control = _control(ctx)
        control.documents.put(TABLE, {"name": name, "owner": owner, "table": table,
                                     "ignored": _stored_ignored(control, name)})
        _off_the_loop(control.channels.stop, name)
        note = "stopped"
    return _answer(ctx, action_name, name, note=note)


def startdriver(ctx: Ctx) -> str:
    return _one_at_a_time(lambda: _switch(ctx, True, "startdriver"))


def stopdriver(ctx: Ctx) -> str:
    return _one_at_a_time(lambda: _switch(ctx, False, "stopdriver"))


def deletedriver(ctx: Ctx) -> str:
    return _one_at_a_time(lambda: _deletedriver(ctx))


def _deletedriver(ctx: Ctx) -> str:
    name, owner, _, _ = _existing(ctx)
    if owner == "file":
        raise ApiError(X.E_UNSUPPORTED, f"{name} is provisioned by the configuration file; "
                       "remove it there (stopdriver stops it)")
    control = _control(ctx)
    _off_the_loop(control.channels.stop, name, True)
    control.documents.remove(TABLE, name)
    if control.report_tokens is not None:
        control.report_tokens.forget(name)
    return X.envelope("deletedriver", f"<driver>\n{X.element('name', name)}\n"
                      f"{X.element('state', 'deleted')}\n</driver>\n")


def listdrivers(ctx: Ctx) -> str:
    control = _control(ctx)
    names = sorted(set(control.channels.configs) | {d["name"] for d in
                                                   control.documents.all(TABLE)})
    rows = "".join(f"<driver>\n{X.element('name', n)}\n{X.element('state', _state(control, n))}"
                   + "".join(f"\n{X.element('ignoredkey', k)}"
                             for k in sorted(_stored_ignored(control, n)))
                   + "\n</driver>\n" for n in names)
    return X.envelope("listdrivers", rows)


_changes = threading.Lock()
_changes_thread = None


def _one_at_a_time(change):
    """Run a driver change (its checks, its document, its channel's start or stop) alone.
    Two at once interleaved at their channel's start or stop: a createdriver's start that
    ended after a deletedriver's stop left a connection with no document, listed and run
    until a restart, which deletedriver then called unknown. In a request greenlet it runs
    in a thread of its own, off the HTTP loop (a stop waits for a slow provider) and out of
    the shared pool of suspend.blocking; elsewhere (tests, the CLI) under the same lock."""
    global _changes_thread
    if suspend.current_suspendable() is None:
        with _changes:
            return change()
    if _changes_thread is None:           # made on the loop's thread only: no race
        from concurrent.futures import ThreadPoolExecutor
        _changes_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="http-drivers")
    return suspend.wait(_changes_thread.submit(_locked, change))


def _locked(change):
    with _changes:
        return change()


def _off_the_loop(change, *args):
    """Start or stop a channel without holding the HTTP front: a provider's stop waits for
    requests in flight to a slow provider (up to its stop timeout), and meanwhile every
    other client of the API port was kept waiting with it."""
    return suspend.blocking(change, *args)
