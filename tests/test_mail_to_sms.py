"""E-mail to SMS through a real SMTP socket: smtplib (plain, STARTTLS with AUTH) to the
listener on port 0, the SMS checked in the real journal; and the text extraction alone."""

from __future__ import annotations

import logging
import smtplib
import ssl
import subprocess
from email.message import EmailMessage

import pytest

from appliance import config as cfg
from appliance.errors import ConfigError, StoreError
from appliance.integrations import mailtext, settings
from conftest import ADMIN_PASSWORD, Api

NUMBER = "+36201234567"


def smtp_settings(**overrides) -> dict:
    return {"listen": "127.0.0.1:0", "domain": "sms.lan", "allow_senders": ["*@ups.lan"],
            **overrides}


@pytest.fixture
def mail_daemon(make_config, run_daemon):
    def start(**overrides):
        config = make_config(integrations=settings.parse({"smtp": smtp_settings(**overrides)}))
        daemon = run_daemon(config)
        return daemon, Api(daemon.port)
    return start


def mail(subject="UPS on battery", body="Input power lost at 10:02.", sender="alarm@ups.lan",
         to=f"{NUMBER}@sms.lan", html=None) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def outbox(daemon) -> list[dict]:
    rows = daemon.journal.query("SELECT id FROM messages WHERE direction='out' ORDER BY rowid")
    return [daemon.journal.get_message(r["id"]) for r in rows]


def test_mail_from_an_allowed_sender_becomes_an_sms(mail_daemon):
    daemon, _ = mail_daemon()
    with smtplib.SMTP("127.0.0.1", daemon.mail.port, timeout=10) as client:
        refused = client.send_message(mail())
    assert refused == {}
    [sms] = outbox(daemon)
    assert (sms["recipient"], sms["body"]) == (NUMBER, "UPS on battery: Input power lost at 10:02.")
    assert sms["user"] == "admin" and sms["priority"] == 0


def test_signature_quoted_reply_and_html_are_trimmed(mail_daemon):
    daemon, _ = mail_daemon(text="body")
    body = ("Disk 3 failed on nas1.\n\n> earlier message\nOn Mon, Nov 30 2026, Bob wrote:\n"
            "> quoted\n")
    with smtplib.SMTP("127.0.0.1", daemon.mail.port, timeout=10) as client:
        client.send_message(mail(body=body + "-- \nNAS Admin\n+36 1 555 0000"))
        html_only = EmailMessage()
        html_only["From"], html_only["To"], html_only["Subject"] = \
            "nas@ups.lan", f"{NUMBER}@sms.lan", "ignored"
        html_only.set_content("<html><style>p{}</style><body><p>RAID <b>degraded</b></p>"
                              "<blockquote>old</blockquote></body></html>", subtype="html")
        client.send_message(html_only)
    assert [m["body"] for m in outbox(daemon)] == ["Disk 3 failed on nas1.", "RAID degraded"]


def test_groups_and_aliases_from_the_address_book(mail_daemon):
    daemon, api = mail_daemon(aliases={"ups": "oncall"})
    api.action("addcontact", contactname="Anna", phonenumber=NUMBER, groups="oncall")
    api.action("addcontact", contactname="Bela", phonenumber="+36207654321", groups="oncall")
    with smtplib.SMTP("127.0.0.1", daemon.mail.port, timeout=10) as client:
        client.send_message(mail(to="ups@sms.lan"))
    assert sorted(m["recipient"] for m in outbox(daemon)) == ["+36201234567", "+36207654321"]


