"""HttpClientChannel: sends each SMS by calling a web SMS provider's URL (seed: HTTP Client).

The URL comes from TARGETURL (text) or TARGETURLBIN (binary, and text when CBTEXTASBIN,
CBUNICODEASBIN or CBMULTIPARTASBIN say so) with the seed's `$keyword` fields. REQUESTMETHOD
Post sends the part after `?` as the body. The provider's answer decides the outcome:
RESPFAILED matching fails the part for good; RESPSUCCESS (when set) must match, and its
group `id` (or its first group) is the provider's message reference; 408/429/5xx are tried
again later; a provider that cannot be reached puts the channel down until a probe finds it
again. Delivery reports come back on the appliance's own port (`provider/report_route.py`).

stdlib only (urllib): it brings Basic/Digest auth, proxies and client certificates.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request

from appliance.clock import SYSTEM_CLOCK, Clock
from appliance.model import OutPart
from appliance.provider import templates
from appliance.provider.base import (Outcome, QueuedChannel, down, failed, retry, submitted,
                                     timed_out)
from appliance.provider.settings import HTTPClientConfig

MAX_WORKERS = 16
PROBE_SECONDS = 10.0
MAX_ANSWER = 64 * 1024
TRANSIENT_STATUS = {408, 425, 429}


class HttpClientChannel(QueuedChannel):
    kind = "httpclient"

    def __init__(self, conn: HTTPClientConfig, sink, *, clock: Clock = SYSTEM_CLOCK):
        super().__init__(conn, sink, clock=clock, workers=min(conn.windowsize, MAX_WORKERS))
        self._success = re.compile(conn.respsuccess) if conn.respsuccess else None
        self._failure = re.compile(conn.respfailed) if conn.respfailed else None
        self._escape = templates.url_escaper(conn.encodingcharset, conn.nourlencoding,
                                             conn.usexmlencoding)
        self._opener = build_opener(conn)

    def describe(self) -> dict:
        return {"url": _without_query(self.conn.targeturl or self.conn.targeturlbin)}

    def describe_target(self) -> str:
        return self.describe()["url"]

    # --- reaching the provider ---

    def probe(self) -> str:
        host, port = _probe_address(self.conn)
        try:
            # short: the prober's heartbeat feeds the systemd watchdog
            socket.create_connection((host, port), timeout=min(PROBE_SECONDS,
                                                                self.conn.submittimeout)).close()
        except OSError as exc:
            return f"{host}:{port} unreachable: {exc.strerror or exc}"
        return ""

    # --- one part ---

    def whole_message(self, part: OutPart) -> bool:
        return (part.total > 1 and not self.conn.cbsegment and part.encoding != "8bit"
                and not self._binary(part))

    def send_part(self, part: OutPart, whole_text: str | None) -> Outcome:
        reference = part.message_id if whole_text is not None or part.total == 1 \
            else f"{part.message_id}.{part.seq}"
        template = self.conn.targeturlbin if self._binary(part) else self.conn.targeturl
        if not template:
            return failed("no_template", "binary messages need TARGETURLBIN" if
                          self._binary(part) else "text messages need TARGETURL")
        fields = templates.part_fields(part, text=whole_text, message_id=reference,
                                       concat=whole_text is None, conn=self.conn)
        try:
            url = templates.fill(templates.compact_url(template), fields, self._escape)
        except UnicodeEncodeError as exc:
            return failed("bad_text", f"{exc.object[exc.start:exc.end]!r} cannot be sent in"
                          f" {self.conn.encodingcharset} (ENCODINGCHARSET)")
        try:
            status, answer = self._call(url)
        except (http.client.InvalidURL, ValueError) as exc:
            # refused before anything was sent (not a URL http.client can send): the next
            # try is the same, so the part fails with the reason instead of waiting for ever
            return failed("bad_url", f"{_without_query(url)}: not a URL a request can carry"
                          f" ({type(exc).__name__})")     # its text holds the query
        except TimeoutError:
            return timed_out(self.conn, reference)
        except urllib.error.URLError as exc:
            # urllib wraps what fails while connecting and sending the request, a timeout
            # there too: the provider never answered, so the connection is down (the part
            # waits or fails over); a timeout waiting for the answer is SUBMITTIMEOUTACTION's
            return down(f"{_without_query(url)}: {exc.reason}")
        except (OSError, http.client.HTTPException) as exc:
            # raised while waiting for the answer (urllib wraps what fails before the request
            # is sent in URLError, above): the provider had the request and may have taken
            # it, as after a timeout, so SUBMITTIMEOUTACTION decides; resending it as "down"
            # sent the same SMS again at every retry
            return timed_out(self.conn, reference, f"{_without_query(url)}: the connection was"
                             f" lost before the answer ({type(exc).__name__})")
        return self.judge(status, answer, reference)

    def _binary(self, part: OutPart) -> bool:
        if part.encoding == "8bit" or part.udh or part.dcs is not None:
            return True
        if part.total > 1 and self.conn.cbsegment and self.conn.cbmultipartasbin:
            return True
        if part.encoding == "ucs2" and self.conn.cbunicodeasbin and self.conn.targeturlbin:
            return True
        return part.encoding == "gsm7" and self.conn.cbtextasbin

    def _call(self, url: str) -> tuple[int, str]:
        data = None
        headers = {"User-Agent": self.conn.useragent}
        if self.conn.requestmethod.strip().lower() == "post":
            url, _, body = url.partition("?")
            data = body.encode(templates.codec(self.conn.encodingcharset), errors="replace")
            headers["Content-Type"] = self.conn.postdatacontenttype
        if self.conn.httpauthorizationmethod.strip().lower() == "basic":
            headers["Authorization"] = basic_auth(self.conn.httpauthorizationuser,
                                                  self.conn.httpauthorizationpassword)
        request = urllib.request.Request(url, data=data, headers=headers,
                                         method="POST" if data is not None else "GET")
        try:
            with self._opener.open(request, timeout=self.conn.submittimeout) as answer:
                return answer.status, _text(answer)
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, _text(exc)

    def judge(self, status: int, answer: str, reference: str) -> Outcome:
        """The provider's answer as an outcome (RESPFAILED, then the status, then
        RESPSUCCESS)."""
        shown = " ".join(answer.split())[:160]
        if self._failure and self._failure.search(answer):
            return failed("provider_refused", shown or f"HTTP {status}")
        if status in TRANSIENT_STATUS or status >= 500:
            return retry(f"http_{status}", shown or f"HTTP {status}")
        if not 200 <= status < 300:
            return failed(f"http_{status}", shown or f"HTTP {status}")
        if self._success is None:
            return submitted(reference)
        match = self._success.search(answer)
        if match is None:
            return failed("unexpected_answer", f"the answer does not match RESPSUCCESS: {shown}")
        return submitted(_reference(match) or reference)


def build_opener(conn: HTTPClientConfig) -> urllib.request.OpenerDirector:
    """urllib with the connection's proxy (never the environment's), Digest auth, client
    certificate and HTTP version."""
    handlers: list = [urllib.request.ProxyHandler(_proxies(conn)), _NoPostRedirect()]
    if conn.httpauthorizationmethod.strip().lower() == "digest":
        passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        for url in filter(None, (conn.targeturl, conn.targeturlbin)):
            passwords.add_password(None, templates.compact_url(url).split("?", 1)[0],
                                   conn.httpauthorizationuser, conn.httpauthorizationpassword)
        handlers.append(urllib.request.HTTPDigestAuthHandler(passwords))
    context = ssl.create_default_context()
    if conn.usecert:
        context.load_cert_chain(conn.certfile, password=conn.passwordcert or None)
    handlers.append(urllib.request.HTTPSHandler(context=context))
    if conn.cbusehttp10:
        handlers.append(_Http10Handler())
    return urllib.request.build_opener(*handlers)


class _NoPostRedirect(urllib.request.HTTPRedirectHandler):
    """A POST is not followed to another URL: urllib repeats it there as a GET without its
    body, the provider saw no parameters, and the part was taken for submitted. The 3xx
    is the provider's answer then (a failure naming the status: fix TARGETURL)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if req.get_method() == "POST":
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Http10Connection(http.client.HTTPConnection):
    _http_vsn = 10
    _http_vsn_str = "HTTP/1.0"


