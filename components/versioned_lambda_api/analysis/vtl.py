"""Render API Gateway REST API mapping templates offline, as API Gateway would.

API Gateway evaluates mapping templates with Apache Velocity 1.7 plus its own ``$input``,
``$util``, ``$context`` and ``$stageVariables``. This module implements the part of that
language mapping templates use, with Velocity 1.7's semantics where they are known:

* References ``$a``, ``${a}``, quiet ``$!a``, property chains ``$a.b.c`` (map keys), method
  calls ``$a.b('x', $c)`` and index notation ``$a[0]`` / ``$a['key']``. Identifiers may contain
  ``-`` and ``_`` as in Velocity 1.7, so ``$a-b`` is one reference. Text that is not a
  reference (a lone ``$``, ``$1``) and ``#`` that does not start a directive stay literal.
* **A reference that resolves to null renders as the empty string.** That is API Gateway's
  behaviour (plain Velocity would print the reference's source text).
* String literals: ``"..."`` is interpolated (references and directives inside are rendered),
  ``'...'`` is literal, a doubled quote inside stands for one quote, and backslashes are NOT
  escapes: ``"\\\\'"`` is the three characters ``\\\\'``. That is why AWS's idiom
  ``$util.escapeJavaScript($x).replaceAll("\\\\'", "'")`` works.
* Integers, decimals, ``true``/``false``, lists ``[1, "a"]``, ranges ``[1..3]`` and maps
  ``{"k": "v"}``. There is no ``null`` literal in Velocity 1.7; it is a TemplateError here.
* ``#set`` (a null value leaves the variable unchanged, as Velocity 1.7 does by default),
  ``#if``/``#elseif``/``#else``/``#end``, ``#foreach`` with ``$foreach.hasNext``, ``.index``
  (0-based), ``.count``, ``.first``, ``.last``, ``.parent`` and ``$velocityCount`` (1-based);
  brace forms ``#{if}``, ``#{else}``, ``#{end}``; ``##`` comments (which, as in Velocity, also
  remove their newline), ``#* *#`` comments and ``#[[ ]]#`` unparsed text. Iterating a map
  iterates its values; iterating null or a non-collection renders nothing. ``#macro``,
  ``#define``, ``#include``, ``#parse``, ``#evaluate``, ``#break`` and ``#stop`` are
  TemplateErrors.
* Operators ``|| && ! == != < <= > >= + - * / %`` and ``or and not eq ne lt le gt ge``. Null
  and false are false, everything else (``""``, ``0``) is true. ``==`` compares numbers by
  value, objects of one class with ``equals`` and otherwise their string forms, so
  ``1 == "1"``. ``<`` and friends compare only numbers (otherwise false). Integer ``/`` and
  ``%`` truncate like Java; math on non-numbers or division by zero gives null. ``+`` with a
  string on either side concatenates: Velocity 1.7's ASTAddNode does that.
* Java ``String``, ``Map`` and ``List`` methods (see ``_string_method`` and friends). Indexes
  and lengths count UTF-16 code units as Java does. Regular expressions are Java's, translated
  to Python's ``re`` (what cannot be translated is a TemplateError, never a silent mismatch),
  and replacement strings follow ``Matcher.appendReplacement``: ``$n``/``${name}`` insert a
  group, ``\\x`` is a literal ``x``. An unknown method, or one given arguments Java would
  reject, is a TemplateError naming it.

Whitespace: a line holding only whitespace and ``#set``/``#if``/``#elseif``/``#else``/``#end``/
``#foreach`` directives (and comments) produces nothing, its newline included; directives
inside a line render in place. Velocity 1.7's own rules differ in detail (for one, it prints
the indentation before ``#if``/``#foreach``/``#end``), so whitespace can differ from API
Gateway's output; the data does not.

API Gateway specifics, with the behaviour chosen where AWS does not document it:

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
* Rendered objects print like their Java classes: maps as ``{a=1, b=x}``, VTL lists as
  ``[1, x]``, but arrays that came from JSON as JSON text (``[{"c":5}]``), as LocalStack found
  (localstack/localstack#12379). A ``split()`` result is a Java array whose text is an object
  address, so rendering one is a TemplateError.
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

# An interpreter dispatches on types and on syntax; its long if-chains read better whole.
# ruff: noqa: PLR0911, PLR0912, PLR0915

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
import urllib.parse
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, TypeAlias

__all__ = ["TemplateError", "TemplateInput", "render", "render_response"]


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


class TemplateError(Exception):
    """The template is malformed, uses what is not supported, or fails while rendering."""

    def __init__(self, reason: str, line: int, column: int) -> None:
        super().__init__(f"{line}:{column}: {reason}")
        self.reason = reason
        self.line = line
        self.column = column


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
    source = _Source(template)
    nodes = _Parser(source).parse()
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
    _Renderer(source, variables).render(nodes, out)
    return "".join(out)


# --- Values -------------------------------------------------------------------------------------


class _EvalError(Exception):
    """A failure that does not know where it happened; the caller adds the position."""


class _JsonArray(list[object]):
    """An array that came from JSON; like json-smart's JSONArray it prints as JSON."""


class _JavaArray(list[object]):
    """A Java array (``String.split``); usable as a list, but it has no printable text."""


class _Input:
    """``$input``."""

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


class _Util:
    """``$util``."""


_UTIL: Final = _Util()


@dataclass(frozen=True)
class _ForeachScope:
    """``$foreach`` inside a ``#foreach``."""

    index: int
    has_next: bool
    parent: object


def _from_python(value: object) -> object:
    if isinstance(value, Mapping):
        return {key: _from_python(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_from_python(item) for item in value]
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)


