"""The seed's HTTP Client, HTTP Server and SMTP connection keys (seed 000), lower case.

Fields are the keys the appliance applies; `SEED_IGNORED_KEYS` are the seed's keys that mean
nothing here (Windows log paths, GUI switches): accepted by `configdriver` and listed as
ignored. The appliance's own keys (report parameter names, reconnect delays) follow the
seed's fields and say so.
"""

from __future__ import annotations

import codecs
import ipaddress
import re
import urllib.parse
from dataclasses import dataclass

from appliance.errors import ConfigError

# Seed keys common to every driver kind that have no meaning on the appliance.
_COMMON_IGNORED = {"charsethandling", "preferedcharset", "cbslowcommunication", "idoverride",
                   "keepaliverequest", "logcommunication", "logdirectory", "loghistorycount",
                   "loglinesbeforechecksize", "logmaxfilesize", "logmessages", "protocol"}


@dataclass(frozen=True)
class HTTPClientConfig:
    """Send through a web SMS provider's URL template (seed: HTTP Client Connection)."""

    name: str
    type: str = "HTTPClient"
    targeturl: str = ""
    targeturlbin: str = ""
    requestmethod: str = "Get"                 # Get | Post
    postdatacontenttype: str = "application/x-www-form-urlencoded"
    respsuccess: str = ""                      # regex; a group (`id` or the first) is the reference
    respfailed: str = ""                       # regex; a match fails the part for good
    httpauthorizationmethod: str = ""          # "" / None | Basic | Digest
    httpauthorizationuser: str = ""
    httpauthorizationpassword: str = ""
    submittimeout: float = 60.0
    submittimeoutaction: str = "SubmitFailed"  # SubmitFailed | Resend | SubmitSuccess
    windowsize: int = 20                       # requests in flight (worker threads, capped)
    limittompm: int = 240
    useragent: str = "sms-appliance"
    encodingcharset: str = "utf-8"
    nourlencoding: bool = False
    usexmlencoding: bool = False
    cbusehttp10: bool = False
    cbsegment: bool = True                     # off: the provider splits; the whole text goes once
    cbmultipartasbin: bool = False
    cbtextasbin: bool = False
    cbunicodeasbin: bool = True
    proxy: str = ""
    proxyport: int = 8080
    proxyuser: str = ""
    proxypassword: str = ""
    usecert: bool = False
    certfile: str = ""                          # a PEM client certificate (with its key)
    passwordcert: str = ""
    deliveryreport: bool = True                 # off: $tpdrreqINT/BOOL ask for no report
    send: bool = True
    keepaliveperiod: float = 30.0               # longest wait between probes of a down provider
    phonenumber: str = ""                       # $originator when a message has none
    operator: str = ""
    autoconnect: bool = True
    # the appliance's own keys: the delivery report callback (docs/api.md)
    reportidparam: str = "messageid"
    reportstatusparam: str = "status"
    reporttoken: str = ""
    reconnectdelay: float = 1.0

    def check(self, path: str) -> None:
        if self.send and not (self.targeturl or self.targeturlbin):
            raise ConfigError(f"{path}.targeturl: required for an HTTPClient connection")
        for key in ("targeturl", "targeturlbin"):
            _check_url(path, key, getattr(self, key))
        _check_choice(path, "requestmethod", self.requestmethod, ("get", "post"))
        _check_choice(path, "httpauthorizationmethod", self.httpauthorizationmethod,
                      ("", "none", "basic", "digest"))
        _check_submittimeoutaction(path, self.submittimeoutaction)
        _check_charset(path, "encodingcharset", self.encodingcharset)
        for key in ("respsuccess", "respfailed"):
            _check_regex(path, key, getattr(self, key))
        _check_positive(path, "submittimeout", self.submittimeout)
        _check_windowsize(path, self.windowsize)
        if self.usecert and not self.certfile:
            raise ConfigError(f"{path}.certfile: required when usecert is on")


@dataclass(frozen=True)
class HTTPServerConfig:
    """A provider or LAN system delivers inbound SMS and reports here (seed: HTTP server)."""

    name: str
    type: str = "HTTPServer"
    baseurl: str = "http://127.0.0.1:9400"
    paramnamemessagedata: str = "msg"
    paramnamemessageid: str = "msgid"
    paramnamemessagetype: str = "msgtype"
    paramnameoriginator: str = "originator"
    paramnamerecipient: str = "recipient"
    paramnamesenttime: str = "senttime"
    paramnamesubject: str = "subject"
    responsetemplate: str = "Message was accepted id: $msgid"
    phonenumber: str = ""                      # the recipient when a request names none
    receive: bool = True
    send: bool = False                         # this appliance's HTTP Server only receives
    deliveryreport: bool = True                # off: reports at BASEURL are refused
    autoconnect: bool = True
    operator: str = ""
    # the appliance's own keys: reports at BASEURL (docs/api.md)
    paramnamestatus: str = "status"
    reportconnection: str = ""                 # whose submitted parts the reports are about
    ipallow: tuple[str, ...] = ()              # addresses/networks that may call; () = any
    accesstoken: str = ""                      # set: every request carries it as `token`

    def open_intake(self) -> str:
        """Why anyone who reaches BASEURL may inject SMS and reports ('' when not): the
        seed has no credentials for this kind, so a LAN listener without ipallow or
        accesstoken is open. Loopback (the seed's 127.0.0.1) only takes local callers."""
        if self.ipallow or self.accesstoken:
            return ""
        host = urllib.parse.urlsplit(self.baseurl).hostname or ""
        try:
            if host == "localhost" or ipaddress.ip_address(host).is_loopback:
                return ""
        except ValueError:
            pass                               # a host name: it may be a LAN address
        return (f"anyone who reaches {host or '?'} may deliver SMS and delivery reports "
                "here (no ipallow and no accesstoken); set ipallow or accesstoken")

    def check(self, path: str) -> None:
        for i, network in enumerate(self.ipallow):
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ConfigError(f"{path}.ipallow[{i}]: not an address or network: "
                                  f"{network!r}") from None
        _check_url(path, "baseurl", self.baseurl)
        if not self.baseurl:
            raise ConfigError(f"{path}.baseurl: required for an HTTPServer connection")
        if self.send:
            raise ConfigError(f"{path}.send: an HTTPServer connection only receives on this "
                              "appliance; send through an HTTPClient or SMTP connection")
        if urllib.parse.urlsplit(self.baseurl).scheme != "http":
            raise ConfigError(f"{path}.baseurl: must be an http:// URL (host:port/path)")


