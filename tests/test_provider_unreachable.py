"""A provider that cannot be reached at all (a network outage drops the connection attempt:
the connect times out) puts its connection down, so the part waits or fails over; it is not
a message that failed. Found by a helper: both the HTTP Client and the SMTP connection took
a connect timeout for an unanswered submit (SUBMITTIMEOUTACTION), so each message failed
for good and a failover route never tried its second connection. Real sockets: a listener
whose accept queue is full, so the kernel drops new connection attempts."""

from __future__ import annotations

import socket
import time

import pytest

from appliance.model import OutPart
from appliance.provider.http_client import HttpClientChannel
from appliance.provider.settings import HTTPClientConfig, SMTPConfig
from appliance.provider.smtp import SmtpChannel


@pytest.fixture
def blackhole():
    """A port whose connection attempts time out (listen backlog full, never accepted)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    time.sleep(0.2)
    yield port
    for sock in fillers + [server]:
        sock.close()


def part() -> OutPart:
    return OutPart(id=1, message_id="m1", recipient="+36201234567", originator="",
                   seq=1, total=1, text="UPS on battery")


def test_an_http_provider_whose_connect_times_out_is_down(blackhole):
    conn = HTTPClientConfig(name="Web0", targeturl=f"http://127.0.0.1:{blackhole}/send?"
                            "to=$recipient&text=$messagedata", submittimeout=1.0)
    outcome = HttpClientChannel(conn, sink=None).send_part(part(), None)
    assert (outcome.kind, outcome.code) == ("down", "provider_down")


def test_an_smtp_server_whose_connect_times_out_is_down(blackhole):
    conn = SMTPConfig(name="Mail0", smtpserver="127.0.0.1", smtpport=blackhole,
                      mailto="$recipient@sms.example", submittimeout=1.0)
    outcome = SmtpChannel(conn, sink=None).send_part(part(), None)
    assert (outcome.kind, outcome.code) == ("down", "provider_down")
