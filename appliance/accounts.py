"""User accounts: provisioning from the config file, login checks, and the admin password.

Users live in the document store. Entries from the config file are owned by the file
(re-applied at every start); entries created through the API are owned by the API and
survive restarts untouched. Credits live in the journal's ledger, not here.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from dataclasses import dataclass, field

from appliance import auth, suspend
from appliance.config import Config, UserConfig

log = logging.getLogger("appliance.accounts")

TABLE = "users"
ADMIN = "admin"


@dataclass(frozen=True)
class User:
    name: str
    admin: bool = False
    enabled: bool = True
    allowrouteoverride: bool = False
    ip_allow: tuple[str, ...] = ()
    ip_deny: tuple[str, ...] = ()
    reporturl: str = ""
    inbound_url: str = ""
    originator: str = ""
    priority: str = "normal"
    owner: str = "api"
    settings: dict = field(default_factory=dict)

    def address_allowed(self, address: str) -> tuple[bool, str]:
        """(allowed, reason): reason is 'deny' or 'allow' (bulksms codes 16 and 18)."""
        if self.ip_deny and in_networks(address, self.ip_deny):
            return False, "deny"
        if self.ip_allow and not in_networks(address, self.ip_allow):
            return False, "allow"
        return True, ""


class AuthError(Exception):
    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind   # "bad" | "throttled" | "disabled"


def in_networks(address: str, networks) -> bool:
    """Is `address` in any of `networks` (addresses or CIDR ranges; a bad entry matches
    nothing)? The one allow/deny check of every API, hook, mail and metrics list."""
    return _in_networks(address, tuple(networks))


@functools.lru_cache(maxsize=1024)
def _in_networks(address: str, networks: tuple) -> bool:
    """Memoized by the address and the list's contents (an edited list is a new key): a
    user with an allow list does not parse it again on every request; bounded."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for net in networks:
        try:
            if ip in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False


_USER_FIELDS = ("admin", "enabled", "allowrouteoverride", "ip_allow", "ip_deny", "reporturl",
                "inbound_url", "originator", "priority", "owner", "settings")


def _to_user(doc: dict) -> User:
    values = {k: doc[k] for k in _USER_FIELDS if k in doc}
    for key in ("ip_allow", "ip_deny"):
        values[key] = tuple(values.get(key, ()))
    return User(name=doc["name"], **values)


def _from_file(password: str, password_hash: str, doc: dict) -> dict:
    """The password fields of a user's document after the config file's password is applied.
    The file's value is applied when it changed since it was last applied (`file_hash` keeps
    what was); a password set since then with `sms-appliance passwd` or the API stays until
    the file's changes. The file used to win at every start: a password rotated after a
    lost SD card came back with the next reboot."""
    applied, stored = doc.get("file_hash", ""), doc.get("password_hash", "")
    if password_hash:
        if password_hash == applied and stored:
            return {}
        return {"password_hash": password_hash, "file_hash": password_hash}
    if password:
        if applied and stored and auth.verify_password(password, applied):
            return {}
        # no rehash per start while the stored hash is the file's password
        reused = stored if stored and auth.verify_password(password, stored) else \
            auth.hash_password(password)
        return {"password_hash": reused, "file_hash": reused}
    return {}


