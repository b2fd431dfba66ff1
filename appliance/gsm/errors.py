"""The codec's two errors: bad PDUs coming in, and text we cannot encode going out."""

from appliance.errors import ApplianceError


class PduError(ApplianceError, ValueError):
    """A PDU (or USSD payload) is malformed; the message says which field and why."""


class EncodingError(ApplianceError, ValueError):
    """Text, a number or a parameter cannot be encoded as asked (e.g. '中' in gsm7)."""


class TooLongError(EncodingError):
    """The payload does not fit one SMS (as against one the DCS cannot carry at all)."""
