"""Every route of the API port and every Ozeki `action=`, in one place.

Nothing registers itself when imported: a module offers plain functions (`register(app,
services)`, Ozeki actions `fn(ctx) -> str`) and only this file decides what is served.
`api` is the small dialect router behind `/api`, which three dialects share.
"""

from __future__ import annotations

import json

import bottle

from appliance.integrations import hooks
from appliance.provider import report_route
from appliance.web import (admin, bulksms, dashboard, drivers, metrics, ozeki, ozeki_actions,
                           ozeki_json, phonesystem)
from appliance.web import ozeki_xml as X
from appliance.web.ozeki import Action
from appliance.web.params import ParamError, peek_params, read_params, refuse_head

A = ozeki_actions
# The Ozeki action= API (http-api.md §1-§10; [NF] names are ours, docs/api.md lists them).
OZEKI_ACTIONS: dict[str, Action] = {
    # sending and reading messages
    "sendmessage": Action(ozeki.sendmessage),
    "getmessagebyid": Action(ozeki.getmessagebyid),
    "receivemessage": Action(A.receivemessage),
    "querymessagelist": Action(A.querymessagelist),
    "deletemessagelist": Action(A.deletemessagelist),
    "deletefolderitems": Action(A.deletefolderitems),
    "markmessagebyid": Action(A.markmessagebyid),
    "deletemessagebyid": Action(A.deletemessagebyid),
    # credits (§7)
    "getcredits": Action(A.getcredits),
    "setcredits": Action(A.setcredits, admin_only=True),
    "addcredits": Action(A.addcredits, admin_only=True),
    # users (§8)
    "createuser": Action(A.createuser, admin_only=True),
    "configuser": Action(A.configuser, admin_only=True),
    "deleteuser": Action(A.deleteuser, admin_only=True),
    "startuser": Action(A.startuser, admin_only=True),
    "stopuser": Action(A.stopuser, admin_only=True),
    "listusers": Action(A.listusers, admin_only=True),
    # address book (§5)
    "getaddressbook": Action(A.getaddressbook),
    "addcontact": Action(A.addcontact),
    "deletecontact": Action(A.deletecontact),
    # reporting (§10)
    "reporting": Action(A.reporting, admin_only=True),
    # do-not-disturb list
    "adddnd": Action(A.adddnd, admin_only=True),
    "deletednd": Action(A.deletednd, admin_only=True),
    "listdnd": Action(A.listdnd, admin_only=True),
    # outbound routes
    "listroutes": Action(A.listroutes, admin_only=True),
    "setroutes": Action(A.setroutes, admin_only=True),
    "resetroutes": Action(A.resetroutes, admin_only=True),
    # drivers (§9)
    "createdriver": Action(drivers.createdriver, admin_only=True),
    "configdriver": Action(drivers.configdriver, admin_only=True),
    "startdriver": Action(drivers.startdriver, admin_only=True),
    "stopdriver": Action(drivers.stopdriver, admin_only=True),
    "deletedriver": Action(drivers.deletedriver, admin_only=True),
    "listdrivers": Action(drivers.listdrivers, admin_only=True),
}


# --- /api: three dialects on one path ------------------------------------------------------


def _is_json(params: dict) -> bool:
    return params.get("action", "").strip().lower() in ozeki_json.ACTIONS


def _is_phonesystem(params: dict) -> bool:
    command = params.get("command", "").strip()
    return bool(command) and (command.lower() == "sendsms" or not params.get("action", "").strip())


def api(services, request, response) -> str:
    """The Ozeki 10 JSON actions go to theirs, `command=SendSms` (or a command without an
    action) to the Phone System dialect, everything else to the Ozeki action= API. The
    dialect is picked from the undecoded names first, so a bad `_charset_` is still answered
    in the right dialect's error format."""
    peek = peek_params(request)
    if _is_json(peek):
        return ozeki_json.handle(services, request, response)
    try:
        params = read_params(request)
    except ParamError as exc:
        response.content_type = "application/xml; charset=utf-8"
        if _is_phonesystem(peek):
            return phonesystem.response_xml(300, phonesystem.MESSAGES[300].format(str(exc)[:100]))
        # the undecoded names and values still say which responseformat the client reads
        return ozeki.render_error(peek, response, X.E_INVALID_PARAMETER, str(exc))
    if _is_json(params):
        return ozeki_json.handle(services, request, response)
    if _is_phonesystem(params):
        return phonesystem.handle_params(services, params, request, response)
    return ozeki.handle_params(services, params, request, response, OZEKI_ACTIONS)


def _core(app: bottle.Bottle, services) -> None:
    # Every dialect answers a str, never a dict: bottle's JSON plugin, one more wrapper per
    # request, has nothing to convert here.
    @app.route("/api", method=["GET", "POST"], skip=["json"])
    def api_route():
        refuse_head(bottle.request)
        return api(services, bottle.request, bottle.response)

    @app.route("/status", method="GET")
    def status():
        bottle.response.content_type = "application/json"
        return json.dumps(services.status(), default=str)


# Every group of routes, in the order they are added (a later route of the same path and
# method wins in bottle; `/` belongs to the dashboard, which hands the Phone System its
# requests). metrics.register also installs the latency plugin every route passes through.
ROUTES = (
    ("api and status", _core),                       # /api, /status
    ("admin", admin.register),                       # /admin/ussd, /demo/sim
    ("provider reports", report_route.register),     # /connections/<name>/report
    ("bulksms", bulksms.register),                   # /bulksms/bulksms, /bulksms/schedulemsg
    ("metrics", metrics.register),                   # /metrics, /health
    ("dashboard", dashboard.register),               # /, /login, /logout, /ui/...
    ("hooks", hooks.register),                       # /hooks/...
)
