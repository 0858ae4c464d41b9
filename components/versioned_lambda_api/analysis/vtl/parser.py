"""Parse a mapping template into a syntax tree: Velocity 1.7's syntax as mapping templates use it.

* References ``$a``, ``${a}``, quiet ``$!a``, property chains ``$a.b.c``, method calls
  ``$a.b('x', $c)`` and index notation ``$a[0]`` / ``$a['key']``. Text that is not a reference
  (a lone ``$``, ``$1``) and ``#`` that does not start a directive stay literal.
* String literals: ``"..."`` is interpolated (references and directives inside are rendered),
  ``'...'`` is literal, a doubled quote inside stands for one quote, and backslashes are NOT
  escapes: ``"\\\\'"`` is the three characters ``\\\\'``. That is why AWS's idiom
  ``$util.escapeJavaScript($x).replaceAll("\\\\'", "'")`` works.
* Integers, decimals, ``true``/``false``, lists ``[1, "a"]``, ranges ``[1..3]`` and maps
  ``{"k": "v"}``. There is no ``null`` literal in Velocity 1.7; it is a TemplateError here.
* ``#set``, ``#if``/``#elseif``/``#else``/``#end``, ``#foreach``; brace forms ``#{if}``,
  ``#{else}``, ``#{end}``; ``##`` comments (which, as in Velocity, also remove their newline),
  ``#* *#`` comments and ``#[[ ]]#`` unparsed text. ``#macro``, ``#define``, ``#include``,
  ``#parse``, ``#evaluate``, ``#break`` and ``#stop`` are TemplateErrors.
* Operator precedence, loosest first: ``||``, ``&&``, ``== !=``, ``< <= > >=``, ``+ -``,
  ``* / %``, then ``!``.

Whitespace: a line holding only whitespace and ``#set``/``#if``/``#elseif``/``#else``/``#end``/
``#foreach`` directives (and comments) produces nothing, its newline included; directives
inside a line render in place. Velocity 1.7's own rules differ in detail (for one, it prints
the indentation before ``#if``/``#foreach``/``#end``), so whitespace can differ from API
Gateway's output; the data does not.
"""

# A parser dispatches on syntax; its long if-chains read better whole.
# ruff: noqa: PLR0911, PLR0912, PLR0915

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, TypeAlias

from versioned_lambda_api.analysis.vtl.lexer import IDENTIFIER, SPACE, WORD, Lexer, TemplateError

# --- Syntax tree ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: object
    start: int
    text: str


@dataclass(frozen=True)
class Interpolated:
    nodes: list[Node]
    start: int
    text: str


@dataclass(frozen=True)
class ListExpr:
    items: list[Expr]
    start: int
    text: str


@dataclass(frozen=True)
class RangeExpr:
    low: Expr
    high: Expr
    start: int
    text: str


@dataclass(frozen=True)
class MapExpr:
    pairs: list[tuple[Expr, Expr]]
    start: int
    text: str


@dataclass(frozen=True)
class Binary:
    op: str
    left: Expr
    right: Expr
    start: int
    text: str


@dataclass(frozen=True)
class Not:
    operand: Expr
    start: int
    text: str


@dataclass(frozen=True)
class Prop:
    name: str
    start: int


@dataclass(frozen=True)
class Call:
    name: str
    args: list[Expr]
    start: int


@dataclass(frozen=True)
class Index:
    key: Expr
    start: int


@dataclass(frozen=True)
class Ref:
    name: str
    steps: list[Prop | Call | Index]
    start: int
    text: str


Expr: TypeAlias = Literal | Interpolated | ListExpr | RangeExpr | MapExpr | Binary | Not | Ref


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Output:
    ref: Ref


@dataclass(frozen=True)
class Set:
    name: str
    properties: list[Prop]
    value: Expr


@dataclass
class If:
    branches: list[tuple[Expr, list[Node]]]
    otherwise: list[Node] | None = None


@dataclass(frozen=True)
class Foreach:
    var: str
    iterable: Expr
    body: list[Node]


Node: TypeAlias = Text | Output | Set | If | Foreach


# Tokens of the template text, before the tree is built.


@dataclass(frozen=True)
class _TText:
    text: str


@dataclass(frozen=True)
class _TRef:
    ref: Ref


@dataclass(frozen=True)
class _TComment:
    ends_line: bool


