"""The SMS text of an e-mail: subject and/or the plain-text part (HTML stripped), without
signatures, quoted replies and mobile footers. Pure: no I/O, so it is tested on its own."""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser

_REPLY_HEADER = re.compile(r"^(On .+ wrote:|.+ írta:|Am .+ schrieb .+:|Le .+ a écrit :)\s*$")
_CUT_LINES = re.compile(r"^(-- ?|__+|-----\s*Original Message\s*-----|Sent from my .+|"
                        r"Get Outlook for .+)$", re.I)
_QUOTED = re.compile(r"^>(\s|>|$)")
_SUBJECT_PREFIX = re.compile(r"^((re|fwd?|aw|wg|sv|vs)\s*:\s*)+", re.I)


def parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)


def sms_text(message: EmailMessage, mode: str = "subject+body") -> str:
    subject = _SUBJECT_PREFIX.sub("", _fold(_subject(message)))
    body = body_text(message) if mode != "subject" else ""
    if mode == "subject":
        return subject
    if mode == "body" or not subject:
        return body
    if not body or body.startswith(subject):
        return body or subject
    return f"{subject}: {body}"


def body_text(message: EmailMessage) -> str:
    """The plain-text part's text, or the HTML part's when the plain one says nothing (NAS
    mailers send an empty text/plain beside the HTML that holds the alert)."""
    for kind in ("plain", "html"):
        text = _part_text(message.get_body(preferencelist=(kind,)))
        if text:
            return text
    return ""


def _part_text(part) -> str:
    if part is None:
        return ""
    # us-ascii is what MIME means without a charset, and what such devices declare by
    # default: 8-bit text under it was not written in ASCII either
    undeclared = part.get_content_charset() in (None, "us-ascii", "ascii")
    payload = part.get_payload(decode=True) if undeclared else None
    if payload is not None and not payload.isascii():
        content = _undeclared(payload)
    else:
        try:
            content = part.get_content()
        except (LookupError, UnicodeDecodeError, AssertionError):   # a charset Python lacks
            content = _undeclared(part.get_payload(decode=True) or b"")
    if not isinstance(content, str):
        return ""
    if part.get_content_subtype() == "html":
        content = strip_html(content)
    return _fold(trim(content))


def _subject(message: EmailMessage) -> str:
    """The Subject; raw 8-bit bytes in it (no encoded-word, not UTF-8) read as `_undeclared`."""
    for name, value in message.raw_items():
        if name.lower() == "subject":
            if any("\udc80" <= ch <= "\udcff" for ch in value):
                return _undeclared(value.encode("ascii", "surrogateescape"))
            break
    return str(message.get("subject", "") or "")


def _undeclared(data: bytes) -> str:
    """8-bit text sent without a charset (old UPSes and PLCs do): UTF-8 when it is valid
    UTF-8, else Windows-1252, what such devices write (Latin-1 plus typographic quotes)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def trim(text: str) -> str:
    """Keep what the sender wrote: up to a signature, a quoted reply or a mobile footer. A
    separator before anything was written (a device's mail that opens with a line of
    underscores, a forward with nothing added) is skipped, not the end of the text; a
    quoted line is `>` then a space, another `>` or nothing (">90% used" is the device's)."""
    kept: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        stripped = line.strip()
        if _REPLY_HEADER.match(stripped):
            break
        if _CUT_LINES.match(line.rstrip("\n")) or _CUT_LINES.match(stripped):
            if any(k.strip() for k in kept):
                break
            continue
        if _QUOTED.match(stripped):
            continue
        kept.append(line)
    return "\n".join(kept)


class _TextOnly(HTMLParser):
    SKIP = {"script", "style", "head", "title"}
    BREAKS = {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "blockquote"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0
        self._quoted = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self._skipping += 1
        if tag == "blockquote":
            self._quoted += 1
        if tag in self.BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP and self._skipping:
            self._skipping -= 1
        if tag == "blockquote" and self._quoted:
            self._quoted -= 1
        if tag in self.BREAKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skipping and not self._quoted:
            self.parts.append(data)


def strip_html(html: str) -> str:
    parser = _TextOnly()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
