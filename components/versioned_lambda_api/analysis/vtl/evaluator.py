"""Render a syntax tree: Velocity 1.7's directives over the values in ``values``.

* **A reference that resolves to null renders as the empty string.** That is API Gateway's
  behaviour (plain Velocity would print the reference's source text).
* ``#set`` with a null value leaves the variable unchanged, as Velocity 1.7 does by default.
* ``#foreach`` sets ``$foreach.hasNext``, ``.index`` (0-based), ``.count``, ``.first``,
  ``.last``, ``.parent`` and ``$velocityCount`` (1-based). Iterating a map iterates its values;
  iterating null or a non-collection renders nothing.
"""

# An interpreter dispatches on syntax; its long if-chains read better whole.
# ruff: noqa: PLR0911, PLR0912

from __future__ import annotations

from typing import Final

from versioned_lambda_api.analysis.vtl.lexer import Source
from versioned_lambda_api.analysis.vtl.parser import (
    Call,
    Expr,
    Foreach,
    If,
    Interpolated,
    ListExpr,
    Literal,
    MapExpr,
    Node,
    Not,
    Output,
    Prop,
    RangeExpr,
    Ref,
    Set,
    Text,
)
from versioned_lambda_api.analysis.vtl.values import (
    EvalError,
    ForeachScope,
    arithmetic,
    call_method,
    compare,
    index_into,
    int_args,
    java_string,
    map_key,
    property_of,
    truthy,
    type_name,
    velocity_equals,
)

_MISSING: Final = object()


class Renderer:
    def __init__(self, source: Source, variables: dict[str, object]) -> None:
        self.source = source
        self.variables = variables

    def render(self, nodes: list[Node], out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, Text):
                out.append(node.text)
            elif isinstance(node, Output):
                value = self.reference(node.ref)
                if value is not None:
                    try:
                        out.append(java_string(value))
                    except EvalError as error:
                        raise self.source.error(str(error), node.ref.start) from None
            elif isinstance(node, Set):
                self.assign(node)
            elif isinstance(node, If):
                for condition, body in node.branches:
                    if truthy(self.evaluate(condition)):
                        self.render(body, out)
                        break
                else:
                    if node.otherwise is not None:
                        self.render(node.otherwise, out)
            else:
                self.loop(node, out)

    def loop(self, node: Foreach, out: list[str]) -> None:
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
                self.variables["foreach"] = ForeachScope(
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

    def assign(self, node: Set) -> None:
        value = self.evaluate(node.value)
        if value is None:
            return  # Velocity 1.7 leaves the left-hand side as it was.
        if not node.properties:
            self.variables[node.name] = value
            return
        container = self.variables.get(node.name)
        for step in node.properties[:-1]:
            container = None if container is None else property_of(container, step.name)
        last = node.properties[-1]
        if isinstance(container, dict):
            container[last.name] = value
        elif container is not None:
            raise self.source.error(
                f"cannot set {last.name} on a {type_name(container)}", last.start
            )

    def reference(self, ref: Ref) -> object:
        value = self.variables.get(ref.name)
        for step in ref.steps:
            if value is None:
                return None
            try:
                if isinstance(step, Prop):
                    value = property_of(value, step.name)
                elif isinstance(step, Call):
                    value = call_method(value, step.name, [self.evaluate(arg) for arg in step.args])
                else:
                    value = index_into(value, self.evaluate(step.key))
            except EvalError as error:
                raise self.source.error(str(error), step.start) from None
        return value

    def evaluate(self, expr: Expr) -> object:
        try:
            return self._evaluate(expr)
        except EvalError as error:
            raise self.source.error(str(error), expr.start) from None

    def _evaluate(self, expr: Expr) -> object:
        if isinstance(expr, Literal):
            return expr.value
        if isinstance(expr, Ref):
            return self.reference(expr)
        if isinstance(expr, Interpolated):
            out: list[str] = []
            self.render(expr.nodes, out)
            return "".join(out)
        if isinstance(expr, ListExpr):
            return [self.evaluate(item) for item in expr.items]
        if isinstance(expr, MapExpr):
            return {map_key(self.evaluate(key)): self.evaluate(value) for key, value in expr.pairs}
        if isinstance(expr, RangeExpr):
            bounds = int_args([self.evaluate(expr.low), self.evaluate(expr.high)])
            if bounds is None:
                return None
            low, high = bounds
            step = 1 if low <= high else -1
            return list(range(low, high + step, step))
        if isinstance(expr, Not):
            return not truthy(self.evaluate(expr.operand))
        op = expr.op
        if op == "||":
            return truthy(self.evaluate(expr.left)) or truthy(self.evaluate(expr.right))
        if op == "&&":
            return truthy(self.evaluate(expr.left)) and truthy(self.evaluate(expr.right))
        left, right = self.evaluate(expr.left), self.evaluate(expr.right)
        if op == "==":
            return velocity_equals(left, right)
        if op == "!=":
            return not velocity_equals(left, right)
        if op in ("<", "<=", ">", ">="):
            return compare(op, left, right)
        return arithmetic(op, left, right, expr.left.text, expr.right.text)
