"""Admin-only endpoints beyond the Ozeki API: a USSD code by hand, and demo fault injection."""

from __future__ import annotations

import json

import bottle

from appliance import suspend
from appliance.errors import ValidationError

from appliance.web import login, refusals
from appliance.web.params import ParamError, client_address, read_params

FAULTS = ("hang", "cms500", "deregister", "unplug", "garbage", "slow", "simbusy", "none")


class Denied(Exception):
    """An admin endpoint refused the caller: 403 with this text."""


def _denied(text: str):
    return lambda: Denied(text)


# HTTP Basic or username/password parameters; administrators only. The user's address lists
# apply here as on every API (they used not to on these two endpoints).
LOGIN = login.Dialect("admin", admin_only=True, refusals={
    login.BAD: _denied("authentication failed"),
    login.THROTTLED: _denied("authentication failed"),
    login.DISABLED: _denied("authentication failed"),
    login.DENIED: _denied("access from this address is not allowed"),
    login.NOT_ALLOWED: _denied("access from this address is not allowed"),
    login.NOT_ADMIN: _denied("admin only"),
})


class Failed(Exception):
    """An admin request answered with an error: its HTTP status and the JSON `error` text."""

    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status = status


class Refused(Failed):
    """A failure the request caused (bad input): noted as a refusal."""


def _json(status: int, **body) -> str:
    bottle.response.status = status
    bottle.response.content_type = "application/json"
    return json.dumps(body)


def _endpoint(services, handler):
    """One admin endpoint: the parameters read, the caller an admin, then `handler(params)`
    answers a dict (200). Every refusal is a JSON error, noted once like any dialect's
    (refusals.py); before, a bad `_charset_` or an unreadable body was a 500."""
    def run():
        request = bottle.request
        address = client_address(request)
        user = ""
        try:
            try:
                params = read_params(request)
            except ParamError as exc:
                raise Refused(400, str(exc)) from None
            try:
                user = login.login(services, request, params, LOGIN).name
            except Denied as exc:       # the login logged it: only counted here
                services.refusals.note_error(LOGIN.name, refusals.who("", address), exc, "")
                return _json(403, error=str(exc))
            return _json(200, **handler(params))
        except Failed as exc:
            if isinstance(exc, Refused):
                services.refusals.note(LOGIN.name, refusals.who(user, address),
                                       f"{exc.status} {exc}")
            return _json(exc.status, error=str(exc))
    return run


def _no_modem(services, wanted: str) -> str:
    running = services.control.ussd_modems()
    return (f"no running modem with that slot or name: {wanted!r} (running: "
            f"{', '.join(running) if running else 'none'})")


def register(app: bottle.Bottle, services) -> None:
    def ussd(params) -> dict:
        wanted = params.get("slot", "").strip()
        if not wanted:
            raise Refused(400, "slot is required: a modem's slot, its number or its "
                               "connection name (slot1, 1, GSMModem0)")
        worker = services.control.ussd_modem(wanted)
        if worker is None:
            raise Refused(404, _no_modem(services, wanted))
        try:
            text = suspend.blocking(worker.run_ussd, params.get("code", ""), 60)
        except ValidationError as exc:      # not a USSD code: refused before the modem
            raise Refused(400, exc.text) from None
        except Exception as exc:  # a modem answer we did not expect: report, don't crash
            raise Failed(502, str(exc)[:300]) from None
        return {"slot": params.get("slot"), "reply": text}

    def demo_fault(params) -> dict:
        network = services.control.sim
        if network is None:
            raise Refused(404, "not in demo mode")
        fault = params.get("fault", "")
        if fault not in FAULTS:
            raise Refused(400, f"fault must be one of {', '.join(FAULTS)}")
        # a slot, its number or the connection's name, as /admin/ussd takes them, and under
        # its name there too (`slot=slot1` was refused as "no simulated modem: ''")
        key = "modem" if "modem" in params or "slot" not in params else "slot"
        wanted = params.get(key, "").strip()
        if not wanted:
            raise Refused(400, "modem is required: a slot, its number or its connection name"
                               " (slot1, 1, GSMModem0)")
        modem = network.modem(wanted) or network.modem(services.control.slot_of(wanted))
        if modem is None:
            raise Refused(404, f"no simulated modem with that slot: {wanted!r}")
        modem.inject_fault(fault)
        return {key: params.get(key), "fault": fault}

    app.route("/admin/ussd", method=["GET", "POST"], callback=_endpoint(services, ussd))
    app.route("/demo/sim", method="POST", callback=_endpoint(services, demo_fault))
