"""E-mail to SMS: an SMTP listener for LAN devices (UPS, NAS, printers, PLCs) that can only
send mail. `<number>@<domain>` and `<group or alias>@<domain>` become SMS; the SMTP client
gets its 250 only after the SMS are durably accepted, a 451 while the store cannot accept
(so it retries), a 5xx for what will never work. aiosmtpd speaks SMTP; it is imported only
when `[smtp] listen` is set.

Who may send: a client that authenticated (AUTH PLAIN/LOGIN, offered only after STARTTLS)
as an appliance user, or one whose envelope sender or address is in the allow lists (those
are filed under `[smtp] user`).
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import socket
import ssl
import threading

from appliance import fd_budget
from appliance.accounts import AuthError, in_networks
from appliance.compose import normalize_recipient
from appliance.errors import StoreError, ValidationError
from appliance.integrations import intake, mailtext
from appliance.integrations.settings import SmtpConfig
from appliance.web.refusals import who

log = logging.getLogger("appliance.integrations")


class MailToSms:
    """The aiosmtpd handler: decides who sends, to whom, and what the SMS says."""

    def __init__(self, services, config: SmtpConfig):
        self.services = services
        self.config = config
        self.domain = config.domain.lower()
        self.accepted = 0
        self.refused = 0

    # -- aiosmtpd authenticator ---------------------------------------------------------

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        name = auth_data.login.decode("utf-8", "replace")
        address = _peer(session)
        try:
            user = self.services.accounts.authenticate(
                name, auth_data.password.decode("utf-8", "replace"), address)
        except AuthError as exc:
            log.warning("smtp: login of %s from %s failed (%s)", name, address, exc.kind)
            self._refused(session, f"login failed ({exc.kind})", logged=True)
            return AuthResult(success=False, handled=False)
        if not user.address_allowed(address)[0]:
            log.warning("smtp: %s may not log in from %s", name, address)
            self._refused(session, "login from this address not allowed", logged=True)
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=user.name)

    # -- SMTP commands -----------------------------------------------------------------

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        user = self._sender_user(session, address)
        if user is None:
            log.warning("smtp: mail from %s at %s refused: not authenticated, not allowed",
                        address, _peer(session))
            self._refused(session, "530 not authenticated", logged=True)
            return "530 5.7.0 Authentication required (or add the sender to smtp.allow_senders)"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        envelope.sms_user = user
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        try:
            numbers = self.recipients(address, getattr(envelope, "sms_user", ""))
        except ValueError as exc:
            self._refused(session, f"550 RCPT TO {exc}", envelope)
            return f"550 5.1.1 {exc}"
        envelope.rcpt_tos.append(address)
        envelope.sms_numbers = getattr(envelope, "sms_numbers", []) + \
            [n for n in numbers if n not in getattr(envelope, "sms_numbers", [])]
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if len(envelope.original_content or envelope.content or b"") > self.config.max_bytes:
            return f"552 5.3.4 Message larger than {self.config.max_bytes} bytes"
        raw = envelope.original_content or envelope.content
        text = mailtext.sms_text(mailtext.parse(raw), self.config.text)
        if not text:
            self._refused(session, "550 no text in the subject or the plain-text body",
                          envelope)
            return "550 5.6.0 No text in the subject or the plain-text body"
        text = intake.shorten(text, self.config.max_chars)
        loop = asyncio.get_running_loop()
        try:
            outcome = await loop.run_in_executor(None, self._submit, envelope, text)
        except StoreError as exc:
            log.error("smtp: store cannot accept mail from %s: %s", envelope.mail_from, exc)
            return "451 4.3.0 The appliance cannot store messages now; try again later"
        if not outcome.ids:
            self.refused += 1
            reasons = "; ".join(reason for _, reason in outcome.refused)[:200]
            return f"550 5.7.1 Refused: {reasons}"
        self.accepted += 1
        log.info("smtp: mail from %s (%s) -> %d SMS accepted, %d refused", envelope.mail_from,
                 envelope.sms_user, len(outcome.ids), len(outcome.refused))
        return f"250 2.0.0 {len(outcome.ids)} SMS accepted"

    # -- helpers -------------------------------------------------------------------------

    def _refused(self, session, reason: str, envelope=None, *, logged: bool = False) -> None:
        """Bad input is logged once (web/refusals.py), with the mail's user if known."""
        user = getattr(envelope, "sms_user", "") if envelope is not None else ""
        self.services.refusals.note("smtp", who(user, _peer(session)), reason, logged=logged)

    def _submit(self, envelope, text: str) -> intake.Outcome:
        return intake.submit(self.services, user=envelope.sms_user,
                             recipients=envelope.sms_numbers, text=text,
                             priority=self.config.priority, dialect="smtp")

    def _sender_user(self, session, address: str) -> str | None:
        if session.authenticated and session.auth_data:
            return str(session.auth_data)
        sender = (address or "").lower()
        if any(fnmatch.fnmatchcase(sender, pattern.lower())
               for pattern in self.config.allow_senders):
            return self.config.user
        if self.config.allow_ips and in_networks(_peer(session), self.config.allow_ips):
            return self.config.user
        return None

    def recipients(self, address: str, user: str) -> list[str]:
        local, _, domain = address.rpartition("@")
        if domain.lower() != self.domain or not local:
            raise ValueError(f"<{address}>: this appliance takes mail for @{self.domain} only")
        entry = self.config.aliases.get(local.lower(), local)
        try:
            return [normalize_recipient(entry)]
        except ValidationError:
            pass
        numbers = intake.group_members(self.services, entry, user or self.config.user)
        if not numbers:
            raise ValueError(f"<{address}>: neither a phone number nor an address-book group")
        return numbers


