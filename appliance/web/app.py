"""The bottle application: routes of every dialect on one port, and error pages that never
show a traceback."""

from __future__ import annotations

import json
import logging

import bottle

from appliance.web import ozeki
from appliance.web.services import Services

log = logging.getLogger("appliance.web")

# Dialect modules register routes through these hooks (name -> fn(app, services)).
ROUTE_HOOKS: dict[str, object] = {}


def make_app(services: Services) -> bottle.Bottle:
    from appliance.web import admin  # noqa: F401  (registers its routes)
    from appliance.web import drivers, ozeki_actions  # noqa: F401  (register their actions)
    from appliance.web import bulksms, phonesystem
    from appliance.provider import report_route  # noqa: F401  (provider delivery reports)

    app = bottle.Bottle(catchall=True, autojson=True)
    app.config["services"] = services
    bottle.BaseRequest.MEMFILE_MAX = 32 * 1024 * 1024   # a 20,000-message batch POST fits

    @app.route("/api", method=["GET", "POST"])
    def api():
        return ozeki.handle(services, bottle.request, bottle.response)

    @app.route("/status", method="GET")
    def status():
        bottle.response.content_type = "application/json"
        return json.dumps(services.status(), default=str)

    for register in ROUTE_HOOKS.values():
        register(app, services)
    bulksms.register(app, services)
    phonesystem.register(app, services)
    from appliance.web import dashboard, metrics
    metrics.register(app, services)        # /metrics, /health, HTTP latency by dialect
    dashboard.register(app, services)      # `/` without a query string, /login, /ui/...
    from appliance.integrations import hooks
    hooks.register(app, services)
    app.install(_log_once)
    _error_pages(app)
    return app


def _log_once(callback):
    """A bug in a handler is logged once, with its traceback, and answered with a plain 500;
    bottle would otherwise print the traceback to wsgi.errors as well."""
    def guarded(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except bottle.HTTPResponse:
            raise
        except Exception:
            log.exception("web: %s %s failed", bottle.request.method, bottle.request.path)
            raise bottle.HTTPError(500, "internal error") from None
    return guarded


def _error_pages(app: bottle.Bottle) -> None:
    def plain(error: bottle.HTTPError):
        bottle.response.content_type = "text/plain; charset=utf-8"
        body = error.body if error.status_code < 500 else "internal error"
        return f"{error.status_code} {body}\n"

    for code in (400, 401, 403, 404, 405, 413, 500):
        app.error(code)(plain)