def _from_json(value: object) -> object:
    if isinstance(value, dict):
        return {key: _from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return _JsonArray(_from_json(item) for item in value)
    return value


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _parse_json(text: str, what: str) -> object:
    try:
        raw = json.loads(text, parse_constant=_reject_constant)
    except ValueError as error:
        raise _EvalError(f"{what} is not valid JSON ({error})") from None
    return _from_json(raw)


def _number(value: object) -> int | float | None:
    """``value`` if it is a number (Java Integer, Long, Double), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return None


def _is_number(value: object) -> bool:
    return _number(value) is not None


def _truthy(value: object) -> bool:
    return value is not None and value is not False


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Double"
    if isinstance(value, str):
        return "String"
    if isinstance(value, dict):
        return "Map"
    if isinstance(value, _JavaArray):
        return "String[]"
    if isinstance(value, list):
        return "List"
    if isinstance(value, _Input):
        return "$input"
    if isinstance(value, _Util):
        return "$util"
    if isinstance(value, _ForeachScope):
        return "$foreach"
    return type(value).__name__


def _java_double(value: float) -> str:
    """``Double.toString``: plain from 10^-3 up to 10^7, computerized scientific outside."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    parts = Decimal(repr(abs(value))).as_tuple()
    exponent = parts.exponent if isinstance(parts.exponent, int) else 0
    all_digits = "".join(str(digit) for digit in parts.digits)
    digits = all_digits.rstrip("0")
    exponent += len(all_digits) - len(digits)
    power = len(digits) + exponent - 1
    if -3 <= power < 7:
        if power >= 0:
            whole = digits[: power + 1].ljust(power + 1, "0")
            fraction = digits[power + 1 :] or "0"
        else:
            whole = "0"
            fraction = "0" * (-power - 1) + digits
        return f"{sign}{whole}.{fraction}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{power}"


def _java_string(value: object) -> str:
    """``String.valueOf(value)`` for the objects templates handle."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _java_double(value)
    if isinstance(value, _JavaArray):
        raise _EvalError(
            "a Java array (from split()) prints as an object address such as "
            "[Ljava.lang.String;@1b6d3586; use get(i) or #foreach on it"
        )
    if isinstance(value, _JsonArray):
        return _to_json(value)
    if isinstance(value, list):
        return "[" + ", ".join(_java_string(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{_java_string(key)}={_java_string(item)}" for key, item in value.items())
        return "{" + ", ".join(pairs) + "}"
    raise _EvalError(f"{_type_name(value)} has no text of its own to render")


def _to_json(value: object) -> str:
    """Compact JSON text of a value, as ``$input.json`` writes it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise _EvalError(f"{_java_double(value)} cannot be written as JSON")
        return _java_double(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        pairs = (
            f"{json.dumps(_java_string(key), ensure_ascii=False)}:{_to_json(item)}"
            for key, item in value.items()
        )
        return "{" + ",".join(pairs) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_to_json(item) for item in value) + "]"
    raise _EvalError(f"{_type_name(value)} cannot be written as JSON")


def _java_equals(left: object, right: object) -> bool:
    """``left.equals(right)`` for the objects templates handle."""
    if left is None or right is None:
        return left is right
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, int) and isinstance(right, int):
        return left == right
    if isinstance(left, float) and isinstance(right, float):
        return left == right
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    if isinstance(left, _JavaArray) or isinstance(right, _JavaArray):
        return left is right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_java_equals, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(
            _java_equals(item, right[key]) for key, item in left.items()
        )
    return left is right


def _same_class(left: object, right: object) -> bool:
    """Whether one operand's class is assignable from the other's, as ASTEQNode checks."""
    kinds: tuple[type, ...] = (bool, str, dict, _JavaArray, list, _Input, _Util, _ForeachScope)
    for kind in kinds:
        if isinstance(left, kind) or isinstance(right, kind):
            return isinstance(left, kind) and isinstance(right, kind)
    return False


def _velocity_equals(left: object, right: object) -> bool:
    """Velocity 1.7's ``==`` (ASTEQNode)."""
    if _is_number(left) and _is_number(right):
        return left == right
    if left is not None and right is not None and _same_class(left, right):
        return _java_equals(left, right)
    if left is None or right is None:
        return left is None and right is None
    try:
        return _java_string(left) == _java_string(right)
    except _EvalError:
        return left is right


def _compare(op: str, left: object, right: object) -> bool:
    """Velocity 1.7's relational operators: numbers only, anything else is false."""
    a, b = _number(left), _number(right)
    if a is None or b is None:
        return False
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b


def _arithmetic(op: str, left: object, right: object, left_text: str, right_text: str) -> object:
    """Velocity 1.7's math nodes; ``*_text`` is an operand's source, printed when it is null."""
    if op == "+" and (isinstance(left, str) or isinstance(right, str)):
        left_part = left_text if left is None else _java_string(left)
        right_part = right_text if right is None else _java_string(right)
        return left_part + right_part
    x, y = _number(left), _number(right)
    if x is None or y is None or (op in "/%" and y == 0):
        return None
    if isinstance(x, int) and isinstance(y, int):
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        if op == "*":
            return x * y
        quotient = abs(x) // abs(y)
        if op == "/":
            return quotient if (x < 0) == (y < 0) else -quotient
        remainder = abs(x) - quotient * abs(y)
        return remainder if x >= 0 else -remainder
    a, b = float(x), float(y)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    return math.fmod(a, b)


# --- Java strings and regular expressions ------------------------------------------------------


def _units(text: str) -> str:
    """``text`` with each supplementary character split into its UTF-16 surrogate pair."""
    if all(ord(char) < 0x10000 for char in text):
        return text
    out: list[str] = []
    for char in text:
        code = ord(char)
        if code < 0x10000:
            out.append(char)
        else:
            code -= 0x10000
            out.append(chr(0xD800 + (code >> 10)))
            out.append(chr(0xDC00 + (code & 0x3FF)))
    return "".join(out)


def _from_units(units: str) -> str:
    """Join surrogate pairs back into characters; a lone surrogate stays, as in Java."""
    return units.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


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
    for unit in _units(text):
        code = ord(unit)
        escape = _JS_ESCAPES.get(code)
        if escape is not None:
            out.append(escape)
        elif code > 0x7F or code < 0x20:
            out.append(f"\\u{code:04X}")
        else:
            out.append(unit)
    return "".join(out)


def _java_trim(text: str) -> str:
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


_JAVA_DOT: Final = "[^\\n\\r\\u0085\\u2028\\u2029]"
_UNSUPPORTED_ESCAPES: Final = {
    "p": "Unicode classes \\p{...}",
    "P": "Unicode classes \\P{...}",
    "h": "\\h",
    "H": "\\H",
    "v": "\\v (vertical whitespace)",
    "V": "\\V",
    "R": "\\R",
    "X": "\\X",
    "G": "\\G",
    "c": "control escapes \\cX",
}


