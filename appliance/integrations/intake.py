"""From an integration (webhook, mail, inbound rule) into the store: recipients resolved from
numbers and address-book groups, then the same gate every API dialect goes through."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from appliance.compose import normalize_recipient
from appliance.errors import ValidationError
from appliance.gsm.alphabet import plain_punctuation
from appliance.gsm.segment import fit
from appliance.intake import submit_batch
from appliance.logmask import masked
from appliance.model import Priority, Submission
from appliance.web import gate

log = logging.getLogger("appliance.integrations")

PRIORITY = {"alert": Priority.ALERT, "high": Priority.ALERT, "normal": Priority.NORMAL,
            "low": Priority.BULK, "bulk": Priority.BULK}


class UnknownRecipient(ValueError):
    """Neither a phone number nor an address-book group this user may use."""


@dataclass
class Outcome:
    ids: list[str]
    refused: list[tuple[str, str]]       # (recipient, reason)


def documents_of(services):
    return services.control.documents


def resolve(services, entries, user: str) -> list[str]:
    """Numbers in order, groups expanded, duplicates dropped. Raises UnknownRecipient."""
    numbers, unknown = resolve_known(services, entries, user)
    if unknown:
        raise UnknownRecipient(unknown[0])
    return numbers


def resolve_known(services, entries, user: str) -> tuple[list[str], list[str]]:
    """(numbers in order, groups expanded, duplicates dropped; the entries that are neither
    a number nor a group with a phone in it)."""
    numbers: list[str] = []
    unknown: list[str] = []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        try:
            expanded = _expand(services, entry, user)
        except UnknownRecipient:
            unknown.append(entry)
            continue
        for number in expanded:
            if number not in numbers:
                numbers.append(number)
    return numbers, unknown


def _expand(services, entry: str, user: str) -> list[str]:
    try:
        return [normalize_recipient(entry)]
    except ValidationError:
        pass
    members = group_members(services, entry, user)
    if not members:
        raise UnknownRecipient(entry)
    return members


def group_members(services, group: str, user: str) -> list[str]:
    """Phones of the address-book contacts in `group` that `user` may see (own or shared)."""
    documents = documents_of(services)
    if documents is None:
        return []
    wanted = group.strip().lower()
    phones = []
    for contact in documents.all(gate.ADDRESSBOOK_TABLE):
        if contact.get("user", "") not in ("", user) and user != "admin":
            continue
        groups = {g.strip().lower() for g in str(contact.get("groups", "")).split(",")}
        if wanted in groups and contact.get("phone"):
            phones.append(contact["phone"])
    return phones


def shorten(text: str, limit: int, suffix: str = "") -> str:
    """`text` + `suffix` within `limit` GSM-7 characters' worth of SMS (gsm.segment.fit),
    typographic punctuation first made GSM-7 (a curly apostrophe in a mail must not make
    the whole SMS UCS-2)."""
    return fit(plain_punctuation(text), limit, suffix)


def submit(services, *, user: str, recipients: list[str], text: str, priority: str,
           dialect: str) -> Outcome:
    """One durable commit for every recipient; StoreError propagates (the caller answers
    "try again": 503 to a webhook, 451 to a mail client)."""
    level = PRIORITY.get(priority.lower(), Priority.NORMAL)
    submissions = [Submission(user=user, recipient=number, text=text, messagetype="SMS:TEXT",
                              priority=level, dialect=dialect) for number in recipients]
    ids, refused = [], []
    for number, result in zip(recipients, submit_batch(services, submissions)):
        if isinstance(result, ValidationError):
            refused.append((number, result.text))
        else:
            ids.append(result.id)
    for number, reason in refused:
        log.warning("%s: %s refused for %s: %s", dialect, user, masked(number), reason)
    return Outcome(ids, refused)
