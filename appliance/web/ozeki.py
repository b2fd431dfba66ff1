"""The Ozeki NG / Ozeki 10 `action=` HTTP API (http-api.md §1-§10).

`handle_params` authenticates, picks the action from the table it is given (`web/routes.py`
`OZEKI_ACTIONS`, the one list of every action) and renders its answer. Actions are small
functions `fn(ctx) -> str`. `web/routes.py` also decides which dialect answers on /api.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator

import bottle

from appliance import priority
from appliance.logmask import masked
from appliance.accounts import User
from appliance.callback_url import check_callback_url
from appliance.intake import submit_batch
from appliance.errors import StoreError, ValidationError
from appliance.model import OZEKI_STATE, Priority, State, Submission
from appliance.web.callback_kit import fill_template
from appliance.web import login, refusals
from appliance.web import ozeki_xml as X
from appliance.web.params import MAX_BATCH_MESSAGES, ParamError, client_address
from appliance.web.services import Services

log = logging.getLogger("appliance.web")


def H(text: str) -> str:
    """html.escape(text): the html package would cost half a MiB of RSS (its entity table)."""
    return X.escape_markup(text).replace('"', "&quot;").replace("'", "&#x27;")


MAX_BATCH = MAX_BATCH_MESSAGES
ACCEPTED = "Message accepted for delivery"

# Per-recipient statuscode for a refused submission (statuscode 0 = accepted).
STATUS_CODES = {
    "bad_recipient": (1, "Invalid recipient"),
    "empty_text": (2, "Message data is empty"),
    "text_too_long": (3, "Message is too long"),
    "bad_text": (3, "Message data cannot be encoded"),
    "bad_messagetype": (4, "Unsupported message type"),
    "no_credit": (5, "Insufficient credit"),
    "duplicate": (6, "Duplicate message"),
    "duplicate_id": (6, "Duplicate message id"),
    "bad_originator": (7, "Invalid originator"),
    "bad_parameter": (9, "Invalid parameter"),
    "store": (8, "Message could not be stored"),
    "bad_binary": (4, "Invalid message document"),
    "bad_validity": (9, "Invalid validity period"),
    "dnd": (10, "Recipient is on the do-not-disturb list"),
    "dnd_explicit": (10, "Recipient is on the do-not-disturb list"),
}


class ApiError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Ctx:
    services: Services
    params: dict[str, str]
    user: User
    address: str
    request: bottle.BaseRequest
    response: bottle.BaseResponse

    def get(self, name: str, default: str = "") -> str:
        return self.params.get(name, default)

    def require(self, name: str) -> str:
        value = self.params.get(name, "").strip()
        if not value:
            raise ApiError(X.E_MISSING_PARAMETER, f"Missing parameter: {name}")
        return value


@dataclass(frozen=True)
class Action:
    fn: Callable[[Ctx], str]
    admin_only: bool = False


def handle_params(services: Services, params: dict, request: bottle.BaseRequest,
                  response: bottle.BaseResponse, actions: dict[str, Action]) -> str:
    """An Ozeki `action=` request (web/routes.py picked the dialect); every failure becomes
    the Ozeki error envelope (in the requested responseformat)."""
    response.content_type = "application/xml; charset=utf-8"
    user = None
    try:
        name = _action_name(params, actions)
        user = login.login(services, request, params, LOGIN)
        act = actions[name]
        if act.admin_only and not user.admin:
            raise ApiError(X.E_ADMIN_ONLY, f"Only an administrator may use {name}")
        return act.fn(Ctx(services, params, user, client_address(request), request, response))
    except ApiError as exc:
        _note(services, request, user, exc, exc.message)
        return render_error(params, response, exc.code, exc.message)
    except ParamError as exc:
        _note(services, request, user, exc, str(exc))
        return render_error(params, response, X.E_INVALID_PARAMETER, str(exc))
    except TimeoutError:
        log.error("api: the store did not answer in time")
        return render_error(params, response, X.E_INTERNAL, "The message store is busy; retry")
    except StoreError as exc:
        log.error("api: store error: %s", exc)
        return render_error(params, response, X.E_INTERNAL, "The message store is not available")


def _note(services, request, user, exc: Exception, reason: str) -> None:
    services.refusals.note_error(
        LOGIN.name, refusals.who(user.name if user else "", client_address(request)), exc, reason)


def render_error(params: dict, response, code: int, message: str) -> str:
    fmt = response_format(params)
    if fmt == "html":
        response.content_type = "text/html; charset=utf-8"
        return (f"<HTML><HEAD><TITLE>SMS</TITLE></HEAD><BODY>\nError code: {code}<br>\n"
                f"Error message: {H(message)}<br>\n</BODY></HTML>\n")
    if fmt == "urlencoded":
        response.content_type = "application/x-www-form-urlencoded; charset=utf-8"
        return urllib.parse.urlencode({"errorcode": code, "errormessage": message})
    response.content_type = "application/xml; charset=utf-8"
    return X.error(code, message)


def _action_name(params: dict, actions: dict[str, Action]) -> str:
    """The action asked for, one of the table's (its name read once per request)."""
    name = params.get("action", "").strip().lower()
    if not name:
        raise ApiError(X.E_MISSING_PARAMETER, "Missing parameter: action")
    if name not in actions:
        raise ApiError(X.E_UNKNOWN_ACTION, f"Unknown action: {name[:40]}")
    return name


