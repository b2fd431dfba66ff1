import pytest

from appliance import config as cfg
from appliance.cli import main
from appliance.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_a_full_config_parses_into_typed_connections(tmp_path):
    path = write(tmp_path, """
[http]
port = 9601
[connections.GSMModem0]
type = "GSMModem"
modemorport = "/dev/sms-appliance/slot1"
limittompm = 12
deliveryreport = "off"
[connections.SMPP0]
type = "SMPP"
host = "127.0.0.1"
username = "esme"
password = "secret"
[users.alice]
password = "alice-pass"
credits = 100
[[routes]]
prefix = "+36"
connections = ["GSMModem0", "SMPP0"]
""")
    config = cfg.load(path)
    modem, smpp = config.connections
    assert (modem.limittompm, modem.deliveryreport) == (12, False)
    assert (smpp.host, smpp.port, smpp.mode) == ("127.0.0.1", 2775, "transceiver")
    assert config.users[0].credits == 100
    assert config.routes[0].connections == ("GSMModem0", "SMPP0")


@pytest.mark.parametrize("text, key", [
    ("[http]\nprot = 1\n", "http.prot: unknown key"),
    ("[http]\nport = 'abc'\n", "http.port: expected an integer"),
    ("[connections.M]\ntype='GSMModem'\nmodemorport='/dev/x'\nbaudrate=true\n",
     "connections.M.baudrate: expected a number, got a boolean"),
    ("[connections.M]\ntype='GSMModem'\nmodemorport='/dev/x'\nlimitompm=3\n",
     "connections.M.limitompm: unknown key"),
    ("[connections.M]\ntype='GSMModem'\n", "connections.M.modemorport: required"),
    ("[connections.M]\ntype='UCP'\n", "connections.M.type: UCP connections are not supported"),
    ("[bogus]\n", "bogus: unknown section"),
    ("[[routes]]\nconnections=['nope']\n", "routes[0].connections: no connection named 'nope'"),
    ("[http\n", "not valid TOML"),
])
def test_bad_config_names_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as err:
        cfg.load(write(tmp_path, text))
    assert key in str(err.value)


def test_configdriver_strings_are_coerced_like_the_file():
    conn = cfg.connection_from_table("GSMModem1", {"type": "GSMModem", "modemorport": "loop://",
                                                   "baudrate": "19200", "send": "on"})
    assert (conn.baudrate, conn.send) == (19200, True)


def test_check_config_command_exit_codes(tmp_path, capsys):
    good = write(tmp_path, "[http]\nport = 9501\n")
    assert main(["check-config", str(good)]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("[http]\nport = 'x'\n")
    assert main(["check-config", str(bad)]) == 1
    assert "http.port" in capsys.readouterr().err
