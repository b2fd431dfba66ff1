"""Accounts.authenticate reuses the User of the last login while the user's stored document
is unchanged; every change to it (password, stop, lists, settings, delete) is seen at once."""

from __future__ import annotations

import pytest

from appliance.accounts import Accounts, AuthError
from appliance.store.documents import Documents


class NoJournal:
    pass


@pytest.fixture
def accounts(tmp_path):
    accounts = Accounts(Documents(tmp_path), NoJournal())
    accounts.create("alice", "pw-1", ip_allow=["10.0.0.0/8"], settings={"a": 1})
    return accounts


def test_the_same_document_gives_the_same_user_again(accounts):
    first = accounts.authenticate("alice", "pw-1", "10.1.1.1")
    assert accounts.authenticate("alice", "pw-1", "10.1.1.1") is first
    assert first.ip_allow == ("10.0.0.0/8",) and first.settings == {"a": 1}


def test_every_change_of_the_document_is_seen_at_the_next_login(accounts):
    accounts.authenticate("alice", "pw-1", "10.1.1.1")
    accounts.update("alice", ip_allow=["192.168.0.0/16"], originator="Shop")
    user = accounts.authenticate("alice", "pw-1", "10.1.1.1")
    assert user.ip_allow == ("192.168.0.0/16",) and user.originator == "Shop"
    assert user.address_allowed("10.1.1.1") == (False, "allow")
    accounts.update("alice", settings={"a": 2})
    assert accounts.authenticate("alice", "pw-1", "10.1.1.1").settings == {"a": 2}
    accounts.update("alice", enabled=False)
    with pytest.raises(AuthError) as stopped:
        accounts.authenticate("alice", "pw-1", "10.1.1.1")
    assert stopped.value.kind == "disabled"
    accounts.update("alice", enabled=True)
    accounts.set_password("alice", "pw-2")
    with pytest.raises(AuthError) as old:
        accounts.authenticate("alice", "pw-1", "10.1.1.1")
    assert old.value.kind == "bad"
    assert accounts.authenticate("alice", "pw-2", "10.1.1.1").name == "alice"
    accounts.delete("alice")
    with pytest.raises(AuthError) as gone:
        accounts.authenticate("alice", "pw-2", "10.1.1.1")
    assert gone.value.kind == "bad"


def test_a_user_made_again_under_the_same_name_is_the_new_one(accounts):
    accounts.authenticate("alice", "pw-1", "10.1.1.1")
    accounts.delete("alice")
    accounts.create("alice", "pw-3", admin=True)
    user = accounts.authenticate("alice", "pw-3", "10.1.1.1")
    assert user.admin and user.ip_allow == () and user.settings == {}
