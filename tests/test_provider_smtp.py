"""The SMTP (e-mail to SMS) connection (seed 000): each SMS leaves as an e-mail to a provider's
gateway, through the whole daemon, against a small SMTP server on 127.0.0.1 port 0."""

from __future__ import annotations

import re

import pytest

from appliance.config import ConfigError, from_dict
from appliance.provider.settings import SMTPConfig
from fakes.providers import SmtpSink, start, wait_for  # noqa: F401 (start: a fixture)

FAILED, SUBMITTED, QUEUED = 11, 13, 0


@pytest.fixture
def sink():
    server = SmtpSink()
    yield server
    server.stop()


def smtp_config(port: int, **keys) -> SMTPConfig:
    base = {"smtpserver": "127.0.0.1", "smtpport": port, "mailfrom": "sms@office.example",
            "mailto": "$recipientdigits@sms.example", "limittompm": 0,
            "reconnectdelay": 0.05}
    return SMTPConfig(name="Mail0", **{**base, **keys})


def test_each_sms_leaves_as_an_email_built_from_the_templates(start, sink):
    sink.start()
    daemon, api = start(smtp_config(sink.port, mailsubject="SMS from $originator",
                                    mailbody="$messagetext", smtpauth=True,
                                    usernamesmtp="office", passwordsmtp="pw"))
    wait_for(lambda: daemon.channels.running["Mail0"].state == "ready", what="ready")
    message_id = api.send("+36201234567", "Árvíztűrő tükörfúrógép ☺", originator="ACME")
    api.wait_state(message_id, SUBMITTED)
    sender, recipients, mail = sink.mails[0]
    assert (sender, recipients) == ("sms@office.example", ["36201234567@sms.example"])
    assert mail["Subject"] == "SMS from ACME"
    assert mail.get_content().strip() == "Árvíztűrő tükörfúrógép ☺"
    assert sink.logins and sink.logins[0].startswith("PLAIN")
    assert daemon.journal.get_parts(message_id)[0]["reference"] == message_id


def test_a_long_text_goes_in_one_mail(start, sink):
    sink.start()
    daemon, api = start(smtp_config(sink.port))
    wait_for(lambda: daemon.channels.running["Mail0"].state == "ready", what="ready")
    text = "The gateway splits this text itself. " * 8
    message_id = api.send("+36201234567", text)
    api.wait_state(message_id, SUBMITTED)
    assert len(sink.mails) == 1
    assert sink.mails[0][2].get_content().strip() == text.strip()
    parts = daemon.journal.get_parts(message_id)
    assert len(parts) == 2 and {p["state"] for p in parts} == {"submitted"}


def test_a_text_with_a_line_over_998_characters_is_sent_quoted_printable(start, sink):
    """Found by a helper: a 1,008-character ASCII text went 7bit on one line, the server
    answered "500 Line too long", and the message failed (RFC 5322 allows 998)."""
    sink.start()
    daemon, api = start(smtp_config(sink.port, mailsubject="$messagetext"))
    wait_for(lambda: daemon.channels.running["Mail0"].state == "ready", what="ready")
    text = "x" * 1008
    message_id = api.send("+36201234567", text)
    api.wait_state(message_id, SUBMITTED)
    mail = sink.mails[0][2]
    assert mail["Content-Transfer-Encoding"] == "quoted-printable"
    assert mail.get_content().strip() == text and str(mail["Subject"]) == text


def test_a_text_the_configured_charset_cannot_hold_fails_with_a_reason(start, sink):
    sink.start()
    daemon, api = start(smtp_config(sink.port, charactersetbody="iso-8859-1",
                                    charactersetsubject="iso-8859-2", mailsubject="Őr"))
    wait_for(lambda: daemon.channels.running["Mail0"].state == "ready", what="ready")
    fits = api.send("+36201234567", "Grüße")
    api.wait_state(fits, SUBMITTED)
    mail = sink.mails[0][2]
    assert mail.get_content_charset() == "iso-8859-1" and mail["Subject"] == "Őr"
    assert mail.get_content().strip() == "Grüße"
    bad = api.send("+36201234567", "☺")
    api.wait_state(bad, FAILED)
    assert daemon.journal.get_parts(bad)[0]["reason"].startswith("bad_mail: ")


def test_a_refused_recipient_fails_the_message_with_the_servers_answer(start, sink):
    sink.refuse["36209999999@sms.example"] = (550, "no such subscriber")
    sink.start()
    daemon, api = start(smtp_config(sink.port))
    wait_for(lambda: daemon.channels.running["Mail0"].state == "ready", what="ready")
    message_id = api.send("+36209999999", "nobody")
    api.wait_state(message_id, FAILED)
    assert daemon.journal.get_parts(message_id)[0]["reason"] == \
        "smtp_550: 550 no such subscriber"