def _forbidden_address() -> ApiError:
    return ApiError(X.E_FORBIDDEN_ADDRESS, "Access from this address is not allowed")


# Credentials are the username/password parameters only (no HTTP Basic), as in Ozeki NG.
LOGIN = login.Dialect("ozeki", basic_auth=False, refusals={
    login.BAD: lambda: ApiError(X.E_AUTH_FAILED, "Invalid username or password"),
    login.THROTTLED: lambda: ApiError(X.E_THROTTLED, "Too many failed logins; try again later"),
    login.DISABLED: lambda: ApiError(X.E_USER_DISABLED, "User is stopped"),
    login.DENIED: _forbidden_address,
    login.NOT_ALLOWED: _forbidden_address,
})


# --- sendmessage ------------------------------------------------------------------------


@dataclass
class Outcome:
    """One recipient's answer in a sendmessage response."""

    recipient: str
    originator: str
    messagetype: str
    messagedata: str
    message_id: str = ""
    code: int = 0
    text: str = ACCEPTED
    index: int | None = None
    options: "Options | ApiError | None" = None   # a batch message's own (seed 001 indexes)


def sendmessage(ctx: Ctx) -> str:
    options = request_options(ctx)
    requests = _batch(ctx) if ctx.params.get("messagecount") else [_single_fields(ctx)]
    outcomes = submit_all(ctx, requests, options)
    return render_send(ctx, outcomes)


def _single_fields(ctx: Ctx) -> dict:
    params = ctx.params
    return {k: params.get(k, "") for k in ("recipient", "messagetype", "messagedata",
                                            "originator")}


def _batch(ctx: Ctx) -> Iterator[dict]:
    """The batch's messages one by one (each dict is dropped once read), after the count is
    checked."""
    try:
        count = int(ctx.params.get("messagecount", "").strip())
    except ValueError:
        raise ApiError(X.E_INVALID_PARAMETER, "messagecount must be a whole number") from None
    if not 1 <= count <= MAX_BATCH:
        raise ApiError(X.E_INVALID_PARAMETER, f"messagecount must be 1..{MAX_BATCH}")
    return _batch_fields(ctx, count)


def _batch_fields(ctx: Ctx, count: int) -> Iterator[dict]:
    params = ctx.params
    defaults = {"recipient": "", "messagetype": params.get("messagetype", ""),
                "messagedata": "", "originator": params.get("originator", "")}
    # the options some message carries under its own index (most batches: none), so each
    # message looks up only those
    indexed = {key.rstrip(_DIGITS) for key in params if key[-1:].isdigit()}
    own_options = [name for name in PER_MESSAGE_OPTIONS if name in indexed]
    for i in range(count):
        fields = {k: params.get(f"{k}{i}", default) for k, default in defaults.items()}
        fields["index"] = i
        own = {name: params[f"{name}{i}"] for name in own_options if f"{name}{i}" in params}
        if own:
            fields["options"] = _options_with(ctx, own)
        yield fields


def _options_with(ctx: Ctx, own: dict) -> "Options | ApiError":
    """Seed 001: "attaching a sequence number to the end of each HTTP api parameter that
    relates to the submitted messages" (`sendondate1`, `vp1`, `serviceprovider1`,
    `reporturl1`, ...): the request's options with the message's own over them. A bad one
    refuses that message alone."""
    try:
        return request_options(replace(ctx, params={**ctx.params, **own}))
    except ApiError as exc:
        return exc


_DIGITS = "0123456789"
SMPP_PARAMS = ("source_addr_ton", "source_addr_npi", "dest_addr_ton", "dest_addr_npi",
               "esm_class", "data_coding")
