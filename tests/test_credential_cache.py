"""The verified-credentials cache (auth.CredentialCache): a password checked once with scrypt
is recognised by its keyed tag afterwards; another password, or a changed stored hash, is
checked in full again."""

from __future__ import annotations

from appliance import auth


def counting_verify(monkeypatch) -> list:
    calls = []
    real = auth.verify_password

    def verify(password, stored):
        calls.append(password)
        return real(password, stored)

    monkeypatch.setattr(auth, "verify_password", verify)
    return calls


def test_a_verified_password_is_recognised_without_scrypt(monkeypatch):
    calls = counting_verify(monkeypatch)
    cache, stored = auth.CredentialCache(), auth.hash_password("right-one")
    assert cache.check("alice", "right-one", stored)
    assert cache.check("alice", "right-one", stored)
    assert calls == ["right-one"]


def test_another_password_is_checked_in_full_and_refused(monkeypatch):
    calls = counting_verify(monkeypatch)
    cache, stored = auth.CredentialCache(), auth.hash_password("right-one")
    assert cache.check("alice", "right-one", stored)
    assert not cache.check("alice", "wrong-one", stored)
    assert not cache.check("alice", "right-onf", stored)
    assert calls == ["right-one", "wrong-one", "right-onf"]


def test_a_changed_password_hash_is_checked_again(monkeypatch):
    calls = counting_verify(monkeypatch)
    cache = auth.CredentialCache()
    old, new = auth.hash_password("right-one"), auth.hash_password("new-one")
    assert cache.check("alice", "right-one", old)
    assert not cache.check("alice", "right-one", new)
    assert cache.check("alice", "new-one", new)
    assert calls == ["right-one", "right-one", "new-one"]


def test_the_same_password_of_another_user_is_checked_for_that_user(monkeypatch):
    calls = counting_verify(monkeypatch)
    cache, stored = auth.CredentialCache(), auth.hash_password("shared")
    assert cache.check("alice", "shared", stored)
    assert cache.check("bob", "shared", stored)
    assert calls == ["shared", "shared"]
