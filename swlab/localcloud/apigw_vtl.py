"""The subset of API Gateway mapping templates (Velocity) the local cloud renders.

Supported, anywhere in the template text:

==========================================  =============================================
expression                                  value
==========================================  =============================================
``$input.body``                             the raw request (or integration response) body
``$input.json('<path>')``                   JSON text of the value at the JSONPath
``$input.path('<path>')``                   the value at the JSONPath (strings unquoted)
``$input.params('<name>')``                 path, then query string, then header parameter
``$util.escapeJavaScript(<expr>)``          JavaScript string escaping, as AWS does it
                                            (``'`` becomes ``\\'``, which is not valid JSON)
``$util.base64Encode(<expr>)``              base64 of the UTF-8 text
``$context.<name>[.<name>]``                requestId, stage, apiId, resourcePath, httpMethod,
                                            requestTimeEpoch, identity.sourceIp,
                                            identity.apiKey, identity.userAgent, ...
``$stageVariables.<name>``                  a stage variable
==========================================  =============================================

Directives (what a response mapping needs to choose a status, as AWS documents it):
``#if(<cond>)`` / ``#elseif(<cond>)`` / ``#else`` / ``#end``, where ``<cond>`` is
``<operand> == <operand>``, ``<operand> != <operand>`` or one operand (true when
it renders non-empty and not ``false``), an operand being one of the expressions
above or a double-quoted string; and ``#set($context.responseOverride.status = <int>)``,
which sets the method response's status (an integration response template only).
A line holding only a directive leaves no blank line, as in Velocity.

JSONPath: ``$``, ``$.a.b``, ``$.a[0]``, ``$['a']``. ``$!{...}``/``${...}``
notation, other ``#set`` targets, ``#foreach`` and any other ``$reference`` raise
:class:`TemplateError` (the request then fails with 500, and the log says
which construct is unsupported) rather than rendering something wrong. A ``$``
not followed by a letter (``"$5"``) is literal text, as in Velocity.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

_PATH_TOKEN = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
_DIRECTIVE = re.compile(r"(?m)^\s*#(foreach|macro|define|parse|include|break|stop|evaluate)\b")
_FLOW = re.compile(r"#(if|elseif|set)\s*\(|#(else|end)\b|#\{(else|end)\}")
_OVERRIDE_STATUS = re.compile(r"\s*\$context\.responseOverride\.status\s*=\s*(\d{3})\s*")
_REFERENCE = re.compile(r"\$!?\{|\$([A-Za-z][\w]*)")
_CONTEXT = re.compile(r"\$context((?:\.[A-Za-z]\w*)+)")
_STAGE_VAR = re.compile(r"\$stageVariables\.([A-Za-z]\w*)")
_INPUT_CALL = re.compile(r"\$input\.(json|path|params)\(\s*'([^']*)'\s*\)")
_INPUT_BODY = re.compile(r"\$input\.body\b")
_UTIL_CALL = re.compile(r"\$util\.(escapeJavaScript|base64Encode)\(")


class TemplateError(ValueError):
    """The template uses something outside the supported subset (the message says what)."""


@dataclass
class TemplateInput:
    """What ``$input``, ``$context`` and ``$stageVariables`` see."""

    body: str = ""
    path_params: dict[str, str] = field(default_factory=dict)
    query_params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    stage_variables: dict[str, str] = field(default_factory=dict)
    response_override: dict[str, Any] = field(default_factory=dict)  # set by #set($context.responseOverride...)

    def parsed_body(self) -> Any:
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise TemplateError(f"$input.json/$input.path need a JSON body: {exc}") from None


def json_path(document: Any, path: str) -> Any:
    """The value at a simple JSONPath (``$``, ``.name``, ``[index]``, ``['name']``); None if absent."""
    path = path.strip()
    if not path.startswith("$"):
        raise TemplateError(f"JSONPath must start with '$': {path!r}")
    rest, value = path[1:], document
    while rest:
        match = _PATH_TOKEN.match(rest)
        if not match:
            raise TemplateError(f"unsupported JSONPath {path!r}")
        name, index, quoted1, quoted2 = match.groups()
        key: Any = int(index) if index is not None else (name or quoted1 or quoted2)
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return None
        rest = rest[match.end() :]
    return value


def escape_javascript(text: str) -> str:
    """``$util.escapeJavaScript`` as API Gateway does it (single quotes escaped too)."""
    out = []
    for ch in text:
        if ch in "\\\"'":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def render(template: str, data: TemplateInput) -> str:
    """Render ``template`` with the supported subset; raise TemplateError on anything else."""
    directive = _DIRECTIVE.search(template)
    if directive:
        raise TemplateError(f"Velocity directive #{directive.group(1)} is not supported")
    if _FLOW.search(template):
        return _render_flow(_tokens(template), data)
    return _render_text(template, data)


def _closing(template: str, start: int) -> int:
    """The offset just past the ``)`` that closes the ``(`` before ``start`` (quotes and nesting respected)."""
    depth, quote, i = 1, "", start
    while i < len(template):
        ch = template[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise TemplateError(f"unclosed '(' of a directive at offset {start}")


def _tokens(template: str) -> list[tuple[str, str]]:
    """Text and directives: ("text", s), ("if"|"elseif"|"set", argument), ("else"|"end", "")."""
    out, pos = [], 0
    for match in _FLOW.finditer(template):
        if match.start() < pos:
            continue
        line_start = template.rfind("\n", 0, match.start()) + 1
        alone = not template[line_start : match.start()].strip()
        kind = match.group(1) or match.group(2) or match.group(3)
        end = _closing(template, match.end()) if match.group(1) else match.end()
        argument = template[match.end() : end - 1] if match.group(1) else ""
        newline = template.find("\n", end)
        rest = template[end:] if newline < 0 else template[end:newline]
        text = template[pos : line_start if alone and not rest.strip() else match.start()]
        out.append(("text", text))
        out.append((kind, argument))
        pos = (newline + 1 if newline >= 0 else len(template)) if alone and not rest.strip() else end
    out.append(("text", template[pos:]))
    return out


def _render_flow(tokens: list[tuple[str, str]], data: TemplateInput) -> str:
    out: list[str] = []
    stack: list[list[bool]] = []  # per open #if: [this branch is on, a branch was taken]

    def active() -> bool:
        return all(frame[0] for frame in stack)

    for kind, argument in tokens:
        if kind == "if":
            on = active() and _condition(argument, data)
            stack.append([on, on])
        elif kind in ("elseif", "else"):
            if not stack:
                raise TemplateError(f"#{kind} without #if")
            frame = stack.pop()
            on = not frame[1] and active() and (kind == "else" or _condition(argument, data))
            stack.append([on, frame[1] or on])
        elif kind == "end":
            if not stack:
                raise TemplateError("#end without #if")
            stack.pop()
        elif not active():
            continue
        elif kind == "set":
            status = _OVERRIDE_STATUS.fullmatch(argument)
            if not status:
                raise TemplateError(f"#set({argument}) is not supported (only $context.responseOverride.status)")
            data.response_override["status"] = int(status.group(1))
        else:
            out.append(_render_text(argument, data))
    if stack:
        raise TemplateError("#if without #end")
    return "".join(out)


def _condition(text: str, data: TemplateInput) -> bool:
    parts = _split_comparison(text)
    if len(parts) == 1:
        value = _operand(parts[0], data)
        return value not in ("", "false")
    left, op, right = parts
    equal = _operand(left, data) == _operand(right, data)
    return equal if op == "==" else not equal


def _split_comparison(text: str) -> list[str]:
    quote, depth = "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0 and text[i : i + 2] in ("==", "!="):
            return [text[:i].strip(), text[i : i + 2], text[i + 2 :].strip()]
    return [text.strip()]


def _operand(text: str, data: TemplateInput) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return _render_text(text[1:-1], data)
    if not text.startswith("$"):
        raise TemplateError(f"unsupported #if operand {text!r}")
    value, end = _expression(text, 0, data)
    if text[end:].strip():
        raise TemplateError(f"unsupported #if operand {text!r}")
    return value


def _render_text(template: str, data: TemplateInput) -> str:
    out, pos = [], 0
    while True:
        match = _REFERENCE.search(template, pos)
        if not match:
            out.append(template[pos:])
            return "".join(out)
        out.append(template[pos : match.start()])
        value, pos = _expression(template, match.start(), data)
        out.append(value)


def _expression(template: str, start: int, data: TemplateInput) -> tuple[str, int]:
    """Evaluate the expression starting at ``start``; return its text and the end offset."""
    util = _UTIL_CALL.match(template, start)
    if util:
        inner, end = _expression(template, util.end(), data)
        close = re.compile(r"\s*\)").match(template, end)
        if not close:
            raise TemplateError(f"expected ')' after $util.{util.group(1)}(... at offset {end}")
        if util.group(1) == "escapeJavaScript":
            return escape_javascript(inner), close.end()
        return base64.b64encode(inner.encode()).decode(), close.end()
    call = _INPUT_CALL.match(template, start)
    if call:
        return _input_call(call.group(1), call.group(2), data), call.end()
    body = _INPUT_BODY.match(template, start)
    if body:
        return data.body, body.end()
    ctx = _CONTEXT.match(template, start)
    if ctx:
        return _stringify(_lookup(data.context, ctx.group(1)[1:].split("."), "$context" + ctx.group(1))), ctx.end()
    stage_var = _STAGE_VAR.match(template, start)
    if stage_var:
        return str(data.stage_variables.get(stage_var.group(1), "")), stage_var.end()
    snippet = template[start : start + 40].splitlines()[0]
    raise TemplateError(f"unsupported template expression at offset {start}: {snippet!r}")


def _input_call(kind: str, arg: str, data: TemplateInput) -> str:
    if kind == "params":
        for source in (data.path_params, data.query_params):
            if arg in source:
                return source[arg]
        lowered = {k.lower(): v for k, v in data.headers.items()}
        return lowered.get(arg.lower(), "")
    value = json_path(data.parsed_body(), arg)
    if kind == "json":
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return _stringify(value)


def _lookup(mapping: dict[str, Any], names: list[str], shown: str) -> Any:
    value: Any = mapping
    for name in names:
        if not isinstance(value, dict) or name not in value:
            raise TemplateError(f"{shown} is not supported by the local cloud")
        value = value[name]
    return value


def _stringify(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