_SMPP_NAMES = frozenset(SMPP_PARAMS)
PER_MESSAGE_OPTIONS = ("sendondate", "vp", "serviceprovider", "reporturl", "priority") \
    + SMPP_PARAMS


@dataclass
class Options:
    """What one sendmessage request asks for every message it carries."""

    send_at: float | None = None
    valid_until: float | None = None
    serviceprovider: str = ""
    smpp_params: dict | None = None
    callback: dict | None = None
    priority: int = Priority.NORMAL


def parse_time(value: str, name: str) -> float:
    """Local time `yyyy-MM-dd HH:mm:ss` or Ozeki's `yyyy.MM.dd. HH:mm:ss` (seconds optional)."""
    text = " ".join(value.replace("T", " ").split())
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y.%m.%d. %H:%M:%S", "%Y.%m.%d %H:%M:%S",
                "%Y-%m-%d %H:%M", "%Y.%m.%d. %H:%M", "%Y/%m/%d %H:%M:%S"):
        try:
            return time.mktime(time.strptime(text, fmt))
        except (ValueError, OverflowError):
            continue
    raise ApiError(X.E_INVALID_PARAMETER,
                   f"{name} must be a local time like 2024-01-31 13:45:00 or 2024.01.31. 13:45:00")


def request_options(ctx: Ctx) -> Options:
    params, user = ctx.params, ctx.user       # each parameter read once, straight from the dict
    try:
        options = Options(priority=priority.of(user, params.get("priority", "")))
    except ValidationError as exc:
        raise ApiError(X.E_INVALID_PARAMETER, exc.text) from None
    sendondate = params.get("sendondate", "")
    if sendondate.strip():
        options.send_at = parse_time(sendondate, "sendondate")
    vp = params.get("vp", "")
    if vp.strip():
        options.valid_until = parse_time(vp, "vp")
        if options.valid_until <= ctx.services.clock.now():
            raise ApiError(X.E_INVALID_PARAMETER, "vp (validity period) is already over")
    if user.allowrouteoverride:
        options.serviceprovider = params.get("serviceprovider", "").strip()[:40]
        if options.serviceprovider and \
                not ctx.services.control.knows_serviceprovider(options.serviceprovider):
            raise ApiError(X.E_INVALID_PARAMETER, "serviceprovider: no connection or route named"
                           f" {options.serviceprovider!r}")
    if not _SMPP_NAMES.isdisjoint(params):     # most requests carry none of the six
        options.smpp_params = _smpp_params(params)
    url = params.get("reporturl", "").strip() or user.reporturl
    if url:
        try:
            url = check_callback_url(url, "reporturl")
        except ValidationError as exc:
            raise ApiError(X.E_INVALID_PARAMETER, exc.text) from None
        options.callback = {"kind": "ozeki_reporturl", "url": url}
    return options


def _smpp_params(params: dict) -> dict | None:
    smpp = {}
    for name in SMPP_PARAMS:
        value = params.get(name, "").strip()
        if value:
            smpp[name] = _smpp_number(name, value)
    return smpp or None


def _smpp_number(name: str, value: str) -> int:
    """A dynamic SMPP parameter: decimal 0..255 (Ozeki: "use decimal values"). ASCII digits
    only: str.isdigit() takes '²', which int() refuses, and 5000 digits int() will not
    read either; both were an HTTP 500 instead of Ozeki's error 3."""
    digits = value.lstrip("0") or "0"
    if not (value.isascii() and value.isdigit()) or len(digits) > 3 or int(digits) > 255:
        raise ApiError(X.E_INVALID_PARAMETER, f"{name} must be a number 0..255")
    return int(digits)


def submit_all(ctx: Ctx, requests: Iterable[dict], options: Options | None = None) -> list[Outcome]:
    """Validate every recipient of every request, then accept them all in one commit."""
    options = options or Options()
    outcomes = [outcome for fields in requests for outcome in _outcomes(ctx, fields)]
    # a generator: each submission is dropped once it is prepared, not held for the batch
    submissions = (_submission_or_error(ctx, o, options) for o in outcomes)
    results = submit_batch(ctx.services, submissions, sender=(LOGIN.name, ctx.user.name))
    for outcome, result in zip(outcomes, results):
        _settle(outcome, result)
    return outcomes


