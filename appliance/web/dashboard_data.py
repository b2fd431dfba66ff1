"""What the dashboard pages show, read from the journal and the daemon (no HTML here), and
the admin page's actions. Every list is bounded; searches use indexed columns."""

from __future__ import annotations

import json
import logging
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone

from appliance import suspend
from appliance.accounts import ADMIN
from appliance.config import GSMModemConfig
from appliance.model import State
from appliance.provider import report_token
from appliance.provider.settings import HTTPClientConfig, HTTPServerConfig
from appliance.store import counters
from appliance.timefmt import clamped

log = logging.getLogger("appliance.web")

SEARCH_LIMIT = 200
STATES = tuple(s.value for s in State)
FINAL = tuple(s.value for s in State if s.final)
BIN_SECONDS, BINS = 300, 12          # throughput: 5-minute bins over the last hour


def mask_number(number: str) -> str:
    """+36201234567 -> +3620*****67: enough to tell numbers apart, not to dial them."""
    if len(number) <= 6:
        return number[:2] + "*" * max(0, len(number) - 2)
    return number[:5] + "*" * (len(number) - 7) + number[-2:]


def when(epoch: float | None) -> str:
    if not epoch:
        return ""
    return datetime.fromtimestamp(clamped(epoch), timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def parse_when(text: str) -> float | None:
    """'2026-11-30 21:00' or '2026-11-30T21:00:00' (UTC) or a unix time; None if empty/bad."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M",
                "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            continue
    return None


@dataclass
class MessageQuery:
    text: str = ""            # a message id, or a recipient (whole or its start)
    state: str = ""
    since: str = ""
    until: str = ""
    direction: str = "out"
    error: str = ""

    @classmethod
    def from_params(cls, query, clock) -> "MessageQuery":
        get = lambda k: (query.getunicode(k) or "").strip()[:100]   # noqa: E731
        q = cls(text=get("q"), state=get("state"), since=get("since"), until=get("until"),
                direction=get("direction") or "out")
        if q.state and q.state not in STATES:
            q.error, q.state = f"unknown state {q.state!r}", ""
        for name in ("since", "until"):
            if getattr(q, name) and parse_when(getattr(q, name)) is None:
                q.error = f"{name}: use YYYY-MM-DD HH:MM (UTC)"
                setattr(q, name, "")
        if q.direction not in ("out", "in"):
            q.direction = "out"
        return q


def search(journal, q: MessageQuery, user: str | None) -> list[dict]:
    """Newest first (rowid: the order of acceptance), at most SEARCH_LIMIT rows. An exact id
    wins over a recipient search."""
    if q.text:
        exact = journal.get_message(q.text)
        if exact and (user is None or exact["user"] == user):
            return [exact]
    where, params = ["direction=?", "deleted=0"], [q.direction]
    if user is not None:
        where.append("user=?")
        params.append(user)
    if q.text:
        column = "recipient" if q.direction == "out" else "originator"
        where.append(f"({column}=? OR {column} LIKE ? ESCAPE '\\')")
        escaped = q.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params += [q.text, escaped + "%"]
    if q.state:
        where.append("state=?")
        params.append(q.state)
    for op, text in ((">=", q.since), ("<", q.until)):
        if text:
            where.append(f"created{op}?")
            params.append(parse_when(text))
    # a rare state or a number not there scans the journal (0.3 s at 1M messages): off the
    # HTTP loop's thread, so the API keeps accepting meanwhile
    rows = journal.long_query(
        "SELECT id, user, recipient, originator, body, state, parts_total, created, updated,"
        " connection, reason, dialect FROM messages"
        f" WHERE {' AND '.join(where)} ORDER BY rowid DESC LIMIT {SEARCH_LIMIT}", params)
    return [dict(r) for r in rows]


def inbox(journal, user: str | None, limit: int = SEARCH_LIMIT) -> list[dict]:
    """Newest inbound messages first (long ones are stored once, already joined)."""
    where, params = ["direction='in'", "deleted=0"], []
    if user is not None:
        where.append("user=?")
        params.append(user)
    return [dict(r) for r in journal.long_query(       # a box that only sends: a scan
        "SELECT id, originator, recipient, body, created, connection, is_read FROM messages"
        f" WHERE {' AND '.join(where)} ORDER BY rowid DESC LIMIT ?", (*params, limit))]


def timeline(journal, message: dict) -> list[dict]:
    """Accepted, each part's attempts/submission/report, each callback attempt."""
    steps = [{"at": message["created"], "what": "accepted",
              "detail": f"{message['dialect'] or 'api'} from {message['user']}, "
                        f"{message['parts_total']} part(s)"}]
    if message.get("send_at") and message["send_at"] > message["created"]:
        steps.append({"at": message["send_at"], "what": "scheduled for", "detail": ""})
    for part in journal.get_parts(message["id"]):
        label = f"part {part['seq']}/{part['total']}"
        if part["state"] == "sending":
            steps.append({"at": message["updated"], "what": f"{label} claimed",
                          "detail": f"sending on {part['connection']} (attempt "
                                    f"{part['attempts']})"})
        if part["submitted_at"]:
            steps.append({"at": part["submitted_at"], "what": f"{label} submitted",
                          "detail": f"on {part['connection']}, reference {part['reference']}, "
                                    f"attempt {part['attempts']}"})
        if part["done_at"]:
            steps.append({"at": part["done_at"], "what": f"{label} {part['state']}",
                          "detail": part["reason"]})
        elif part["reason"]:
            steps.append({"at": message["updated"], "what": f"{label} {part['state']}",
                          "detail": f"last try: {part['reason']}"})
    steps += _rounds(journal, message)
    for event in journal.query("SELECT kind, at, state, attempts, last_error FROM events"
                               " WHERE message_id=? ORDER BY id", (message["id"],)):
        detail = f"{event['attempts']} attempt(s), {event['state']}"
        if event["last_error"]:
            detail += f": {event['last_error']}"
        steps.append({"at": event["at"], "what": f"callback for {event['kind']}",
                      "detail": detail})
    return steps          # causal order: a report's own clock may read before our acceptance


def _rounds(journal, message: dict) -> list[dict]:
    """A long message's rounds on its channels: the parts' rows keep only their latest
    attempt, so a message resent whole showed nothing of the first channel or of why."""
    if message["parts_total"] < 2:
        return []
    rounds = journal.route_history(message["id"])
    if len(rounds) < 2 and not any(r["ended"] and r["outcome"] != "sent" for r in rounds):
        return []           # one round that went as planned: the parts say it all
    return [{"at": r["started"], "what": f"round {r['round']} on {r['connection']}",
             "detail": f"{r['parts_sent']} of {message['parts_total']} part(s) sent"
                       + (f"; {r['outcome']}" if r["outcome"] else "")}
            for r in rounds]


def channels_view(daemon) -> dict:
    """Modems, other connections and stopped ones, as /status lists them, without /status's
    queue statistics (the overview reads those from the counters)."""
    if daemon is None:
        return {"modems": [], "uplinks": [], "stopped_connections": []}
    running, configs = daemon.channels.running, daemon.channels.configs
    modems = [c.status() for n, c in running.items() if isinstance(configs.get(n), GSMModemConfig)]
    others = [c.status() for n, c in running.items()
              if not isinstance(configs.get(n), GSMModemConfig)]
    return {"modems": modems, "uplinks": others,
            "stopped_connections": sorted(set(configs) - set(running))}


def oldest_age(services) -> float | None:
    created = counters.oldest_waiting(services.journal)
    return None if created is None else max(0.0, services.clock.now() - created)


def throughput(services, connections: list[str]) -> dict:
    """Parts submitted per connection in 5-minute bins over the last hour (parts_sent_by
    index: the cost is the hour's traffic, not the journal's size)."""
    now = services.clock.now()
    start = now - BIN_SECONDS * BINS
    bins = {name: [0] * BINS for name in connections}
    for name in connections:
        for row in services.journal.query(
                "SELECT CAST((submitted_at-?)/? AS INTEGER) AS b, count(*) AS n FROM parts"
                " WHERE connection=? AND submitted_at>=? GROUP BY b", (start, BIN_SECONDS,
                                                                      name, start)):
            if 0 <= row["b"] < BINS:
                bins[name][row["b"]] += row["n"]
    total = sum(sum(v) for v in bins.values())
    peak = max([max(v) for v in bins.values()] + [1])
    return {"bins": bins, "total": total, "peak": peak, "bin_minutes": BIN_SECONDS // 60}


# --- admin -------------------------------------------------------------------------------------


def admin_view(services, daemon, base: str = "") -> dict:
    """`base`: scheme://host:port the admin reached us at, for the report URLs."""
    users = sorted(services.accounts.all(), key=lambda u: u.name)
    connections = []
    if daemon:
        for name, conn in sorted(daemon.channels.configs.items()):
            channel = daemon.channels.running.get(name)
            connections.append({
                "name": name, "type": conn.type, "slot": getattr(conn, "slot", ""),
                "modem": isinstance(conn, GSMModemConfig),
                "state": channel.status().get("state", "") if channel else "stopped",
                "report_url": _report_url(services, conn, base),
                **_intake(conn, base, channel)})
    return {"users": [(u, services.journal.balance(u.name), services.journal.unlimited(u.name))
                      for u in users],
            "connections": connections}


def _report_url(services, conn, base: str) -> str:
    """Where an HTTP Client connection's provider sends delivery reports, with the token
    they must carry (only here: this page needs the admin's login); '' for other kinds."""
    tokens = services.control.report_tokens
    if not isinstance(conn, HTTPClientConfig) or tokens is None:
        return ""
    try:
        token = tokens.token(conn)
    except Exception:        # the documents could not be written: the page still shows
        log.exception("dashboard: cannot make the report token of %s", conn.name)
        return ""
    return base + report_token.path(conn.name, token)


def _intake(conn, base: str, channel) -> dict:
    """Where an HTTP Server connection's provider delivers SMS and reports, with the
    `accesstoken` it must carry (only here: this page needs the admin's login), and why it is
    open to anyone when it is; nothing for other kinds."""
    if not isinstance(conn, HTTPServerConfig):
        return {"intake_url": "", "intake_open": ""}
    parts = urllib.parse.urlsplit(conn.baseurl)
    host, port = parts.hostname or "127.0.0.1", parts.port
    if host in ("0.0.0.0", "::") and base:
        # every address of the box: name the one the admin reached it at
        host = urllib.parse.urlsplit(base).hostname or host
    if port == 0 and channel is not None:
        port = getattr(channel, "port", port)          # any free port: the one it took
    netloc = (f"[{host}]" if ":" in host else host) + ("" if port is None else f":{port}")
    query = parts.query
    if conn.accesstoken:
        token = "token=" + urllib.parse.quote(conn.accesstoken, safe="")
        query = f"{query}&{token}" if query else token
    url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path or "/", query, ""))
    return {"intake_url": url, "intake_open": conn.open_intake()}