class Accounts:
    def __init__(self, documents, journal, *, failures_per_minute: int = 10):
        self.documents = documents
        self.journal = journal
        self._cache = auth.CredentialCache()
        self.throttle = auth.LoginThrottle(limit=failures_per_minute)
        self._users: dict[str, tuple[dict, User]] = {}    # name -> (its document, its User)

    # --- provisioning ---

    def provision(self, config: Config, admin_password: str = "") -> str | None:
        """Apply the config's users and admin. Returns a new admin password if one was made."""
        for user in config.users:
            self._provision_user(user)
        self._keep_legacy_unlimited()
        return self._provision_admin(config, admin_password)

    def _provision_user(self, user: UserConfig) -> None:
        doc = self.documents.get(TABLE, user.name) or {}
        self.documents.put(TABLE, {
            "password_hash": "", **doc, **_from_file(user.password, user.password_hash, doc),
            "name": user.name,
            "admin": user.admin,
            "enabled": doc.get("enabled", True), "allowrouteoverride": user.allowrouteoverride,
            "ip_allow": list(user.ip_allow), "ip_deny": list(user.ip_deny),
            "reporturl": user.reporturl, "inbound_url": user.inbound_url,
            "originator": user.originator, "priority": user.priority, "owner": "file"})
        self._provision_credits(user)

    def _provision_credits(self, user: UserConfig) -> None:
        """The file's `credits` is a starting balance, set once; `unlimited` is the file's."""
        credits, unlimited = user.credits, user.unlimited
        if credits == -1:       # the old spelling of unlimited, still in older config files
            log.warning("config: users.%s credits = -1 is read as unlimited = true; a balance "
                        "of -1 now blocks sending (seed 003)", user.name)
            credits, unlimited = 0, True
        self.journal.ensure_balance(user.name, credits)
        self.journal.set_unlimited(user.name, unlimited)

    def _keep_legacy_unlimited(self) -> None:
        """Users created before credits had a separate unlimited setting have no balance row:
        they sent without limit, so they keep doing so until the administrator sets credits."""
        for doc in self.documents.all(TABLE):
            if doc["name"] != ADMIN and not self.journal.has_balance(doc["name"]):
                self.journal.set_unlimited(doc["name"], True)
                self.journal.ensure_balance(doc["name"], 0)

    def _provision_admin(self, config: Config, override: str) -> str | None:
        """`override` (`--admin-password`, `sms-appliance passwd`) wins; then the file's
        password when it changed (_from_file); then the stored one; else a new one."""
        existing = self.documents.get(TABLE, ADMIN) or {}
        doc = {"name": ADMIN, "owner": "file", "enabled": True, **existing}
        generated = None
        if override:
            doc["password_hash"] = auth.hash_password(override)
        else:
            doc.update(_from_file(config.admin.password, config.admin.password_hash, existing))
        if not doc.get("password_hash"):
            generated = auth.new_password()
            doc["password_hash"] = auth.hash_password(generated)
        doc.update(admin=True, allowrouteoverride=True)
        self.documents.put(TABLE, doc)
        self.journal.ensure_balance(ADMIN, 0)
        self.journal.set_unlimited(ADMIN, True)   # the administrator is never out of credit
        return generated

    def set_password(self, name: str, password: str) -> bool:
        password_hash = suspend.offload(auth.hash_password, password)
        return self.documents.update(TABLE, name, {"password_hash": password_hash})

    # --- checks ---

    def authenticate(self, name: str, password: str, address: str = "") -> User:
        if self.throttle.blocked(address):
            raise AuthError("throttled")
        doc = self.documents.get(TABLE, name or "")
        if doc is None or not doc.get("password_hash") or \
                not self._cache.check(name, password or "", doc["password_hash"]):
            self.throttle.failed(address)
            log.warning("auth: failed login for user %r from %s", (name or "")[:32], address)
            raise AuthError("bad")
        if not doc.get("enabled", True):
            raise AuthError("disabled")
        return self._user_of(doc)

    def _user_of(self, doc: dict) -> User:
        """`_to_user(doc)`, built once per version of the document: the User of the last
        login is reused while its stored document is still equal (one C-level compare
        instead of a dict, two tuples and a frozen dataclass per request)."""
        known = self._users.get(doc["name"])
        if known is not None and known[0] == doc:
            return known[1]
        if len(self._users) >= 1024:      # bounded: only logins that passed come here
            self._users.clear()
        user = _to_user(doc)
        self._users[doc["name"]] = (doc, user)
        return user

    # --- management (Ozeki user actions) ---

    def get(self, name: str) -> User | None:
        doc = self.documents.get(TABLE, name)
        return _to_user(doc) if doc else None

    def all(self) -> list[User]:
        return [_to_user(d) for d in self.documents.all(TABLE)]

    def create(self, name: str, password: str, **values) -> bool:
        """False when a user of this name exists, also one made while the password was
        being hashed. scrypt (50 ms here, more on a Pi) runs off the HTTP loop's thread, as
        the login's does: the loop serves other requests meanwhile, a createuser among them."""
        password_hash = suspend.offload(auth.hash_password, password)
        return self.documents.insert_new(TABLE, {"name": name, "password_hash": password_hash,
                                                 "enabled": True, "owner": "api", **values})

    def update(self, name: str, **changes) -> bool:
        return self.documents.update(TABLE, name, changes)

    def delete(self, name: str) -> bool:
        return self.documents.remove(TABLE, name)