def _outcomes(ctx: Ctx, fields: dict) -> list[Outcome]:
    """One outcome per recipient of a comma list (one, empty, for none)."""
    recipients = [r.strip() for r in fields.get("recipient", "").split(",") if r.strip()]
    index, options = fields.get("index"), fields.get("options")
    originator = fields.get("originator") or ctx.user.originator
    messagetype = fields.get("messagetype") or "SMS:TEXT"
    messagedata = fields.get("messagedata", "")
    return [Outcome(recipient=recipient, index=index, originator=originator,
                    messagetype=messagetype, messagedata=messagedata, options=options)
            for recipient in recipients or [""]]


def _submission_or_error(ctx: Ctx, outcome: Outcome, options: Options):
    own = outcome.options
    if isinstance(own, ApiError):
        return ValidationError("bad_parameter", own.message, "")
    try:
        return build_submission(ctx, outcome, own or options)
    except ValidationError as exc:
        return exc


def build_submission(ctx: Ctx, outcome: Outcome, options: Options | None = None) -> Submission:
    """The neutral submission for one recipient; options shared by the whole request."""
    options = options or Options()
    if not outcome.recipient:
        raise ValidationError("bad_recipient", "Missing parameter: recipient", "recipient")
    return Submission(user=ctx.user.name, recipient=outcome.recipient,
                      text=outcome.messagedata, messagetype=outcome.messagetype,
                      originator=outcome.originator, serviceprovider=options.serviceprovider,
                      send_at=options.send_at, valid_until=options.valid_until,
                      smpp_params=dict(options.smpp_params or {}), priority=options.priority,
                      dialect="ozeki", callback=options.callback)


def _settle(outcome: Outcome, result) -> None:
    if isinstance(result, ValidationError):
        _refuse(outcome, result)
    else:
        outcome.message_id = result.id
        if log.isEnabledFor(logging.DEBUG):       # per message: DEBUG, masked only when shown
            log.debug("api: accepted %s for %s", result.id, masked(outcome.recipient))


def _refuse(outcome: Outcome, exc: ValidationError) -> None:
    outcome.code, default = STATUS_CODES.get(exc.code, (9, "Invalid parameter"))
    outcome.text = exc.text or default


def outcome_keywords(o: Outcome) -> dict[str, str]:
    """The §2.6 `$keyword` values of an accept report, for continueurl / redirecturl."""
    return {"messageid": o.message_id, "statuscode": str(o.code), "statusmessage": o.text,
            "recipient": o.recipient, "originator": o.originator, "messagetype": o.messagetype,
            "messagedata": o.messagedata, "status": "accepted" if o.code == 0 else "rejected",
            "submitdate": X.ozeki_time(time.time())}


def render_send(ctx: Ctx, outcomes: list[Outcome]) -> str:
    params = ctx.params
    first = outcomes[0] if outcomes else None
    limit = params.get("maxresponse", "").strip()
    if limit.isdigit():
        outcomes = outcomes[:int(limit)]
    redirect = params.get("redirecturl", "").strip()
    if redirect and first is not None:
        location = safe_url(fill_template(redirect, outcome_keywords(first)))
        if location:
            ctx.response.status = 302
            ctx.response.set_header("Location", location)
    fmt = response_format(params)
    if fmt == "html":
        return _html_send(ctx, outcomes, first)
    if fmt == "urlencoded":
        return _urlencoded_send(outcomes)
    if first is not None and first.index is not None:   # a batch's outcomes all have one
        # numbered in order: a comma list in one entry of a batch gets a report per number
        # (two <acceptreport0> lost one id for any client that reads them by name)
        return X.envelope_of("sendmessage", [_indexed_report(o, i)
                                             for i, o in enumerate(outcomes)])
    return X.envelope_of("sendmessage", [_accept_report(o) for o in outcomes])


def safe_url(url: str) -> str:
    """A URL fit for a Location header or an href: http(s) only, no control characters."""
    if any(ord(c) < 32 or ord(c) == 127 for c in url):
        return ""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    return url if scheme in ("http", "https") or url.startswith("/") else ""


def response_format(params: dict) -> str:
    fmt = params.get("responseformat", "").strip().lower()
    return fmt if fmt in ("html", "urlencoded") else "xml"


def _html_send(ctx: Ctx, outcomes: list[Outcome], first: Outcome | None) -> str:
    ctx.response.content_type = "text/html; charset=utf-8"
    blocks = [f"Status code: {o.code}<br>\nStatus message: {H(o.text)}<br>\n"
              f"Message ID: {H(o.message_id)}<br>\nRecipient: {H(o.recipient)}<br>\n<br>\n"
              for o in outcomes]
    link = ""
    continueurl = ctx.get("continueurl").strip()
    if continueurl and first is not None:
        url = safe_url(fill_template(continueurl, outcome_keywords(first)))
        if url:
            link = f"<a href='{H(url)}'>Click here to continue</a>\n"
    return ("<HTML><HEAD><TITLE>SMS</TITLE></HEAD><BODY>\n" + "".join(blocks) + link
            + "</BODY></HTML>\n")


