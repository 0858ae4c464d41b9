"""The values templates handle, as the Java objects Velocity 1.7 sees: their text, equality,
operators and methods.

* Null and false are false, everything else (``""``, ``0``) is true. ``==`` compares numbers by
  value, objects of one class with ``equals`` and otherwise their string forms, so
  ``1 == "1"``. ``<`` and friends compare only numbers (otherwise false). Integer ``/`` and
  ``%`` truncate like Java; math on non-numbers or division by zero gives null. ``+`` with a
  string on either side concatenates: Velocity 1.7's ASTAddNode does that.
* Rendered objects print like their Java classes: maps as ``{a=1, b=x}``, VTL lists as
  ``[1, x]``, but arrays that came from JSON as JSON text (``[{"c":5}]``), as LocalStack found
  (localstack/localstack#12379). A ``split()`` result is a Java array whose text is an object
  address, so rendering one is a TemplateError.
* Java ``String``, ``Map`` and ``List`` methods (see ``_string_method`` and friends). Indexes
  and lengths count UTF-16 code units as Java does. Regular expressions are Java's, translated
  to Python's ``re`` (what cannot be translated is a TemplateError, never a silent mismatch),
  and replacement strings follow ``Matcher.appendReplacement``: ``$n``/``${name}`` insert a
  group, ``\\x`` is a literal ``x``. An unknown method, or one given arguments Java would
  reject, is a TemplateError naming it.

Nothing here knows where in the template it runs: failures are ``EvalError``, to which the
evaluator adds the position. Objects of the embedding environment (API Gateway's ``$input`` and
``$util``) take part as ``HostObject``.
"""

# An interpreter dispatches on types; its long if-chains read better whole.
# ruff: noqa: PLR0911, PLR0912, PLR0915

from __future__ import annotations

import functools
import json
import math
import re
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Final


class EvalError(Exception):
    """A failure that does not know where it happened; the caller adds the position."""


class JsonArray(list[object]):
    """An array that came from JSON; like json-smart's JSONArray it prints as JSON."""


class JavaArray(list[object]):
    """A Java array (``String.split``); usable as a list, but it has no printable text."""


@dataclass(frozen=True)
class ForeachScope:
    """``$foreach`` inside a ``#foreach``."""

    index: int
    has_next: bool
    parent: object


class HostObject(ABC):
    """An object the embedding environment puts among the variables (API Gateway's ``$input``
    and ``$util``). Like a Java object without ``toString`` it has no text to render; ``==``
    holds only between the same object."""

    type_name: ClassVar[str]
    """How messages name it, e.g. ``$input``."""

    @abstractmethod
    def call(self, name: str, args: Sequence[object]) -> object:
        """``self.name(args)``; an unknown method or wrong arguments raise ``bad_call``."""

    def property(self, name: str) -> object:
        """``self.name``: a getter's value, null if there is none."""
        return None


def _number(value: object) -> int | float | None:
    """``value`` if it is a number (Java Integer, Long, Double), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return None


def _is_number(value: object) -> bool:
    return _number(value) is not None


def truthy(value: object) -> bool:
    return value is not None and value is not False


def type_name(value: object) -> str:
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
    if isinstance(value, JavaArray):
        return "String[]"
    if isinstance(value, list):
        return "List"
    if isinstance(value, HostObject):
        return value.type_name
    if isinstance(value, ForeachScope):
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


def java_string(value: object) -> str:
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
    if isinstance(value, JavaArray):
        raise EvalError(
            "a Java array (from split()) prints as an object address such as "
            "[Ljava.lang.String;@1b6d3586; use get(i) or #foreach on it"
        )
    if isinstance(value, JsonArray):
        return to_json(value)
    if isinstance(value, list):
        return "[" + ", ".join(java_string(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{java_string(key)}={java_string(item)}" for key, item in value.items())
        return "{" + ", ".join(pairs) + "}"
    raise EvalError(f"{type_name(value)} has no text of its own to render")


def to_json(value: object) -> str:
    """Compact JSON text of a value, as ``$input.json`` writes it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise EvalError(f"{_java_double(value)} cannot be written as JSON")
        return _java_double(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        pairs = (
            f"{json.dumps(java_string(key), ensure_ascii=False)}:{to_json(item)}"
            for key, item in value.items()
        )
        return "{" + ",".join(pairs) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(item) for item in value) + "]"
    raise EvalError(f"{type_name(value)} cannot be written as JSON")


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
    if isinstance(left, JavaArray) or isinstance(right, JavaArray):
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
    kinds: tuple[type, ...] = (bool, str, dict, JavaArray, list, ForeachScope)
    for kind in kinds:
        if isinstance(left, kind) or isinstance(right, kind):
            return isinstance(left, kind) and isinstance(right, kind)
    if isinstance(left, HostObject) or isinstance(right, HostObject):
        return type(left) is type(right)
    return False


