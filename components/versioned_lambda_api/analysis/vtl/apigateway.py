"""API Gateway's side of mapping templates: what a template sees (``$input``, ``$util``,
``$context``, ``$stageVariables``) and the entry points that render one.

The behaviour chosen where AWS does not document it:

* ``$input.body`` is the raw payload, except that an empty payload reads as ``{}``: LocalStack
  verified against AWS that API Gateway substitutes ``{}`` (localstack/localstack#12413). The
  same ``{}`` is what ``$input.json``/``$input.path`` see.
* ``$input.json(p)``/``$input.path(p)`` evaluate the JSONPath ``p`` (``$``, ``.key``,
  ``['key']``, ``[n]``, ``[*]``, ``.*``) on the payload parsed as strict JSON. A payload that
  is not JSON is a TemplateError: what API Gateway does then is not documented, and a plan
  should not pass it silently. A path that matches nothing gives null, which ``$input.json``
  writes as ``null`` (as in an open LocalStack change its author checked in the AWS console,
  localstack/localstack#12774). The parsed payload is parsed once and shared, so a
  ``#set`` into ``$input.path('$')`` shows in a later ``$input.json('$')``. ``$input.json``
  writes compact JSON (``{"a":1}``), non-ASCII unescaped.
* ``$input.params()`` is ``{path, querystring, header}``; ``$input.params(x)`` looks in the
  path, then the query string, then the headers (header names case-insensitively: a choice,
  HTTP/2 clients send them lower-case) and gives ``""`` when ``x`` is absent.
* ``$util.escapeJavaScript`` is commons-lang 2.x ``StringEscapeUtils.escapeJavaScript``: it
  escapes ``' " \\ /``, writes ``\\b \\f \\n \\r \\t``, and writes other control characters and
  every UTF-16 unit above 0x7F as ``\\uXXXX`` (upper-case hex; 0x7F itself stays raw);
  ``escapeJavaScript(null)`` is null and a non-string is escaped via its string form (a
  choice). ``base64Encode``/``base64Decode`` use UTF-8 and standard, unchunked base64;
  ``urlEncode``/``urlDecode`` are Java's ``URLEncoder``/``URLDecoder`` with UTF-8 (space is
  ``+``, ``*-._`` stay, ``~`` is encoded); ``parseJson`` gives the same objects as
  ``$input.path``. Malformed base64, ``%`` escapes or JSON, and a null argument to anything but
  ``escapeJavaScript``, are TemplateErrors (Java would throw).
"""

# $util dispatches on method names; its if-chain reads better whole.
# ruff: noqa: PLR0911, PLR0912

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final, TypeAlias

from versioned_lambda_api.analysis.vtl.evaluator import Renderer
from versioned_lambda_api.analysis.vtl.lexer import Source, TemplateError
from versioned_lambda_api.analysis.vtl.parser import Parser
from versioned_lambda_api.analysis.vtl.values import (
    EvalError,
    HostObject,
    JsonArray,
    bad_call,
    java_string,
    to_json,
    type_name,
    utf16_units,
)


@dataclass(frozen=True)
class TemplateInput:
    """What a template can see of one request (or of one integration response)."""

    body: str = ""
    """The payload ``$input`` refers to: the request body, or the integration response body."""
    path: Mapping[str, str] = field(default_factory=dict)
    querystring: Mapping[str, str] = field(default_factory=dict)
    header: Mapping[str, str] = field(default_factory=dict)
    context: Mapping[str, object] = field(default_factory=dict)
    """``$context``; values may be nested mappings, e.g. ``{"identity": {"sourceIp": ...}}``."""
    stage_variables: Mapping[str, str] = field(default_factory=dict)


def render(template: str, template_input: TemplateInput) -> str:
    """Render ``template`` for ``template_input`` as API Gateway would."""
    return _render(template, template_input, {})


def render_response(template: str, template_input: TemplateInput) -> tuple[str, int | None]:
    """Render an integration response template; also the status code it sets through
    ``$context.responseOverride.status``, if any (API Gateway answers with it instead of the
    integration response's own)."""
    override: dict[str, object] = {"header": {}}
    text = _render(template, template_input, {"responseOverride": override})
    status = override.get("status")
    if status is None:
        return text, None
    try:
        return text, int(str(status))
    except ValueError:
        raise TemplateError(
            f"$context.responseOverride.status must be a status code, got {status!r}", 1, 1
        ) from None