def _ussd(ui, session, params):
    worker = ui.services.control.ussd_modem(params.get("slot", ""))
    if worker is None:
        return "no running modem with that slot", {"error": "no running modem with that slot"}
    code = params.get("code", "")
    try:
        reply = suspend.blocking(worker.run_ussd, code, 60)   # off the HTTP loop
    except Exception as exc:  # the modem's own words, shown, never a crash
        return f"USSD {code} on {params.get('slot')} failed", {"error": str(exc)[:300]}
    return f"USSD {code} on {params.get('slot')}", {"slot": params.get("slot"), "code": code,
                                                    "reply": reply}


def _reset(ui, session, params):
    name = params.get("name", "")
    worker = ui.daemon.channels.running.get(name) if ui.daemon else None
    if worker is None or not hasattr(worker, "request_reset"):
        return f"{name}: no running modem of that name", None
    if worker.request_reset(f"reset by {session.user} from the dashboard"):
        return f"{name}: reset requested", None
    # why not, in the modem's state's words ("no reset needed" told an operator looking at
    # a held or failed modem that nothing was wrong)
    status = worker.status()
    state, error = status.get("state", ""), status.get("last_error") or ""
    why = {"recovering": "is recovering already (its recovery steps are running)",
           "probing": "is being probed already",
           "held": "is held: its resets in the last hour reached max_resets_per_hour; it is"
                   " tried again when the oldest falls out of the hour",
           "failed": "failed; a reset does not mend that",
           "wrong_modem": "is another modem than configured (IMEI/ICCID)"}.get(
        state, f"is {state or 'not ready'}")
    return f"{name} {why}" + (f": {error}" if error and state != "recovering" else ""), None


