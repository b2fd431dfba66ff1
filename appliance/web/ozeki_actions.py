"""Ozeki NG actions beyond sendmessage/getmessagebyid: receiving and folders (§3, §4, §6),
credits (§7), users (§8), address book (§5), reporting (§10) and the do-not-disturb list.

Names Ozeki never published ([NF] in http-api.md) are the appliance's own and are listed as
such in docs/api.md: markmessagebyid, deletemessagebyid, querymessagelist,
deletemessagelist, deletefolderitems, addcontact, deletecontact, adddnd, deletednd, listdnd,
listroutes, setroutes, resetroutes.
"""

from __future__ import annotations

import logging
import re
import urllib.parse

from appliance import auth, routing
from appliance.accounts import ADMIN, User
from appliance.callback_url import callback_url_problem
from appliance.config import ConfigError
from appliance.store.journal import CREDIT_MAX, CREDIT_MIN
from appliance.web import gate
from appliance.web import ozeki_xml as X
from appliance.web.ozeki import (H, ApiError, Ctx, folder_of, parse_time, response_format,
                                 visible_message)

log = logging.getLogger("appliance.web")

FOLDERS = ("inbox", "outbox", "sent", "notsent", "deleted")
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10000
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,40}")
_ON = {"on", "true", "yes", "1"}
_OFF = {"off", "false", "no", "0"}


# --- helpers -----------------------------------------------------------------------------


def _folder(ctx: Ctx) -> str:
    folder = ctx.get("folder", "inbox").strip().lower() or "inbox"
    if folder not in FOLDERS:
        raise ApiError(X.E_INVALID_PARAMETER, f"folder must be one of {', '.join(FOLDERS)}")
    return folder


def _limit(ctx: Ctx) -> int:
    raw = ctx.get("limit").strip()
    if not raw:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(X.E_INVALID_PARAMETER, f"limit must be a number 1..{MAX_LIMIT}")
    return int(raw)


def _account(ctx: Ctx, *, admin_default: bool = False) -> str:
    """The `useraccount` an action is about: yourself unless you are the administrator."""
    wanted = ctx.get("useraccount").strip()
    if not wanted:
        return ADMIN if admin_default else ctx.user.name
    if wanted != ctx.user.name and not ctx.user.admin:
        raise ApiError(X.E_ADMIN_ONLY, "Only an administrator may act on other accounts")
    if ctx.services.accounts.get(wanted) is None:
        raise ApiError(X.E_NOT_FOUND, f"No user account named {wanted[:40]}")
    return wanted


def _message_fields(m: dict) -> list[tuple[str, str]]:
    """A message as receivemessage gives it: (name, value), in the seed's order."""
    sent, received = X.sent_at(m), X.received_at(m)
    return [("messageid", m["id"]), ("originator", m["originator"]),
            ("recipient", m["recipient"]), ("messagetype", m["messagetype"]),
            ("messagedata", m["body"]), ("senttime", X.ozeki_time(sent)),
            ("receivedtime", X.ozeki_time(received))]


def _message_xml(m: dict, *, with_state: bool = False) -> str:
    rows = [X.element(name, value) for name, value in _message_fields(m)]
    if with_state:
        rows += [X.element("folder", folder_of(m)), X.element("state", m["state"])]
    return "<message>\n" + "\n".join(rows) + "\n</message>\n"


def _messages_answer(ctx: Ctx, messages: list[dict]) -> str:
    """receivemessage in the `responseformat` asked for (seed p_7646 lists the parameter):
    XML, or the send answer's html and urlencoded shapes, numbered from 0."""
    fmt = response_format(ctx.params)
    if fmt == "urlencoded":
        ctx.response.content_type = "application/x-www-form-urlencoded; charset=utf-8"
        return urllib.parse.urlencode([(f"{name}{i}", value) for i, m in enumerate(messages)
                                       for name, value in _message_fields(m)])
    if fmt == "html":
        ctx.response.content_type = "text/html; charset=utf-8"
        blocks = ["".join(f"{name}: {H(str(value))}<br>\n"
                          for name, value in _message_fields(m)) + "<br>\n" for m in messages]
        return "<HTML><HEAD><TITLE>SMS</TITLE></HEAD><BODY>\n" + "".join(blocks) + \
            "</BODY></HTML>\n"
    return X.envelope("receivemessage", "".join(_message_xml(m) for m in messages),
                      doctype=X.DOCTYPE_RESPONSE)