def _render(template: str, template_input: TemplateInput, extra_context: dict[str, object]) -> str:
    source = Source(template)
    nodes = Parser(source).parse()
    context = _from_python(template_input.context)
    if isinstance(context, dict):
        context.update(extra_context)
    variables: dict[str, object] = {
        "input": _Input(template_input),
        "util": _UTIL,
        "context": context,
        "stageVariables": dict(template_input.stage_variables),
    }
    out: list[str] = []
    Renderer(source, variables).render(nodes, out)
    return "".join(out)


def _from_python(value: object) -> object:
    if isinstance(value, Mapping):
        return {key: _from_python(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_from_python(item) for item in value]
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)


# --- $input ------------------------------------------------------------------------------------


class _Input(HostObject):
    """``$input``."""

    type_name: ClassVar[str] = "$input"

    def __init__(self, template_input: TemplateInput) -> None:
        # API Gateway hands templates "{}" for an empty payload (see the module docstring).
        self.body = template_input.body or "{}"
        self.sources = (
            dict(template_input.path),
            dict(template_input.querystring),
            dict(template_input.header),
        )
        path, querystring, header = self.sources
        self.params: dict[str, object] = {
            "path": path,
            "querystring": querystring,
            "header": header,
        }
        self._parsed: object = None
        self._is_parsed = False

    def root(self) -> object:
        if not self._is_parsed:
            self._parsed = _parse_json(self.body, "the payload")
            self._is_parsed = True
        return self._parsed

    def param(self, name: str) -> str:
        for values in self.sources:
            if name in values:
                return values[name]
        folded = name.casefold()
        for key, value in self.sources[2].items():
            if key.casefold() == folded:
                return value
        return ""

    def call(self, name: str, args: Sequence[object]) -> object:
        if name == "getBody" and not args:
            return self.body
        if name == "params" and not args:
            return self.params
        if name == "params" and len(args) == 1:
            return "" if args[0] is None else self.param(java_string(args[0]))
        if name in ("json", "path") and len(args) == 1:
            path = args[0]
            if not isinstance(path, str):
                raise EvalError(f"$input.{name} needs a JSONPath string, got {type_name(path)}")
            result = _jsonpath(self.root(), path)
            return to_json(result) if name == "json" else result
        raise bad_call(self, name, args, name in ("getBody", "params", "json", "path"))

    def property(self, name: str) -> object:
        return self.body if name == "body" else None


