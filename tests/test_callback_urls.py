"""A callback URL is checked when it is given, in every dialect and in a user's settings:
a bad one gets the dialect's invalid-parameter answer and nothing is accepted (issue 17)."""

import pytest

from appliance import config as cfg
from appliance.callback_url import callback_url_problem
from appliance.errors import ConfigError
from conftest import ADMIN_PASSWORD, xml_values

BAD = ["not a url", "not+a+url", "ftp://host/x", "http://", "http:///path", "javascript:x",
       "http://host:99999/", "http://ho st/"]
GOOD = ["http://192.168.1.10/dlr.php?id=$messageid", "https://crm.example/hook",
        "http://[::1]:8080/x"]


@pytest.mark.parametrize("url", BAD)
def test_bad_urls_are_named(url):
    assert callback_url_problem(url)


@pytest.mark.parametrize("url", GOOD)
def test_good_urls_pass(url):
    assert callback_url_problem(url) is None


def _accepted(daemon) -> int:
    return daemon.journal.query("SELECT count(*) AS n FROM messages")[0]["n"]


def test_ozeki_reporturl_is_checked(appliance):
    daemon, api = appliance
    status, body = api.get("/api", action="sendmessage", username="admin",
                           password=ADMIN_PASSWORD, recipient="+36201234567",
                           messagedata="x", reporturl="not+a+url")
    assert xml_values(body, "errorcode") == ["3"] and "reporturl" in body
    assert _accepted(daemon) == 0


def test_phonesystem_delivery_report_url_is_checked(appliance):
    daemon, api = appliance
    status, body = api.get("/", command="SendSms", ApiExtension="9994",
                           Recipient="+36201234567", Message="Hi", Username="admin",
                           Password=ADMIN_PASSWORD, DeliveryReportURL="not a url")
    assert xml_values(body, "Code") == ["302"] and "Missing or invalid parameter 'DeliveryReportURL'" in body
    assert _accepted(daemon) == 0


def test_user_reporturl_is_checked_when_set_and_when_used(appliance):
    daemon, api = appliance
    body = api.action("createuser", name="shop", userpassword="shop-pass-1",
                      reporturl="ftp://nowhere/x")
    assert xml_values(body, "errorcode") == ["3"]
    # a bad URL stored before this check existed: the bulksms request is refused (1702)
    api.action("createuser", name="shop", userpassword="shop-pass-1")
    daemon.accounts.update("shop", reporturl="not+a+url")
    status, body = api.get("/bulksms/bulksms", username="shop", password="shop-pass-1",
                           type="0", dlr="1", destination="+36201234567", source="ACME",
                           message="Hello")
    assert body.strip() == "1702|+36201234567|"     # code|destination|id for every code
    assert _accepted(daemon) == 0


def test_config_user_urls_are_checked():
    with pytest.raises(ConfigError, match=r"users\.shop\.reporturl"):
        cfg.from_dict({"users": {"shop": {"reporturl": "mailto:a@b"}}})
    cfg.from_dict({"users": {"shop": {"reporturl": "http://10.0.0.2/r"}}})
