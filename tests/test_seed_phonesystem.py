"""Seed 002: credentials "are only required if office user authentication is set in the HTTP
API" -- the setting, required by default; off, only from the allow list; ApiExtension checked."""

from __future__ import annotations

from appliance import config as cfg
from conftest import ADMIN_PASSWORD, Api, xml_values

BASE = {"command": "SendSms", "ApiExtension": "9994", "Recipient": "+36201234567",
        "Message": "Hello world"}


def _code(api: Api, **params) -> str:
    status, body = api.get("/", **{**BASE, **params})
    assert status == 200
    return xml_values(body, "Code")[0]


def _daemon(make_config, run_daemon, **phonesystem):
    config = make_config(phonesystem=cfg.build(cfg.PhoneSystemConfig, phonesystem,
                                               "phonesystem"))
    daemon = run_daemon(config)
    return daemon, Api(daemon.port)


def test_credentials_are_required_by_default(appliance):
    _, api = appliance
    assert _code(api) == "304"
    assert _code(api, Username="admin", Password=ADMIN_PASSWORD) == "200"


def test_without_office_user_authentication_the_allow_list_decides(make_config, run_daemon):
    daemon, api = _daemon(make_config, run_daemon, auth_required=False,
                          allow=["127.0.0.0/8"], user="admin")
    status, body = api.get("/", **BASE)
    assert xml_values(body, "Code") == ["200"], body
    message = daemon.journal.get_message(xml_values(body, "SmsId")[0])
    assert message["user"] == "admin"
    # credentials, when given, are still checked
    assert _code(api, Username="admin", Password="wrong") == "305"


def test_without_authentication_other_addresses_are_refused(make_config, run_daemon):
    first, api = _daemon(make_config, run_daemon, auth_required=False, allow=["10.0.0.0/8"])
    assert _code(api) == "307"
    first.stop()                # one daemon per state directory (state_dir.DaemonLock)
    _, open_api = _daemon(make_config, run_daemon, auth_required=False)    # empty list
    assert _code(open_api) == "307"


def test_the_configured_user_must_exist(make_config, run_daemon):
    _, api = _daemon(make_config, run_daemon, auth_required=False, allow=["127.0.0.1"],
                     user="ghost")
    assert _code(api) == "306"


def test_api_extension_is_an_extension_number(appliance):
    _, api = appliance
    login = {"Username": "admin", "Password": ADMIN_PASSWORD}
    assert _code(api, **login, ApiExtension="ext") == "302"
    assert _code(api, **login, ApiExtension="-5") == "302"
    assert _code(api, **login, ApiExtension="") == "302"
    assert _code(api, **login, ApiExtension="1" * 10) == "302"
    assert _code(api, **login, ApiExtension="9994") == "200"


def test_api_extension_list(make_config, run_daemon):
    daemon, api = _daemon(make_config, run_daemon, extensions=[9994])
    login = {"Username": "admin", "Password": ADMIN_PASSWORD}
    status, body = api.get("/", **{**BASE, **login, "ApiExtension": "9995"})
    assert xml_values(body, "Code") == ["302"] and "no such API extension" in body
    assert _code(api, **login) == "200"


def test_the_setting_in_the_config_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[phonesystem]\nauth_required = false\nallow = ["192.168.1.0/24"]\n'
                    'user = "pbx"\nextensions = [9994, 9995]\n')
    setting = cfg.load(path).phonesystem
    assert (setting.auth_required, setting.allow, setting.user, setting.extensions) == \
        (False, ("192.168.1.0/24",), "pbx", (9994, 9995))
    path.write_text("[phonesystem]\nauth_requried = false\n")
    try:
        cfg.load(path)
    except cfg.ConfigError as exc:
        assert "auth_requried" in str(exc)
    else:
        raise AssertionError("a misspelt key must be an error")
