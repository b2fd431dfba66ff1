"""The Ozeki 10 JSON REST API (http-api.md §12): sendmsg, receivemsg, deletemsg, markmsg on
/api, with HTTP Basic authentication (form credentials are accepted too).

Answers: `{"http_code": N, "response_code": "SUCCESS"|..., "response_msg": "...", "data": ...}`
with the same HTTP status as `http_code`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import datetime

import bottle

from appliance.errors import StoreError, ValidationError
from appliance import priority
from appliance.intake import submit_batch
from appliance.model import Submission
from appliance.timefmt import LAST_EPOCH
from appliance.web import login, refusals
from appliance.web.params import MAX_BATCH_MESSAGES, ParamError, client_address, read_params

log = logging.getLogger("appliance.web")

FOLDERS = ("inbox", "outbox", "sent", "notsent", "deleted")
MAX_MESSAGES = MAX_BATCH_MESSAGES
# JSON values a body may hold: about 20 for each of MAX_MESSAGES messages (a message is an
# object of a dozen fields). A body parses to ~30 bytes of Python objects per value and
# more, so 8 MiB of `[],[],...` took the daemon to 248 MiB (measured), and 32 MiB (a body
# the server takes) to about a gigabyte: counted before parsing, a flood is refused.
MAX_JSON_VALUES = 20 * MAX_MESSAGES + 1_000
DEFAULT_LIMIT = 1000
_ID = re.compile(r"[A-Za-z0-9_.:{}-]{1,64}")


class JsonError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


# json.dumps and json.loads with options build an encoder or a decoder (and its scanner) per
# call; these are built once (as json's own default ones are, shared by every thread).
_ENCODER = json.JSONEncoder(ensure_ascii=False)


def answer(response, status: int, code: str, message: str = "", data=None) -> str:
    response.status = status
    response.content_type = "application/json; charset=utf-8"
    text = _ENCODER.encode({"http_code": status, "response_code": code,
                            "response_msg": message, "data": data})
    # an echoed lone surrogate (a "\udcff" escape in the request) cannot go out as UTF-8
    return text.encode("utf-8", errors="replace").decode("utf-8")


def handle(services, request, response) -> str:
    params: dict = {}
    user = None
    try:
        params = read_params(request)
        name = params.get("action", "").strip().lower()
        user = login.login(services, request, params, LOGIN)
        return ACTIONS[name](services, user, request, response, params)
    except JsonError as exc:
        _note(services, request, user, exc, exc.message)
        for name, value in exc.headers.items():    # a 401 says how to log in (RFC 7235)
            response.set_header(name, value)
        return answer(response, exc.status, exc.code, exc.message)
    except ParamError as exc:
        _note(services, request, user, exc, str(exc))
        return answer(response, 400, "INVALID_REQUEST", str(exc))
    except TimeoutError:
        return answer(response, 503, "INTERNAL_ERROR", "the message store is busy; retry")
    except StoreError as exc:
        log.error("json api: store error: %s", exc)
        return answer(response, 500, "INTERNAL_ERROR", "the message store is not available")


def _note(services, request, user, exc: Exception, reason: str) -> None:
    services.refusals.note_error(
        LOGIN.name, refusals.who(user.name if user else "", client_address(request)), exc, reason)


def _forbidden_address() -> JsonError:
    return JsonError(403, "FORBIDDEN", "access from this address is not allowed")


# HTTP Basic authentication, or username/password parameters.
LOGIN = login.Dialect("ozeki_json", refusals={
    login.BAD: lambda: JsonError(401, "INVALID_CREDENTIALS", "invalid username or password",
                                 {"WWW-Authenticate": 'Basic realm="sms-appliance"'}),
    login.THROTTLED: lambda: JsonError(429, "TOO_MANY_REQUESTS",
                                       "too many failed logins; try later"),
    login.DISABLED: lambda: JsonError(403, "FORBIDDEN", "user is stopped"),
    login.DENIED: _forbidden_address,
    login.NOT_ALLOWED: _forbidden_address,
})


def _not_json(name: str):
    """NaN and Infinity: Python reads them, JSON has no such values. Taken, they were sent
    as the SMS text "nan" and echoed in a reply no strict JSON parser can read."""
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:20]} does not fit a double")
    return value


_DECODER = json.JSONDecoder(parse_constant=_not_json, parse_float=_finite)


def _body(request) -> dict:
    try:
        raw = request.body.read(bottle.BaseRequest.MEMFILE_MAX + 1)
    except (OSError, ValueError):
        raise JsonError(400, "INVALID_REQUEST", "could not read the request body") from None
    if not raw.strip():
        return {}
    _refuse_value_flood(raw)
    try:
        data = _DECODER.decode(raw.decode("utf-8"))     # a BOM is refused, as by json.loads
    except (UnicodeDecodeError, ValueError, RecursionError):    # Recursion: [[[[…]]]]
        raise JsonError(400, "INVALID_REQUEST", "the body is not valid UTF-8 JSON (NaN,"
                        " Infinity and numbers beyond a double are not JSON)") from None
    if not isinstance(data, dict):
        raise JsonError(400, "INVALID_REQUEST", "the body must be a JSON object")
    return data


def _refuse_value_flood(raw: bytes) -> None:
    """Every value but the first follows a comma or opens an array or object; a body
    shorter than two bytes a value cannot hold too many, so most are not counted."""
    if len(raw) < 2 * MAX_JSON_VALUES:
        return
    values = raw.count(b",") + raw.count(b"[") + raw.count(b"{")
    if values > MAX_JSON_VALUES:
        raise JsonError(413, "INVALID_REQUEST", f"the body holds about {values:,} JSON values;"
                        f" at most {MAX_JSON_VALUES:,} are read ({MAX_MESSAGES:,} messages)")


# Every date in a reply is `yyyy-MM-dd HH:mm:ss`: Ozeki's own clients strptime each one
# they find (ozekilibsrest get_response_send / get_response_receive), so an empty or ISO date
# made them fail on a whole batch or a whole inbox. A message that never expires says so with
# the last date the format can hold.
NO_LIMIT = "9999-12-31 23:59:59"


def fmt_time(epoch: float | None, default: str = "") -> str:
    if not epoch:
        return default
    if epoch >= LAST_EPOCH:
        return NO_LIMIT
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _reply_dates(created: float, send_at: float | None, valid_until: float | None) -> dict:
    """A message's three dates for a reply: sent when created unless scheduled, valid
    without limit unless it has one."""
    create_date = fmt_time(created)
    if send_at is not None and send_at <= created:      # a past send time: sent at once
        send_at = None
    return {"create_date": create_date, "valid_until": fmt_time(valid_until, NO_LIMIT),
            "time_to_send": fmt_time(send_at, create_date)}


def _parsed_or_none(value) -> float | None:
    try:
        return parse_time(value, "date")
    except ValidationError:
        return None


def parse_time(value, name: str) -> float | None:
    """ISO 8601 as Ozeki 10 writes it (`2024-01-31T13:45:00`, server-local time); a `Z` or
    an offset (`+01:00`) says which time it is, so it counts whatever the board's zone."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValidationError("bad_parameter", f"{name} must be a date string", name)
    text = value.strip()
    try:
        return datetime.fromisoformat(text).timestamp()     # naive: local time
    except (ValueError, OverflowError, OSError):
        pass
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(text.replace("T", " "), fmt).timestamp()
        except (ValueError, OverflowError, OSError):
            continue
    raise ValidationError("bad_parameter", f"{name} must look like 2024-01-31 13:45:00", name)


