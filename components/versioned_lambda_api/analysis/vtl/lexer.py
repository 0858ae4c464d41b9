"""The template's text: where its lexical pieces begin and end, and errors that name a position.

Velocity's lexical rules as mapping templates use them:

* Identifiers (``IDENTIFIER``) may contain ``-`` and ``_`` as in Velocity 1.7, so ``$a-b`` is one
  reference; directive names and operator words (``WORD``) may not.
* Numbers are integers or decimals, optionally with an exponent.
* String literals: ``"..."`` and ``'...'``; a doubled quote inside stands for one quote, and
  backslashes are NOT escapes (inside ``"..."`` a backslash only keeps a following ``"`` or
  ``\\`` from ending the literal early). What a literal means is the parser's business.
* Operators ``|| && ! == != < <= > >= + - * / %`` and the words ``or and not eq ne lt le gt
  ge`` for them.

The parser (the next layer) reads the template with these, as a recursive descent over the
text: Velocity's directives hold expressions, so tokens cannot be cut before parsing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

IDENTIFIER: Final = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
WORD: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
NUMBER: Final = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
SPACE: Final = " \t\r\n\f"
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


class TemplateError(Exception):
    """The template is malformed, uses what is not supported, or fails while rendering."""

    def __init__(self, reason: str, line: int, column: int) -> None:
        super().__init__(f"{line}:{column}: {reason}")
        self.reason = reason
        self.line = line
        self.column = column


@dataclass(frozen=True)
class Source:
    text: str

    def error(self, reason: str, offset: int) -> TemplateError:
        line = self.text.count("\n", 0, offset) + 1
        column = offset - self.text.rfind("\n", 0, offset)
        return TemplateError(reason, line, column)


class Lexer:
    """Scans ``source``; every method takes a start offset and the offset the scan must stop at."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.src = source.text

    def error(self, reason: str, offset: int) -> TemplateError:
        return self.source.error(reason, offset)

    def skip_space(self, i: int, end: int) -> int:
        while i < end and self.src[i] in SPACE:
            i += 1
        return i

    def describe(self, i: int, end: int) -> str:
        return "the end of the template" if i >= end else repr(self.src[i : i + 10])

    def operator(self, i: int, end: int, choices: tuple[str, ...]) -> tuple[str, int] | None:
        """The operator among ``choices`` at ``i`` (after spaces), with the offset after it."""
        i = self.skip_space(i, end)
        word = WORD.match(self.src, i, end)
        if word is not None:
            symbol = _WORD_OPERATORS.get(word.group())
            return (symbol, word.end()) if symbol in choices else None
        for symbol in sorted(choices, key=len, reverse=True):
            if self.src.startswith(symbol, i) and i + len(symbol) <= end:
                if symbol in ("<", ">", "!") and self.src.startswith("=", i + 1):
                    continue
                return symbol, i + len(symbol)
        return None

    def number(self, i: int, end: int) -> tuple[int | float, str, int] | None:
        """The number literal at ``i``: its value, its text and the offset after it."""
        number = NUMBER.match(self.src, i, end)
        if number is None:
            return None
        literal = number.group()
        is_float = number.group(1) is not None or number.group(2) is not None
        return (float(literal) if is_float else int(literal)), literal, number.end()

    def string_end(self, start: int, end: int) -> int:
        """The offset of the quote that closes the string literal opening at ``start``."""
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
                    return i
                i += 2
            else:
                i += 1
