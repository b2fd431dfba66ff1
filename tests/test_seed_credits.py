"""Seed 003 credits through a real socket: a balance <= 0 blocks sending, for every value;
unlimited sending is a separate per-user setting; huge values get a clear message."""

from __future__ import annotations

import sqlite3

from appliance import config as cfg
from conftest import Api, xml_values
from test_api_ozeki import error_code, make_user


def _balance(body: str) -> int:
    return int(xml_values(body, "balance")[0])


def _sends(user: Api) -> bool:
    body = user.action("sendmessage", recipient="+36201234567", messagedata="x")
    return xml_values(body, "statuscode") == ["0"]


def test_a_new_user_starts_with_a_positive_balance_and_add_adds(appliance):
    _, api = appliance
    john = make_user(api)
    assert _balance(john.action("getcredits")) == 1000
    assert "<unlimited>off</unlimited>" in api.action("configuser", name="john")
    assert _balance(api.action("addcredits", useraccount="john", add="100")) == 1100
    assert _sends(john) and _balance(john.action("getcredits")) == 1099


def test_minus_one_is_a_blocked_balance_not_unlimited(appliance):
    _, api = appliance
    john = make_user(api)
    assert _balance(api.action("setcredits", useraccount="john", newbalance="-1")) == -1
    assert not _sends(john)
    api.action("setcredits", useraccount="john", newbalance="0")
    assert _balance(api.action("addcredits", useraccount="john", add="-1")) == -1
    assert not _sends(john)
    # 2, then -5, then +2 lands on -1: still blocked, never unlimited
    api.action("setcredits", useraccount="john", newbalance="2")
    api.action("addcredits", useraccount="john", add="-5")
    assert _balance(api.action("addcredits", useraccount="john", add="2")) == -1
    assert not _sends(john)
    assert _balance(api.action("addcredits", useraccount="john", add="2")) == 1
    assert _sends(john) and not _sends(john)


def test_unlimited_is_a_setting_shown_as_such(appliance):
    _, api = appliance
    body = api.action("createuser", name="john", userpassword="john-pass-1", credits="0",
                      unlimited="on")
    assert _balance(body) == 0 and xml_values(body, "unlimited") == ["on"]
    john = api.as_user("john", "john-pass-1")
    assert _sends(john) and _sends(john)
    assert _balance(john.action("getcredits")) == 0        # unlimited sending is not debited
    assert "<unlimited>on</unlimited>" in api.action("listusers")
    api.action("configuser", name="john", unlimited="off")
    assert not _sends(john)
    assert error_code(api.action("configuser", name="john", unlimited="maybe")) == 3


def test_huge_values_get_a_clear_message(appliance):
    _, api = appliance
    make_user(api)
    body = api.action("setcredits", useraccount="john", newbalance="9" * 40)
    assert error_code(body) == 3 and "between -2147483648 and 2147483647" in body
    assert _balance(api.action("setcredits", useraccount="john",
                               newbalance="2147483647")) == 2147483647
    body = api.action("addcredits", useraccount="john", add="1")
    assert error_code(body) == 3 and "2147483647" in body
    assert _balance(api.action("getcredits", useraccount="john")) == 2147483647
    assert _balance(api.action("setcredits", useraccount="john",
                               newbalance="-2147483648")) == -2147483648
    assert error_code(api.action("createuser", name="eve", credits="1" * 20)) == 3
    assert error_code(api.action("getcredits", useraccount="eve")) == 7     # not created


def test_config_file_credits_unlimited_and_the_old_minus_one(make_config, run_daemon):
    users = cfg.from_dict({"users": {
        "shop": {"password": "shop-pass-1", "credits": 5},
        "lan": {"password": "lan-pass-12", "unlimited": True},
        "old": {"password": "old-pass-12", "credits": -1}}}).users
    config = make_config(users=users)
    daemon = run_daemon(config)
    journal = daemon.journal
    assert (journal.balance("shop"), journal.unlimited("shop")) == (5, False)
    assert (journal.balance("lan"), journal.unlimited("lan")) == (1000, True)
    assert (journal.balance("old"), journal.unlimited("old")) == (0, True)
    assert journal.unlimited("admin")


def test_a_journal_from_before_keeps_its_unlimited_users(tmp_path):
    from appliance.store.journal import DB_NAME, Journal
    path = tmp_path / DB_NAME
    with sqlite3.connect(path) as conn:         # the old schema: -1 meant unlimited
        conn.execute("CREATE TABLE balances (user TEXT PRIMARY KEY, balance INTEGER NOT NULL)")
        conn.executemany("INSERT INTO balances VALUES (?,?)", [("old", -1), ("bob", 7)])
    journal = Journal.open(tmp_path)
    try:
        assert (journal.balance("old"), journal.unlimited("old")) == (0, True)
        assert (journal.balance("bob"), journal.unlimited("bob")) == (7, False)
        journal.set_balance("bob", -1)
    finally:
        journal.close()
    again = Journal.open(tmp_path)                   # the migration runs once, not at every start
    try:
        assert (again.balance("bob"), again.unlimited("bob")) == (-1, False)
    finally:
        again.close()


def test_a_huge_balance_in_the_config_file_is_a_clear_error():
    import pytest
    with pytest.raises(cfg.ConfigError, match=r"users.shop.credits: must be between"):
        cfg.from_dict({"users": {"shop": {"password": "x", "credits": 2**40}}})


def test_api_users_from_before_without_a_balance_stay_unlimited(make_config, run_daemon):
    config = make_config()
    first = run_daemon(config)
    first.documents.put("users", {"name": "legacy", "password_hash": "", "enabled": True,
                                  "owner": "api"})          # written by an older version
    first.stop()
    again = run_daemon(config)
    assert (again.journal.balance("legacy"), again.journal.unlimited("legacy")) == (0, True)