def _str(message: dict, key: str) -> str:
    value = message.get(key, "")
    if type(value) is str:      # the usual value (json.loads makes no str subclass)
        return value
    if value is None:
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ValidationError("bad_parameter", f"{key} must be a string", key)
    return str(value)


def _flag(message: dict, key: str, default: bool = True) -> bool:
    value = message.get(key, default)
    return value if isinstance(value, bool) else str(value).lower() in ("true", "1", "yes", "on")


def _submission(services, user, message) -> Submission:
    if not isinstance(message, dict):
        raise ValidationError("bad_parameter", "each message must be a JSON object", "messages")
    message_id = _str(message, "message_id") or _str(message, "id")
    if message_id and not _ID.fullmatch(message_id):
        raise ValidationError("bad_parameter", "message_id must be up to 64 letters, digits or "
                              "-_.:{}", "message_id")
    provider = _str(message, "to_connection")[:40] if user.allowrouteoverride else ""
    if provider and not services.control.knows_serviceprovider(provider):
        raise ValidationError("bad_parameter", f"to_connection: no connection or route named"
                              f" {provider!r}", "to_connection")
    tags = message.get("tags") or []
    return Submission(
        user=user.name, recipient=_str(message, "to_address"), text=_str(message, "text"),
        messagetype=_str(message, "message_type") or "SMS:TEXT",
        originator=_str(message, "from_address") or user.originator,
        send_at=parse_time(message.get("time_to_send"), "time_to_send"),
        valid_until=parse_time(message.get("valid_until"), "valid_until"),
        want_report=_flag(message, "delivery_report_requested"),
        priority=priority.of(user, _str(message, "priority")), serviceprovider=provider,
        dialect="ozeki_json",
        message_id=message_id, client_ref=json.dumps(tags)[:1000] if tags else "")