def _translate_java_regex(pattern: str) -> str:
    """A Python pattern that matches what the Java pattern matches, or ``_EvalError``."""
    out: list[str] = []
    dotall = "(?s" in pattern
    in_class = False
    first_in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if i + 1 >= len(pattern):
                raise _EvalError(f"invalid regex {pattern!r}: it ends with a lone backslash")
            escaped = pattern[i + 1]
            i += 2
            first_in_class = False
            if escaped == "Q":
                close = pattern.find("\\E", i)
                literal = pattern[i:] if close < 0 else pattern[i:close]
                out.append("".join(c if c.isalnum() else "\\" + c for c in literal))
                i = len(pattern) if close < 0 else close + 2
            elif escaped == "E":
                continue
            elif escaped in _UNSUPPORTED_ESCAPES or (escaped == "x" and pattern.startswith("{", i)):
                name = _UNSUPPORTED_ESCAPES.get(escaped, "\\x{...}")
                raise _EvalError(
                    f"regex {pattern!r} uses {name}, which this renderer does not support"
                )
            elif escaped == "z" and not in_class:
                out.append("\\Z")
            elif escaped == "Z" and not in_class:
                out.append("(?=(?:\\r\\n|[\\n\\r\\u0085\\u2028\\u2029])?\\Z)")
            elif escaped == "e":
                out.append("\\x1b")
            elif escaped == "0":
                octal = re.match(r"[0-3][0-7]{2}|[0-7]{1,2}", pattern[i:])
                if octal is None:
                    raise _EvalError(f"invalid regex {pattern!r}: illegal octal escape \\0")
                out.append(f"\\x{int(octal.group(), 8):02x}")
                i += octal.end()
            elif escaped == "k" and pattern.startswith("<", i):
                close = pattern.find(">", i)
                if close < 0:
                    raise _EvalError(f"invalid regex {pattern!r}: unterminated \\k<name>")
                out.append(f"(?P={pattern[i + 1 : close]})")
                i = close + 1
            else:
                out.append("\\" + escaped)
            continue
        if in_class:
            if char == "[":
                raise _EvalError(
                    f"regex {pattern!r} nests a character class, which is not supported"
                )
            if pattern.startswith("&&", i):
                raise _EvalError(
                    f"regex {pattern!r} intersects character classes (&&): not supported"
                )
            if char == "]" and not first_in_class:
                in_class = False
            out.append(char)
            first_in_class = False
            i += 1
            continue
        if char == "[":
            in_class = True
            first_in_class = True
            out.append(char)
            i += 1
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            continue
        if pattern.startswith("(?<", i) and pattern[i + 3 : i + 4] not in ("=", "!"):
            out.append("(?P<")
            i += 3
            continue
        out.append(_JAVA_DOT if char == "." and not dotall else char)
        i += 1
    if in_class:
        raise _EvalError(f"invalid regex {pattern!r}: unclosed character class")
    return "".join(out)


@functools.lru_cache(maxsize=256)
def _java_regex(pattern: str) -> re.Pattern[str]:
    translated = _translate_java_regex(pattern)
    try:
        # Java's \w, \d, \s and case-insensitivity are ASCII unless asked otherwise.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return re.compile(translated, re.ASCII)
    except re.error as error:
        raise _EvalError(f"invalid regex {pattern!r}: {error}") from None


def _java_replacement(match: re.Match[str], replacement: str) -> str:
    """``Matcher.appendReplacement``'s reading of ``replacement`` for one match."""
    out: list[str] = []
    groups = match.re.groups
    i = 0
    while i < len(replacement):
        char = replacement[i]
        i += 1
        if char == "\\":
            if i >= len(replacement):
                raise _EvalError(f"replacement {replacement!r}: character to be escaped is missing")
            out.append(replacement[i])
            i += 1
        elif char == "$":
            if i >= len(replacement):
                raise _EvalError(f"replacement {replacement!r}: illegal group reference")
            if replacement[i] == "{":
                close = replacement.find("}", i)
                name = replacement[i + 1 : close] if close > 0 else ""
                if not name or name not in match.re.groupindex:
                    raise _EvalError(f"replacement {replacement!r}: no group named {name!r}")
                out.append(match.group(name) or "")
                i = close + 1
                continue
            if replacement[i] not in "0123456789":
                raise _EvalError(f"replacement {replacement!r}: illegal group reference")
            number = int(replacement[i])
            i += 1
            while i < len(replacement) and replacement[i] in "0123456789":
                longer = number * 10 + int(replacement[i])
                if longer > groups:
                    break
                number = longer
                i += 1
            if number > groups:
                raise _EvalError(f"replacement {replacement!r}: no group {number}")
            out.append(match.group(number) or "")
        else:
            out.append(char)
    return "".join(out)


def _replace(text: str, regex: str, replacement: str, count: int) -> str:
    return _java_regex(regex).sub(lambda m: _java_replacement(m, replacement), text, count=count)


def _split(text: str, regex: str, limit: int) -> _JavaArray:
    """``String.split(regex, limit)`` (Java 8+)."""
    parts: list[object] = []
    index = 0
    for match in _java_regex(regex).finditer(text):
        if limit <= 0 or len(parts) < limit - 1:
            if index == 0 and match.start() == 0 and match.end() == 0:
                continue
            parts.append(text[index : match.start()])
            index = match.end()
        elif len(parts) == limit - 1:
            parts.append(text[index:])
            index = match.end()
    if index == 0:
        return _JavaArray([text])
    if limit <= 0 or len(parts) < limit:
        parts.append(text[index:])
    if limit == 0:
        while parts and parts[-1] == "":
            parts.pop()
    return _JavaArray(parts)


# --- $util ------------------------------------------------------------------------------------


def _url_encode(text: str) -> str:
    try:
        encoded = urllib.parse.quote_plus(text, safe="*", encoding="utf-8")
    except UnicodeEncodeError as error:
        raise _EvalError(f"urlEncode: {error}") from None
    return encoded.replace("~", "%7E")


_PERCENT: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _url_decode(text: str) -> str:
    bad = _PERCENT.search(text)
    if bad is not None:
        raise _EvalError(f"urlDecode: illegal escape at {text[bad.start() : bad.start() + 3]!r}")
    return urllib.parse.unquote_plus(text, encoding="utf-8", errors="replace")


def _base64_decode(text: str) -> str:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise _EvalError(f"base64Decode: {text!r} is not base64 ({error})") from None
    return data.decode("utf-8", errors="replace")


# --- Methods ------------------------------------------------------------------------------------


def _arguments(args: Sequence[object]) -> str:
    return ", ".join(_type_name(arg) for arg in args)


def _bad_call(target: object, name: str, args: Sequence[object], known: bool) -> _EvalError:
    owner = _type_name(target)
    if known:
        return _EvalError(f"{owner}.{name} does not take ({_arguments(args)})")
    return _EvalError(f"unknown method {owner}.{name}() called with ({_arguments(args)})")


def _str_args(args: Sequence[object]) -> list[str] | None:
    """``args`` if they are all strings, else None."""
    strings = [arg for arg in args if isinstance(arg, str)]
    return strings if len(strings) == len(args) else None


def _int_args(args: Sequence[object]) -> list[int] | None:
    """``args`` if they are all integers, else None."""
    ints = [arg for arg in args if isinstance(arg, int) and not isinstance(arg, bool)]
    return ints if len(ints) == len(args) else None


_STRING_METHODS: Final = frozenset(
    {
        "charAt",
        "concat",
        "contains",
        "endsWith",
        "equals",
        "equalsIgnoreCase",
        "indexOf",
        "isEmpty",
        "lastIndexOf",
        "length",
        "matches",
        "replace",
        "replaceAll",
        "replaceFirst",
        "split",
        "startsWith",
        "substring",
        "toLowerCase",
        "toString",
        "toUpperCase",
        "trim",
    }
)


