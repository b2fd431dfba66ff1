"""The seed's template fields and report words, without I/O."""

from __future__ import annotations

from appliance.model import OutPart, ReportStatus
from appliance.provider import templates
from appliance.provider.reports import status_of
from appliance.provider.settings import HTTPClientConfig


def part(**changes) -> OutPart:
    base = dict(id=1, message_id="m-1", recipient="+36201234567", originator="", text="Hi",
                encoding="gsm7")
    return OutPart(**{**base, **changes})


def test_longest_field_wins_and_unknown_words_stay():
    fields = templates.part_fields(part(udh=b"\x05\x04\x0b\x84\x23\xf0"))
    url = templates.fill("u=$udhudHEX&h=$udhHEX&d=$udHEX&x=$price&c=$dcsDECimal", fields)
    assert url == "u=0605040B8423F04869&h=0605040B8423F0&d=4869&x=$price&c=0imal"


def test_url_escaping_follows_the_seed_switches():
    fields = {"messagedata": "a&b <é>"}

    def filled(charset, raw, xml):
        return templates.fill("$messagedata", fields, templates.url_escaper(charset, raw, xml))
    assert filled("utf-8", False, False) == "a%26b%20%3C%C3%A9%3E"
    assert filled("iso-8859-1", False, False) == "a%26b%20%3C%E9%3E"
    # NOURLENCODING: printable ASCII stays; a space or é cannot travel in a request line
    assert filled("utf-8", True, True) == "a&amp;b%20&lt;%C3%A9&gt;"
    assert filled("utf-8", True, False) == "a&b%20<%C3%A9>"


def test_the_seeds_example_url_loses_its_spaces():
    seed = ("http://server.sms.com/send.cgi?receiver=$recipient &sender=$originator "
            "&msg=$messagedata&id=$messageid")
    assert " " not in templates.compact_url(seed)


def test_phonenumber_stands_in_for_a_missing_originator_and_deliveryreport_off():
    conn = HTTPClientConfig(name="W", targeturl="http://x/", phonenumber="+3611",
                            deliveryreport=False)
    fields = templates.part_fields(part(), conn=conn)
    assert fields["originator"] == "+3611" and fields["tpdrreqINT"] == "0"
    ucs2 = templates.part_fields(part(encoding="ucs2", text="☺", msg_class=0))
    assert (ucs2["udHEX"], ucs2["dcsHEX"]) == ("263A", "18")


def test_report_words():
    assert status_of("DELIVRD") == ReportStatus.DELIVERED
    assert status_of("id:1 sub:001 dlvrd:001 stat:UNDELIV err:001") == ReportStatus.FAILED
    assert status_of("expired") == ReportStatus.EXPIRED
    assert status_of("ENROUTE") == ReportStatus.PENDING


def test_a_config_file_in_the_seeds_own_spelling_loads(tmp_path):
    from appliance.config import load
    path = tmp_path / "config.toml"
    path.write_text('''
[connections.HTTPClient0]
type = "HTTPClient"
TARGETURL = "http://server.sms.com/send.cgi?receiver=$recipient &sender=$originator"
REQUESTMETHOD = "Post"
RESPSUCCESS = "OK (?P<id>[0-9]+)"
LOGDIRECTORY = 'C:\\Program Files (x86)\\Ozeki\\Logs'
POLLINTERVAL = 2

[connections.SMTP0]
type = "SMTP"
SMTPSERVER = "mail.mailserver.com"
SMTPPORT = 25
MAILTO = "$recipient@serviceprovider.com"
CHARACTERSETSUBJECT = "Default"
''')
    web, mail = load(path).connections
    assert (web.requestmethod, web.respsuccess) == ("Post", "OK (?P<id>[0-9]+)")
    assert (mail.smtpserver, mail.smtpport) == ("mail.mailserver.com", 25)
