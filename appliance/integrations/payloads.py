"""Template contexts from what Alertmanager and Grafana post: a few ready-made values (status,
count, alertname, severity, summary, instances) beside the raw payload, so the default
template gives one readable SMS per notification however many alerts it groups."""

from __future__ import annotations

import hashlib
import json

SEVERITY_ORDER = ("critical", "error", "high", "warning", "warn", "medium", "info", "low", "none")
MAX_LISTED = 3


class PayloadError(ValueError):
    pass


def alertmanager(payload) -> dict:
    """Alertmanager webhook_config JSON, version 4 (also Grafana's unified alerting, which
    posts the same shape with `title`, `state` and `message` beside it)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise PayloadError("expected an Alertmanager notification with an `alerts` list")
    alerts = _alerts(payload["alerts"])
    common_labels = _strings(payload.get("commonLabels"), "commonLabels")
    common_annotations = _strings(payload.get("commonAnnotations"), "commonAnnotations")
    status = (_text(payload.get("status"), "status") or _overall(alerts)).upper()
    # A firing notification also lists the group's resolved alerts: like Alertmanager's own
    # default title, the count, severity and instances are the firing ones'.
    firing = [a for a in alerts if _state(a) == "firing"]
    shown = firing if status == "FIRING" and firing else alerts
    labels = [_strings(a.get("labels"), "labels") for a in shown]
    annotations = [_strings(a.get("annotations"), "annotations") for a in shown]
    # `max_alerts` cuts the list; Alertmanager says how many it left out
    count = len(shown) + _count(payload.get("truncatedAlerts"))
    context = dict(payload)
    context.update({
        "status": status,
        "count": count,
        "many": count > 1,
        "firing": len(firing),
        "resolved_count": sum(1 for a in alerts if _state(a) == "resolved"),
        "alertname": common_labels.get("alertname")
        or _listed(sorted({l.get("alertname", "") for l in labels} - {""})),
        "severity": common_labels.get("severity")
        or _worst({l.get("severity", "") for l in labels}),
        "summary": _one("summary", common_annotations, annotations),
        "description": _one("description", common_annotations, annotations),
        "instances": _listed(_unique(l.get("instance", "") for l in labels)),
        "labels": common_labels,
        "annotations": common_annotations,
        "alerts": alerts,
    })
    return context


def grafana(payload) -> dict:
    """Grafana alerting: unified alerting (Alertmanager shape) or the legacy notifier's
    `{title, ruleName, state, message, evalMatches}`."""
    if isinstance(payload, dict) and isinstance(payload.get("alerts"), list):
        # not `title` as a summary: it is Grafana's own "[FIRING:3] Disk (...)", which the
        # template's prefix already says ("[FIRING:3] Disk: [FIRING:3] Disk ...")
        return alertmanager(payload)
    if not isinstance(payload, dict) or not (payload.get("ruleName") or payload.get("title")):
        raise PayloadError("expected a Grafana alert with `alerts`, or `ruleName` and `state`")
    state = str(payload.get("state", "")).lower()
    matches = payload.get("evalMatches") if isinstance(payload.get("evalMatches"), list) else []
    context = dict(payload)
    context.update({
        "status": "RESOLVED" if state == "ok" else "FIRING" if state == "alerting"
        else state.upper() or "FIRING",
        "count": max(1, len(matches)),
        "many": len(matches) > 1,
        "alertname": str(payload.get("ruleName") or payload.get("title")),
        "severity": "",
        "summary": str(payload.get("message") or payload.get("title") or ""),
        "description": "",
        "instances": _listed(_unique(_text(m.get("metric"), "evalMatches.metric")
                                     for m in matches if isinstance(m, dict))),
        "labels": _strings(payload.get("tags"), "tags"),
        "annotations": {},
        "alerts": [],
    })
    return context


def dedupe_key(kind: str, payload: dict, context: dict) -> tuple[str, str]:
    """(group, signature) for the dedupe window: a notification is a repeat when its group
    sent the same signature last. Alertmanager and Grafana: the group key, and each alert's
    fingerprint with its own state (one of two alerts resolving is news). A JSON hook: one
    group, and a digest of the whole payload (its first 2 KiB hid a long log's `ok`)."""
    if kind == "json":
        canonical = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
        return kind, hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
    states = sorted(f"{a.get('fingerprint') or sorted(_dict(a.get('labels')).items())}"
                    f"={a.get('status')}" for a in context.get("alerts", []))
    group = payload.get("groupKey") or payload.get("ruleId") or context.get("alertname")
    return f"{kind}|{group}", f"{context.get('status')}|{','.join(states)}"


def _count(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _alerts(items: list) -> list[dict]:
    """The notification's alerts, each an object. An empty list or a list of something else
    made an SMS that said only `[RESOLVED]` (found by posting such bodies): 400 instead."""
    if not items:
        raise PayloadError("the notification has no alerts")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise PayloadError(f"alerts[{index}] must be an object, not {type(item).__name__}")
    return items


def _state(alert: dict) -> str:
    """An alert's status: it fires unless it says it is resolved (Alertmanager always says;
    a hand-made notification without a status was told to the on-call phone as RESOLVED)."""
    status = (_text(alert.get("status"), "alerts.status") or "firing").lower()
    return "resolved" if status == "resolved" else "firing"


def _overall(alerts: list[dict]) -> str:
    return "firing" if any(_state(a) == "firing" for a in alerts) else "resolved"


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _strings(value, where: str) -> dict[str, str]:
    """Labels and annotations: text by text (the format's maps of strings). A sender that
    writes a number (`severity: 3`) means its text; null means nothing; a list or an object
    is not a label (400, not a 500 from deep inside the template)."""
    return {str(key): text for key, item in _dict(value).items()
            if (text := _text(item, f"{where}.{key}"))}


def _text(value, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return str(value)
    raise PayloadError(f"{where[:80]} must be text, not {type(value).__name__}")


def _one(key: str, common: dict, each: list[dict]) -> str:
    if common.get(key):
        return str(common[key])
    values = _unique(str(a.get(key, "")) for a in each)
    return values[0] if len(values) == 1 else ""


def _unique(values) -> list[str]:
    seen: list[str] = []
    for value in values:
        if value and value not in seen:
            seen.append(value)
    return seen


def _listed(values: list[str]) -> str:
    if len(values) <= MAX_LISTED:
        return ", ".join(values)
    return ", ".join(values[:MAX_LISTED]) + f" +{len(values) - MAX_LISTED}"


def _worst(severities: set[str]) -> str:
    known = [s for s in SEVERITY_ORDER if s in {x.lower() for x in severities}]
    return known[0] if known else ""
