"""One login for every dialect: credentials in, a `User` out, or the dialect's own refusal.

Each dialect declares one `Dialect` at module level: where its credentials come from and a
table from the refusal kinds below to a function building its own exception (Ozeki error
codes, JSON envelopes, Phone System `<Code>`s, bulksms codes, the admin JSON). `login` is the
only code that calls `Accounts.authenticate` for the APIs; the scrypt check inside it runs off
the event loop (`auth.CredentialCache` → `suspend.offload`), so a burst of fresh connections
does not stall the other requests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Mapping

from appliance.accounts import AuthError, User
from appliance.web.params import client_address
from appliance.web.refusals import mark_logged

log = logging.getLogger("appliance.web")

# Refusal kinds, the keys of every dialect's table.
BAD = "bad"                    # unknown user or wrong password (also: no user name given)
THROTTLED = "throttled"        # too many failed logins from this address
DISABLED = "disabled"          # the user is stopped
DENIED = "deny"                # the address is in the user's deny list
NOT_ALLOWED = "allow"          # the address is outside the user's allow list
NOT_ADMIN = "not_admin"        # a user, but the route is for administrators
KINDS = (BAD, THROTTLED, DISABLED, DENIED, NOT_ALLOWED, NOT_ADMIN)


@dataclass(frozen=True)
class Dialect:
    """How one API logs in. `refusals[kind]()` builds the exception to raise (the table
    must answer every kind the dialect can meet: `KINDS`, `NOT_ADMIN` only when
    `admin_only`)."""

    name: str
    refusals: Mapping[str, Callable[[], Exception]]
    basic_auth: bool = True        # HTTP Basic first, then username/password parameters
    admin_only: bool = False
    # No user name given: who the request runs as (Phone System without office user
    # authentication), or None to try the empty name like a wrong password.
    without_credentials: Callable | None = None


def credentials(request, params: Mapping[str, str], basic_auth: bool) -> tuple[str, str]:
    auth = request.auth if basic_auth else None
    name, password = auth if auth else (params.get("username", ""), params.get("password", ""))
    return name or "", password or ""


def login(services, request, params: Mapping[str, str], dialect: Dialect) -> User:
    """The user these credentials name, or raise the dialect's refusal."""
    name, password = credentials(request, params, dialect.basic_auth)
    if not name and dialect.without_credentials is not None:
        return dialect.without_credentials(services, request)
    address = client_address(request)
    try:
        user = services.accounts.authenticate(name, password, address)
    except AuthError as exc:
        if exc.kind == DISABLED:      # accounts logs wrong passwords; throttled ones stay quiet
            log.warning("%s: stopped user %r refused from %s", dialect.name, name[:32], address)
        raise mark_logged(dialect.refusals[exc.kind]()) from None
    allowed, reason = user.address_allowed(address)
    if not allowed:
        log.warning("%s: user %r refused from %s (its %s list)", dialect.name, user.name,
                    address, reason)
        raise mark_logged(dialect.refusals[reason]())
    if dialect.admin_only and not user.admin:
        raise dialect.refusals[NOT_ADMIN]()
    return user