def _ids(ctx: Ctx) -> list[str]:
    raw = ctx.params.get("msgid", "").strip() or ctx.params.get("messageid", "").strip()
    if not raw:             # the seed's name for it (messageid is also read)
        raise ApiError(X.E_MISSING_PARAMETER, "Missing parameter: msgID")
    return [i.strip() for i in raw.split(",") if i.strip()][:1000]


def _bool(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in _ON:
        return True
    if v in _OFF:
        return False
    raise ApiError(X.E_INVALID_PARAMETER, f"{name} must be on or off")


# --- receiving and folders --------------------------------------------------------------


def receivemessage(ctx: Ctx) -> str:
    """Messages of a folder not downloaded before; afterdownload = untouch|mark|delete."""
    folder, limit, user = _folder(ctx), _limit(ctx), _account(ctx)
    after = ctx.get("afterdownload", "untouch").strip().lower() or "untouch"
    if after not in ("untouch", "untouched", "mark", "markread", "read", "delete", "deleted"):
        raise ApiError(X.E_INVALID_PARAMETER, "afterdownload must be untouch, mark or delete")
    journal = ctx.services.journal
    unread_only = folder != "deleted"
    if after in ("untouch", "untouched"):
        return _messages_answer(ctx, journal.folder(user, folder, limit,
                                                    unread_only=unread_only))
    if unread_only:
        messages = _download(journal, user, folder, limit)
    else:
        messages = journal.folder(user, folder, limit, unread_only=False)
        journal.mark_read([m["id"] for m in messages], user)
    ids = [m["id"] for m in messages]
    if ids and after.startswith("delete"):
        journal.delete_messages(ids, user)
    return _messages_answer(ctx, messages)


def _download(journal, user: str, folder: str, limit: int) -> list[dict]:
    """Unread messages this download marks read: only those (two pollers at once both read
    the same ones; each gets what it marked). One that marked none while others wait reads
    again: an empty answer tells a client paging "until empty" that the inbox is."""
    for _ in range(5):
        messages = journal.folder(user, folder, limit, unread_only=True)
        if not messages:
            return []
        claimed = set(journal.claim_unread([m["id"] for m in messages], user))
        if claimed:
            return [m for m in messages if m["id"] in claimed]
    return []


def querymessagelist(ctx: Ctx) -> str:
    folder, limit, user = _folder(ctx), _limit(ctx), _account(ctx)
    messages = ctx.services.journal.folder(user, folder, limit)
    data = (X.element("folder", folder) + "\n" + X.element("count", len(messages)) + "\n"
            + "".join(_message_xml(m, with_state=True) for m in messages))
    return X.envelope("querymessagelist", data, doctype=X.DOCTYPE_RESPONSE)


def deletemessagelist(ctx: Ctx) -> str:
    """Move every message of a folder to `deleted`."""
    folder, user = _folder(ctx), _account(ctx)
    if folder == "deleted":
        raise ApiError(X.E_INVALID_PARAMETER, "use deletefolderitems to empty the deleted folder")
    count = ctx.services.journal.purge_deleted(user, folder)
    return X.envelope("deletemessagelist", f"{X.element('folder', folder)}\n"
                      f"{X.element('count', count)}\n")


def deletefolderitems(ctx: Ctx) -> str:
    """Remove the `deleted` folder's messages for good."""
    folder, user = _folder(ctx), _account(ctx)
    if folder != "deleted":
        raise ApiError(X.E_INVALID_PARAMETER, "only the deleted folder can be purged; "
                       "use deletemessagelist first")
    count = ctx.services.journal.purge_deleted(user, "deleted")
    return X.envelope("deletefolderitems", f"{X.element('folder', folder)}\n"
                      f"{X.element('count', count)}\n")


def _by_id(ctx: Ctx, name: str, fn) -> str:
    ids = _ids(ctx)
    for message_id in ids:
        visible_message(ctx, message_id)            # E_NOT_FOUND for others' or unknown ids
    owner = None if ctx.user.admin else ctx.user.name
    done = fn(ids, owner)
    rows = "".join(X.element("messageid", i) + "\n" for i in done)
    return X.envelope(name, rows)


def markmessagebyid(ctx: Ctx) -> str:
    return _by_id(ctx, "markmessagebyid", ctx.services.journal.mark_read)


def deletemessagebyid(ctx: Ctx) -> str:
    return _by_id(ctx, "deletemessagebyid", ctx.services.journal.delete_messages)


# --- credits (§7) -----------------------------------------------------------------------


START_CREDITS = 1000   # a new user's balance unless createuser gives `credits` (docs/api.md)


def _onoff(value: bool) -> str:
    return "on" if value else "off"


def _account_xml(ctx: Ctx, name: str) -> str:
    # Exactly the seed's <account>; unlimited sending is shown in the <user> answers.
    return (f"<account>\n{X.element('username', name)}\n"
            f"{X.element('balance', ctx.services.journal.balance(name))}\n</account>\n")


def getcredits(ctx: Ctx) -> str:
    name = _account(ctx)
    return X.envelope("getcredits", _account_xml(ctx, name))


def _int(ctx: Ctx, name: str) -> int | None:
    """An optional whole-number parameter within the seed's int (32 bits)."""
    raw = ctx.get(name).strip()
    if not raw:
        return None
    if not re.fullmatch(r"[+-]?\d+", raw):
        raise ApiError(X.E_INVALID_PARAMETER, f"{name} must be a whole number")
    value = int(raw[:30]) if len(raw) <= 30 else CREDIT_MAX + 1
    if not CREDIT_MIN <= value <= CREDIT_MAX:
        raise ApiError(X.E_INVALID_PARAMETER, f"{name} is too large: it must be between "
                       f"{CREDIT_MIN} and {CREDIT_MAX}")
    return value


def setcredits(ctx: Ctx) -> str:
    name = _account(ctx, admin_default=True)
    balance = _int(ctx, "newbalance")
    if balance is not None:       # seed 003: empty leaves the balance unchanged
        ctx.services.journal.set_balance(name, balance)
    return X.envelope("setcredits", _account_xml(ctx, name))


def addcredits(ctx: Ctx) -> str:
    name = _account(ctx, admin_default=True)
    amount = _int(ctx, "add")
    if amount is None:
        raise ApiError(X.E_MISSING_PARAMETER, "Missing parameter: add")
    try:
        ctx.services.journal.add_balance(name, amount)
    except ValueError as exc:
        raise ApiError(X.E_INVALID_PARAMETER, f"add={amount} refused: {exc}") from None
    # Ozeki's own example answers addcredits with <action>getcredits</action> (§7).
    return X.envelope("getcredits", _account_xml(ctx, name))


# --- users (§8) ---------------------------------------------------------------------------

USER_TYPES = {"standard": "Standard", "httpserver": "HTTP Server", "http server": "HTTP Server",
              "httpclient": "HTTP Client", "http client": "HTTP Client", "": "Standard"}
_RESERVED = {"action", "username", "password", "name", "type", "_charset_", "responseformat"}
_LIST_KEYS = {"ipallow": "ip_allow", "ip_allow": "ip_allow", "ipdeny": "ip_deny",
              "ip_deny": "ip_deny"}
_TEXT_KEYS = {"reporturl": "reporturl", "inboundurl": "inbound_url", "inbound_url": "inbound_url",
              "forwardurl": "inbound_url", "originator": "originator", "phonenumber": "originator",
              "priority": "priority"}
_BOOL_KEYS = {"allowrouteoverride": "allowrouteoverride", "admin": "admin"}
_SETTING_KEYS = {"dedupewindow": "dedupe_window", "inboundformat": "inbound_format"}


def _user_changes(ctx: Ctx) -> tuple[dict, str]:
    """configuser/createuser KEY=value pairs -> document changes, and a new password."""
    changes: dict = {}
    existing = ctx.services.accounts.get(ctx.get("name").strip())
    settings = dict(existing.settings) if existing else {}
    password = ""
    for key, value in ctx.params.items():
        if key in _RESERVED:
            continue
        if key in ("userpassword", "newpassword"):
            if len(value) < 8:
                raise ApiError(X.E_INVALID_PARAMETER, f"{key} must have at least 8 characters")
            password = value
        elif key in _BOOL_KEYS:
            changes[_BOOL_KEYS[key]] = _bool(key, value)
        elif key in _LIST_KEYS:
            changes[_LIST_KEYS[key]] = [v.strip() for v in value.split(",") if v.strip()][:100]
        elif key in _TEXT_KEYS:
            changes[_TEXT_KEYS[key]] = value.strip()[:1000]
            if _TEXT_KEYS[key] in ("reporturl", "inbound_url") and value.strip() \
                    and callback_url_problem(value.strip()):
                raise ApiError(X.E_INVALID_PARAMETER,
                               f"{key} {callback_url_problem(value.strip())}")
        elif key in _SETTING_KEYS:
            settings[_SETTING_KEYS[key]] = value.strip()[:100]
        elif key in ("credits", "unlimited"):
            pass                        # handled by the caller through the ledger
        elif re.fullmatch(r"[a-z0-9_]{1,40}", key):
            settings[key] = value[:200]   # Ozeki keys without meaning here: kept, not used
        else:
            raise ApiError(X.E_INVALID_PARAMETER, f"unknown user setting {key[:40]!r}")
    if "priority" in changes and changes["priority"] not in ("alert", "high", "normal", "bulk",
                                                             "low"):
        raise ApiError(X.E_INVALID_PARAMETER, "priority must be alert, normal or bulk")
    if "dedupe_window" in settings:
        try:
            float(settings["dedupe_window"])
        except ValueError:
            raise ApiError(X.E_INVALID_PARAMETER, "dedupewindow must be seconds") from None
    changes["settings"] = settings
    return changes, password


def _user_xml(ctx: Ctx, user: User) -> str:
    journal = ctx.services.journal
    return ("<user>\n" + "\n".join([
        X.element("name", user.name), X.element("enabled", "on" if user.enabled else "off"),
        X.element("admin", "on" if user.admin else "off"),
        X.element("allowrouteoverride", "on" if user.allowrouteoverride else "off"),
        X.element("owner", user.owner), X.element("balance", journal.balance(user.name)),
        X.element("unlimited", _onoff(journal.unlimited(user.name)))]) + "\n</user>\n")


def _credit_params(ctx: Ctx) -> tuple[int | None, bool | None]:
    """createuser/configuser `credits` (the balance) and `unlimited` (on/off), checked."""
    unlimited = ctx.get("unlimited").strip()
    return _int(ctx, "credits"), (_bool("unlimited", unlimited) if unlimited else None)


def _apply_credits(ctx: Ctx, name: str, params, *, new: bool) -> None:
    credits, unlimited = params
    journal = ctx.services.journal
    if credits is not None or new:
        journal.set_balance(name, START_CREDITS if credits is None else credits)
    if unlimited is not None or new:
        journal.set_unlimited(name, bool(unlimited))


def _target(ctx: Ctx, *, modify: bool = True) -> User:
    name = ctx.require("name")
    user = ctx.services.accounts.get(name)
    if user is None:
        raise ApiError(X.E_NOT_FOUND, f"No user named {name[:40]}")
    if modify and user.owner == "file" and user.name != ADMIN:
        raise ApiError(X.E_UNSUPPORTED, f"User {name[:40]} is provisioned by the configuration "
                       "file; change it there")
    return user


def _check_admin_changes(ctx: Ctx, changes: dict, password: str) -> None:
    """The admin account always exists and stays admin; the file owns only its password
    (when `[admin]` sets one). Everything else about it is the API's to change."""
    admin = ctx.services.config.admin
    if changes.get("admin") is False or changes.get("enabled") is False:
        raise ApiError(X.E_UNSUPPORTED, "The admin account cannot lose its admin rights")
    if password and (admin.password or admin.password_hash):
        raise ApiError(X.E_UNSUPPORTED, "The admin password is set by the configuration file; "
                       "change it there")


def _user_answer(ctx: Ctx, name: str, action_name: str) -> str:
    user = ctx.services.accounts.get(name)
    if user is None:            # a deleteuser ran while this request waited for the store
        raise ApiError(X.E_NOT_FOUND, f"No user named {name[:40]}")
    return X.envelope(action_name, _user_xml(ctx, user))


def createuser(ctx: Ctx) -> str:
    name = ctx.require("name")
    if not _NAME.fullmatch(name):
        raise ApiError(X.E_INVALID_PARAMETER, "name must be 1-40 letters, digits, '_', '.', '@' "
                       "or '-'")
    kind = ctx.get("type").strip().lower()
    if kind not in USER_TYPES:
        raise ApiError(X.E_UNSUPPORTED, f"user type {kind[:40]!r} is not supported here "
                       "(supported: Standard, HTTP Server, HTTP Client)")
    accounts = ctx.services.accounts
    if accounts.get(name) is not None:
        raise ApiError(X.E_INVALID_PARAMETER, f"A user named {name} already exists")
    changes, password = _user_changes(ctx)
    changes["settings"]["type"] = USER_TYPES[kind]
    credits = _credit_params(ctx)         # a bad value is refused before the user exists
    # No password given: the account exists but nobody can log in until one is set.
    if not accounts.create(name, password or auth.new_password() + auth.new_password(),
                           **changes):       # made by another request meanwhile
        raise ApiError(X.E_INVALID_PARAMETER, f"A user named {name} already exists")
    _apply_credits(ctx, name, credits, new=True)
    return _user_answer(ctx, name, "createuser")


def configuser(ctx: Ctx) -> str:
    user = _target(ctx)
    changes, password = _user_changes(ctx)
    if user.name == ADMIN:
        _check_admin_changes(ctx, changes, password)
    credits = _credit_params(ctx)
    ctx.services.accounts.update(user.name, **changes)
    if password:
        ctx.services.accounts.set_password(user.name, password)
    _apply_credits(ctx, user.name, credits, new=False)
    return _user_answer(ctx, user.name, "configuser")


def deleteuser(ctx: Ctx) -> str:
    user = _target(ctx)
    if user.name == ADMIN:
        raise ApiError(X.E_UNSUPPORTED, "The admin account cannot be deleted")
    ctx.services.accounts.delete(user.name)
    retired = ctx.services.journal.retire_user(user.name)
    _drop_contacts(ctx, user.name)
    log.info("users: %s deleted %s; %d messages and %d ledger entries archived as %s",
             ctx.user.name, user.name, retired["messages"], retired["ledger"],
             retired["archived_as"])
    return X.envelope("deleteuser", f"<user>\n{X.element('name', user.name)}\n"
                      f"{X.element('deleted', 'yes')}\n</user>\n")


def _drop_contacts(ctx: Ctx, owner: str) -> None:
    """A deleted user's private address book goes with it (shared contacts stay)."""
    ctx.services.control.addressbook.drop_user(owner)


def _set_enabled(ctx: Ctx, enabled: bool, action_name: str) -> str:
    user = _target(ctx, modify=False)
    if user.name == ADMIN or user.name == ctx.user.name:
        raise ApiError(X.E_INVALID_PARAMETER, "You cannot start or stop your own account")
    ctx.services.accounts.update(user.name, enabled=enabled)
    return _user_answer(ctx, user.name, action_name)


def startuser(ctx: Ctx) -> str:
    return _set_enabled(ctx, True, "startuser")


def stopuser(ctx: Ctx) -> str:
    return _set_enabled(ctx, False, "stopuser")


def listusers(ctx: Ctx) -> str:
    return X.envelope("listusers", "".join(_user_xml(ctx, u)
                                           for u in ctx.services.accounts.all()))


# --- address book (§5) ----------------------------------------------------------------


def _addressbook(ctx: Ctx):
    if ctx.services.control.documents is None:
        raise ApiError(X.E_INTERNAL, "the address book is not available")
    return ctx.services.control.addressbook


def _csv(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if value else ""


def getaddressbook(ctx: Ctx) -> str:
    book = _addressbook(ctx)
    rows = [d for d in book.all()
            if d.get("user", "") in ("", ctx.user.name) or ctx.user.admin]
    rows.sort(key=lambda d: d["name"].lower())
    text = "\n".join(",".join([_csv(d["name"]), _csv(d.get("phone", "")),
                               _csv(d.get("description", "")), _csv(d.get("groups", ""))])
                     for d in rows)
    body = X.escape(text)
    return (f"{X.HEADER}<Response>\n<Action>getAddressbook</Action>\n<Data>{body}</Data>\n"
            "</Response>\n")


def addcontact(ctx: Ctx) -> str:
    from appliance.compose import normalize_recipient
    from appliance.errors import ValidationError
    name = ctx.require("contactname")[:80]
    try:
        phone = normalize_recipient(ctx.require("phonenumber"))
    except ValidationError as exc:
        raise ApiError(X.E_INVALID_PARAMETER, exc.text) from None
    book = _addressbook(ctx)
    old = book.get(name)
    if old and old.get("user", "") != ctx.user.name and not ctx.user.admin:
        raise ApiError(X.E_ADMIN_ONLY, "That contact belongs to another user")
    shared = ctx.user.admin and ctx.get("shared").strip().lower() in _ON
    book.put({
        "name": name, "phone": phone, "description": ctx.get("description")[:200],
        "groups": ctx.get("groups")[:200], "user": "" if shared else ctx.user.name})
    return X.envelope("addcontact", f"{X.element('name', name)}\n{X.element('phone', phone)}\n")


def deletecontact(ctx: Ctx) -> str:
    name = ctx.require("contactname")
    book = _addressbook(ctx)
    old = book.get(name)
    if old is None or (old.get("user", "") != ctx.user.name and not ctx.user.admin):
        raise ApiError(X.E_NOT_FOUND, f"No contact named {name[:40]}")
    book.remove(name)
    return X.envelope("deletecontact", f"{X.element('name', name)}\n")


# --- reporting (§10) ------------------------------------------------------------------


def reporting(ctx: Ctx) -> str:
    direction = ctx.get("repdirection", "out").strip().lower() or "out"
    if direction not in ("in", "out"):
        raise ApiError(X.E_INVALID_PARAMETER, "repDirection must be in or out")
    export = ctx.get("toexport", "summary").strip().lower() or "summary"
    if export != "summary":
        raise ApiError(X.E_UNSUPPORTED, "only toExport=summary is supported")
    since = parse_time(ctx.get("from"), "from") if ctx.get("from").strip() else None
    until = parse_time(ctx.get("to"), "to") if ctx.get("to").strip() else None
    rows = ctx.services.journal.summary(
        direction, user=ctx.get("useraccount").strip() or None,
        connection=ctx.get("operator").strip() or None, since=since, until=until)
    data = "".join(
        "<user>\n" + "\n".join([X.element("username", r["user"]),
                                X.element("messages", r["messages"]),
                                X.element("parts", r["parts"]), X.element("sent", r["sent"] or 0),
                                X.element("notsent", r["notsent"] or 0)]) + "\n</user>\n"
        for r in rows)
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<response>\n<action>reporting</action>\n'
            f"<data>\n{data}</data>\n</response>\n")


# --- do-not-disturb list (bulksms 1042/1732; every dialect honours it) -------------------


def _dnd_entry(ctx: Ctx) -> str:
    entry = ctx.require("number")
    if not re.fullmatch(r"\+?[0-9]{2,20}\*?", entry):
        raise ApiError(X.E_INVALID_PARAMETER, "number must be digits (optionally +, and * at "
                       "the end for a prefix)")
    return entry


def adddnd(ctx: Ctx) -> str:
    entry = _dnd_entry(ctx)
    gate.dnd_list(ctx.services).add(entry)
    return X.envelope("adddnd", X.element("number", entry) + "\n")


def deletednd(ctx: Ctx) -> str:
    entry = _dnd_entry(ctx)
    if not gate.dnd_list(ctx.services).remove(entry):
        raise ApiError(X.E_NOT_FOUND, f"{entry} is not on the do-not-disturb list")
    return X.envelope("deletednd", X.element("number", entry) + "\n")


def listdnd(ctx: Ctx) -> str:
    return X.envelope("listdnd", "".join(X.element("number", e) + "\n"
                                         for e in gate.dnd_list(ctx.services).entries()))




# --- outbound routes (the appliance's own actions; docs/api.md "Routes") -----------------

MAX_ROUTES = 100
_ROUTE_KEYS = ("connections", "prefix", "user", "messagetype", "serviceprovider", "mode")


def _route_control(ctx: Ctx):
    routes = ctx.services.control.routes
    if routes is None:
        raise ApiError(X.E_INTERNAL, "route handling is not available")
    return routes


def _routes_xml(action_name: str, routes) -> str:
    rows = [X.element("owner", routes.owner)]
    for i, route in enumerate(routes.routes()):
        fields = [X.element("index", i), X.element("connections", ",".join(route.connections))]
        fields += [X.element(k, getattr(route, k)) for k in _ROUTE_KEYS[1:]]
        rows.append("<route>\n" + "\n".join(fields) + "\n</route>")
    return X.envelope(action_name, "<routes>\n" + "\n".join(rows) + "\n</routes>\n")


def _route_tables(ctx: Ctx) -> list[dict]:
    """`routecount=N` and per rule i: `connections<i>` (comma list), `prefix<i>`, `user<i>`,
    `messagetype<i>`, `serviceprovider<i>`, `mode<i>` (failover|balance)."""
    if "routecount" not in ctx.params:      # 0 is a valid count: no rules, all balanced
        raise ApiError(X.E_MISSING_PARAMETER, "Missing parameter: routecount")
    raw = ctx.get("routecount").strip()
    if not raw.isdigit() or int(raw) > MAX_ROUTES:
        raise ApiError(X.E_INVALID_PARAMETER, f"routecount must be a number 0..{MAX_ROUTES}")
    tables = []
    for i in range(int(raw)):
        table = {k: ctx.get(f"{k}{i}").strip() for k in _ROUTE_KEYS if ctx.get(f"{k}{i}").strip()}
        if "connections" not in table:
            raise ApiError(X.E_MISSING_PARAMETER, f"Missing parameter: connections{i}")
        tables.append(table)
    return tables


def listroutes(ctx: Ctx) -> str:
    return _routes_xml("listroutes", _route_control(ctx))


def setroutes(ctx: Ctx) -> str:
    """Replace the whole route table; it wins over the file's until the file's routes change."""
    control = _route_control(ctx)
    try:
        routes = routing.routes_from_tables(_route_tables(ctx), control.connection_names())
    except ConfigError as exc:
        raise ApiError(X.E_INVALID_PARAMETER, str(exc)) from None
    control.set(routes)
    routing.log.info("routing: %s set %d routes through the API", ctx.user.name, len(routes))
    return _routes_xml("setroutes", control)


def resetroutes(ctx: Ctx) -> str:
    """Drop the API table: the config file's routes apply again."""
    control = _route_control(ctx)
    control.reset()
    routing.log.info("routing: %s reset the routes to the config file's", ctx.user.name)
    return _routes_xml("resetroutes", control)