def _string_method(text: str, name: str, args: Sequence[object]) -> object:
    count = len(args)
    strings = _str_args(args)
    ints = _int_args(args)
    if count == 0:
        if name == "length":
            return len(_units(text))
        if name == "isEmpty":
            return text == ""
        if name == "trim":
            return _java_trim(text)
        if name == "toLowerCase":
            return text.lower()
        if name == "toUpperCase":
            return text.upper()
        if name == "toString":
            return text
    if name == "equals" and count == 1:
        return isinstance(args[0], str) and args[0] == text
    if strings is not None and count == 1:
        (other,) = strings
        if name == "equalsIgnoreCase":
            return text.casefold() == other.casefold()
        if name == "contains":
            return other in text
        if name == "startsWith":
            return text.startswith(other)
        if name == "endsWith":
            return text.endswith(other)
        if name == "concat":
            return text + other
        if name == "matches":
            return _java_regex(other).fullmatch(text) is not None
        if name == "split":
            return _split(text, other, 0)
        if name in ("indexOf", "lastIndexOf"):
            units, needle = _units(text), _units(other)
            return units.find(needle) if name == "indexOf" else units.rfind(needle)
    if strings is not None and count == 2:
        first, second = strings
        if name == "replace":
            return text.replace(first, second)
        if name == "replaceAll":
            return _replace(text, first, second, 0)
        if name == "replaceFirst":
            return _replace(text, first, second, 1)
    first_arg = args[0] if count == 2 else None
    second_ints = _int_args(args[1:]) if count == 2 else None
    if isinstance(first_arg, str) and second_ints is not None:
        other, (number,) = first_arg, second_ints
        units, needle = _units(text), _units(other)
        if name == "split":
            return _split(text, other, number)
        if name == "indexOf":
            start = min(max(number, 0), len(units))
            return units.find(needle, start)
        if name == "startsWith":
            return 0 <= number <= len(units) and units.startswith(needle, number)
    if ints is not None and count in (1, 2):
        units = _units(text)
        if name == "substring":
            begin = ints[0]
            end = ints[1] if count == 2 else len(units)
            if not 0 <= begin <= end <= len(units):
                raise _EvalError(
                    f"String.substring({', '.join(map(str, ints))}) is out of range for a "
                    f"string of length {len(units)} (StringIndexOutOfBoundsException)"
                )
            return _from_units(units[begin:end])
        if name == "charAt" and count == 1:
            if not 0 <= ints[0] < len(units):
                raise _EvalError(
                    f"String.charAt({ints[0]}) is out of range for length {len(units)}"
                )
            return _from_units(units[ints[0]])
    raise _bad_call(text, name, args, name in _STRING_METHODS)


def _map_key(key: object) -> object:
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _map_method(mapping: dict[object, object], name: str, args: Sequence[object]) -> object:
    count = len(args)
    if count == 0:
        if name == "size":
            return len(mapping)
        if name == "isEmpty":
            return not mapping
        if name == "keySet":
            return list(mapping.keys())
        if name == "values":
            return list(mapping.values())
        if name == "toString":
            return _java_string(mapping)
    if count == 1:
        key = _map_key(args[0])
        if name == "get":
            return mapping.get(key)
        if name == "containsKey":
            return key in mapping
        if name == "containsValue":
            return any(_java_equals(value, args[0]) for value in mapping.values())
        if name == "remove":
            return mapping.pop(key, None)
        if name == "equals":
            return _java_equals(mapping, args[0])
    if name == "put" and count == 2:
        key = _map_key(args[0])
        previous = mapping.get(key)
        mapping[key] = args[1]
        return previous
    known = {"size", "isEmpty", "keySet", "values", "toString", "get", "containsKey"}
    known |= {"containsValue", "remove", "equals", "put"}
    raise _bad_call(mapping, name, args, name in known)


def _list_method(items: list[object], name: str, args: Sequence[object]) -> object:
    count = len(args)
    if count == 0:
        if name == "size":
            return len(items)
        if name == "isEmpty":
            return not items
        if name == "toString":
            return _java_string(items)
    if count == 1:
        if name == "get":
            index = args[0]
            if not isinstance(index, int) or isinstance(index, bool):
                raise _bad_call(items, name, args, known=True)
            if not 0 <= index < len(items):
                raise _EvalError(f"get({index}) is out of range for a list of size {len(items)}")
            return items[index]
        if name == "contains":
            return any(_java_equals(item, args[0]) for item in items)
        if name == "indexOf":
            return next((i for i, item in enumerate(items) if _java_equals(item, args[0])), -1)
        if name == "equals":
            return _java_equals(items, args[0])
        if name == "add" and not isinstance(items, _JavaArray):
            items.append(args[0])
            return True
    known = {"size", "isEmpty", "toString", "get", "contains", "indexOf", "equals", "add"}
    raise _bad_call(items, name, args, name in known)


def _input_method(target: _Input, name: str, args: Sequence[object]) -> object:
    if name == "getBody" and not args:
        return target.body
    if name == "params" and not args:
        return target.params
    if name == "params" and len(args) == 1:
        return "" if args[0] is None else target.param(_java_string(args[0]))
    if name in ("json", "path") and len(args) == 1:
        path = args[0]
        if not isinstance(path, str):
            raise _EvalError(f"$input.{name} needs a JSONPath string, got {_type_name(path)}")
        result = _jsonpath(target.root(), path)
        return _to_json(result) if name == "json" else result
    raise _bad_call(target, name, args, name in ("getBody", "params", "json", "path"))


def _util_method(name: str, args: Sequence[object]) -> object:
    known = ("escapeJavaScript", "base64Encode", "base64Decode", "urlEncode", "urlDecode")
    if len(args) != 1 or name not in (*known, "parseJson"):
        raise _bad_call(_UTIL, name, args, name in (*known, "parseJson"))
    (arg,) = args
    if arg is None:
        if name == "escapeJavaScript":
            return None
        raise _EvalError(f"$util.{name}(null) fails in Java (NullPointerException)")
    text = _java_string(arg)
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


def _foreach_property(scope: _ForeachScope, name: str) -> tuple[bool, object]:
    values: dict[str, object] = {
        "hasNext": scope.has_next,
        "index": scope.index,
        "count": scope.index + 1,
        "first": scope.index == 0,
        "last": not scope.has_next,
        "parent": scope.parent,
    }
    return name in values, values.get(name)


def _call(target: object, name: str, args: Sequence[object]) -> object:
    """``target.name(args)``."""
    if isinstance(target, str):
        return _string_method(target, name, args)
    if isinstance(target, dict):
        return _map_method(target, name, args)
    if isinstance(target, list):
        return _list_method(target, name, args)
    if isinstance(target, _Input):
        return _input_method(target, name, args)
    if isinstance(target, _Util):
        return _util_method(name, args)
    if isinstance(target, _ForeachScope) and not args:
        getters = {
            "hasNext": "hasNext",
            "getHasNext": "hasNext",
            "getIndex": "index",
            "getCount": "count",
            "isFirst": "first",
            "getFirst": "first",
            "isLast": "last",
            "getLast": "last",
            "getParent": "parent",
        }
        if name in getters:
            return _foreach_property(target, getters[name])[1]
    if name == "toString" and not args:
        return _java_string(target)
    if name == "equals" and len(args) == 1:
        return _java_equals(target, args[0])
    raise _bad_call(target, name, args, known=False)