def _switch(ui, session, params):
    import bottle

    from appliance.web import drivers, ozeki
    from appliance.web.params import client_address
    name, on = params.get("name", ""), params.get("to") == "start"
    user = ui.services.accounts.get(session.user)
    ctx = ozeki.Ctx(ui.services, {"name": name}, user, client_address(bottle.request),
                    bottle.request, bottle.response)
    try:
        (drivers.startdriver if on else drivers.stopdriver)(ctx)
    except ozeki.ApiError as exc:
        return f"{name}: {exc}", None
    return f"{name}: {'started' if on else 'stopped'}", None


def _credits(ui, session, params):
    name = params.get("user", "")
    if ui.services.accounts.get(name) is None:
        return f"no user {name!r}", None
    journal, how = ui.services.journal, params.get("how")
    if how in ("unlimited", "metered"):     # a setting beside the balance, as in the API
        journal.set_unlimited(name, how == "unlimited")
        return f"{name}: {'unlimited' if how == 'unlimited' else 'metered by its balance'}", None
    try:
        amount = int(params.get("amount", ""))
    except ValueError:
        return "credits must be a whole number", None
    try:
        if how == "add":
            balance = journal.add_balance(name, amount)
        else:
            balance = journal.set_balance(name, amount, "set from dashboard")
    except ValueError as exc:   # outside the seed's 32-bit balance: said, not a 500
        return f"{name}: {exc}", None
    return f"{name}: balance {balance}", None


