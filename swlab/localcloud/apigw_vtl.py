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

JSONPath: ``$``, ``$.a.b``, ``$.a[0]``, ``$['a']``. ``$!{...}``/``${...}``
notation, ``#set``/``#if``/``#foreach`` and any other ``$reference`` raise
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
_DIRECTIVE = re.compile(r"(?m)^\s*#(set|if|elseif|else|end|foreach|macro|define|parse|include)\b")
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
