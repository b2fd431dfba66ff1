"""SmtpChannel: sends each SMS as an e-mail to a provider's e-mail-to-SMS gateway (seed: SMTP).

MAILTO, MAILSUBJECT and MAILBODY are templates (`$recipient`, `$recipientdigits`,
`$originator`, `$messagetext`, `$messageid`, ...). A long text goes once, whole: the gateway
splits it. One SMTP session per worker, opened on demand and closed after KEEPALIVEPERIOD
idle seconds. Mail servers answer in classes: 5xx refuses this message for good, 4xx asks to
try later, a lost connection or a refused login puts the channel down until a probe gets in.
"""

from __future__ import annotations

import smtplib
import ssl
from email.charset import BASE64, QP, Charset
from email.header import Header
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, make_msgid, parseaddr

from appliance.clock import SYSTEM_CLOCK, Clock
from appliance.model import OutPart
from appliance.provider import templates
from appliance.provider.base import (Outcome, QueuedChannel, down, failed, retry, submitted,
                                     timed_out)
from appliance.provider.settings import SMTPConfig

PROBE_SECONDS = 10.0
STALE_AFTER_SECONDS = 2.0      # a session idle longer is checked with NOOP before a mail


class SmtpChannel(QueuedChannel):
    kind = "smtp"

    def __init__(self, conn: SMTPConfig, sink, *, clock: Clock = SYSTEM_CLOCK):
        super().__init__(conn, sink, clock=clock, workers=1)
        self._session: smtplib.SMTP | None = None
        self._last_used = 0.0

    def describe(self) -> dict:
        return {"host": self.conn.smtpserver, "port": self.conn.smtpport}

    def describe_target(self) -> str:
        return f"mail server {self.conn.smtpserver}:{self.conn.smtpport}"

    # --- sessions ---

    def probe(self) -> str:
        try:   # short: the prober's heartbeat feeds the systemd watchdog
            session = self._open(timeout=min(PROBE_SECONDS, self.conn.submittimeout))
        except (OSError, smtplib.SMTPException) as exc:
            return f"{self.conn.smtpserver}:{self.conn.smtpport}: {_why(exc)}"
        _quit(session)
        return ""

    def _open(self, timeout: float | None = None) -> smtplib.SMTP:
        conn = self.conn
        timeout = timeout or conn.submittimeout
        context = ssl.create_default_context()
        if conn.tls_mode == "ssl":
            session = smtplib.SMTP_SSL(conn.smtpserver, conn.smtpport, timeout=timeout,
                                       context=context)
        else:
            session = smtplib.SMTP(conn.smtpserver, conn.smtpport, timeout=timeout)
        try:
            session.ehlo()
            if conn.tls_mode == "starttls":
                session.starttls(context=context)
                session.ehlo()
            if conn.smtpauth:
                session.login(conn.usernamesmtp, conn.passwordsmtp)
        except BaseException:
            _quit(session)
            raise
        return session

    def _still_open(self) -> bool:
        """A session idle a while is asked (NOOP) before it carries a mail: a server that
        closes idle sessions sooner than KEEPALIVEPERIOD made the next mail fail, the
        connection 'down' and the message fail over to another channel."""
        if self.clock.monotonic() - self._last_used < STALE_AFTER_SECONDS:
            return True
        try:
            return self._session.noop()[0] == 250
        except (OSError, smtplib.SMTPException):
            return False

    def idle(self) -> None:
        if self._session and self.clock.monotonic() - self._last_used > self.conn.keepaliveperiod:
            _quit(self._session)
            self._session = None

    # --- one message ---

    def whole_message(self, part: OutPart) -> bool:
        return part.total > 1 and part.encoding != "8bit"

    def send_part(self, part: OutPart, whole_text: str | None) -> Outcome:
        if part.encoding == "8bit" or part.text is None:
            return failed("binary", "binary messages cannot be sent as e-mail")
        reference = part.message_id if whole_text is not None or part.total == 1 \
            else f"{part.message_id}.{part.seq}"
        try:
            mail = self.compose(part, whole_text, reference)
        except ValueError as exc:          # a template made a bad address or header
            return failed("bad_mail", str(exc)[:200])
        if self._session is not None and not self._still_open():
            self._drop()
        if self._session is None:
            try:
                self._session = self._open()
            except (OSError, smtplib.SMTPException) as exc:   # a connect timeout too:
                # nothing was sent, so the connection is down (failover, the part waits),
                # not the message failed
                return down(f"{self.conn.smtpserver}:{self.conn.smtpport}: {_why(exc)}")
        try:
            self._session.send_message(mail)
            self._last_used = self.clock.monotonic()
        except TimeoutError:
            self._drop()
            return timed_out(self.conn, reference)
        except smtplib.SMTPRecipientsRefused as exc:
            return _refused(next(iter(exc.recipients.values()), (550, b"refused")))
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            return _refused((exc.smtp_code, exc.smtp_error))
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            return down(f"{self.conn.smtpserver}:{self.conn.smtpport}: {_why(exc)}")
        return submitted(reference)

    def compose(self, part: OutPart, whole_text: str | None, reference: str) -> MIMEText:
        """The mail. compat32 `MIMEText`: a tenth of `EmailMessage`'s CPU per mail."""
        fields = templates.part_fields(part, text=whole_text, message_id=reference,
                                       concat=False, conn=self.conn)
        fields["recipientdigits"] = "".join(c for c in part.recipient if c.isdigit())
        body = templates.fill(self.conn.mailbody, fields)
        mail = MIMEText(body, "plain", _body_charset(body, self.conn.charactersetbody))
        name, address = parseaddr(self.conn.mailfrom)
        # "Értesítő <alerts@x>": the name encoded alone (RFC 2047), the address left readable
        # (the whole value as one encoded word had no address; send_message's envelope too)
        mail["From"] = formataddr((name, address), charset="utf-8") if address \
            else self.conn.mailfrom
        mail["To"] = _one_line(templates.fill(self.conn.mailto, fields))
        mail["Subject"] = _header(_one_line(templates.fill(self.conn.mailsubject, fields)),
                                  self.conn.charactersetsubject)
        mail["Date"] = formatdate(self.clock.now(), localtime=True)
        mail["Message-ID"] = make_msgid(reference.replace("-", ""),
                                        domain=address.rpartition("@")[2] or None)
        return mail

    def _drop(self) -> None:
        if self._session is not None:
            _quit(self._session)
            self._session = None


