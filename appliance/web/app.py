"""The bottle application: routes of every dialect on one port (the table is
`web/routes.py`), and error pages that never show a traceback."""

from __future__ import annotations

import logging

import bottle

from appliance.control import ControlPlane
from appliance.web.routes import ROUTES
from appliance.web.services import Services

log = logging.getLogger("appliance.web")


def make_app(services: Services, control: ControlPlane | None = None) -> bottle.Bottle:
    """The WSGI app over `services`; `control` (the daemon's control plane) replaces
    `services.control` when given, so the daemon hands it over here."""
    if control is not None:
        services.control = control
    app = bottle.Bottle(catchall=True, autojson=True)
    app.config["services"] = services
    bottle.BaseRequest.MEMFILE_MAX = 32 * 1024 * 1024   # a 20,000-message batch POST fits
    for _name, register in ROUTES:
        register(app, services)
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
