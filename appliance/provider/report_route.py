"""Delivery reports from web SMS providers: `/connections/<name>/report` on the API port.

An HTTP Client connection's provider calls this URL (GET or POST) with the reference it
answered at submit time (or the `$messageid` we sent) in REPORTIDPARAM and a status word in
REPORTSTATUSPARAM, and `token=<value>`: REPORTTOKEN, or without it the token the appliance
made for the connection (`report_token.py`; the admin page shows the whole URL). A report
settles a message, so one without the token is refused (403), never taken (except, after an
upgrade, on a connection set up before tokens: `ReportTokens.adopt`). The answer is
plain text: `OK` once the report is durable, else an error line with a 4xx status.
"""

from __future__ import annotations

import hmac
import logging

import bottle

from appliance.model import Report, ReportStatus
from appliance.provider.reports import status_of
from appliance.provider.settings import HTTPClientConfig
from appliance.web.params import ParamError, read_params

log = logging.getLogger("appliance.provider")


def register(app: bottle.Bottle, services) -> None:
    @app.route("/connections/<name>/report", method=["GET", "POST"])
    def report(name: str):
        bottle.response.content_type = "text/plain; charset=utf-8"
        status, text = take_report(services, name, bottle.request)
        bottle.response.status = status
        return text + "\n"


def take_report(services, name: str, request) -> tuple[int, str]:
    channels = services.control.channels
    conn = channels.configs.get(name) if channels is not None else None
    if not isinstance(conn, HTTPClientConfig):
        return 404, f"error: no HTTP Client connection named {name[:40]}"
    try:
        params = read_params(request)
    except ParamError as exc:
        return 400, f"error: {exc}"
    refused = _refused(services, conn, params.get("token", ""), request)
    if refused:
        return 403, refused
    reference = params.get(conn.reportidparam.lower(), "").strip()
    word = params.get(conn.reportstatusparam.lower(), "").strip()
    if not reference or not word:
        return 400, (f"error: {conn.reportidparam} and {conn.reportstatusparam} are required")
    status = status_of(word)
    services.journal.report(Report(name, reference, status,
                                   code=1 if status == ReportStatus.FAILED else 0,
                                   detail=word[:100]))
    return 200, "OK"


def _refused(services, conn: HTTPClientConfig, given: str, request) -> str:
    """'' when the report carries the connection's token, else the error to answer."""
    tokens = services.control.report_tokens
    expected = tokens.token(conn) if tokens is not None else conn.reporttoken
    if expected and hmac.compare_digest(given.encode(), expected.encode()):
        if tokens is not None:
            tokens.token_used(conn)
        return ""
    if not given and tokens is not None and tokens.tokenless(conn):
        return ""                        # set up before report tokens (report_token.adopt)
    if tokens is None or tokens.first_refusal(conn.name):
        log.warning("%s: a delivery report from %s without the right token was refused "
                    "(the report URL with its token is on the dashboard's admin page); "
                    "further refusals are not logged", conn.name,
                    getattr(request, "remote_addr", "?"))
    if conn.reporttoken:
        return "error: wrong token"
    return ("error: wrong or missing token: this connection's report URL carries "
            "token=<its token>, shown on the appliance's admin page")