def _refused(answer: tuple[int, bytes | str]) -> Outcome:
    code, text = answer
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    reason = f"{code} {' '.join(text.split())}"[:200]
    return retry(f"smtp_{code}", reason) if 400 <= code < 500 else failed(f"smtp_{code}", reason)


def _why(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return "login refused (usernamesmtp/passwordsmtp)"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {exc.smtp_error.decode('utf-8', 'replace')}"[:200]
    return str(exc) or type(exc).__name__


def _quit(session: smtplib.SMTP) -> None:
    try:
        session.quit()
    except (OSError, smtplib.SMTPException):
        session.close()


MAX_LINE = 998                  # RFC 5322 2.1.1
SUBJECT_PLAIN = 900             # "Subject: " and the value on one line, within MAX_LINE


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _body_charset(body: str, name: str) -> Charset:
    """CHARACTERSETBODY (Default: us-ascii when it fits, else UTF-8), quoted-printable so a
    gateway that reads the raw body still sees the text."""
    name = name.strip().lower()
    if name in ("", "default"):
        name = "us-ascii" if body.isascii() else "utf-8"
    charset = Charset(name)
    if charset.body_encoding == BASE64 or (charset.body_encoding is None and any(
            len(line) > MAX_LINE for line in body.splitlines())):
        # 7bit allows 998 characters a line (RFC 5322): a longer ASCII text is sent
        # quoted-printable too (a server answered "500 Line too long" to 1,000 characters)
        charset.body_encoding = QP
    body.encode(charset.output_charset or name)      # UnicodeEncodeError: a bad mail
    return charset


def _header(value: str, name: str) -> str | Header:
    """CHARACTERSETSUBJECT (Default: plain ASCII when it fits, else UTF-8), RFC 2047."""
    name = name.strip().lower()
    if name in ("", "default"):
        # encoded words fold anywhere: a long subject without spaces cannot fold as text
        return value if value.isascii() and len(value) <= SUBJECT_PLAIN else \
            Header(value, "utf-8")
    value.encode(Charset(name).output_charset or name)   # UnicodeEncodeError: a bad mail
    return Header(value, name)
