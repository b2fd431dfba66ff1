"""The Ozeki Phone System HTTP API (http-api.md §13): `?command=SendSms` on `/` and `/api`.

Always HTTP 200; the outcome is `<Code>` in an XML `<Response>`. Credentials (Username/
Password parameters or HTTP Basic) are required unless `[phonesystem] auth_required = false`;
then requests without them are taken only from the `allow` addresses, as `[phonesystem] user`.
"""

from __future__ import annotations

import logging

from appliance import priority
from appliance.logmask import masked
from appliance.accounts import in_networks
from appliance.callback_url import check_callback_url
from appliance.errors import StoreError, ValidationError
from appliance.intake import submit_batch
from appliance.model import Submission
from appliance.web import login, refusals
from appliance.web.refusals import mark_logged
from appliance.web.params import ParamError, client_address, read_params, refuse_head
from appliance.web.ozeki_xml import escape

log = logging.getLogger("appliance.web")

MESSAGES = {
    200: "Command successfully executed",
    300: "Error occured during parsing message: '{0}'",
    301: "Not implemented command: '{0}'",
    302: "Missing or invalid parameter '{0}' for command '{1}'",
    303: "Command '{0}' cannot be used here",
    304: "Authentication required",
    305: "Authentication failed, bad username or password",
    306: "User is not allowed to use API in ACL",
    307: "Use API from this address is forbidden",
    501: "Destination of the SMS is not found",
}
COMMAND = "SendSms"


class PbxError(Exception):
    def __init__(self, code: int, *args: str, detail: str = ""):
        super().__init__(code)
        self.code = code
        self.text = MESSAGES[code].format(*args) + (f" ({detail})" if detail else "")


def response_xml(code: int, message: str, sms_id: str = "") -> str:
    body = (f'<?xml version="1.0"?>\n<Response xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
            f' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
            f"  <Code>{code}</Code>\n  <Message>{escape(message)}</Message>\n")
    if sms_id:
        body += f"  <SmsId>{escape(sms_id)}</SmsId>\n"
    return body + "</Response>\n"


def handle(services, request, response) -> str:
    """The `/` route: Phone System commands only."""
    refuse_head(request)
    try:
        params = read_params(request)
    except ParamError as exc:
        response.content_type = "application/xml; charset=utf-8"
        _note(services, request, None, exc, str(exc))
        return response_xml(300, MESSAGES[300].format(str(exc)[:100]))
    return handle_params(services, params, request, response)


def handle_params(services, params: dict, request, response) -> str:
    response.content_type = "application/xml; charset=utf-8"
    response.status = 200
    try:
        return _send_sms(services, params, request)
    except PbxError as exc:
        _note(services, request, params, exc, f"{exc.code} {exc.text}")
        return response_xml(exc.code, exc.text)
    except TimeoutError:
        return response_xml(303, MESSAGES[303].format(COMMAND) + " (the store is busy; retry)")
    except StoreError as exc:
        log.error("phonesystem: store error: %s", exc)
        return response_xml(303, MESSAGES[303].format(COMMAND) + " (store not available)")


def _note(services, request, params: dict | None, exc: Exception, reason: str) -> None:
    name = str((params or {}).get("username", "")).strip()
    services.refusals.note_error(LOGIN.name, refusals.who(name, client_address(request)), exc,
                                 reason)


_REFUSALS = {
    "bad_recipient": (302, "Recipient"), "empty_text": (302, "Message"),
    "bad_text": (302, "Message"), "text_too_long": (302, "Message"),
    "bad_originator": (302, "Sender"), "dnd": (501, ""), "dnd_explicit": (501, ""),
}


def _refusal(exc: ValidationError) -> PbxError:
    code, param = _REFUSALS.get(exc.code, (303, ""))
    if code == 302:
        return PbxError(302, param, COMMAND, detail=exc.text)
    if code == 501:
        return PbxError(501, detail=exc.text)
    return PbxError(303, COMMAND, detail=exc.text)


def _send_sms(services, params: dict, request) -> str:
    command = params.get("command", "").strip()
    if not command:
        raise PbxError(302, "command", "")
    if command.lower() != COMMAND.lower():
        raise PbxError(301, command[:60])
    user = login.login(services, request, params, LOGIN)
    extension = _extension(services, params)
    for name in ("recipient", "message"):
        if not params.get(name, "").strip():
            raise PbxError(302, name.capitalize(), COMMAND)
    url = params.get("deliveryreporturl", "").strip()
    if url:
        try:
            url = check_callback_url(url, "DeliveryReportURL")
        except ValidationError:
            raise PbxError(302, "DeliveryReportURL", COMMAND) from None
    callback = {"kind": "phonesystem_dlr", "url": url, "extension": extension} if url else None
    try:
        level = priority.of(user, params.get("priority"))
    except ValidationError:
        raise PbxError(302, "Priority", COMMAND) from None
    sub = Submission(user=user.name, recipient=params["recipient"], text=params["message"],
                     originator=params.get("sender", "").strip() or user.originator,
                     priority=level, dialect="phonesystem", callback=callback,
                     client_ref=extension)
    (result,) = submit_batch(services, [sub])
    if isinstance(result, ValidationError):
        raise mark_logged(_refusal(result), counted=True)     # the intake noted it
    log.debug("phonesystem: %s accepted %s for %s", user.name, result.id, masked(sub.recipient))
    return response_xml(200, MESSAGES[200], result.id)


def _extension(services, params: dict) -> str:
    """Seed 002: ApiExtension is an "int value" (e.g. 9994), the API extension's number."""
    extension = params.get("apiextension", "").strip()
    if not extension.isascii() or not extension.isdigit() or len(extension) > 9:
        raise PbxError(302, "ApiExtension", COMMAND, detail="expected an extension number")
    allowed = services.config.phonesystem.extensions
    if allowed and int(extension) not in allowed:
        raise PbxError(302, "ApiExtension", COMMAND, detail="no such API extension")
    return str(int(extension))


def _without_credentials(services, request):
    """Office user authentication off: the configured user, from allowed addresses only."""
    setting = services.config.phonesystem
    address = client_address(request)
    if setting.auth_required:
        raise PbxError(304)
    if not in_networks(address, setting.allow):
        log.warning("phonesystem: request without credentials from %s refused (not in "
                    "[phonesystem] allow)", address)
        raise mark_logged(PbxError(307))
    user = services.accounts.get(setting.user)
    if user is None or not user.enabled:
        log.error("phonesystem: [phonesystem] user %r does not exist or is stopped",
                  setting.user)
        raise mark_logged(PbxError(306))
    return user


# Username/Password parameters or HTTP Basic; none at all: `_without_credentials`.
LOGIN = login.Dialect("phonesystem", without_credentials=_without_credentials, refusals={
    login.BAD: lambda: PbxError(305),
    login.THROTTLED: lambda: PbxError(307, detail="too many failed logins; try later"),
    login.DISABLED: lambda: PbxError(306),
    login.DENIED: lambda: PbxError(307),
    login.NOT_ALLOWED: lambda: PbxError(307),
})