def _submission_or_error(services, user, message):
    try:
        return _submission(services, user, message)
    except ValidationError as exc:
        return exc


def sendmsg(services, user, request, response, params) -> str:
    body = _body(request)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise JsonError(400, "INVALID_REQUEST", "the body needs a non-empty \"messages\" list")
    if len(messages) > MAX_MESSAGES:
        raise JsonError(400, "INVALID_REQUEST", f"at most {MAX_MESSAGES} messages per request")
    echoes = [_echo(raw) for raw in messages]
    submissions = (_submission_or_error(services, user, raw) for raw in messages)
    now = services.clock.now()
    ok = 0
    results = submit_batch(services, submissions, sender=(LOGIN.name, user.name))
    for echo, message in zip(echoes, results):
        if isinstance(message, ValidationError):
            echo["status"] = message.text
            # the dates as sent, in the reply's format (a date that cannot be read is
            # likely why it was refused; the status says so)
            echo.update(_reply_dates(_parsed_or_none(echo["create_date"]) or now,
                                     _parsed_or_none(echo["time_to_send"]),
                                     _parsed_or_none(echo["valid_until"])))
        else:
            ok += 1
            echo["status"] = "SUCCESS"
            echo["message_id"] = message.id
            echo["to_address"] = message.submission.recipient
            echo["message_type"] = message.submission.messagetype
            echo.update(_reply_dates(now, message.submission.send_at,
                                     message.submission.valid_until))
    data = {"total_count": len(echoes), "success_count": ok, "failed_count": len(echoes) - ok,
            "messages": echoes}
    return answer(response, 200, "SUCCESS", "", data)


# Every field of a message's echo, in order, with its value for a message that has none.
_ECHO_DEFAULTS = {
    "message_id": "", "from_connection": "", "from_address": "", "from_station": "",
    "to_connection": "", "to_address": "", "to_station": "", "text": "", "create_date": "",
    "valid_until": "", "time_to_send": "", "submit_report_requested": True,
    "delivery_report_requested": True, "view_report_requested": False, "tags": [],
    "message_type": "SMS:TEXT"}
_ECHOABLE = (str, int, float, bool, list)


def _echo(raw) -> dict:
    """The message as sent, for the reply: each field's own value (an object or null as
    ""), its default when the message does not give it. Only the message's own keys are
    looked at (usually two or three), not all sixteen fields."""
    echo = {**_ECHO_DEFAULTS, "tags": []}          # a list of its own for each message
    if not isinstance(raw, dict):
        return echo
    if "message_id" not in raw and "id" in raw:     # the id under its other name
        raw = {**raw, "message_id": raw["id"]}
    for key, value in raw.items():
        if key in echo:
            echo[key] = value if isinstance(value, _ECHOABLE) else ""
    return echo


