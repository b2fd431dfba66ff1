"""message_payload (usetlvmessagepayload): a long message goes as one submit_sm; the mapping
from that submit to all of the message's parts is in the journal, so a receipt that comes
after a restart of the daemon still makes the whole message delivered."""

from __future__ import annotations

import pytest

from appliance import config as cfg
from appliance.daemon import Daemon
from conftest import ADMIN_PASSWORD, Api
from fakes.smsc import Smsc
from test_smpp import TLV_PAYLOAD, wait_until

TEXT = "A long alert sent whole in the message payload TLV. " * 4   # 2 parts


@pytest.fixture
def smsc():
    server = Smsc(receipts=False).start()
    yield server
    server.stop()


def start(config) -> Daemon:
    daemon = Daemon(config, admin_password=ADMIN_PASSWORD)
    daemon.start()
    channel = daemon.channels.running["SMPP0"]
    wait_until(lambda: channel.state == "bound", what="bind")
    return daemon


def test_a_receipt_after_a_restart_settles_every_part(smsc, make_config):
    config = make_config(connections=(cfg.SMPPConfig(
        name="SMPP0", host="127.0.0.1", port=smsc.port, username="esme", password="secret",
        reconnectdelay=0.05, usetlvmessagepayload=True),))
    daemon = start(config)
    try:
        api = Api(daemon.port)
        message_id = api.send("+36207777777", TEXT)
        api.wait_state(message_id, 13, timeout=10)                 # submitted
        parts = daemon.journal.get_parts(message_id)
        assert [p["state"] for p in parts] == ["submitted", "submitted"]
        assert len({p["reference"] for p in parts}) == 1
    finally:
        daemon.stop()
    assert len(smsc.proxy.wire) == 1
    assert {t.tag: bytes(t.value) for t in smsc.proxy.wire[0].tlvs}[TLV_PAYLOAD] == TEXT.encode()

    daemon = start(config)                                          # a new process's memory
    try:
        wait_until(lambda: len(smsc.sessions) == 1, what="the new session")
        smsc.send_receipt(smsc.received[0])
        Api(daemon.port).wait_state(message_id, 10, timeout=10)    # delivered
        assert [p["state"] for p in daemon.journal.get_parts(message_id)] == ["delivered"] * 2
    finally:
        daemon.stop()
