"""The web dashboard at `/`: server-rendered pages (bottle templates in views/), a little
JavaScript that refreshes live figures, no build step.

Login with the appliance's users (the same accounts and login throttle as the APIs), a
session cookie (HttpOnly, SameSite=Strict), a CSRF token in every form, logout. Admins
also get the admin page (USSD, reset, start/stop a connection, users and credits).

`GET /` with no query string is the dashboard; anything else on `/` (a `command=` query,
any POST) is the Ozeki Phone System API, exactly as before.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from pathlib import Path
from urllib.parse import quote_plus

import bottle

from appliance import health, intake
from appliance.accounts import AuthError
from appliance.compose import Submission
from appliance.errors import StoreError, ValidationError
from appliance.store import counters
from appliance.web import dashboard_data as data
from appliance.web import phonesystem
from appliance.web.params import ParamError, checked_forms, client_address
from appliance.web.sessions import COOKIE, SessionStore

log = logging.getLogger("appliance.web")

VIEWS = str(Path(__file__).with_name("views"))
STATIC = Path(__file__).with_name("static")
MAX_RECIPIENTS = 50
LOGIN_COOKIE = "sms_login"


def render(name: str, **values) -> str:
    return bottle.template(name, template_lookup=[VIEWS], **values)


class Dashboard:
    def __init__(self, services):
        self.services = services
        self.daemon = services.control.monitor        # read-only: channels, health
        self.sessions = SessionStore()

    # --- session plumbing ---

    def session(self):
        """The caller's session, while its user still exists and is enabled (a user stopped
        or deleted through any API loses the dashboard at the next page)."""
        token = bottle.request.get_cookie(COOKIE) or ""
        session = self.sessions.get(token)
        if session is None:
            return None
        user = self.services.accounts.get(session.user)
        if user is None or not user.enabled \
                or not user.address_allowed(client_address(bottle.request))[0]:
            self.sessions.drop(token)
            return None
        session.admin = user.admin
        return session

    def require(self, admin: bool = False):
        session = self.session()
        if session is None:
            raise bottle.HTTPResponse(status=303, headers={"Location": "/login"})
        if admin and not session.admin:
            raise bottle.HTTPResponse(self.page("denied.tpl", session, title="Admin only"),
                                      status=403)
        return session

    def require_post(self, admin: bool = False):
        session = self.require(admin)
        if not session.csrf_ok(_forms().getunicode("csrf") or ""):
            log.warning("dashboard: %s: refused a form without a valid CSRF token from %s",
                        session.user, client_address(bottle.request))
            raise bottle.HTTPResponse("403 invalid or missing CSRF token; reload the page\n",
                                      status=403, content_type="text/plain; charset=utf-8")
        return session

    def page(self, template: str, session, **values) -> str:
        bottle.response.set_header("Cache-Control", "no-store")
        bottle.response.set_header("X-Frame-Options", "DENY")
        bottle.response.set_header("Content-Security-Policy",
                                   "default-src 'self'; style-src 'self'; script-src 'self'")
        flash = bottle.request.query.getunicode("flash") or ""
        return render(template, session=session, flash=flash, demo=self.demo(),
                      **{"title": "", **values})

    def demo(self) -> bool:
        return bool(self.daemon and self.daemon.config.demo.enabled)

    # --- login ---

    def login_form(self, error: str = ""):
        if self.session() and not error:
            return bottle.redirect("/")
        # Login CSRF: a pre-session token in a cookie and in the form (double submit), so
        # another site cannot log a browser in under its own account.
        token = secrets.token_urlsafe(24)
        bottle.response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict",
                                   path="/login", secure=bottle.request.urlparts.scheme == "https")
        return self.page("login.tpl", None, title="Log in", error=error, login_token=token)

    def login(self):
        forms = _forms()
        expected = bottle.request.get_cookie(LOGIN_COOKIE) or ""
        given = forms.getunicode("login_token") or ""
        if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
            bottle.response.status = 403
            return self.login_form("The login form expired; please try again.")
        name, password = forms.getunicode("username") or "", forms.getunicode("password") or ""
        address = client_address(bottle.request)
        try:
            user = self.services.accounts.authenticate(name, password, address)
        except AuthError as exc:
            error = {"throttled": "Too many failed logins from this address; wait a minute.",
                     "disabled": "This user is disabled."}.get(exc.kind, "Wrong user or password.")
            bottle.response.status = 429 if exc.kind == "throttled" else 401
            return self.login_form(error)
        allowed, reason = user.address_allowed(address)
        if not allowed:     # the user's ipallow/ipdeny hold here as on every API
            log.warning("dashboard: user %r refused from %s (its %s list)", user.name,
                        address, reason)
            bottle.response.status = 403
            return self.login_form("This user may not log in from this address.")
        bottle.response.delete_cookie(LOGIN_COOKIE, path="/login")
        token = self.sessions.create(user.name, user.admin)
        secure = bottle.request.urlparts.scheme == "https"
        bottle.response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/",
                                   secure=secure)
        log.info("dashboard: %s logged in from %s", user.name, address)
        return bottle.redirect("/")

    def logout(self):
        session = self.require_post()
        self.sessions.drop(bottle.request.get_cookie(COOKIE) or "")
        bottle.response.delete_cookie(COOKIE, path="/")
        log.info("dashboard: %s logged out", session.user)
        return bottle.redirect("/login")

    # --- pages ---

    def overview(self):
        session = self.require()
        daemon = self.daemon
        status = data.channels_view(daemon)
        checks = health.run_checks(daemon) if daemon else []
        by_state = counters.parts_by_state(self.services.journal)
        return self.page("overview.tpl", session, title="Overview", status=status,
                         alerts=[c for c in checks if c.status != health.PASS],
                         by_state=by_state, oldest=data.oldest_age(self.services),
                         throughput=data.throughput(self.services, self._channel_names()),
                         stopped=status.get("stopped_connections", []),
                         refused=self.services.refusals.by_source())

    def _channel_names(self) -> list[str]:
        return sorted(self.daemon.channels.configs) if self.daemon else []

    def messages(self):
        session = self.require()
        query = data.MessageQuery.from_params(bottle.request.query, self.services.clock)
        rows = data.search(self.services.journal, query, None if session.admin else session.user)
        return self.page("messages.tpl", session, title="Messages", rows=rows, query=query)

    def message(self, message_id: str):
        session = self.require()
        message = self.services.journal.get_message(message_id)
        if message is None or (not session.admin and message["user"] != session.user):
            bottle.response.status = 404
            return self.page("denied.tpl", session, title="No such message")
        steps = data.timeline(self.services.journal, message)
        settled = message["state"] in data.FINAL and not any(
            s["what"].startswith("callback") and "pending" in s["detail"] for s in steps)
        return self.page("message.tpl", session, title="Message", message=message,
                         timeline=steps, live=not settled)

    def inbox(self):
        session = self.require()
        rows = data.inbox(self.services.journal, None if session.admin else session.user)
        return self.page("inbox.tpl", session, title="Inbox", rows=rows)

    def send_form(self):
        session = self.require()
        return self.page("send.tpl", session, title="Send", result=None, values={})

    def send(self):
        session = self.require_post()
        forms = _forms()
        values = {k: (forms.getunicode(k) or "").strip() for k in ("recipient", "text", "sender")}
        values["text"] = forms.getunicode("text") or ""
        result = self._send(session, values)
        if result.get("ids") and len(result["ids"]) == 1 and not result.get("errors"):
            return bottle.redirect(f"/ui/messages/{result['ids'][0]}?flash=accepted")
        return self.page("send.tpl", session, title="Send", result=result, values=values)

    def _send(self, session, values: dict) -> dict:
        recipients = [r.strip() for r in values["recipient"].replace(";", ",").split(",")
                      if r.strip()]
        if not recipients:
            return {"errors": ["enter at least one recipient"]}
        if len(recipients) > MAX_RECIPIENTS:
            return {"errors": [f"at most {MAX_RECIPIENTS} recipients per form"]}
        user = self.services.accounts.get(session.user)
        originator = values["sender"] or (user.originator if user else "")
        submissions = [Submission(user=session.user, recipient=recipient, text=values["text"],
                                  originator=originator, dialect="web")
                       for recipient in recipients]
        try:
            results = intake.submit_batch(self.services, submissions)
        except (StoreError, TimeoutError) as exc:
            log.error("dashboard: %s: store error on send: %s", session.user, exc)
            return {"errors": ["the store is not available; nothing was accepted"]}
        ids, errors = [], []
        for recipient, outcome in zip(recipients, results):
            if isinstance(outcome, ValidationError):
                errors.append(f"{data.mask_number(recipient)}: {outcome.text}")
            else:
                ids.append(outcome.id)
        if ids:
            log.info("dashboard: %s accepted %d message(s) from the send form", session.user,
                     len(ids))
        return {"ids": ids, "errors": errors}

    # --- admin ---

    def admin(self):
        session = self.require(admin=True)
        return self.page("admin.tpl", session, title="Admin", ussd=None,
                         **data.admin_view(self.services, self.daemon, _base()))

    def admin_action(self, what: str):
        session = self.require_post(admin=True)
        forms = _forms()
        params = {k: (forms.getunicode(k) or "").strip() for k in forms.keys()}
        handler = data.ADMIN_ACTIONS.get(what)
        if handler is None:
            raise bottle.HTTPError(404, "no such action")
        try:
            message, ussd = handler(self, session, params)
        except StoreError as exc:           # a full disk: said on the page, not a 500
            log.error("dashboard: %s: admin %s not saved: %s", session.user, what, exc)
            return bottle.redirect("/ui/admin?flash=" + quote_plus(f"not saved: {exc}"[:300]))
        log.info("dashboard: %s: admin %s: %s", session.user, what, message)
        if ussd is not None:
            return self.page("admin.tpl", session, title="Admin", ussd=ussd,
                             **data.admin_view(self.services, self.daemon, _base()))
        return bottle.redirect("/ui/admin?flash=" + quote_plus(message[:300]))

    def static(self, name: str):
        return bottle.static_file(name, root=str(STATIC))


def _forms() -> bottle.FormsDict:
    """The posted form, its fields counted before bottle parses them (params.py): /login
    parsed whatever an unauthenticated client sent."""
    try:
        return checked_forms(bottle.request)
    except ParamError as exc:
        raise bottle.HTTPResponse(f"413 {exc}\n", status=413,
                                  content_type="text/plain; charset=utf-8") from None


def _base() -> str:
    """scheme://host:port the admin reached this page at (the Host header says which of the
    appliance's addresses, as the provider on the LAN will use it too)."""
    parts = bottle.request.urlparts
    return f"{parts.scheme}://{parts.netloc}"


def register(app: bottle.Bottle, services) -> None:
    """`/` is shared with the Phone System API: a GET without a query string is the
    dashboard, anything else goes to phonesystem.handle."""
    ui = Dashboard(services)

    @app.route("/", method=["GET", "POST"])
    def root():
        if bottle.request.method in ("GET", "HEAD") and not bottle.request.query_string:
            return ui.overview()
        return phonesystem.handle(services, bottle.request, bottle.response)

    app.route("/login", "GET", ui.login_form)
    app.route("/login", "POST", ui.login)
    app.route("/logout", "POST", ui.logout)
    app.route("/ui/messages", "GET", ui.messages)
    app.route("/ui/messages/<message_id>", "GET", ui.message)
    app.route("/ui/inbox", "GET", ui.inbox)
    app.route("/ui/send", "GET", ui.send_form)
    app.route("/ui/send", "POST", ui.send)
    app.route("/ui/admin", "GET", ui.admin)
    app.route("/ui/admin/<what>", "POST", ui.admin_action)
    app.route("/ui/static/<name>", "GET", ui.static)

