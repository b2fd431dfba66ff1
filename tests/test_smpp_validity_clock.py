"""An SMPP validity period while the board's clock is not synchronized goes as the time
left (SMPP relative time), counted on the SMSC's clock. A board whose NTP server never
answered may be days behind: an absolute validity days in the past is refused or expired at
once by the SMSC. Through a real socket to the raw SMSC (tests/fakes/raw_smsc.py)."""

from __future__ import annotations

import logging
import time

import pytest

from appliance.config import SMPPConfig
from appliance.uplink.codec import relative_validity
from conftest import Api
from test_smpp import part, wait_until

HOURS_72 = 72 * 3600


def test_relative_time_in_smpps_own_format():
    assert relative_validity(HOURS_72) == "000003000000000R"
    assert relative_validity(HOURS_72 + 3661) == "000003010101000R"
    assert relative_validity(45 * 86400) == "000115000000000R"        # months of 30 days
    assert relative_validity(-5) == "000000000100000R"                # at least a minute


def test_an_unsynchronized_clock_sends_the_time_left(raw, raw_channel, caplog):
    with caplog.at_level(logging.WARNING, logger="appliance.uplink"):
        channel, sink = raw_channel({"clock_synchronized": lambda: False})
        channel.submit(part(1, valid_until=time.time() + HOURS_72))
        wait_until(lambda: raw.validity, what="the submit_sm")
    assert raw.validity[0] in (b"000002235959000R", b"000003000000000R")
    assert any("not synchronized; validity periods go as the time left" in r.getMessage()
               for r in caplog.records)


def test_a_synchronized_clock_sends_the_absolute_time_as_before(raw, raw_channel):
    channel, sink = raw_channel({"clock_synchronized": lambda: True})
    valid_until = time.time() + HOURS_72
    channel.submit(part(1, valid_until=valid_until))
    channel.submit(part(2))                                  # no validity: the SMSC's default
    wait_until(lambda: len(raw.validity) == 2, what="both submit_sm")
    expected = time.strftime("%y%m%d%H%M%S", time.gmtime(int(valid_until))) + "000+"
    assert raw.validity == [expected.encode(), b""]


@pytest.mark.parametrize("synchronized, ends", [(False, b"R"), (True, b"+")])
def test_the_daemon_tells_its_uplinks_what_it_knows_of_the_clock(raw, make_config, run_daemon,
                                                                synchronized, ends):
    """Through the daemon: an API message, the daemon's own clock_synchronized, the uplink's
    submit_sm on a real socket. One of the two cases fails if the daemon does not pass its
    answer on (the channel would ask this machine's kernel instead)."""
    uplink = SMPPConfig(name="SMPP0", host="127.0.0.1", port=raw.port, username="esme",
                        password="secret", reconnectdelay=0.05, reconnectmaxdelay=0.2)
    daemon = run_daemon(make_config(connections=(uplink,)),
                        clock_synchronized=lambda: synchronized)
    Api(daemon.port).send("+36201234567", "UPS on battery")      # valid 72 h by default
    wait_until(lambda: raw.validity, timeout=20, what="the submit_sm")
    assert raw.validity[0].endswith(ends) and len(raw.validity[0]) == 16
