"""Admin-only endpoints beyond the Ozeki API: a USSD code by hand, and demo fault injection."""

from __future__ import annotations

import json

import bottle

from appliance import suspend

from appliance.accounts import AuthError
from appliance.web.params import client_address, read_params

FAULTS = ("hang", "cms500", "deregister", "unplug", "garbage", "slow", "simbusy", "none")


def _admin(services, params) -> str | None:
    """None when the caller is an admin, else the error text (basic auth or parameters)."""
    auth = bottle.request.auth
    name, password = auth if auth else (params.get("username", ""), params.get("password", ""))
    try:
        user = services.accounts.authenticate(name, password, client_address(bottle.request))
    except AuthError:
        return "authentication failed"
    return None if user.admin else "admin only"


def _json(status: int, **body) -> str:
    bottle.response.status = status
    bottle.response.content_type = "application/json"
    return json.dumps(body)


def register(app: bottle.Bottle, services) -> None:
    @app.route("/admin/ussd", method=["GET", "POST"])
    def ussd():
        params = read_params(bottle.request)
        denied = _admin(services, params)
        if denied:
            return _json(403, error=denied)
        worker = services.control.ussd_modem(params.get("slot", ""))
        if worker is None:
            return _json(404, error="no running modem with that slot or name")
        try:
            text = suspend.blocking(worker.run_ussd, params.get("code", ""), 60)
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
        modem = network.modem(params.get("modem", ""))
        if modem is None:
            return _json(404, error="no simulated modem with that slot")
        modem.inject_fault(fault)
        return _json(200, modem=params.get("modem"), fault=fault)