def _message_json(m: dict, connections: list[str] | None = None) -> dict:
    """`connections` (an addition): every channel that carried the message, in order;
    `partial` (an addition): an inbound long message whose missing parts never came."""
    inbound = m["direction"] == "in"
    return {
        "message_id": m["id"], "from_connection": m["connection"] if inbound else "",
        "from_address": m["originator"], "from_station": "",
        "to_connection": "" if inbound else m["connection"], "to_address": m["recipient"],
        "to_station": "", "text": m["body"],
        # which kind of message `text` holds (a binary one's is its data in hex): the type
        # sendmsg takes, in the action= API's words (SMS:TEXT:CLASS0, SMS:BINARY, …)
        "message_type": m["messagetype"],
        **_reply_dates(m["created"], m["send_at"], m["valid_until"]),
        "submit_report_requested": bool(m["want_report"]),
        "delivery_report_requested": bool(m["want_report"]),
        "view_report_requested": False, "tags": [], "is_read": bool(m["is_read"]),
        "state": m["state"],
        "connections": connections or ([m["connection"]] if m["connection"] else []),
        "partial": m["code"] == "partial",
    }


def _folder(value) -> str:
    if value is None:             # not given: the inbox, as in the Ozeki action= API
        return "inbox"
    folder = (value or "inbox").strip().lower() if isinstance(value, str) else ""
    if folder not in FOLDERS:
        raise JsonError(400, "INVALID_REQUEST", f"folder must be one of {', '.join(FOLDERS)}")
    return folder


def receivemsg(services, user, request, response, params) -> str:
    # folder and limit from the query, or from a JSON body as deletemsg and markmsg read
    # theirs (a client mixing the two styles silently got the inbox)
    body = _body(request) if request.method == "POST" else {}
    folder = _folder(body.get("folder", params.get("folder")))
    raw = str(body.get("limit", params.get("limit", ""))).strip()
    if raw and (not raw.isdigit() or not 1 <= int(raw) <= 10000):
        raise JsonError(400, "INVALID_REQUEST", "limit must be a number 1..10000")
    limit = int(raw) if raw else DEFAULT_LIMIT
    messages = services.journal.folder(user.name, folder, limit)
    used = services.journal.channels_used([m["id"] for m in messages
                                           if m["direction"] == "out"])
    data = {"folder": folder, "limit": str(limit),
            "data": [_message_json(m, used.get(m["id"])) for m in messages]}
    return answer(response, 200, "SUCCESS", "", data)


def _ids_body(request, params) -> tuple[str, list[str]]:
    body = _body(request)
    folder = _folder(body.get("folder", params.get("folder")))
    ids = body.get("message_ids")
    if ids is None and isinstance(body.get("messages"), list):
        ids = [m.get("message_id") for m in body["messages"] if isinstance(m, dict)]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise JsonError(400, "INVALID_REQUEST", "message_ids must be a list of strings")
    return folder, ids[:10000]


def _owned(services, user, folder: str, ids: list[str], unchanged=None) -> list[str]:
    """Ids (each once) of this user's messages now in `folder` that the action changes:
    "the ids of yours that were changed" (docs/api.md). An admin's own too: receivemsg
    lists only its own, and the admin could change others' messages it could not see.
    `unchanged(m)`: the action would change nothing (already read)."""
    from appliance.web.ozeki import folder_of
    owned = []
    for message_id in dict.fromkeys(ids):
        m = services.journal.get_message(message_id)
        if m and m["user"] == user.name and folder_of(m).lower() == folder \
                and not (unchanged and unchanged(m)):
            owned.append(message_id)
    return owned


def deletemsg(services, user, request, response, params) -> str:
    folder, ids = _ids_body(request, params)
    owned = _owned(services, user, folder, ids) if folder != "deleted" else []
    done = services.journal.delete_messages(owned, user.name) if owned else []
    return answer(response, 200, "SUCCESS", "", {"folder": folder, "message_ids": done})


def markmsg(services, user, request, response, params) -> str:
    folder, ids = _ids_body(request, params)
    owned = _owned(services, user, folder, ids, unchanged=lambda m: m["is_read"])
    done = services.journal.mark_read(owned, user.name) if owned else []
    return answer(response, 200, "SUCCESS", "", {"folder": folder, "message_ids": done})


ACTIONS = {"sendmsg": sendmsg, "receivemsg": receivemsg, "deletemsg": deletemsg,
           "markmsg": markmsg}
