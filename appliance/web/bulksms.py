"""The bulksms API (http-api.md §14): `/bulksms/bulksms` and `/bulksms/schedulemsg`.

Plain-text answers: one `code|destination|message_id` line per destination, for every code
(seed 004's reply format): a request-level error answers `code|destination|` for each
destination given, or `code||` without one. Both paths accept `date`/`time`/`gmt`.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone

import bottle

from appliance.callback_url import callback_url_problem
from appliance.compose import wap_si_document
from appliance.errors import StoreError, ValidationError
from appliance import priority
from appliance.intake import submit_batch
from appliance.model import Submission
from appliance.web import login, refusals
from appliance.web.params import (MAX_BATCH_MESSAGES, ParamError, client_address, raw_value,
                                   read_params, refuse_head)

log = logging.getLogger("appliance.web")

SUCCESS = 1701
INVALID_URL, BAD_LOGIN, BAD_TYPE, BAD_MESSAGE = 1702, 1703, 1704, 1705
BAD_DESTINATION, BAD_SOURCE, BAD_DLR, USER_VALIDATION = 1706, 1707, 1708, 1709
INTERNAL, TIMEOUT, NO_CREDIT, DND_REJECT = 1710, 1715, 1725, 1732
DUPLICATE, EXPLICIT_DND, IP_BLACKLISTED, IP_NOT_WHITELISTED = 1041, 1042, 16, 18

# type -> Ozeki message type (the one vocabulary compose understands)
TYPES = {"0": "SMS:TEXT:GSM7BIT", "1": "SMS:TEXT:GSM7BIT:CLASS0", "2": "SMS:TEXT:UCS2",
         "4": "SMS:WAPPUSH", "5": "SMS:TEXT", "6": "SMS:TEXT:UCS2:CLASS0",
         "7": "SMS:TEXT:CLASS0"}
MAX_DESTINATIONS = MAX_BATCH_MESSAGES   # as an Ozeki messagecount batch; more: a 1702 request

_REFUSALS = {"bad_recipient": BAD_DESTINATION, "bad_originator": BAD_SOURCE,
             "empty_text": BAD_MESSAGE, "bad_text": BAD_MESSAGE, "text_too_long": BAD_MESSAGE,
             "bad_binary": BAD_MESSAGE, "no_credit": NO_CREDIT, "duplicate": DUPLICATE,
             "duplicate_id": DUPLICATE, "dnd": DND_REJECT, "dnd_explicit": EXPLICIT_DND}

_NUMERIC_SOURCE = re.compile(r"\+?[0-9]{1,18}")
_ALNUM_SOURCE = re.compile(r"[A-Za-z0-9 .\-_&!?]{1,11}")
_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_TIME = re.compile(r"(\d{1,2}):(\d{2})\s*([ap]m)", re.I)
# The sign may be missing: an unencoded "+" (gmt=+05:30) arrives as a space, then stripped.
_GMT = re.compile(r"(?:GMT)?\s*([+-]?)\s*(\d{1,2}):(\d{2})", re.I)


# what a request-level code says in the log (seed 004's names)
_CODE_NAMES = {INVALID_URL: "invalid URL (a parameter is missing or malformed)",
               BAD_LOGIN: "invalid username or password", BAD_TYPE: "invalid type",
               BAD_DLR: "invalid dlr", BAD_SOURCE: "invalid source",
               BAD_MESSAGE: "invalid message", IP_BLACKLISTED: "address blacklisted",
               IP_NOT_WHITELISTED: "address not whitelisted",
               USER_VALIDATION: "user validation failed"}


class Refused(Exception):
    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def _text(response, body: str) -> str:
    response.content_type = "text/plain; charset=utf-8"
    response.status = 200
    return body


def handle(services, request, response, *, schedule_path: bool) -> str:
    refuse_head(request)
    params: dict = {}
    try:
        params = read_params(request)
        return _text(response, _submit(services, params, request, schedule_path))
    except Refused as exc:
        _note(services, request, params, exc, f"{exc.code} {_CODE_NAMES.get(exc.code, '')}")
        return _text(response, _request_lines(exc.code, params))
    except ParamError as exc:      # the destinations as sent, so each still gets its line
        _note(services, request, params, exc, f"{INVALID_URL} {exc}")
        return _text(response, _request_lines(
            INVALID_URL, {"destination": raw_value(request, "destination")}))
    except TimeoutError:
        return _text(response, _request_lines(TIMEOUT, params))
    except StoreError as exc:
        log.error("bulksms: store error: %s", exc)
        return _text(response, _request_lines(INTERNAL, params))


def _note(services, request, params: dict, exc: Exception, reason: str) -> None:
    # the user as named: bulksms answers a request before or after its login alike
    name = str(params.get("username", "")).strip()
    services.refusals.note_error(LOGIN.name, refusals.who(name, client_address(request)), exc,
                                 reason.strip())


def _request_lines(code: int, params: dict) -> str:
    """A request-level refusal in the per-destination format: `code|destination|`."""
    destinations = [d.strip() for d in str(params.get("destination", "")).split(",")
                    if d.strip()] or [""]
    return "\n".join(f"{code}|{_clean(d)}|" for d in destinations)


def _submit(services, params: dict, request, schedule_path: bool) -> str:
    required = ["username", "password", "type", "dlr", "destination", "message"]
    if schedule_path:
        required += ["date", "time"]
    if any(not params.get(name, "").strip() for name in required):
        raise Refused(INVALID_URL)
    user = login.login(services, request, params, LOGIN)
    messagetype = TYPES.get(params["type"].strip())
    if messagetype is None:
        raise Refused(BAD_TYPE)
    dlr = params["dlr"].strip()
    if dlr not in ("0", "1"):
        raise Refused(BAD_DLR)
    source = _source(params.get("source", "").strip(), user)
    text = params["message"]
    if messagetype == "SMS:WAPPUSH":
        text = _wap_push(params)
    send_at = _schedule(params, services.clock.now())
    destinations = [d.strip() for d in params["destination"].split(",") if d.strip()]
    if not destinations:
        raise Refused(INVALID_URL)
    if len(destinations) > MAX_DESTINATIONS:
        # the request, not each number (1706 told a client that follows the seed's
        # "do NOT retry" to drop every valid number for good)
        raise Refused(INVALID_URL)
    callback = {"kind": "bulksms_dlr", "url": user.reporturl} \
        if dlr == "1" and user.reporturl else None
    if callback and callback_url_problem(user.reporturl):
        raise Refused(INVALID_URL)      # the user's stored report URL cannot be called
    window = _dedupe_window(user)
    try:
        level = priority.of(user, params.get("priority"))
    except ValidationError:
        raise Refused(INVALID_URL) from None
    # a generator: each submission is dropped once it is prepared, not held for the list
    submissions = (Submission(user=user.name, recipient=international(destination), text=text,
                              messagetype=messagetype, originator=source, send_at=send_at,
                              want_report=dlr == "1", priority=level, dialect="bulksms",
                              callback=callback, dedupe_window=window)
                   for destination in destinations)
    results = submit_batch(services, submissions)
    return "\n".join(_line(destination, result)
                     for destination, result in zip(destinations, results))


def international(destination: str) -> str:
    """Seed 004: the destination "may or may not include a plus [+] sign": a number is
    international either way. Without the +, a modem sent `36201234567` as a national
    number, and the duplicate check (1041) took it for another handset than +36201234567.
    A number starting with 0 (national, or 00) is left to the common rules."""
    number = destination.strip()
    return "+" + number if number[:1].isdigit() and number[:1] != "0" else number


def _line(destination: str, result) -> str:
    if isinstance(result, ValidationError):
        return f"{_REFUSALS.get(result.code, INTERNAL)}|{_clean(destination)}|"
    return f"{SUCCESS}|{_clean(destination)}|{result.id}"


# a link in running text ends before the punctuation that closes its sentence or bracket
_URL = re.compile(r"(?:https?://|www\.)\S+?(?=[).,;:!?'\"\]>]*(?:\s|$))", re.I)
_HOST = re.compile(r"^https?://[A-Za-z0-9.-]+\.?[A-Za-z0-9-]*(:\d+)?(/\S*)?$", re.I)


def _wap_push(params: dict) -> str:
    """type=4: the link comes in `message` (seed 004's examples), or in an extra `url`; the
    rest of `message` is the text shown with it (the link itself when nothing else)."""
    message = params["message"].strip()
    url = params.get("url", "").strip()
    if not url:
        found = _URL.search(message)
        if found is None:
            raise Refused(BAD_MESSAGE)
        url = found.group(0)
        message = (message[:found.start()] + message[found.end():]).strip() or url
    if not url.lower().startswith(("http://", "https://")):
        if "://" in url or url.lower().startswith(("javascript:", "data:")):
            raise Refused(BAD_MESSAGE)          # ftp://, javascript: : no phone opens it
        url = "http://" + url
    if not _HOST.match(url):
        raise Refused(BAD_MESSAGE)              # "not a url": charged and sent, unusable
    return wap_si_document(url, message)


def _clean(destination: str) -> str:
    """An echoed destination cannot break the line format, nor the answer's UTF-8."""
    return re.sub(r"[\r\n|,]", "", destination)[:40].encode("utf-8", "replace").decode()


def _dedupe_window(user) -> float | None:
    raw = (user.settings or {}).get("dedupe_window")
    try:
        return float(raw) if raw not in (None, "") else None
    except (TypeError, ValueError):
        return None


# The username/password parameters only (seed 004); `_submit` has checked they are there.
LOGIN = login.Dialect("bulksms", basic_auth=False, refusals={
    login.BAD: lambda: Refused(BAD_LOGIN),
    login.THROTTLED: lambda: Refused(USER_VALIDATION),
    login.DISABLED: lambda: Refused(USER_VALIDATION),
    login.DENIED: lambda: Refused(IP_BLACKLISTED),
    login.NOT_ALLOWED: lambda: Refused(IP_NOT_WHITELISTED),
})


def _source(source: str, user) -> str:
    if not source:
        return user.originator
    if _NUMERIC_SOURCE.fullmatch(source) or _ALNUM_SOURCE.fullmatch(source):
        return source
    raise Refused(BAD_SOURCE)


def _schedule(params: dict, now: float) -> float | None:
    """`date` MM/DD/YYYY, `time` hh:mm am|pm, `gmt` [GMT] ±hh:mm (default: appliance time)."""
    date, clock, gmt = (params.get(k, "").strip() for k in ("date", "time", "gmt"))
    if not (date or clock):     # `gmt` alone: a client that always sends its zone (seed 004's
        return None             # examples carry &date=X&time=X&gmt=X) sending now
    d, t = _DATE.fullmatch(date), _TIME.fullmatch(clock)
    g = _GMT.fullmatch(gmt) if gmt else None
    if not d or not t or (gmt and not g):
        raise Refused(INVALID_URL)
    hour, minute = int(t.group(1)), int(t.group(2))
    if hour > 12 or minute > 59:
        raise Refused(INVALID_URL)
    hour = hour % 12 + (12 if t.group(3).lower() == "pm" else 0)
    try:
        if g:
            oh, om = int(g.group(2)), int(g.group(3))
            if oh > 14 or om not in (0, 15, 30, 45):
                raise Refused(INVALID_URL)
            sign = -1 if g.group(1) == "-" else 1
            tz = timezone(sign * timedelta(hours=oh, minutes=om))
            at = datetime(int(d.group(3)), int(d.group(1)), int(d.group(2)), hour, minute,
                          tzinfo=tz)
        else:
            at = datetime(int(d.group(3)), int(d.group(1)), int(d.group(2)), hour, minute)
        epoch = at.timestamp()
    except (ValueError, OverflowError, OSError):
        raise Refused(INVALID_URL) from None
    return epoch if epoch > now else None


def register(app: bottle.Bottle, services) -> None:
    @app.route("/bulksms/bulksms", method=["GET", "POST"])
    def bulksms():
        return handle(services, bottle.request, bottle.response, schedule_path=False)

    @app.route("/bulksms/schedulemsg", method=["GET", "POST"])
    def schedulemsg():
        return handle(services, bottle.request, bottle.response, schedule_path=True)