def test_refusals_are_smtp_errors_and_nothing_is_stored(mail_daemon, caplog):
    caplog.set_level(logging.WARNING)
    daemon, _ = mail_daemon(max_bytes=2048)
    daemon.services.refusals.since_last()
    with smtplib.SMTP("127.0.0.1", daemon.mail.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.send_message(mail(sender="someone@internet.example"))
        assert refused.value.smtp_code == 530
    with smtplib.SMTP("127.0.0.1", daemon.mail.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.send_message(mail(to=f"{NUMBER}@other.domain"))
        assert refused.value.recipients[f"{NUMBER}@other.domain"][0] == 550
    with smtplib.SMTP("127.0.0.1", daemon.mail.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.send_message(mail(to="nogroup@sms.lan"))
    with smtplib.SMTP("127.0.0.1", daemon.mail.port, timeout=10) as client:
        with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as refused:
            client.send_message(mail(body="x" * 5000))
        assert refused.value.smtp_code == 552
    assert outbox(daemon) == []
    # each logged once, with the client and the reason (web/refusals.py)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("smtp")]
    assert lines[0].startswith("smtp: mail from someone@internet.example at 127.0.0.1 refused")
    assert lines[1] == (f"smtp: refused user 'admin' from 127.0.0.1: 550 RCPT TO "
                        f"<{NUMBER}@other.domain>: this appliance takes mail for @sms.lan only")
    assert lines[2].startswith("smtp: refused user 'admin' from 127.0.0.1: 550 RCPT TO "
                               "<nogroup@sms.lan>: neither a phone number")
    assert lines[3] == "smtp: refused 127.0.0.1: 552 mail larger than 2048 bytes"   # at SIZE
    assert len(lines) == 4
    assert daemon.services.refusals.since_last() == 4
    with smtplib.SMTP("127.0.0.1", daemon.mail.port, timeout=10) as client:
        client.helo()                   # plain SMTP: no SIZE, so the DATA is refused
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.send_message(mail(body="x" * 5000))
        assert refused.value.smtp_code == 552
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("smtp")]
    assert lines[4] == "smtp: refused user 'admin' from 127.0.0.1: 552 mail larger than 2048 bytes"
    assert outbox(daemon) == []


def test_store_that_cannot_accept_answers_451_so_the_client_retries(mail_daemon, monkeypatch):
    daemon, _ = mail_daemon()

    def broken(messages):
        raise StoreError("disk full")
    monkeypatch.setattr(daemon.journal, "accept", broken)
    with smtplib.SMTP("127.0.0.1", daemon.mail.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.send_message(mail())
        assert refused.value.smtp_code == 451
    monkeypatch.undo()
    with smtplib.SMTP("127.0.0.1", daemon.mail.port, timeout=10) as client:
        client.send_message(mail())
    assert len(outbox(daemon)) == 1


@pytest.fixture
def certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=sms.lan", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return str(cert), str(key)


def test_starttls_and_auth_with_an_appliance_user(mail_daemon, certificate):
    daemon, _ = mail_daemon(allow_senders=[], tls_cert=certificate[0], tls_key=certificate[1])
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", daemon.mail.port, timeout=10) as client:
        client.ehlo()
        assert not client.has_extn("auth")            # no password over plain text
        client.starttls(context=context)
        client.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("admin", "wrong-password")
        client.login("admin", ADMIN_PASSWORD)
        client.send_message(mail(sender="printer@anywhere.lan"))
    [sms] = outbox(daemon)
    assert sms["user"] == "admin" and sms["body"].startswith("UPS on battery")


def test_without_auth_or_allow_list_nothing_gets_in(mail_daemon):
    daemon, _ = mail_daemon(allow_senders=[])
    with smtplib.SMTP("127.0.0.1", daemon.mail.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPSenderRefused):
            client.send_message(mail())


@pytest.mark.parametrize("smtp, message", [
    ({"listen": "0.0.0.0:2525"}, "domain: required"),
    ({"listen": "nonsense", "domain": "x"}, "HOST:PORT"),
    ({"text": "everything"}, "subject\\+body"),
    ({"require_tls": True}, "needs tls_cert"),
    ({"allow_ips": ["lan"]}, "not an address"),
])
def test_smtp_config_errors(smtp, message):
    with pytest.raises(ConfigError, match=message):
        cfg.from_dict({"smtp": smtp})


@pytest.mark.parametrize("body, expected", [
    ("Power restored.\nSent from my iPhone", "Power restored."),
    ("Line one\nline two\n\n-----Original Message-----\nold", "Line one line two"),
    ("Alert!\n__\nfooter", "Alert!"),
    # found by a helper: the device's own text was cut as a quote or a footer
    (">90% used on volume1", ">90% used on volume1"),
    ("__________\nVolume 1 crashed on DS918\n__________\nSynology", "Volume 1 crashed on DS918"),
    ("> quoted\n>> older\n>\nNew text", "New text"),
])
def test_text_extraction(body, expected):
    message = mail(subject="", body=body)
    del message["Subject"]
    assert mailtext.sms_text(message) == expected


def test_an_empty_plain_part_gives_way_to_the_html_one():
    """Found by a helper: a NAS sent an empty text/plain beside the HTML with the alert;
    the SMS carried the subject alone."""
    message = mail(subject="NAS", body="\n", html="<p>Volume 1 degraded</p>")
    assert mailtext.sms_text(message) == "NAS: Volume 1 degraded"


def test_subject_prefixes_and_duplicates():
    assert mailtext.sms_text(mail(subject="Re: Fwd: Backup failed", body="Backup failed")) == \
        "Backup failed"


def test_a_long_mail_is_cut_to_three_gsm7_parts_not_seven_ucs2_ones(mail_daemon):
    """max_chars = 459 is three GSM-7 parts; the mark of the cut must not need UCS-2."""
    daemon, _ = mail_daemon(text="body")
    with smtplib.SMTP("127.0.0.1", daemon.mail.port, timeout=10) as client:
        client.send_message(mail(body="Disk report line. " * 200))
        client.send_message(mail(body="Hőmérséklet riasztás a szerverteremben. " * 40))
    gsm, ucs2 = outbox(daemon)
    assert gsm["body"].endswith("...") and (gsm["encoding"], gsm["parts_total"]) == ("gsm7", 3)
    assert ucs2["body"].endswith("…") and (ucs2["encoding"], ucs2["parts_total"]) == ("ucs2", 3)


def test_one_log_line_per_mail_not_one_per_smtp_command(mail_daemon, caplog):
    caplog.set_level(logging.INFO)
    daemon, _ = mail_daemon()
    with smtplib.SMTP("127.0.0.1", daemon.mail.port, timeout=10) as client:
        client.send_message(mail())
    daemon.stop()                       # the session's last lines are logged before this
    assert [r.getMessage() for r in caplog.records if r.name == "mail.log"] == []
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("smtp: mail")]
    assert lines == ["smtp: mail from alarm@ups.lan (admin) -> 1 SMS accepted, 0 refused"]


def test_a_client_that_speaks_no_smtp_is_logged_in_two_lines_not_a_dozen(mail_daemon, caplog):
    """An HTTP client (or a port scanner) on the SMTP port: aiosmtpd warned of each of its
    first five lines, then once for each line left."""
    import socket
    caplog.set_level(logging.INFO)
    daemon, _ = mail_daemon()
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", daemon.mail.port), timeout=10) as sock:
            sock.recv(200)                                  # the 220 greeting
            sock.sendall(b"GET / HTTP/1.1\r\nHost: box\r\nUser-Agent: x\r\nAccept: */*\r\n"
                         + b"X-Filler: y\r\n" * 12 + b"\r\n")
            answers = b""
            while chunk := sock.recv(4096):
                answers += chunk
        assert answers.count(b"500 ") == 4 and b"502 " in answers  # aiosmtpd's limit
    daemon.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "mail.log"]
    assert len([line for line in lines if "unrecognised: GET" in line]) == 2, lines
    assert len([line for line in lines if "unrecognised" in line]) == 2, lines
    assert len([line for line in lines if "too many bogus" in line]) == 2, lines


@pytest.mark.parametrize("raw, expected", [
    (b"Subject: Alarme \xe9t\xe9\r\n\r\nTemp\xe9rature haute \x93salle 2\x94\r\n",
     "Alarme été: Température haute “salle 2”"),                 # Windows-1252, undeclared
    ("Subject: Riasztás\r\n\r\nHőmérséklet magas\r\n".encode(),
     "Riasztás: Hőmérséklet magas"),                            # UTF-8, undeclared
    (b"Subject: =?utf-8?q?Riaszt=C3=A1s?=\r\nContent-Type: text/plain; charset=iso-8859-2"
     b"\r\n\r\nH\xf5m\xe9rs\xe9klet\r\n", "Riasztás: Hőmérséklet"),   # declared: as declared
    (b"Subject: t\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nTemp\xe9rature haute"
     b"\r\n", "t: Température haute"),       # us-ascii with 8-bit text: as undeclared
    (b"Subject: abc\r\nContent-Type: text/plain; charset=x-bogus\r\n\r\nhello \xe9\r\n",
     "abc: hello é"),                         # a charset Python does not know: likewise
])
def test_8bit_text_without_a_charset_is_read_as_the_device_meant_it(raw, expected):
    assert mailtext.sms_text(mailtext.parse(raw)) == expected


def test_undeclared_latin1_mail_through_the_socket(mail_daemon):
    daemon, _ = mail_daemon()
    raw = (f"From: plc@ups.lan\r\nTo: {NUMBER}@sms.lan\r\nSubject: Alarme\r\n\r\n"
           "Temp\xe9rature haute\r\n").encode("latin-1")
    with smtplib.SMTP("127.0.0.1", daemon.mail.port, timeout=10) as client:
        client.sendmail("plc@ups.lan", [f"{NUMBER}@sms.lan"], raw)
    [sms] = outbox(daemon)
    assert sms["body"] == "Alarme: Température haute"


def test_a_curly_apostrophe_from_a_mail_client_does_not_make_the_sms_ucs2(mail_daemon):
    daemon, _ = mail_daemon(text="body")
    with smtplib.SMTP("127.0.0.1", daemon.mail.port, timeout=10) as client:
        client.send_message(mail(body="Don\u2019t unplug \u2013 the UPS is \u201con battery\u201d."))
    [sms] = outbox(daemon)
    assert sms["body"] == "Don't unplug - the UPS is \"on battery\"."
    assert (sms["encoding"], sms["parts_total"]) == ("gsm7", 1)
