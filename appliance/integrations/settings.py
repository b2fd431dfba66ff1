"""The config file's integration sections: `[hooks.*]`, `[smtp]`, `[relay]`, `[inbound]` and
`[[rules]]`. Parsed with the same strict `config.build` as every other section, so a typo is
an error naming its key; templates and patterns are checked here, before `run`."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from appliance.config import build
from appliance.errors import ConfigError
from appliance.integrations import template

HOOK_KINDS = ("alertmanager", "grafana", "json")
PRIORITIES = ("alert", "high", "normal", "low", "bulk")

ALERTMANAGER_TEMPLATE = (
    "[{{status}}{{#many}}:{{count}}{{/many}}] {{alertname}}"
    "{{#severity}} ({{severity}}){{/severity}}"
    "{{#summary}}: {{summary}}{{/summary}}"
    "{{^summary}}{{#description}}: {{description}}{{/description}}{{/summary}}"
    "{{#instances}} on {{instances}}{{/instances}}")
GRAFANA_TEMPLATE = ALERTMANAGER_TEMPLATE


@dataclass(frozen=True)
class HookConfig:
    name: str
    kind: str
    to: tuple[str, ...] = ()             # numbers or address-book groups
    token: str = ""                      # ?token= instead of Basic auth
    user: str = "admin"                  # the account SMS from a token are filed under
    template: str = ""                   # SMS text; the kind's default when empty
    to_template: str = ""                # json hooks: recipients from the posted JSON
    rate_limit_per_minute: int = 10      # SMS-producing notifications per minute
    dedupe_seconds: int = 300            # the same group and status again within: dropped
    max_chars: int = 306                 # two GSM-7 parts; longer texts cut (gsm.segment.fit)
    priority: str = "alert"
    ip_allow: tuple[str, ...] = ()
    receivers: dict = field(default_factory=dict)   # Alertmanager receiver -> recipients


@dataclass(frozen=True)
class SmtpConfig:
    listen: str = ""                     # HOST:PORT; the listener is off when empty
    domain: str = ""
    user: str = "admin"                  # account for mail from allowed senders
    allow_senders: tuple[str, ...] = ()  # envelope senders, `*@nas.lan` globs
    allow_ips: tuple[str, ...] = ()      # client addresses or networks
    tls_cert: str = ""                   # STARTTLS; AUTH is offered only after it
    tls_key: str = ""
    require_tls: bool = False
    text: str = "subject+body"           # or "subject", "body"
    max_bytes: int = 65536
    max_chars: int = 459                 # three GSM-7 parts
    priority: str = "alert"
    aliases: dict = field(default_factory=dict)     # local part -> group or number


@dataclass(frozen=True)
class RelayConfig:
    host: str = ""
    port: int = 25
    starttls: bool = False
    ssl: bool = False
    username: str = ""
    password: str = ""
    mail_from: str = "sms-appliance@localhost"
    timeout: float = 10.0


@dataclass(frozen=True)
class InboundConfig:
    stop_words: tuple[str, ...] = ("STOP", "UNSUBSCRIBE")
    start_words: tuple[str, ...] = ("START", "UNSTOP")
    confirm: bool = False                # answer STOP/START with a confirmation SMS
    user: str = "admin"                  # account forwarded SMS and autoreplies are filed under


@dataclass(frozen=True)
class RuleConfig:
    name: str = ""
    sender: str = ""                     # glob on the sender: "+3620*"
    keyword: str = ""                    # the first word, any case
    regex: str = ""                      # searched in the text
    recipient: str = ""                  # glob on the receiving number
    forward_email: tuple[str, ...] = ()
    forward_url: str = ""
    forward_to: tuple[str, ...] = ()     # numbers or address-book groups
    autoreply: str = ""                  # template: {{sender}} {{text}} {{keyword}}
    forward_template: str = "SMS from {{sender}}: {{text}}"
    last: bool = False                   # stop at this rule when it matches


@dataclass(frozen=True)
class Integrations:
    hooks: tuple[HookConfig, ...] = ()
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    relay: RelayConfig = field(default_factory=RelayConfig)
    inbound: InboundConfig = field(default_factory=InboundConfig)
    rules: tuple[RuleConfig, ...] = ()

    def hook(self, kind: str, name: str = "") -> HookConfig | None:
        for hook in self.hooks:
            if hook.kind == kind and hook.name == (name or kind):
                return hook
        return None


SECTIONS = ("hooks", "smtp", "relay", "inbound", "rules")


def parse(data: dict) -> Integrations:
    """The integration sections of a parsed config document (other keys are ignored)."""
    values: dict = {}
    if "hooks" in data:
        values["hooks"] = _hooks(data["hooks"])
    if "smtp" in data:
        values["smtp"] = _smtp(data["smtp"])
    if "relay" in data:
        values["relay"] = build(RelayConfig, data["relay"], "relay")
    if "inbound" in data:
        values["inbound"] = build(InboundConfig, data["inbound"], "inbound")
    if "rules" in data:
        values["rules"] = _rules(data["rules"])
    result = Integrations(**values)
    if result.rules and any(r.forward_email for r in result.rules) and not result.relay.host:
        raise ConfigError("rules: forward_email needs a [relay] host to send mail through")
    return result


def problems(data: dict) -> list[str]:
    """Every problem of the integration sections, as `parse` words them: one per section,
    per named hook and per rule (`parse` stops at the first), then those across sections."""
    found: list[str] = []

    def attempt(check, *args) -> None:
        try:
            check(*args)
        except ConfigError as exc:
            found.append(str(exc))

    hooks, rules = data.get("hooks"), data.get("rules")
    if isinstance(hooks, dict) and isinstance(hooks.get("json"), dict):
        for name, table in hooks["json"].items():
            attempt(_hook, "json", name, table, f"hooks.json.{name}")
        attempt(_hooks, {kind: table for kind, table in hooks.items() if kind != "json"})
    elif "hooks" in data:
        attempt(_hooks, hooks)
    if isinstance(rules, list):
        for i, table in enumerate(rules):
            attempt(_rule, table, f"rules[{i}]")
    elif "rules" in data:
        attempt(_rules, rules)
    for section in ("smtp", "relay", "inbound"):
        if section in data:
            attempt(parse, {section: data[section]})
    if not found:
        attempt(parse, data)
    return found


def _hooks(body) -> tuple[HookConfig, ...]:
    if not isinstance(body, dict):
        raise ConfigError("hooks: expected a table")
    hooks = []
    for kind, table in body.items():
        if kind not in HOOK_KINDS:
            raise ConfigError(f"hooks.{kind}: unknown hook kind (expected "
                              f"{', '.join(HOOK_KINDS)})")
        if kind == "json":
            if not isinstance(table, dict):
                raise ConfigError("hooks.json: expected a table of named hooks")
            hooks += [_hook(kind, name, t, f"hooks.json.{name}") for name, t in table.items()]
        else:
            hooks.append(_hook(kind, kind, table, f"hooks.{kind}"))
    return tuple(hooks)


def _hook(kind: str, name: str, table, path: str) -> HookConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: expected a table")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", name):
        raise ConfigError(f"{path}: a hook name is 1-40 letters, digits, '_' or '-'")
    table = dict(table)
    receivers = _recipient_map(table.pop("receivers", {}), f"{path}.receivers")
    hook = build(HookConfig, table, path, name=name, kind=kind, receivers=receivers)
    if kind == "json" and not hook.template:
        raise ConfigError(f"{path}.template: a JSON hook needs a template for the SMS text")
    if kind == "json" and not (hook.to or hook.to_template):
        raise ConfigError(f"{path}: a JSON hook needs `to` or `to_template`")
    _check_template(hook.template, f"{path}.template")
    _check_template(hook.to_template, f"{path}.to_template")
    _check_priority(hook.priority, f"{path}.priority")
    _check_networks(hook.ip_allow, f"{path}.ip_allow")
    if hook.rate_limit_per_minute < 0 or hook.dedupe_seconds < 0:
        raise ConfigError(f"{path}: rate_limit_per_minute and dedupe_seconds must not be "
                          "negative")
    if not 20 <= hook.max_chars <= 1530:
        raise ConfigError(f"{path}.max_chars: expected 20..1530")
    return hook


def _smtp(table) -> SmtpConfig:
    if not isinstance(table, dict):
        raise ConfigError("smtp: expected a table")
    table = dict(table)
    aliases = table.pop("aliases", {})
    if not isinstance(aliases, dict) or not all(isinstance(v, str) for v in aliases.values()):
        raise ConfigError("smtp.aliases: expected a table of local part = group or number")
    smtp = build(SmtpConfig, table, "smtp", aliases={k.lower(): v for k, v in aliases.items()})
    if smtp.listen:
        host, _, port = smtp.listen.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError(f"smtp.listen: expected HOST:PORT, got {smtp.listen!r}")
        if not smtp.domain:
            raise ConfigError("smtp.domain: required with smtp.listen (mail goes to "
                              "NUMBER@domain)")
    if smtp.text not in ("subject+body", "subject", "body"):
        raise ConfigError("smtp.text: expected subject+body, subject or body")
    if bool(smtp.tls_cert) != bool(smtp.tls_key):
        have, missing = ("tls_cert", "tls_key") if smtp.tls_cert else ("tls_key", "tls_cert")
        raise ConfigError(f"smtp.{have}: needs smtp.{missing} too (set both or neither)")
    if smtp.require_tls and not smtp.tls_cert:
        raise ConfigError("smtp.require_tls: needs tls_cert and tls_key")
    _check_priority(smtp.priority, "smtp.priority")
    _check_networks(smtp.allow_ips, "smtp.allow_ips")
    if not 1024 <= smtp.max_bytes <= 10 * 1024 * 1024:
        raise ConfigError("smtp.max_bytes: expected 1024..10485760")
    return smtp


def _rules(items) -> tuple[RuleConfig, ...]:
    if not isinstance(items, list):
        raise ConfigError("rules: expected an array of tables ([[rules]])")
    return tuple(_rule(table, f"rules[{i}]") for i, table in enumerate(items))


def _rule(table, path: str) -> RuleConfig:
    rule = build(RuleConfig, table, path)
    if not (rule.forward_email or rule.forward_url or rule.forward_to or rule.autoreply):
        raise ConfigError(f"{path}: a rule needs an action (forward_email, forward_url, "
                          "forward_to or autoreply)")
    if rule.regex:
        try:
            re.compile(rule.regex)
        except re.error as exc:
            raise ConfigError(f"{path}.regex: {exc}") from None
    if rule.forward_url and not re.match(r"https?://[^/\s]+", rule.forward_url):
        raise ConfigError(f"{path}.forward_url: expected an http:// or https:// URL")
    _check_template(rule.autoreply, f"{path}.autoreply")
    _check_template(rule.forward_template, f"{path}.forward_template")
    return rule


def _recipient_map(body, path: str) -> dict:
    if not isinstance(body, dict):
        raise ConfigError(f"{path}: expected a table of receiver = [recipients]")
    result = {}
    for key, value in body.items():
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{path}.{key}: expected a list of numbers or groups")
        result[key] = tuple(value)
    return result


def _check_template(text: str, path: str) -> None:
    try:
        template.check(text)
    except template.TemplateError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _check_priority(value: str, path: str) -> None:
    if value.lower() not in PRIORITIES:
        raise ConfigError(f"{path}: expected one of {', '.join(PRIORITIES)}")


def _check_networks(values, path: str) -> None:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ConfigError(f"{path}: {value!r} is not an address or network") from None


def of(config) -> Integrations:
    """The integrations of a Config (a Config built in code has none)."""
    return getattr(config, "integrations", None) or Integrations()