def velocity_equals(left: object, right: object) -> bool:
    """Velocity 1.7's ``==`` (ASTEQNode)."""
    if _is_number(left) and _is_number(right):
        return left == right
    if left is not None and right is not None and _same_class(left, right):
        return _java_equals(left, right)
    if left is None or right is None:
        return left is None and right is None
    try:
        return java_string(left) == java_string(right)
    except EvalError:
        return left is right


def compare(op: str, left: object, right: object) -> bool:
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


def arithmetic(op: str, left: object, right: object, left_text: str, right_text: str) -> object:
    """Velocity 1.7's math nodes; ``*_text`` is an operand's source, printed when it is null."""
    if op == "+" and (isinstance(left, str) or isinstance(right, str)):
        left_part = left_text if left is None else java_string(left)
        right_part = right_text if right is None else java_string(right)
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


def utf16_units(text: str) -> str:
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
    """A Python pattern that matches what the Java pattern matches, or ``EvalError``."""
    out: list[str] = []
    dotall = "(?s" in pattern
    in_class = False
    first_in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if i + 1 >= len(pattern):
                raise EvalError(f"invalid regex {pattern!r}: it ends with a lone backslash")
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
                raise EvalError(
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
                    raise EvalError(f"invalid regex {pattern!r}: illegal octal escape \\0")
                out.append(f"\\x{int(octal.group(), 8):02x}")
                i += octal.end()
            elif escaped == "k" and pattern.startswith("<", i):
                close = pattern.find(">", i)
                if close < 0:
                    raise EvalError(f"invalid regex {pattern!r}: unterminated \\k<name>")
                out.append(f"(?P={pattern[i + 1 : close]})")
                i = close + 1
            else:
                out.append("\\" + escaped)
            continue
        if in_class:
            if char == "[":
                raise EvalError(
                    f"regex {pattern!r} nests a character class, which is not supported"
                )
            if pattern.startswith("&&", i):
                raise EvalError(
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
        raise EvalError(f"invalid regex {pattern!r}: unclosed character class")
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
        raise EvalError(f"invalid regex {pattern!r}: {error}") from None


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
                raise EvalError(f"replacement {replacement!r}: character to be escaped is missing")
            out.append(replacement[i])
            i += 1
        elif char == "$":
            if i >= len(replacement):
                raise EvalError(f"replacement {replacement!r}: illegal group reference")
            if replacement[i] == "{":
                close = replacement.find("}", i)
                name = replacement[i + 1 : close] if close > 0 else ""
                if not name or name not in match.re.groupindex:
                    raise EvalError(f"replacement {replacement!r}: no group named {name!r}")
                out.append(match.group(name) or "")
                i = close + 1
                continue
            if replacement[i] not in "0123456789":
                raise EvalError(f"replacement {replacement!r}: illegal group reference")
            number = int(replacement[i])
            i += 1
            while i < len(replacement) and replacement[i] in "0123456789":
                longer = number * 10 + int(replacement[i])
                if longer > groups:
                    break
                number = longer
                i += 1
            if number > groups:
                raise EvalError(f"replacement {replacement!r}: no group {number}")
            out.append(match.group(number) or "")
        else:
            out.append(char)
    return "".join(out)


def _replace(text: str, regex: str, replacement: str, count: int) -> str:
    return _java_regex(regex).sub(lambda m: _java_replacement(m, replacement), text, count=count)


def _split(text: str, regex: str, limit: int) -> JavaArray:
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
        return JavaArray([text])
    if limit <= 0 or len(parts) < limit:
        parts.append(text[index:])
    if limit == 0:
        while parts and parts[-1] == "":
            parts.pop()
    return JavaArray(parts)


# --- Methods ------------------------------------------------------------------------------------


def _arguments(args: Sequence[object]) -> str:
    return ", ".join(type_name(arg) for arg in args)


def bad_call(target: object, name: str, args: Sequence[object], known: bool) -> EvalError:
    owner = type_name(target)
    if known:
        return EvalError(f"{owner}.{name} does not take ({_arguments(args)})")
    return EvalError(f"unknown method {owner}.{name}() called with ({_arguments(args)})")


def _str_args(args: Sequence[object]) -> list[str] | None:
    """``args`` if they are all strings, else None."""
    strings = [arg for arg in args if isinstance(arg, str)]
    return strings if len(strings) == len(args) else None


def int_args(args: Sequence[object]) -> list[int] | None:
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
    ints = int_args(args)
    if count == 0:
        if name == "length":
            return len(utf16_units(text))
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
            units, needle = utf16_units(text), utf16_units(other)
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
    second_ints = int_args(args[1:]) if count == 2 else None
    if isinstance(first_arg, str) and second_ints is not None:
        other, (number,) = first_arg, second_ints
        units, needle = utf16_units(text), utf16_units(other)
        if name == "split":
            return _split(text, other, number)
        if name == "indexOf":
            start = min(max(number, 0), len(units))
            return units.find(needle, start)
        if name == "startsWith":
            return 0 <= number <= len(units) and units.startswith(needle, number)
    if ints is not None and count in (1, 2):
        units = utf16_units(text)
        if name == "substring":
            begin = ints[0]
            end = ints[1] if count == 2 else len(units)
            if not 0 <= begin <= end <= len(units):
                raise EvalError(
                    f"String.substring({', '.join(map(str, ints))}) is out of range for a "
                    f"string of length {len(units)} (StringIndexOutOfBoundsException)"
                )
            return _from_units(units[begin:end])
        if name == "charAt" and count == 1:
            if not 0 <= ints[0] < len(units):
                raise EvalError(f"String.charAt({ints[0]}) is out of range for length {len(units)}")
            return _from_units(units[ints[0]])
    raise bad_call(text, name, args, name in _STRING_METHODS)


def map_key(key: object) -> object:
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
            return java_string(mapping)
    if count == 1:
        key = map_key(args[0])
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
        key = map_key(args[0])
        previous = mapping.get(key)
        mapping[key] = args[1]
        return previous
    known = {"size", "isEmpty", "keySet", "values", "toString", "get", "containsKey"}
    known |= {"containsValue", "remove", "equals", "put"}
    raise bad_call(mapping, name, args, name in known)


def _list_method(items: list[object], name: str, args: Sequence[object]) -> object:
    count = len(args)
    if count == 0:
        if name == "size":
            return len(items)
        if name == "isEmpty":
            return not items
        if name == "toString":
            return java_string(items)
    if count == 1:
        if name == "get":
            index = args[0]
            if not isinstance(index, int) or isinstance(index, bool):
                raise bad_call(items, name, args, known=True)
            if not 0 <= index < len(items):
                raise EvalError(f"get({index}) is out of range for a list of size {len(items)}")
            return items[index]
        if name == "contains":
            return any(_java_equals(item, args[0]) for item in items)
        if name == "indexOf":
            return next((i for i, item in enumerate(items) if _java_equals(item, args[0])), -1)
        if name == "equals":
            return _java_equals(items, args[0])
        if name == "add" and not isinstance(items, JavaArray):
            items.append(args[0])
            return True
    known = {"size", "isEmpty", "toString", "get", "contains", "indexOf", "equals", "add"}
    raise bad_call(items, name, args, name in known)


def _foreach_property(scope: ForeachScope, name: str) -> tuple[bool, object]:
    values: dict[str, object] = {
        "hasNext": scope.has_next,
        "index": scope.index,
        "count": scope.index + 1,
        "first": scope.index == 0,
        "last": not scope.has_next,
        "parent": scope.parent,
    }
    return name in values, values.get(name)


def call_method(target: object, name: str, args: Sequence[object]) -> object:
    """``target.name(args)``."""
    if isinstance(target, str):
        return _string_method(target, name, args)
    if isinstance(target, dict):
        return _map_method(target, name, args)
    if isinstance(target, list):
        return _list_method(target, name, args)
    if isinstance(target, HostObject):
        return target.call(name, args)
    if isinstance(target, ForeachScope) and not args:
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
        return java_string(target)
    if name == "equals" and len(args) == 1:
        return _java_equals(target, args[0])
    raise bad_call(target, name, args, known=False)


def property_of(target: object, name: str) -> object:
    """``target.name``: a map key, a getter, or null."""
    if isinstance(target, dict):
        return target.get(name)
    if isinstance(target, HostObject):
        return target.property(name)
    if isinstance(target, ForeachScope):
        return _foreach_property(target, name)[1]
    if isinstance(target, str | list) and name == "empty":
        return len(target) == 0
    return None


def index_into(target: object, key: object) -> object:
    """``target[key]`` (Velocity 1.7 index notation)."""
    if isinstance(target, dict):
        return target.get(map_key(key))
    if isinstance(target, list):
        if not isinstance(key, int) or isinstance(key, bool):
            raise EvalError(f"a list index must be an integer, got {type_name(key)}")
        position = key + len(target) if key < 0 else key
        if not 0 <= position < len(target):
            raise EvalError(f"index {key} is out of range for a list of size {len(target)}")
        return target[position]
    raise EvalError(f"{type_name(target)} cannot be indexed")