def _property(target: object, name: str) -> object:
    """``target.name``: a map key, a getter, or null."""
    if isinstance(target, dict):
        return target.get(name)
    if isinstance(target, _Input):
        return target.body if name == "body" else None
    if isinstance(target, _ForeachScope):
        return _foreach_property(target, name)[1]
    if isinstance(target, str | list) and name == "empty":
        return len(target) == 0
    return None


def _index(target: object, key: object) -> object:
    """``target[key]`` (Velocity 1.7 index notation)."""
    if isinstance(target, dict):
        return target.get(_map_key(key))
    if isinstance(target, list):
        if not isinstance(key, int) or isinstance(key, bool):
            raise _EvalError(f"a list index must be an integer, got {_type_name(key)}")
        position = key + len(target) if key < 0 else key
        if not 0 <= position < len(target):
            raise _EvalError(f"index {key} is out of range for a list of size {len(target)}")
        return target[position]
    raise _EvalError(f"{_type_name(target)} cannot be indexed")


# --- JSONPath -----------------------------------------------------------------------------------

_Segment: TypeAlias = tuple[str, str | int]


@functools.lru_cache(maxsize=256)
def _parse_jsonpath(path: str) -> tuple[_Segment, ...]:
    if not path.startswith("$"):
        raise _EvalError(f"JSONPath {path!r} must start with $")
    segments: list[_Segment] = []
    i = 1
    while i < len(path):
        if path.startswith("..", i):
            raise _EvalError(f"JSONPath {path!r}: deep scan (..) is not supported")
        if path.startswith(".*", i):
            segments.append(("*", ""))
            i += 2
        elif path[i] == ".":
            end = i + 1
            while end < len(path) and path[end] not in ".[":
                end += 1
            if end == i + 1:
                raise _EvalError(f"JSONPath {path!r}: a name is missing after '.'")
            segments.append(("key", path[i + 1 : end]))
            i = end
        elif path[i] == "[":
            if path[i + 1 : i + 2] in ("'", '"'):
                quote = path[i + 1]
                close = path.find(quote, i + 2)
                if close < 0 or path[close + 1 : close + 2] != "]":
                    raise _EvalError(f"JSONPath {path!r}: unterminated [{quote}name{quote}]")
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
                raise _EvalError(f"JSONPath {path!r}: [{inner}] is not supported (filters, slices)")
            i = close + 1
        else:
            raise _EvalError(f"JSONPath {path!r}: unexpected {path[i]!r}")
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
    return _JsonArray(matches)


# --- Syntax tree ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Literal:
    value: object
    start: int
    text: str


@dataclass(frozen=True)
class _Interpolated:
    nodes: list[_Node]
    start: int
    text: str


@dataclass(frozen=True)
class _ListExpr:
    items: list[_Expr]
    start: int
    text: str


@dataclass(frozen=True)
class _RangeExpr:
    low: _Expr
    high: _Expr
    start: int
    text: str


@dataclass(frozen=True)
class _MapExpr:
    pairs: list[tuple[_Expr, _Expr]]
    start: int
    text: str


@dataclass(frozen=True)
class _Binary:
    op: str
    left: _Expr
    right: _Expr
    start: int
    text: str


@dataclass(frozen=True)
class _Not:
    operand: _Expr
    start: int
    text: str


@dataclass(frozen=True)
class _Prop:
    name: str
    start: int


@dataclass(frozen=True)
class _Call:
    name: str
    args: list[_Expr]
    start: int


@dataclass(frozen=True)
class _Index:
    key: _Expr
    start: int


@dataclass(frozen=True)
class _Ref:
    name: str
    steps: list[_Prop | _Call | _Index]
    start: int
    text: str


_Expr: TypeAlias = (
    _Literal | _Interpolated | _ListExpr | _RangeExpr | _MapExpr | _Binary | _Not | _Ref
)


@dataclass(frozen=True)
class _Text:
    text: str


@dataclass(frozen=True)
class _Output:
    ref: _Ref


@dataclass(frozen=True)
class _Set:
    name: str
    properties: list[_Prop]
    value: _Expr


@dataclass
class _If:
    branches: list[tuple[_Expr, list[_Node]]]
    otherwise: list[_Node] | None = None


@dataclass(frozen=True)
class _Foreach:
    var: str
    iterable: _Expr
    body: list[_Node]


_Node: TypeAlias = _Text | _Output | _Set | _If | _Foreach


# Tokens of the template text, before the tree is built.


@dataclass(frozen=True)
class _TText:
    text: str


@dataclass(frozen=True)
class _TRef:
    ref: _Ref


@dataclass(frozen=True)
class _TComment:
    ends_line: bool


@dataclass(frozen=True)
class _TCondition:
    kind: str
    """``if`` or ``elseif``."""
    condition: _Expr
    start: int


@dataclass(frozen=True)
class _TMarker:
    kind: str
    """``else`` or ``end``."""
    start: int


@dataclass(frozen=True)
class _TForeach:
    var: str
    iterable: _Expr
    start: int


_TDirective: TypeAlias = _Set | _TCondition | _TMarker | _TForeach
_Token: TypeAlias = _TText | _TRef | _TComment | _TDirective


@dataclass(frozen=True)
class _Source:
    text: str

    def error(self, reason: str, offset: int) -> TemplateError:
        line = self.text.count("\n", 0, offset) + 1
        column = offset - self.text.rfind("\n", 0, offset)
        return TemplateError(reason, line, column)


# --- Parser -------------------------------------------------------------------------------------

_IDENTIFIER: Final = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_WORD: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_NUMBER: Final = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_BLOCK_DIRECTIVES: Final = frozenset({"if", "elseif", "set", "foreach"})
_UNSUPPORTED_DIRECTIVES: Final = frozenset(
    {"macro", "define", "include", "parse", "evaluate", "break", "stop", "literal"}
)
_WORD_OPERATORS: Final = {
    "or": "||",
    "and": "&&",
    "eq": "==",
    "ne": "!=",
    "lt": "<",
    "le": "<=",
    "gt": ">",
    "ge": ">=",
    "not": "!",
}
_SPACE: Final = " \t\r\n\f"


