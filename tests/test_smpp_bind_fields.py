"""A bind's user name and password longer than SMPP allows (16 and 9 octets with the NUL)
go to the SMSC whole: smpplib would cut them to the limit without a word, and the SMSCs
that hand out such passwords then refuse the bind as "Invalid Password" (python-smpplib
issue 227). check-config, the log at start and a refused bind's reason say which field is
over the limit, never its value. Against the raw-socket SMSC (tests/fakes/raw_smsc.py)."""

from __future__ import annotations

import logging

import pytest

from appliance import config_check
from appliance.cli import main
from test_smpp import wait_until

LONG_PASSWORD = "Tr0ub4dor&3xyz"          # 14 characters
LONG_USER = "acme-alerts-gateway-01"      # 22 characters


@pytest.fixture
def channel_to(raw_channel):
    return lambda **kw: raw_channel(bound=False, **kw)[0]


def test_a_long_password_and_user_name_reach_the_smsc_whole_and_bind(raw, channel_to):
    raw.password = LONG_PASSWORD.encode()
    channel = channel_to(username=LONG_USER, password=LONG_PASSWORD, systemtype="VMA")
    wait_until(lambda: channel.state == "bound", what="bound with the whole password")
    assert raw.bind_fields[0]["system_id"] == LONG_USER.encode()
    assert raw.bind_fields[0]["password"] == LONG_PASSWORD.encode()


def test_fields_within_the_limits_are_sent_as_before(raw, channel_to):
    raw.password = b"secret12"
    channel = channel_to(username="esme", password="secret12")
    wait_until(lambda: channel.state == "bound", what="bound")
    assert (raw.bind_fields[0]["system_id"], raw.bind_fields[0]["password"]) == \
        (b"esme", b"secret12")


def test_a_refused_bind_names_the_field_over_the_limit_and_not_its_value(raw, channel_to):
    raw.password = b"the-right-one"
    channel = channel_to(username="esme", password=LONG_PASSWORD)
    wait_until(lambda: "Invalid Password" in channel.status()["last_error"],
               what="the refusal")
    reason = channel.status()["last_error"]
    assert reason == ("bind_transceiver refused: 0x0E Invalid Password"
                      " (password is 14 characters, SMPP allows 8 (password))")
    assert LONG_PASSWORD not in reason


def test_a_refused_bind_within_the_limits_has_no_such_note(raw, channel_to):
    raw.password = b"right"
    channel = channel_to(username="esme", password="wrong")
    wait_until(lambda: "Invalid Password" in channel.status()["last_error"],
               what="the refusal")
    assert channel.status()["last_error"] == "bind_transceiver refused: 0x0E Invalid Password"


def test_the_channel_warns_once_at_start_without_the_secret(raw, channel_to, caplog):
    raw.password = LONG_PASSWORD.encode()
    with caplog.at_level(logging.WARNING, logger="appliance.uplink"):
        channel = channel_to(username="esme", password=LONG_PASSWORD)
        wait_until(lambda: channel.state == "bound", what="bound")
    notes = [r.getMessage() for r in caplog.records if "SMPP allows" in r.getMessage()]
    assert notes == ["SMPP0: password is 14 characters, SMPP allows 8 (password); it is sent"
                     " whole, an SMSC that keeps to the limit refuses the bind"]
    assert all(LONG_PASSWORD not in r.getMessage() for r in caplog.records)


def test_check_config_passes_with_a_warning_naming_the_line(tmp_path, capsys):
    path = tmp_path / "config.toml"
    path.write_text('[connections.Aggregator]\ntype = "SMPP"\nhost = "smpp.example.net"\n'
                    f'username = "{LONG_USER}"\npassword = "{LONG_PASSWORD}"\n')
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: OK" in out
    assert (f"warning: {path}:4: connections.Aggregator.username: username is 22 characters,"
            " SMPP allows 15 (system_id)") in out
    assert f"warning: {path}:5: connections.Aggregator.password: password is 14" in out
    assert LONG_PASSWORD not in out


def test_check_config_has_no_warning_for_fields_within_the_limits(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[connections.Aggregator]\ntype = "SMPP"\nhost = "smpp.example.net"\n'
                    'username = "esme"\npassword = "secret12"\nsystemtype = "VMA"\n')
    config, problems = config_check.check_file(path)
    assert problems == [] and config_check.warnings(config, path) == []


def test_a_character_a_bind_cannot_carry_is_a_config_error(tmp_path, capsys):
    path = tmp_path / "config.toml"
    path.write_text('[connections.Aggregator]\ntype = "SMPP"\nhost = "smpp.example.net"\n'
                    'username = "esme"\npassword = "pa€ss"\n')
    assert main(["check-config", str(path)]) == 1
    assert ("connections.Aggregator.password: a character an SMPP bind cannot carry"
            " (position 3)") in capsys.readouterr().err


def test_the_channel_answers_such_a_value_with_a_reason_not_a_traceback(raw, channel_to,
                                                                        caplog):
    with caplog.at_level(logging.WARNING, logger="appliance.uplink"):
        channel = channel_to(username="esme", password="pa€ss")   # not through the config
        wait_until(lambda: "Latin-1" in channel.status()["last_error"], what="the reason")
    assert channel.status()["last_error"] == \
        "bind_transceiver not sent: a field has a character outside Latin-1"
    assert not [r for r in caplog.records if r.exc_info]


def test_debug_logging_never_writes_the_bind_password_or_texts(raw_channel, caplog):
    """Found by a helper: with `-v` smpplib's hex dump of every PDU reached the log, the
    bind_transmitter's password and every submit_sm's text in it."""
    import binascii
    import logging
    from test_smpp import wait_until
    from test_modem_kit import part
    caplog.set_level(logging.DEBUG)
    channel, sink = raw_channel(password="S3cr3tPw")
    channel.submit(part(1, text="Top secret text"))
    wait_until(lambda: sink.submitted, what="submit_sm_resp")
    logged = caplog.text.encode()
    for secret in (b"S3cr3tPw", b"Top secret text"):
        assert secret not in logged and binascii.b2a_hex(secret) not in logged