class _Http10Handler(urllib.request.HTTPHandler):
    """CBUSEHTTP10: some old provider gateways speak only HTTP/1.0."""

    def http_open(self, req):
        return self.do_open(_Http10Connection, req)


def basic_auth(user: str, password: str) -> str:
    import base64
    token = base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")
    return f"Basic {token}"


def _proxies(conn: HTTPClientConfig) -> dict:
    if not conn.proxy:
        return {}
    host = conn.proxy.split("://", 1)[-1].rstrip("/")
    credentials = ""
    if conn.proxyuser:
        credentials = (urllib.parse.quote(conn.proxyuser, safe="") + ":"
                       + urllib.parse.quote(conn.proxypassword, safe="") + "@")
    url = f"http://{credentials}{host}" + ("" if ":" in host else f":{conn.proxyport}")
    return {"http": url, "https": url}


def _probe_address(conn: HTTPClientConfig) -> tuple[str, int]:
    if conn.proxy:
        host = conn.proxy.split("://", 1)[-1].rstrip("/")
        name, _, port = host.partition(":")
        return name, int(port) if port.isdigit() else conn.proxyport
    url = urllib.parse.urlsplit(templates.compact_url(conn.targeturl or conn.targeturlbin))
    return url.hostname or "", url.port or (443 if url.scheme == "https" else 80)


def _text(answer) -> str:
    """The answer's text. A charset label Python does not know is read as UTF-8: the
    provider took the SMS, and a LookupError here had it sent again at every retry."""
    charset = answer.headers.get_content_charset() or "utf-8"
    data = answer.read(MAX_ANSWER)
    try:
        return data.decode(charset, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def _reference(match: re.Match) -> str:
    groups = match.groupdict()
    if groups.get("id"):
        return groups["id"].strip()
    return next((g.strip() for g in match.groups() if g), "")


def _without_query(url: str) -> str:
    """For logs and /status: the query holds numbers and texts (and maybe credentials)."""
    return templates.compact_url(url).split("?", 1)[0]