def test_a_message_waits_while_the_mail_server_is_down(start, sink):
    sink.start(listen=False)
    daemon, api = start(smtp_config(sink.port))
    channel = daemon.channels.running["Mail0"]
    wait_for(lambda: channel.state == "down", what="down")
    message_id = api.send("+36201234567", "stored and forwarded")
    assert api.state(message_id) == QUEUED
    sink.listen()
    api.wait_state(message_id, SUBMITTED)
    assert sink.mails[0][2].get_content().strip() == "stored and forwarded"


def test_config_checks():
    with pytest.raises(ConfigError, match="smtpserver: required"):
        from_dict({"connections": {"M": {"type": "SMTP"}}})
    with pytest.raises(ConfigError, match="smtpssl"):
        from_dict({"connections": {"M": {"type": "SMTP", "smtpserver": "m", "smtpssl": "x"}}})
    conn = from_dict({"connections": {"M": {"type": "SMTP", "smtpserver": "m",
                                            "smtpssl": "on"}}}).connections[0]
    assert conn.tls_mode == "ssl"
    with pytest.raises(ConfigError, match="charactersetbody: unknown character set"):
        from_dict({"connections": {"M": {"type": "SMTP", "smtpserver": "m",
                                         "charactersetbody": "klingon"}}})
    with pytest.raises(ConfigError, match="not supported"):
        from_dict({"connections": {"C": {"type": "CIMD2"}}})


def test_created_through_the_api_with_the_seeds_keys(appliance, sink):
    daemon, api = appliance
    sink.start()
    body = api.action("createdriver", type="SMTP", name="Mail1", SMTPSERVER="127.0.0.1",
                      SMTPPORT=str(sink.port), SMTPSSL="off", SMTPAUTH="off",
                      MAILFROM="sms@office.example", MAILTO="$recipient@sms.example",
                      MAILSUBJECT="$messagetext", MAILBODY="$messagetext", LIMITTOMPM="0",
                      CHARACTERSETSUBJECT="Default", LOGMESSAGES="on", RECEIVE="on",
                      AUTOCONNECT="on")
    assert "<state>running</state>" in body
    assert sorted(re.findall(r"<ignoredkey>([^<]+)", body)) == ["logmessages", "receive"]
    wait_for(lambda: daemon.channels.running["Mail1"].state == "ready", what="ready")
    message_id = api.send("+36201234567", "from a driver made by the API")
    api.wait_state(message_id, SUBMITTED)
    assert sink.mails[0][1] == ["+36201234567@sms.example"]
    server = api.action("createdriver", type="HTTPServer", name="In1",
                        BASEURL="http://127.0.0.1:0", PARAMNAMEMESSAGEDATA="text",
                        RESPONSETEMPLATE="ok $msgid", POLLINTERVAL="2", AUTOCONNECT="on")
    assert "<state>running</state>" in server and "<ignoredkey>pollinterval" in server


def test_a_sender_with_a_display_name_keeps_its_address_readable(start, sink):
    """Found by a helper: MAILFROM "Értesítő <alerts@example.org>" went out as one RFC 2047
    word with no address in it (servers that check the sender refuse it), and any display
    name left the Message-ID ending in '>>'."""
    sink.start()
    daemon, api = start(smtp_config(sink.port, mailfrom="Értesítő <alerts@example.org>"))
    wait_for(lambda: daemon.channels.running["Mail0"].state == "ready", what="ready")
    api.wait_state(api.send("+36201234567", "hi"), SUBMITTED)
    sender, _, mail = sink.mails[0]
    assert sender == "alerts@example.org"
    assert mail["From"].addresses[0].addr_spec == "alerts@example.org"
    assert mail["From"].addresses[0].display_name == "Értesítő"
    assert mail["Message-ID"].endswith("@example.org>")


def test_a_server_that_closes_idle_sessions_does_not_take_the_connection_down(
        start, sink, monkeypatch):
    """Found by a helper: a mail server closing idle sessions after 5 s (KEEPALIVEPERIOD is
    30) made every next mail fail on the dead session: 'Connection unexpectedly closed',
    the connection down, the message failed over elsewhere. An idle session is asked first."""
    import time
    from appliance.provider import smtp
    monkeypatch.setattr(smtp, "STALE_AFTER_SECONDS", 0.2, raising=False)
    sink.idle_close = 0.5
    sink.start()
    daemon, api = start(smtp_config(sink.port))
    channel = daemon.channels.running["Mail0"]
    wait_for(lambda: channel.state == "ready", what="ready")
    api.wait_state(api.send("+36201234567", "first"), SUBMITTED)
    time.sleep(1.0)                                   # the server has closed the session
    api.wait_state(api.send("+36201234567", "second"), SUBMITTED, timeout=10)
    assert [m[2].get_content().strip() for m in sink.mails] == ["first", "second"]
    assert channel.counts["down"] == 0