def _user(ui, session, params):
    accounts, name = ui.services.accounts, params.get("user", "")
    if params.get("op") == "create":
        password = params.get("password", "")
        if not name or len(name) > 40 or not name.replace("_", "").replace("-", "").isalnum():
            return "user names are letters, digits, - and _ (at most 40)", None
        if accounts.get(name) is not None:
            return f"user {name} exists already", None
        if len(password) < 8:
            return "a password needs at least 8 characters", None
        if not accounts.create(name, password, admin=params.get("admin") == "on"):
            return f"user {name} exists already", None
        return f"user {name} created", None
    if accounts.get(name) is None:
        return f"no user {name!r}", None
    if name == session.user:
        return "you cannot disable yourself", None
    if name == ADMIN:           # as the API refuses stopuser for it: it stays enabled
        return "the admin account cannot be disabled", None
    enabled = params.get("op") == "enable"
    accounts.update(name, enabled=enabled)
    if not enabled:
        ui.sessions.drop_user(name)
    return f"user {name} {'enabled' if enabled else 'disabled'}", None


def _fault(ui, session, params):
    from appliance.web.admin import FAULTS
    network = ui.services.control.sim
    if network is None:
        return "not in demo mode", None
    fault = params.get("fault", "")
    modem = network.modem(params.get("slot", ""))
    if fault not in FAULTS or modem is None:
        return "pick a simulated modem and a fault", None
    modem.inject_fault(fault)
    return f"demo: {fault} injected on {params.get('slot')}", None


ADMIN_ACTIONS = {"ussd": _ussd, "reset": _reset, "connection": _switch, "credits": _credits,
                 "user": _user, "fault": _fault}


def pretty_json(value) -> str:
    return json.dumps(value, indent=1, default=str)