@dataclass(frozen=True)
class SMTPConfig:
    """Send each SMS as an e-mail to a provider's e-mail-to-SMS gateway (seed: SMTP)."""

    name: str
    type: str = "SMTP"
    smtpserver: str = ""
    smtpport: int = 25
    smtpssl: str = "off"                       # off | on (TLS from the start) | starttls
    smtpauth: bool = False
    usernamesmtp: str = ""
    passwordsmtp: str = ""
    mailfrom: str = "sms@localhost"
    mailto: str = "$recipient@serviceprovider.com"
    mailsubject: str = "$messagetext"
    mailbody: str = "$messagetext"
    charactersetbody: str = "Default"          # Default: us-ascii when it fits, else utf-8
    charactersetsubject: str = "Default"
    submittimeout: float = 60.0
    submittimeoutaction: str = "SubmitFailed"
    windowsize: int = 20                       # e-mails queued in the channel at most
    limittompm: int = 240
    keepaliveperiod: float = 30.0              # an idle session closes; longest probe wait
    send: bool = True
    phonenumber: str = ""                      # $originator when a message has none
    operator: str = ""
    autoconnect: bool = True
    reconnectdelay: float = 1.0                # the appliance's own: first retry of a down server

    def check(self, path: str) -> None:
        if not self.smtpserver:
            raise ConfigError(f"{path}.smtpserver: required for an SMTP connection")
        _check_choice(path, "smtpssl", self.smtpssl, ("off", "on", "starttls", "true", "false",
                                                      "yes", "no", "1", "0", "ssl", "tls"))
        _check_submittimeoutaction(path, self.submittimeoutaction)
        _check_positive(path, "submittimeout", self.submittimeout)
        if self.smtpauth and not self.usernamesmtp:
            raise ConfigError(f"{path}.usernamesmtp: required when smtpauth is on")
        if "@" not in self.mailto or "@" not in self.mailfrom:
            raise ConfigError(f"{path}.mailto/mailfrom: must be e-mail addresses (templates)")
        _check_windowsize(path, self.windowsize)
        for key in ("charactersetbody", "charactersetsubject"):
            _check_charset(path, key, getattr(self, key))

    @property
    def tls_mode(self) -> str:
        value = self.smtpssl.strip().lower()
        if value in ("on", "true", "yes", "1", "ssl", "tls"):
            return "ssl"
        return "starttls" if value == "starttls" else "off"


CONFIG_TYPES = {"HTTPClient": HTTPClientConfig, "HTTPServer": HTTPServerConfig,
                "SMTP": SMTPConfig}

SEED_IGNORED_KEYS = {
    "HTTPClient": _COMMON_IGNORED | {"pollinterval", "receive"},
    "HTTPServer": _COMMON_IGNORED | {"keepaliveperiod", "limittompm", "pollinterval",
                                     "cbslowcommunication",
                                     "submittimeout", "submittimeoutaction",
                                     "usebackendresponse", "useoutboxfile", "windowsize"},
    "SMTP": _COMMON_IGNORED | {"deliveryreport", "receive"},
}


def without_ignored_keys(kind: str, table: dict) -> dict:
    """A config table without the seed keys that mean nothing for this kind, so a file
    written from the seed's tables loads (`configdriver` lists them as ignored)."""
    ignored = SEED_IGNORED_KEYS.get(kind)
    if not ignored:
        return table
    return {k: v for k, v in table.items() if k.lower() not in ignored}


def _check_url(path: str, key: str, url: str) -> None:
    if url and urllib.parse.urlsplit(url.strip()).scheme not in ("http", "https"):
        raise ConfigError(f"{path}.{key}: must be an http:// or https:// URL")


def _check_choice(path: str, key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value.strip().lower() not in allowed:
        shown = ", ".join(a for a in allowed if a) or "?"
        raise ConfigError(f"{path}.{key}: expected one of {shown}, got {value!r}")


def _check_charset(path: str, key: str, name: str) -> None:
    if name.strip().lower() in ("", "default"):
        return
    try:
        codecs.lookup(name.strip())
    except LookupError:
        raise ConfigError(f"{path}.{key}: unknown character set {name!r}") from None


def _check_regex(path: str, key: str, pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{path}.{key}: not a valid regular expression: {exc}") from None


def _check_submittimeoutaction(path: str, value: str) -> None:
    _check_choice(path, "submittimeoutaction", value, ("submitfailed", "resend", "submitsuccess"))


def _check_windowsize(path: str, value: int) -> None:
    if not 1 <= value <= 1000:
        raise ConfigError(f"{path}.windowsize: expected 1..1000")


def _check_positive(path: str, key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{path}.{key}: must be more than 0")
