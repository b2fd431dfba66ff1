"""What a failed send means: a short code, a reason for humans, and whether to retry.

Codes are the modem's own (`CMS 500`, `CME 14`) so an operator can look them up; the
reasons follow 27.005 §3.2.5 and the network causes of 24.011 (field-notes §3.5).
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.errors import ApplianceError
from appliance.modem.at import AtCommandError, AtTimeout, PortGone

class WrongModem(ApplianceError):
    """The port answers with another modem's IMEI (or another SIM's ICCID) than the slot is
    configured for: links swapped after re-enumeration. Nothing may be sent on it."""


CMS_REASONS = {
    1: "unassigned (unallocated) number", 8: "operator determined barring",
    10: "call barred", 21: "short message transfer rejected",
    27: "destination out of service", 28: "unidentified subscriber",
    29: "facility rejected", 30: "unknown subscriber", 38: "network out of order",
    41: "temporary failure", 42: "congestion", 47: "resources unavailable",
    50: "requested facility not subscribed", 69: "facility not implemented",
    96: "invalid mandatory information", 111: "protocol error",
    300: "ME failure", 301: "SMS service of ME reserved", 302: "operation not allowed",
    303: "operation not supported", 304: "invalid PDU mode parameter",
    305: "invalid text mode parameter", 310: "SIM not inserted", 311: "SIM PIN required",
    312: "PH-SIM PIN required", 313: "SIM failure", 314: "SIM busy", 315: "SIM wrong",
    316: "SIM PUK required", 320: "memory failure", 321: "invalid memory index",
    322: "memory full", 330: "SMSC address unknown", 331: "no network service",
    332: "network timeout", 340: "no +CNMA acknowledgement expected", 500: "unknown error",
}
# The recipient or the subscription is the problem: another modem or later will not help.
PERMANENT_CMS = {1, 8, 10, 21, 29, 30, 50, 96, 304, 305}
# Waiting helps: the modem is still starting (SIM, SMSC, registration) or the network is busy.
STARTUP_RACE_CMS = {314, 330, 331, 332}
STARTUP_RACE_CME = {14, 30, 31, 515}


@dataclass(frozen=True)
class SendFailure:
    code: str
    reason: str
    retryable: bool
    modem_fault: bool      # counts towards the recovery ladder
    race: bool = False     # worth a short local retry before giving the part back


class InitFailed(ApplianceError):
    """Init could not finish. `fatal` ones (wrong PIN, PUK) skip the recovery ladder."""

    def __init__(self, reason: str, fatal: bool = False, retry: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.fatal = fatal
        self.retry = retry      # False: a failed modem is not probed again by itself


def classify(exc: Exception) -> SendFailure:
    if isinstance(exc, AtTimeout):
        return SendFailure("AT timeout", "the modem did not answer", True, True)
    if isinstance(exc, PortGone):
        return SendFailure("port gone", f"the modem's port failed: {exc}", True, True)
    if isinstance(exc, AtCommandError):
        return _classify_command_error(exc)
    return SendFailure("encode", f"cannot encode this part: {exc}", False, False)


def _classify_command_error(exc: AtCommandError) -> SendFailure:
    if exc.kind == "CMS" and exc.code is not None:
        reason = CMS_REASONS.get(exc.code, "network or vendor specific error")
        code = f"CMS {exc.code}"
        if exc.code in PERMANENT_CMS:
            return SendFailure(code, reason, False, False)
        if exc.code in STARTUP_RACE_CMS:
            return SendFailure(code, reason, True, False, race=True)
        return SendFailure(code, reason, True, exc.code >= 300)
    if exc.kind == "CME" and exc.code is not None:
        race = exc.code in STARTUP_RACE_CME
        return SendFailure(f"CME {exc.code}", exc.text or "equipment error", True, not race, race)
    return SendFailure("ERROR", "the modem answered ERROR", True, True)
