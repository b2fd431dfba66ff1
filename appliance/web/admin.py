"""Admin-only endpoints beyond the Ozeki API: a USSD code by hand, and demo fault injection."""

from __future__ import annotations

import json

import bottle

from appliance import suspend
from appliance.errors import ValidationError

from appliance.web import login
from appliance.web.params import read_params

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


def _admin(services, params) -> str | None:
    """None when the caller is an admin, else the error text."""
    try:
        login.login(services, bottle.request, params, LOGIN)
    except Denied as exc:
        return str(exc)
    return None


def _json(status: int, **body) -> str:
    bottle.response.status = status
    bottle.response.content_type = "application/json"
    return json.dumps(body)


def _no_modem(services, wanted: str) -> str:
    running = services.control.ussd_modems()
    return (f"no running modem with that slot or name: {wanted!r} (running: "
            f"{', '.join(running) if running else 'none'})")


def register(app: bottle.Bottle, services) -> None:
    @app.route("/admin/ussd", method=["GET", "POST"])
    def ussd():
        params = read_params(bottle.request)
        denied = _admin(services, params)
        if denied:
            return _json(403, error=denied)
        wanted = params.get("slot", "").strip()
        if not wanted:
            return _json(400, error="slot is required: a modem's slot, its number or its "
                                    "connection name (slot1, 1, GSMModem0)")
        worker = services.control.ussd_modem(wanted)
        if worker is None:
            return _json(404, error=_no_modem(services, wanted))
        try:
            text = suspend.blocking(worker.run_ussd, params.get("code", ""), 60)
        except ValidationError as exc:      # not a USSD code: refused before the modem
            return _json(400, error=exc.text)
        except Exception as exc:  # a modem answer we did not expect: report, don't crash
            return _json(502, error=str(exc)[:300])
        return _json(200, slot=params.get("slot"), reply=text)

    @app.route("/demo/sim", method="POST")
    def demo_fault():
        params = read_params(bottle.request)
        denied = _admin(services, params)
        if denied:
            return _json(403, error=denied)
        network = services.control.sim
        if network is None:
            return _json(404, error="not in demo mode")
        fault = params.get("fault", "")
        if fault not in FAULTS:
            return _json(400, error=f"fault must be one of {', '.join(FAULTS)}")
        wanted = params.get("modem", "")
        # a slot, its number or the connection's name, as /admin/ussd takes them
        modem = network.modem(wanted) or network.modem(services.control.slot_of(wanted))
        if modem is None:
            return _json(404, error=f"no simulated modem with that slot: {wanted!r}")
        modem.inject_fault(fault)
        return _json(200, modem=params.get("modem"), fault=fault)
