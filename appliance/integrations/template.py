"""A small, safe template language for SMS texts and recipients: a subset of mustache.

    {{name}}  {{labels.severity}}       a value (dotted paths into dicts and lists)
    {{#alerts}}...{{/alerts}}           a section: repeated for each item of a list, shown
                                        once for a true value, skipped for a false/empty one
    {{^resolved}}...{{/resolved}}       an inverted section: shown when the value is empty
    {{.}}                               the current item inside a section

No code runs: lookups only. `check` finds unbalanced sections when the config is loaded.
Values are rendered as plain text (SMS has no markup), whitespace runs are folded.
"""

from __future__ import annotations

import re

_TAG = re.compile(r"\{\{\s*([#^/]?)\s*([A-Za-z0-9_.\-]+|\.)\s*\}\}")
MAX_OUTPUT = 4096


class TemplateError(ValueError):
    pass


def check(template: str) -> None:
    """Raise TemplateError when sections do not nest."""
    _parse(template)


def render(template: str, context: dict) -> str:
    out: list[str] = []
    _render(_parse(template), [context], out)
    text = "".join(out)
    return re.sub(r"[ \t]+", " ", text).strip()[:MAX_OUTPUT]


def lookup(path: str, stack: list) -> object:
    if path == ".":
        return stack[-1]
    head, *rest = path.split(".")
    for scope in reversed(stack):
        if isinstance(scope, dict) and head in scope:
            value = scope[head]
            break
    else:
        return ""
    for key in rest:
        if isinstance(value, dict):
            value = value.get(key, "")
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return ""
    return value


def _parse(template: str) -> list:
    """A tree: text strings, ("var", path) and ("section", path, inverted, children)."""
    root: list = []
    stack: list[tuple[str, list]] = [("", root)]
    pos = 0
    for match in _TAG.finditer(template):
        stack[-1][1].append(template[pos:match.start()])
        pos = match.end()
        sigil, name = match.group(1), match.group(2)
        if sigil in ("#", "^"):
            children: list = []
            stack[-1][1].append(("section", name, sigil == "^", children))
            stack.append((name, children))
        elif sigil == "/":
            if len(stack) == 1 or stack[-1][0] != name:
                raise TemplateError(f"{{{{/{name}}}}} closes a section that is not open")
            stack.pop()
        else:
            stack[-1][1].append(("var", name))
    stack[-1][1].append(template[pos:])
    if len(stack) > 1:
        raise TemplateError(f"section {{{{#{stack[-1][0]}}}}} is never closed")
    return root


def _render(nodes: list, stack: list, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif node[0] == "var":
            out.append(_text(lookup(node[1], stack)))
        else:
            _, name, inverted, children = node
            value = lookup(name, stack)
            if inverted:
                if not value:
                    _render(children, stack, out)
            elif isinstance(value, list):
                for item in value:
                    _render(children, stack + [item], out)
            elif value:
                _render(children, stack + [value] if isinstance(value, dict) else stack, out)


def _text(value) -> str:
    if value is None or value is False:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (list, dict)):
        return ""
    return str(value)