def _from_json(value: object) -> object:
    if isinstance(value, dict):
        return {key: _from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return JsonArray(_from_json(item) for item in value)
    return value


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _parse_json(text: str, what: str) -> object:
    try:
        raw = json.loads(text, parse_constant=_reject_constant)
    except ValueError as error:
        raise EvalError(f"{what} is not valid JSON ({error})") from None
    return _from_json(raw)


# --- JSONPath -----------------------------------------------------------------------------------

_Segment: TypeAlias = tuple[str, str | int]


@functools.lru_cache(maxsize=256)
def _parse_jsonpath(path: str) -> tuple[_Segment, ...]:
    if not path.startswith("$"):
        raise EvalError(f"JSONPath {path!r} must start with $")
    segments: list[_Segment] = []
    i = 1
    while i < len(path):
        if path.startswith("..", i):
            raise EvalError(f"JSONPath {path!r}: deep scan (..) is not supported")
        if path.startswith(".*", i):
            segments.append(("*", ""))
            i += 2
        elif path[i] == ".":
            end = i + 1
            while end < len(path) and path[end] not in ".[":
                end += 1
            if end == i + 1:
                raise EvalError(f"JSONPath {path!r}: a name is missing after '.'")
            segments.append(("key", path[i + 1 : end]))
            i = end
        elif path[i] == "[":
            if path[i + 1 : i + 2] in ("'", '"'):
                quote = path[i + 1]
                close = path.find(quote, i + 2)
                if close < 0 or path[close + 1 : close + 2] != "]":
                    raise EvalError(f"JSONPath {path!r}: unterminated [{quote}name{quote}]")
                segments.append(("key", path[i + 2 : close]))
                i = close + 2
                continue
            close = path.find("]", i)
            inner = path[i + 1 : close].strip() if close > 0 else ""
            if inner == "*":
                segments.append(("*", ""))
            elif re.fullmatch(r"-?[0-9]+", inner):
                segments.append(("index", int(inner)))
            else:
                raise EvalError(f"JSONPath {path!r}: [{inner}] is not supported (filters, slices)")
            i = close + 1
        else:
            raise EvalError(f"JSONPath {path!r}: unexpected {path[i]!r}")
    return tuple(segments)


def _jsonpath(root: object, path: str) -> object:
    """The JSONPath's match (null if none), or a JSON array of matches if it has wildcards."""
    matches = [root]
    definite = True
    for kind, key in _parse_jsonpath(path):
        found: list[object] = []
        for value in matches:
            if kind == "key" and isinstance(value, dict) and key in value:
                found.append(value[key])
            elif kind == "index" and isinstance(value, list) and isinstance(key, int):
                position = key + len(value) if key < 0 else key
                if 0 <= position < len(value):
                    found.append(value[position])
            elif kind == "*" and isinstance(value, dict):
                found.extend(value.values())
            elif kind == "*" and isinstance(value, list):
                found.extend(value)
        definite = definite and kind != "*"
        matches = found
    if definite:
        return matches[0] if matches else None
    return JsonArray(matches)


# --- $util ------------------------------------------------------------------------------------


def _url_encode(text: str) -> str:
    try:
        encoded = urllib.parse.quote_plus(text, safe="*", encoding="utf-8")
    except UnicodeEncodeError as error:
        raise EvalError(f"urlEncode: {error}") from None
    return encoded.replace("~", "%7E")


_PERCENT: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _url_decode(text: str) -> str:
    bad = _PERCENT.search(text)
    if bad is not None:
        raise EvalError(f"urlDecode: illegal escape at {text[bad.start() : bad.start() + 3]!r}")
    return urllib.parse.unquote_plus(text, encoding="utf-8", errors="replace")


def _base64_decode(text: str) -> str:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise EvalError(f"base64Decode: {text!r} is not base64 ({error})") from None
    return data.decode("utf-8", errors="replace")


_JS_ESCAPES: Final = {
    0x08: "\\b",
    0x09: "\\t",
    0x0A: "\\n",
    0x0C: "\\f",
    0x0D: "\\r",
    0x22: '\\"',
    0x27: "\\'",
    0x2F: "\\/",
    0x5C: "\\\\",
}


def _escape_javascript(text: str) -> str:
    """commons-lang 2.x ``StringEscapeUtils.escapeJavaScript``, over UTF-16 code units."""
    out: list[str] = []
    for unit in utf16_units(text):
        code = ord(unit)
        escape = _JS_ESCAPES.get(code)
        if escape is not None:
            out.append(escape)
        elif code > 0x7F or code < 0x20:
            out.append(f"\\u{code:04X}")
        else:
            out.append(unit)
    return "".join(out)


class _Util(HostObject):
    """``$util``."""

    type_name: ClassVar[str] = "$util"

    def call(self, name: str, args: Sequence[object]) -> object:
        known = ("escapeJavaScript", "base64Encode", "base64Decode", "urlEncode", "urlDecode")
        if len(args) != 1 or name not in (*known, "parseJson"):
            raise bad_call(self, name, args, name in (*known, "parseJson"))
        (arg,) = args
        if arg is None:
            if name == "escapeJavaScript":
                return None
            raise EvalError(f"$util.{name}(null) fails in Java (NullPointerException)")
        text = java_string(arg)
        if name == "escapeJavaScript":
            return _escape_javascript(text)
        if name == "base64Encode":
            return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode("ascii")
        if name == "base64Decode":
            return _base64_decode(text)
        if name == "urlEncode":
            return _url_encode(text)
        if name == "urlDecode":
            return _url_decode(text)
        return _parse_json(text, "the argument of $util.parseJson")


_UTIL: Final = _Util()
