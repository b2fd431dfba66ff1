"""Whose inbox an inbound SMS lands in, so that user's `inboundurl` fires for it.

1. the user whose phone number (`originator`/`phonenumber` setting) is the number the SMS
   was sent to (the receiving connection's `phonenumber`);
2. else the user of the first route (`user=` set) that sends through the receiving
   connection: a user with its own modem/SIM owns what comes back on it;
3. else the administrator.
"""

from __future__ import annotations

from appliance.accounts import ADMIN
from appliance.model import InboundFragment, number_digits


class InboundOwners:
    def __init__(self, accounts, router):
        self._accounts = accounts
        self._router = router

    def __call__(self, fragment: InboundFragment) -> str:
        number = number_digits(fragment.recipient)     # the receiving modem's `phonenumber`
        if number:
            for user in self._accounts.all():
                if number_digits(user.originator) == number and user.enabled:
                    return user.name
        for route in self._router.routes():
            if route.user and fragment.connection in route.connections:
                return route.user
        return ADMIN
