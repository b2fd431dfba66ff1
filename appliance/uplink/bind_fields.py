"""A bind's text fields against the lengths SMPP gives them.

SMPP 3.4 (and 5.0) section 4.1.1: system_id at most 16 octets, password 9, system_type 13,
address_range 41, each with its terminating NUL. Some aggregators hand out longer
passwords and user names all the same, and accept them. smpplib cuts a longer value to the
limit without a word, so such a bind is refused as "Invalid Password" and nobody can tell
why (python-smpplib issue 227; AberrantSMPP issue 4: "I spent 2 days ...").

The appliance sends what the operator configured, whole, and says that it is longer than
the protocol allows: `check-config` prints a warning, the channel logs one at start, and a
refused bind's reason names the field. This module does not import smpplib: check-config
uses it too.
"""

from __future__ import annotations

# (config key, SMPP field, longest value without its NUL)
LIMITS = (("username", "system_id", 15), ("password", "password", 8),
          ("systemtype", "system_type", 12), ("addressrange", "address_range", 40))


def octets(value: str) -> int:
    """As smpplib sends a C-Octet String (latin-1 bytes)."""
    return len(value.encode("latin-1", "replace"))


def over_limit(conn) -> list[str]:
    """Why each of an SMPP connection's bind fields is longer than SMPP allows; the value
    itself is never named (a password)."""
    return [note for _, note in over_limit_by_key(conn)]


def over_limit_by_key(conn) -> list[tuple[str, str]]:
    """(config key, why) for each bind field longer than SMPP allows."""
    found = []
    for key, field, limit in LIMITS:
        length = octets(getattr(conn, key))
        if length > limit:
            found.append((key, f"{key} is {length} characters, SMPP allows {limit} ({field});"
                               " it is sent whole, an SMSC that keeps to the limit refuses"
                               " the bind"))
    return found


def longer_than_allowed(args: dict) -> dict[str, int]:
    """SMPP field -> its length with the NUL, for each text field of bind `args` longer
    than SMPP allows (smpp.py lets the bind PDU carry them whole)."""
    return {field: octets(args.get(field) or "") + 1 for _, field, limit in LIMITS
            if octets(args.get(field) or "") > limit}