class _Parser:
    def __init__(self, source: _Source) -> None:
        self.source = source
        self.src = source.text

    def error(self, reason: str, offset: int) -> TemplateError:
        return self.source.error(reason, offset)

    def parse(self) -> list[_Node]:
        return self.template(0, len(self.src), in_string=False)

    # Template text

    def template(self, start: int, end: int, *, in_string: bool) -> list[_Node]:
        return self.tree(_gobble(self.tokens(start, end, in_string=in_string)))

    def tokens(self, start: int, end: int, *, in_string: bool) -> list[_Token]:
        src = self.src
        special = re.compile(r'[$#]|""' if in_string else r"[$#]")
        tokens: list[_Token] = []
        text: list[str] = []

        def flush() -> None:
            if text:
                tokens.append(_TText("".join(text)))
                text.clear()

        i = start
        while i < end:
            found = special.search(src, i, end)
            if found is None:
                text.append(src[i:end])
                break
            text.append(src[i : found.start()])
            i = found.start()
            if src.startswith('""', i):
                text.append('"')
                i += 2
            elif src[i] == "$":
                parsed = self.reference(i, end, strict=False)
                if parsed is None:
                    text.append("$")
                    i += 1
                else:
                    flush()
                    tokens.append(_TRef(parsed[0]))
                    i = parsed[1]
            elif src.startswith("##", i):
                flush()
                newline = src.find("\n", i, end)
                tokens.append(_TComment(ends_line=newline >= 0))
                i = end if newline < 0 else newline + 1
            elif src.startswith("#*", i):
                flush()
                close = src.find("*#", i + 2, end)
                if close < 0:
                    raise self.error("unterminated block comment: #* has no *#", i)
                tokens.append(_TComment(ends_line=False))
                i = close + 2
            elif src.startswith("#[[", i):
                close = src.find("]]#", i + 3, end)
                if close < 0:
                    raise self.error("unterminated #[[ ]]# block", i)
                text.append(src[i + 3 : close])
                i = close + 3
            else:
                directive = self.directive(i, end)
                if directive is None:
                    text.append("#")
                    i += 1
                else:
                    flush()
                    tokens.append(directive[0])
                    i = directive[1]
        flush()
        return tokens

    def directive(self, start: int, end: int) -> tuple[_TDirective, int] | None:
        src = self.src
        braced = src.startswith("#{", start)
        word = _WORD.match(src, start + (2 if braced else 1), end)
        if word is None:
            return None
        name = word.group()
        i = word.end()
        if braced:
            if not src.startswith("}", i):
                return None
            i += 1
        if name in _UNSUPPORTED_DIRECTIVES:
            raise self.error(f"#{name} is not supported", start)
        if name in ("else", "end"):
            return _TMarker(name, start), i
        if name not in _BLOCK_DIRECTIVES:
            return None
        while i < end and src[i] in " \t":
            i += 1
        if i >= end or src[i] != "(":
            raise self.error(f"#{name} must be followed by '('", start)
        i += 1
        if name in ("if", "elseif"):
            condition, i = self.expression(i, end)
            return _TCondition(name, condition, start), self.close(i, end, name, start)
        if name == "set":
            return self.set_directive(start, i, end)
        return self.foreach_directive(start, i, end)

    def close(self, i: int, end: int, name: str, start: int) -> int:
        i = self.skip_space(i, end)
        if i >= end or self.src[i] != ")":
            raise self.error(f"#{name}: expected ')' at {self.describe(i, end)}", start)
        return i + 1

    def set_directive(self, start: int, i: int, end: int) -> tuple[_TDirective, int]:
        usage = "bad #set: expected #set($name = value)"
        i = self.skip_space(i, end)
        target = self.reference(i, end, strict=True) if self.src.startswith("$", i) else None
        if target is None:
            raise self.error(usage, start)
        ref, i = target
        properties = [step for step in ref.steps if isinstance(step, _Prop)]
        if len(properties) != len(ref.steps):
            raise self.error(f"bad #set: cannot assign to {ref.text}", start)
        i = self.skip_space(i, end)
        if not self.src.startswith("=", i) or self.src.startswith("==", i):
            raise self.error(usage, start)
        value, i = self.expression(i + 1, end)
        return _Set(ref.name, properties, value), self.close(i, end, "set", start)

    def foreach_directive(self, start: int, i: int, end: int) -> tuple[_TDirective, int]:
        usage = "bad #foreach: expected #foreach($item in list)"
        i = self.skip_space(i, end)
        variable = self.reference(i, end, strict=True) if self.src.startswith("$", i) else None
        if variable is None or variable[0].steps:
            raise self.error(usage, start)
        i = self.skip_space(variable[1], end)
        keyword = _WORD.match(self.src, i, end)
        if keyword is None or keyword.group() != "in":
            raise self.error(usage, start)
        iterable, i = self.expression(keyword.end(), end)
        directive = _TForeach(variable[0].name, iterable, start)
        return directive, self.close(i, end, "foreach", start)

    def tree(self, tokens: list[_Token]) -> list[_Node]:
        root: list[_Node] = []
        bodies: list[list[_Node]] = [root]
        # Each open block: its opening directive and, for an #if, the node its branches go in.
        open_blocks: list[tuple[str, int, _If | None]] = []
        for token in tokens:
            body = bodies[-1]
            if isinstance(token, _TText):
                if body and isinstance(body[-1], _Text):
                    body[-1] = _Text(body[-1].text + token.text)
                else:
                    body.append(_Text(token.text))
            elif isinstance(token, _TRef):
                body.append(_Output(token.ref))
            elif isinstance(token, _Set):
                body.append(token)
            elif isinstance(token, _TForeach):
                loop = _Foreach(token.var, token.iterable, [])
                body.append(loop)
                open_blocks.append(("foreach", token.start, None))
                bodies.append(loop.body)
            elif isinstance(token, _TCondition) and token.kind == "if":
                block = _If([(token.condition, [])])
                body.append(block)
                open_blocks.append(("if", token.start, block))
                bodies.append(block.branches[0][1])
            elif isinstance(token, _TCondition | _TMarker) and token.kind != "end":
                current = open_blocks[-1][2] if open_blocks else None
                if current is None:
                    raise self.error(f"#{token.kind} without a matching #if", token.start)
                if current.otherwise is not None:
                    raise self.error(f"#{token.kind} after #else", token.start)
                branch: list[_Node] = []
                if isinstance(token, _TCondition):
                    current.branches.append((token.condition, branch))
                else:
                    current.otherwise = branch
                bodies[-1] = branch
            elif isinstance(token, _TMarker):
                if not open_blocks:
                    raise self.error("#end without a matching #if or #foreach", token.start)
                open_blocks.pop()
                bodies.pop()
        if open_blocks:
            kind, start, _ = open_blocks[-1]
            raise self.error(f"#{kind} is not closed by #end", start)
        return root

    # References

    def reference(self, start: int, end: int, *, strict: bool) -> tuple[_Ref, int] | None:
        """The reference at ``start`` (a ``$``), or None if the text there is not one."""
        src = self.src
        i = start + 1
        if src.startswith("!", i):
            i += 1
        braced = src.startswith("{", i)
        if braced:
            i += 1
        name = _IDENTIFIER.match(src, i, end)
        if name is None:
            return None
        steps, i = self.steps(name.end(), end, strict=strict)
        if braced:
            if not src.startswith("}", i):
                if strict:
                    raise self.error("unterminated ${...} reference", start)
                return None
            i += 1
        return _Ref(name.group(), steps, start, src[start:i]), i

    def steps(self, i: int, end: int, *, strict: bool) -> tuple[list[_Prop | _Call | _Index], int]:
        src = self.src
        steps: list[_Prop | _Call | _Index] = []
        while i < end:
            if src.startswith(".", i):
                name = _IDENTIFIER.match(src, i + 1, end)
                if name is None:
                    break
                after = name.end()
                if src.startswith("(", after):
                    args, after = self.arguments(after, end, name.group())
                    steps.append(_Call(name.group(), args, i + 1))
                else:
                    steps.append(_Prop(name.group(), i + 1))
                i = after
            elif src.startswith("[", i):
                try:
                    key, after = self.expression(i + 1, end)
                    after = self.skip_space(after, end)
                    if not src.startswith("]", after):
                        raise self.error("expected ']' after an index", i)
                except TemplateError:
                    if strict:
                        raise
                    break
                steps.append(_Index(key, i))
                i = after + 1
            else:
                break
        return steps, i

    def arguments(self, open_at: int, end: int, method: str) -> tuple[list[_Expr], int]:
        args: list[_Expr] = []
        i = self.skip_space(open_at + 1, end)
        if self.src.startswith(")", i):
            return args, i + 1
        while True:
            arg, i = self.expression(i, end)
            args.append(arg)
            i = self.skip_space(i, end)
            if i >= end:
                raise self.error(f"unterminated call of {method}(: no ')'", open_at)
            if self.src[i] == ",":
                i += 1
            elif self.src[i] == ")":
                return args, i + 1
            else:
                raise self.error(
                    f"expected ',' or ')' in the arguments of {method}(), "
                    f"found {self.describe(i, end)}",
                    i,
                )

    # Expressions

    def skip_space(self, i: int, end: int) -> int:
        while i < end and self.src[i] in _SPACE:
            i += 1
        return i

    def describe(self, i: int, end: int) -> str:
        return "the end of the template" if i >= end else repr(self.src[i : i + 10])

    def operator(self, i: int, end: int, choices: tuple[str, ...]) -> tuple[str, int] | None:
        """The operator among ``choices`` at ``i`` (after spaces), with the offset after it."""
        i = self.skip_space(i, end)
        word = _WORD.match(self.src, i, end)
        if word is not None:
            symbol = _WORD_OPERATORS.get(word.group())
            return (symbol, word.end()) if symbol in choices else None
        for symbol in sorted(choices, key=len, reverse=True):
            if self.src.startswith(symbol, i) and i + len(symbol) <= end:
                if symbol in ("<", ">", "!") and self.src.startswith("=", i + 1):
                    continue
                return symbol, i + len(symbol)
        return None

    def expression(self, i: int, end: int) -> tuple[_Expr, int]:
        return self.binary(i, end, 0)

    _LEVELS: Final = (("||",), ("&&",), ("==", "!="), ("<", "<=", ">", ">="), ("+", "-"))

    def binary(self, i: int, end: int, level: int) -> tuple[_Expr, int]:
        if level == len(self._LEVELS) + 1:
            return self.unary(i, end)
        start = self.skip_space(i, end)
        operators = self._LEVELS[level] if level < len(self._LEVELS) else ("*", "/", "%")
        left, i = self.binary(start, end, level + 1)
        while (found := self.operator(i, end, operators)) is not None:
            symbol, after = found
            right, i = self.binary(after, end, level + 1)
            left = _Binary(symbol, left, right, start, self.src[start:i])
        return left, i

    def unary(self, i: int, end: int) -> tuple[_Expr, int]:
        start = self.skip_space(i, end)
        found = self.operator(start, end, ("!",))
        if found is not None:
            operand, i = self.unary(found[1], end)
            return _Not(operand, start, self.src[start:i]), i
        return self.primary(start, end)

    def primary(self, i: int, end: int) -> tuple[_Expr, int]:
        src = self.src
        i = self.skip_space(i, end)
        char = src[i] if i < end else ""
        if char == "$":
            parsed = self.reference(i, end, strict=True)
            if parsed is None:
                raise self.error("'$' is not followed by a reference name", i)
            return parsed
        if char in ("'", '"'):
            return self.string(i, end)
        number = _NUMBER.match(src, i, end)
        if number is not None:
            literal = number.group()
            is_float = number.group(1) is not None or number.group(2) is not None
            value: object = float(literal) if is_float else int(literal)
            return _Literal(value, i, literal), number.end()
        if char == "(":
            inner, after = self.expression(i + 1, end)
            after = self.skip_space(after, end)
            if not src.startswith(")", after):
                raise self.error("expected ')' to close '('", i)
            return inner, after + 1
        if char == "[":
            return self.list_literal(i, end)
        if char == "{":
            return self.map_literal(i, end)
        word = _WORD.match(src, i, end)
        if word is not None and word.group() in ("true", "false"):
            return _Literal(word.group() == "true", i, word.group()), word.end()
        if word is not None and word.group() == "null":
            raise self.error("Velocity 1.7 has no null literal (an unset $reference is null)", i)
        raise self.error(f"expected a value, found {self.describe(i, end)}", i)

    def string(self, start: int, end: int) -> tuple[_Expr, int]:
        src = self.src
        quote = src[start]
        i = start + 1
        while True:
            if i >= end:
                raise self.error("unterminated string literal", start)
            if quote == '"' and src[i] == "\\" and src[i + 1 : i + 2] in ('"', "\\"):
                i += 2
            elif src[i] == quote:
                if not src.startswith(quote, i + 1):
                    break
                i += 2
            else:
                i += 1
        text = src[start : i + 1]
        content = src[start + 1 : i]
        if quote == '"' and ("$" in content or "#" in content):
            nodes = self.template(start + 1, i, in_string=True)
            return _Interpolated(nodes, start, text), i + 1
        return _Literal(content.replace(quote * 2, quote), start, text), i + 1

    def list_literal(self, start: int, end: int) -> tuple[_Expr, int]:
        i = self.skip_space(start + 1, end)
        items: list[_Expr] = []
        if self.src.startswith("]", i):
            return _ListExpr(items, start, self.src[start : i + 1]), i + 1
        first, i = self.expression(i, end)
        i = self.skip_space(i, end)
        if self.src.startswith("..", i):
            last, i = self.expression(i + 2, end)
            i = self.skip_space(i, end)
            if not self.src.startswith("]", i):
                raise self.error("expected ']' to close a range [a..b]", start)
            return _RangeExpr(first, last, start, self.src[start : i + 1]), i + 1
        items.append(first)
        while self.src.startswith(",", i):
            item, i = self.expression(i + 1, end)
            items.append(item)
            i = self.skip_space(i, end)
        if not self.src.startswith("]", i):
            raise self.error(f"expected ',' or ']' in a list, found {self.describe(i, end)}", i)
        return _ListExpr(items, start, self.src[start : i + 1]), i + 1

    def map_literal(self, start: int, end: int) -> tuple[_Expr, int]:
        i = self.skip_space(start + 1, end)
        pairs: list[tuple[_Expr, _Expr]] = []
        if self.src.startswith("}", i):
            return _MapExpr(pairs, start, self.src[start : i + 1]), i + 1
        while True:
            key, i = self.expression(i, end)
            i = self.skip_space(i, end)
            if not self.src.startswith(":", i):
                raise self.error(f"expected ':' in a map, found {self.describe(i, end)}", i)
            value, i = self.expression(i + 1, end)
            pairs.append((key, value))
            i = self.skip_space(i, end)
            if self.src.startswith(",", i):
                i += 1
            elif self.src.startswith("}", i):
                return _MapExpr(pairs, start, self.src[start : i + 1]), i + 1
            else:
                raise self.error(f"expected ',' or '}}' in a map, found {self.describe(i, end)}", i)


