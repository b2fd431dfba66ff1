"""Typed errors that carry their meaning: a code, a retryable flag, a text for humans."""


class ApplianceError(Exception):
    """Base of every error the appliance raises on purpose."""


class ConfigError(ApplianceError):
    """The configuration file is wrong; the message names the key."""


class ValidationError(ApplianceError):
    """A submission is refused. `code` is a neutral reason the dialects map to their own codes."""

    def __init__(self, code: str, text: str, field: str | None = None):
        super().__init__(text)
        self.code = code
        self.text = text
        self.field = field


class StoreError(ApplianceError):
    """The durable store could not do what was asked."""


class ChannelError(ApplianceError):
    """A channel (modem, SMPP link) could not send a part.

    `retryable` True means another attempt (maybe on another channel) may succeed;
    False ends the part in `failed` with `reason`.
    """

    def __init__(self, code: str, reason: str, retryable: bool):
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.retryable = retryable
