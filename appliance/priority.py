"""Send priority: a property of the user (its `priority` setting) and of the request (a
`priority` parameter in every dialect), resolved the same way everywhere."""

from __future__ import annotations

from appliance.errors import ValidationError
from appliance.model import Priority

NAMES = {"alert": Priority.ALERT, "high": Priority.ALERT, "normal": Priority.NORMAL,
         "bulk": Priority.BULK, "low": Priority.BULK}


def parse(name: str) -> Priority:
    value = NAMES.get((name or "").strip().lower())
    if value is None:
        raise ValidationError("bad_parameter", "priority must be alert, high, normal, bulk or "
                              "low", "priority")
    return value


def of(user, requested=None) -> Priority:
    """The request's priority if it names one, else the user's (normal if unset)."""
    if requested is not None and str(requested).strip():
        return parse(str(requested))
    return NAMES.get((getattr(user, "priority", "") or "normal").lower(), Priority.NORMAL)