def _urlencoded_send(outcomes: list[Outcome]) -> str:
    bottle.response.content_type = "application/x-www-form-urlencoded; charset=utf-8"
    several = len(outcomes) != 1 or outcomes[0].index is not None
    pairs = []
    for n, o in enumerate(outcomes):
        i = n if several else ""
        pairs += [(f"statuscode{i}", o.code), (f"statusmessage{i}", o.text),
                  (f"messageid{i}", o.message_id), (f"recipient{i}", o.recipient)]
    return urllib.parse.urlencode(pairs)


def _accept_report(o: Outcome) -> str:
    return ("<acceptreport>\n"
            + X.elements(("statuscode", o.code), ("statusmessage", o.text),
                         ("messageid", o.message_id), ("originator", o.originator),
                         ("recipient", o.recipient), ("messagetype", o.messagetype),
                         ("messagedata", o.messagedata))
            + "</acceptreport>\n")


def _serviceprovider(o: Outcome) -> str:
    return o.options.serviceprovider if isinstance(o.options, Options) else ""


def _indexed_report(o: Outcome, i: int) -> str:
    # The un-indexed <recipient> inside indexed parents is the seed's own shape (§2.4).
    return (f"<acceptreport{i}>\n"
            + X.elements((f"statuscode{i}", o.code), (f"statusmessage{i}", o.text),
                         (f"messageid{i}", o.message_id), (f"originator{i}", o.originator),
                         ("recipient", o.recipient), (f"messagetype{i}", o.messagetype),
                         (f"messagedata{i}", o.messagedata),
                         (f"serviceprovider{i}", _serviceprovider(o)))
            + f"</acceptreport{i}>\n")


# --- getmessagebyid ---------------------------------------------------------------------


def folder_of(message: dict) -> str:
    if message["deleted"]:
        return "DELETED"
    if message["direction"] == "in":
        return "INBOX"
    state = State(message["state"])
    if state in (State.SUBMITTED, State.DELIVERED):
        return "SENT"
    if state.final:
        return "NOTSENT"
    return "OUTBOX"


def visible_message(ctx: Ctx, message_id: str) -> dict:
    message = ctx.services.journal.get_message(message_id)
    if message is None or (message["user"] != ctx.user.name and not ctx.user.admin):
        raise ApiError(X.E_NOT_FOUND, f"No message with id {message_id[:64]}")
    return message


def _operatornames(ctx: Ctx, m: dict) -> str:
    """Every connection that carried the message, in order (a message resent whole after
    its first channel stalled names both)."""
    names = [] if m["direction"] == "in" else \
        ctx.services.journal.channels_used([m["id"]]).get(m["id"], [])
    if not names:
        names = [m["connection"]]
    return "".join(X.element("operatorname", name) for name in names)


def getmessagebyid(ctx: Ctx) -> str:
    message_id = ctx.params.get("msgid", "").strip() or ctx.params.get("messageid", "").strip()
    if not message_id:      # the seed's name for it (messageid is also read)
        raise ApiError(X.E_MISSING_PARAMETER, "Missing parameter: msgID")
    m = visible_message(ctx, message_id)
    state = "DELETED" if m["deleted"] else m["state"]
    sent, received = X.sent_at(m), X.received_at(m)   # as receivemessage's, dotted
    data = "\n".join([
        X.element("messageid", m["id"]), X.element("originator", m["originator"]),
        X.element("recipient", m["recipient"]), X.element("folder", folder_of(m)),
        X.element("senttime", X.ozeki_time(sent, dotted=True)),
        X.element("receivedtime", X.ozeki_time(received, dotted=True)),
        X.element("creationtime", X.ozeki_time(m["created"], dotted=True)),
        X.element("callbackid", m["client_ref"]),
        X.element("state", OZEKI_STATE[State(state.lower())] if state != "DELETED" else 15),
        X.element("statusmessage", m["reason"] or m["state"]),
        f"<operatornames>{_operatornames(ctx, m)}</operatornames>",
        f"<routes>{X.element('route', 'default')}</routes>",
        X.element("messagetype", m["messagetype"]), X.element("messagedata", m["body"]),
    ])
    return X.envelope("getMsgInfoByID", data + "\n")