def _gobble(tokens: list[_Token]) -> list[_Token]:
    """Drop the text of lines that hold only directives, comments and whitespace."""
    pieces: list[_Token] = []
    for token in tokens:
        if isinstance(token, _TText) and "\n" in token.text:
            pieces.extend(_TText(line) for line in token.text.splitlines(keepends=True))
        else:
            pieces.append(token)
    result: list[_Token] = []
    line: list[_Token] = []

    def finish() -> None:
        directive_only = any(isinstance(token, _TDirective) for token in line) and all(
            isinstance(token, _Set | _TCondition | _TMarker | _TForeach | _TComment)
            or (isinstance(token, _TText) and not token.text.strip(_SPACE))
            for token in line
        )
        result.extend(token for token in line if not (directive_only and isinstance(token, _TText)))
        line.clear()

    for token in pieces:
        line.append(token)
        if (isinstance(token, _TText) and token.text.endswith("\n")) or (
            isinstance(token, _TComment) and token.ends_line
        ):
            finish()
    finish()
    return result


# --- Renderer -----------------------------------------------------------------------------------

_MISSING: Final = object()


class _Renderer:
    def __init__(self, source: _Source, variables: dict[str, object]) -> None:
        self.source = source
        self.variables = variables

    def render(self, nodes: list[_Node], out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                out.append(node.text)
            elif isinstance(node, _Output):
                value = self.reference(node.ref)
                if value is not None:
                    try:
                        out.append(_java_string(value))
                    except _EvalError as error:
                        raise self.source.error(str(error), node.ref.start) from None
            elif isinstance(node, _Set):
                self.assign(node)
            elif isinstance(node, _If):
                for condition, body in node.branches:
                    if _truthy(self.evaluate(condition)):
                        self.render(body, out)
                        break
                else:
                    if node.otherwise is not None:
                        self.render(node.otherwise, out)
            else:
                self.loop(node, out)

    def loop(self, node: _Foreach, out: list[str]) -> None:
        collection = self.evaluate(node.iterable)
        if isinstance(collection, dict):
            items = list(collection.values())
        elif isinstance(collection, list):
            items = list(collection)
        else:
            items = []
        names = (node.var, "foreach", "velocityCount", "velocityHasNext")
        saved = {name: self.variables.get(name, _MISSING) for name in names}
        parent = saved["foreach"]
        try:
            for index, item in enumerate(items):
                has_next = index + 1 < len(items)
                self.variables[node.var] = item
                self.variables["foreach"] = _ForeachScope(
                    index, has_next, None if parent is _MISSING else parent
                )
                self.variables["velocityCount"] = index + 1
                self.variables["velocityHasNext"] = has_next
                self.render(node.body, out)
        finally:
            for name, value in saved.items():
                if value is _MISSING:
                    self.variables.pop(name, None)
                else:
                    self.variables[name] = value

    def assign(self, node: _Set) -> None:
        value = self.evaluate(node.value)
        if value is None:
            return  # Velocity 1.7 leaves the left-hand side as it was.
        if not node.properties:
            self.variables[node.name] = value
            return
        container = self.variables.get(node.name)
        for step in node.properties[:-1]:
            container = None if container is None else _property(container, step.name)
        last = node.properties[-1]
        if isinstance(container, dict):
            container[last.name] = value
        elif container is not None:
            raise self.source.error(
                f"cannot set {last.name} on a {_type_name(container)}", last.start
            )

    def reference(self, ref: _Ref) -> object:
        value = self.variables.get(ref.name)
        for step in ref.steps:
            if value is None:
                return None
            try:
                if isinstance(step, _Prop):
                    value = _property(value, step.name)
                elif isinstance(step, _Call):
                    value = _call(value, step.name, [self.evaluate(arg) for arg in step.args])
                else:
                    value = _index(value, self.evaluate(step.key))
            except _EvalError as error:
                raise self.source.error(str(error), step.start) from None
        return value

    def evaluate(self, expr: _Expr) -> object:
        try:
            return self._evaluate(expr)
        except _EvalError as error:
            raise self.source.error(str(error), expr.start) from None

    def _evaluate(self, expr: _Expr) -> object:
        if isinstance(expr, _Literal):
            return expr.value
        if isinstance(expr, _Ref):
            return self.reference(expr)
        if isinstance(expr, _Interpolated):
            out: list[str] = []
            self.render(expr.nodes, out)
            return "".join(out)
        if isinstance(expr, _ListExpr):
            return [self.evaluate(item) for item in expr.items]
        if isinstance(expr, _MapExpr):
            return {_map_key(self.evaluate(key)): self.evaluate(value) for key, value in expr.pairs}
        if isinstance(expr, _RangeExpr):
            bounds = _int_args([self.evaluate(expr.low), self.evaluate(expr.high)])
            if bounds is None:
                return None
            low, high = bounds
            step = 1 if low <= high else -1
            return list(range(low, high + step, step))
        if isinstance(expr, _Not):
            return not _truthy(self.evaluate(expr.operand))
        op = expr.op
        if op == "||":
            return _truthy(self.evaluate(expr.left)) or _truthy(self.evaluate(expr.right))
        if op == "&&":
            return _truthy(self.evaluate(expr.left)) and _truthy(self.evaluate(expr.right))
        left, right = self.evaluate(expr.left), self.evaluate(expr.right)
        if op == "==":
            return _velocity_equals(left, right)
        if op == "!=":
            return not _velocity_equals(left, right)
        if op in ("<", "<=", ">", ">="):
            return _compare(op, left, right)
        return _arithmetic(op, left, right, expr.left.text, expr.right.text)