_SMTP_CLASS: list = []


def _smtp_class():
    """aiosmtpd's SMTP, which itself refuses a mail over `max_bytes` (552, at MAIL FROM
    when the client says SIZE, else at DATA) before the handler sees it: logged here, once."""
    if not _SMTP_CLASS:
        from aiosmtpd.smtp import SMTP

        class LoggedSmtp(SMTP):
            async def push(self, status):
                text = status if isinstance(status, str) else status.decode("ascii", "replace")
                if text.startswith("552"):
                    self.event_handler._refused(
                        self.session, f"552 mail larger than {self.data_size_limit} bytes",
                        self.envelope)
                await super().push(status)

            def connection_lost(self, error):
                try:
                    super().connection_lost(error)
                finally:
                    self.release(self)      # MailListener's count of open sessions

        _SMTP_CLASS.append(LoggedSmtp)
    return _SMTP_CLASS[0]


class MailListener:
    """The asyncio loop serving SMTP, in a thread of its own."""

    def __init__(self, services, config: SmtpConfig, sock: socket.socket | None = None):
        self.handler = MailToSms(services, config)
        self.config = config
        self._sock = sock or _listen(config.listen)
        self.port = self._sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._server = None
        self._thread = threading.Thread(target=self._run, name="smtp", daemon=True)
        self._ready = threading.Event()
        self._sessions: set = set()          # open SMTP sessions (the loop thread's)
        self._busy = fd_budget.Notice(self._loop.time)   # 421s, said once a minute

    def start(self) -> None:
        _quiet_protocol_log()
        self._thread.start()
        self._ready.wait(10)
        log.info("smtp: e-mail to SMS on %s port %d for @%s%s", self.config.listen.rpartition(":")[0],
                 self.port, self.config.domain, ", STARTTLS" if self.config.tls_cert else "")

    def stop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        fd_budget.quiet_accept_errors(self._loop, "smtp")
        self._server = self._loop.run_until_complete(
            self._loop.create_server(self._connection, sock=self._sock))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            self._loop.run_until_complete(self._server.wait_closed())
            self._loop.close()

    def _connection(self):
        """A new session, or past MAX_SMTP_SESSIONS at once a 421 (descriptors are shared
        with the modems and the store: fd_budget.py)."""
        if len(self._sessions) >= fd_budget.MAX_SMTP_SESSIONS:
            said = self._busy.count()
            if said is not None:
                log.warning("smtp: %d sessions open, the most allowed: refused %d new ones"
                            " with 421 since the last line", len(self._sessions),
                            said["refused"])
            return _Busy()
        session = self._smtp()
        session.release = self._sessions.discard
        self._sessions.add(session)
        return session

    def _smtp(self):
        tls = _tls_context(self.config) if self.config.tls_cert else None
        return _smtp_class()(self.handler, hostname=self.config.domain, ident="sms-appliance",
                    data_size_limit=self.config.max_bytes, tls_context=tls,
                    require_starttls=self.config.require_tls, authenticator=self.handler.authenticate,
                    auth_require_tls=True, auth_exclude_mechanism=["CRAM-MD5"],
                    loop=self._loop)


class _Busy(asyncio.Protocol):
    """Too many sessions: 421, which tells a mailer to try again later (RFC 5321 §3.8)."""

    def connection_made(self, transport) -> None:
        transport.write(b"421 4.3.2 Too many connections, try again later\r\n")
        transport.close()


def _quiet_protocol_log() -> None:
    """aiosmtpd logs every command line of every session at INFO (logger `mail.log`): a
    dozen lines per mail. The handler's one line per mail says what matters; aiosmtpd's
    lines stay available with `-v` (DEBUG), or with a level set for `mail.log` on purpose."""
    protocol = logging.getLogger("mail.log")
    if protocol.level == logging.NOTSET and not logging.getLogger().isEnabledFor(logging.DEBUG):
        protocol.setLevel(logging.WARNING)
    if not any(isinstance(f, _FirstBogusCommand) for f in protocol.filters):
        protocol.addFilter(_FirstBogusCommand())


class _FirstBogusCommand(logging.Filter):
    """aiosmtpd warns of every command it does not know, then of "too many bogus commands"
    once for each line still buffered: an HTTP client or a port scanner on the SMTP port
    wrote a dozen WARNING lines per connection. The first line of each kind per session is
    kept; sessions are told apart by the peer's address and port (the last SESSIONS)."""

    REPEATED = ("%r unrecognised: %s", "%r too many bogus commands", "%r over limit for %s")
    SESSIONS = 256

    def __init__(self):
        super().__init__()
        self._told: dict = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg not in self.REPEATED or not isinstance(record.args, tuple) \
                or not record.args:
            return True
        said = (record.msg, repr(record.args[0]))
        if said in self._told:
            return False
        self._told[said] = None
        if len(self._told) > self.SESSIONS:
            del self._told[next(iter(self._told))]
        return True


def _tls_context(config: SmtpConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context


def _listen(listen: str) -> socket.socket:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    sock.listen(64)
    sock.setblocking(False)
    return sock


def _peer(session) -> str:
    peer = getattr(session, "peer", None)
    return peer[0] if isinstance(peer, tuple) and peer else ""