@dataclass(frozen=True)
class _TCondition:
    kind: str
    """``if`` or ``elseif``."""
    condition: Expr
    start: int


@dataclass(frozen=True)
class _TMarker:
    kind: str
    """``else`` or ``end``."""
    start: int


@dataclass(frozen=True)
class _TForeach:
    var: str
    iterable: Expr
    start: int


_TDirective: TypeAlias = Set | _TCondition | _TMarker | _TForeach
_Token: TypeAlias = _TText | _TRef | _TComment | _TDirective


# --- Parser -------------------------------------------------------------------------------------

_BLOCK_DIRECTIVES: Final = frozenset({"if", "elseif", "set", "foreach"})
_UNSUPPORTED_DIRECTIVES: Final = frozenset(
    {"macro", "define", "include", "parse", "evaluate", "break", "stop", "literal"}
)


class Parser(Lexer):
    def parse(self) -> list[Node]:
        return self.template(0, len(self.src), in_string=False)

    # Template text

    def template(self, start: int, end: int, *, in_string: bool) -> list[Node]:
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
        word = WORD.match(src, start + (2 if braced else 1), end)
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
        properties = [step for step in ref.steps if isinstance(step, Prop)]
        if len(properties) != len(ref.steps):
            raise self.error(f"bad #set: cannot assign to {ref.text}", start)
        i = self.skip_space(i, end)
        if not self.src.startswith("=", i) or self.src.startswith("==", i):
            raise self.error(usage, start)
        value, i = self.expression(i + 1, end)
        return Set(ref.name, properties, value), self.close(i, end, "set", start)

    def foreach_directive(self, start: int, i: int, end: int) -> tuple[_TDirective, int]:
        usage = "bad #foreach: expected #foreach($item in list)"
        i = self.skip_space(i, end)
        variable = self.reference(i, end, strict=True) if self.src.startswith("$", i) else None
        if variable is None or variable[0].steps:
            raise self.error(usage, start)
        i = self.skip_space(variable[1], end)
        keyword = WORD.match(self.src, i, end)
        if keyword is None or keyword.group() != "in":
            raise self.error(usage, start)
        iterable, i = self.expression(keyword.end(), end)
        directive = _TForeach(variable[0].name, iterable, start)
        return directive, self.close(i, end, "foreach", start)

    def tree(self, tokens: list[_Token]) -> list[Node]:
        root: list[Node] = []
        bodies: list[list[Node]] = [root]
        # Each open block: its opening directive and, for an #if, the node its branches go in.
        open_blocks: list[tuple[str, int, If | None]] = []
        for token in tokens:
            body = bodies[-1]
            if isinstance(token, _TText):
                if body and isinstance(body[-1], Text):
                    body[-1] = Text(body[-1].text + token.text)
                else:
                    body.append(Text(token.text))
            elif isinstance(token, _TRef):
                body.append(Output(token.ref))
            elif isinstance(token, Set):
                body.append(token)
            elif isinstance(token, _TForeach):
                loop = Foreach(token.var, token.iterable, [])
                body.append(loop)
                open_blocks.append(("foreach", token.start, None))
                bodies.append(loop.body)
            elif isinstance(token, _TCondition) and token.kind == "if":
                block = If([(token.condition, [])])
                body.append(block)
                open_blocks.append(("if", token.start, block))
                bodies.append(block.branches[0][1])
            elif isinstance(token, _TCondition | _TMarker) and token.kind != "end":
                current = open_blocks[-1][2] if open_blocks else None
                if current is None:
                    raise self.error(f"#{token.kind} without a matching #if", token.start)
                if current.otherwise is not None:
                    raise self.error(f"#{token.kind} after #else", token.start)
                branch: list[Node] = []
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

    def reference(self, start: int, end: int, *, strict: bool) -> tuple[Ref, int] | None:
        """The reference at ``start`` (a ``$``), or None if the text there is not one."""
        src = self.src
        i = start + 1
        if src.startswith("!", i):
            i += 1
        braced = src.startswith("{", i)
        if braced:
            i += 1
        name = IDENTIFIER.match(src, i, end)
        if name is None:
            return None
        steps, i = self.steps(name.end(), end, strict=strict)
        if braced:
            if not src.startswith("}", i):
                if strict:
                    raise self.error("unterminated ${...} reference", start)
                return None
            i += 1
        return Ref(name.group(), steps, start, src[start:i]), i

    def steps(self, i: int, end: int, *, strict: bool) -> tuple[list[Prop | Call | Index], int]:
        src = self.src
        steps: list[Prop | Call | Index] = []
        while i < end:
            if src.startswith(".", i):
                name = IDENTIFIER.match(src, i + 1, end)
                if name is None:
                    break
                after = name.end()
                if src.startswith("(", after):
                    args, after = self.arguments(after, end, name.group())
                    steps.append(Call(name.group(), args, i + 1))
                else:
                    steps.append(Prop(name.group(), i + 1))
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
                steps.append(Index(key, i))
                i = after + 1
            else:
                break
        return steps, i

    def arguments(self, open_at: int, end: int, method: str) -> tuple[list[Expr], int]:
        args: list[Expr] = []
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

    def expression(self, i: int, end: int) -> tuple[Expr, int]:
        return self.binary(i, end, 0)

    _LEVELS: Final = (("||",), ("&&",), ("==", "!="), ("<", "<=", ">", ">="), ("+", "-"))

    def binary(self, i: int, end: int, level: int) -> tuple[Expr, int]:
        if level == len(self._LEVELS) + 1:
            return self.unary(i, end)
        start = self.skip_space(i, end)
        operators = self._LEVELS[level] if level < len(self._LEVELS) else ("*", "/", "%")
        left, i = self.binary(start, end, level + 1)
        while (found := self.operator(i, end, operators)) is not None:
            symbol, after = found
            right, i = self.binary(after, end, level + 1)
            left = Binary(symbol, left, right, start, self.src[start:i])
        return left, i

    def unary(self, i: int, end: int) -> tuple[Expr, int]:
        start = self.skip_space(i, end)
        found = self.operator(start, end, ("!",))
        if found is not None:
            operand, i = self.unary(found[1], end)
            return Not(operand, start, self.src[start:i]), i
        return self.primary(start, end)

    def primary(self, i: int, end: int) -> tuple[Expr, int]:
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
        number = self.number(i, end)
        if number is not None:
            value, literal, after = number
            return Literal(value, i, literal), after
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
        word = WORD.match(src, i, end)
        if word is not None and word.group() in ("true", "false"):
            return Literal(word.group() == "true", i, word.group()), word.end()
        if word is not None and word.group() == "null":
            raise self.error("Velocity 1.7 has no null literal (an unset $reference is null)", i)
        raise self.error(f"expected a value, found {self.describe(i, end)}", i)

    def string(self, start: int, end: int) -> tuple[Expr, int]:
        src = self.src
        quote = src[start]
        i = self.string_end(start, end)
        text = src[start : i + 1]
        content = src[start + 1 : i]
        if quote == '"' and ("$" in content or "#" in content):
            nodes = self.template(start + 1, i, in_string=True)
            return Interpolated(nodes, start, text), i + 1
        return Literal(content.replace(quote * 2, quote), start, text), i + 1

    def list_literal(self, start: int, end: int) -> tuple[Expr, int]:
        i = self.skip_space(start + 1, end)
        items: list[Expr] = []
        if self.src.startswith("]", i):
            return ListExpr(items, start, self.src[start : i + 1]), i + 1
        first, i = self.expression(i, end)
        i = self.skip_space(i, end)
        if self.src.startswith("..", i):
            last, i = self.expression(i + 2, end)
            i = self.skip_space(i, end)
            if not self.src.startswith("]", i):
                raise self.error("expected ']' to close a range [a..b]", start)
            return RangeExpr(first, last, start, self.src[start : i + 1]), i + 1
        items.append(first)
        while self.src.startswith(",", i):
            item, i = self.expression(i + 1, end)
            items.append(item)
            i = self.skip_space(i, end)
        if not self.src.startswith("]", i):
            raise self.error(f"expected ',' or ']' in a list, found {self.describe(i, end)}", i)
        return ListExpr(items, start, self.src[start : i + 1]), i + 1

    def map_literal(self, start: int, end: int) -> tuple[Expr, int]:
        i = self.skip_space(start + 1, end)
        pairs: list[tuple[Expr, Expr]] = []
        if self.src.startswith("}", i):
            return MapExpr(pairs, start, self.src[start : i + 1]), i + 1
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
                return MapExpr(pairs, start, self.src[start : i + 1]), i + 1
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
            isinstance(token, Set | _TCondition | _TMarker | _TForeach | _TComment)
            or (isinstance(token, _TText) and not token.text.strip(SPACE))
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
