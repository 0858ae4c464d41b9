"""Render API Gateway REST API mapping templates offline, as API Gateway would.

API Gateway evaluates mapping templates with Apache Velocity 1.7 plus its own ``$input``,
``$util``, ``$context`` and ``$stageVariables``. This package implements the part of that
language mapping templates use, with Velocity 1.7's semantics where they are known, in layers
that each import only the ones before them:

* ``lexer``: the template's text, its lexical pieces (names, numbers, strings, operators) and
  ``TemplateError``, which names a line and column;
* ``parser``: Velocity's syntax into a syntax tree, and which lines directives remove;
* ``values``: the Java objects templates handle, their text, equality, operators and methods;
* ``evaluator``: renders a syntax tree (references, ``#set``, ``#if``, ``#foreach``);
* ``apigateway``: ``$input`` (with JSONPath), ``$util``, ``$context`` and the entry points.

Each module's docstring says what it decides and where that follows Velocity, Java or AWS.
The tests check the behaviour against AWS's documented examples, and against airspeed-ext (the
Velocity engine LocalStack uses) as a differential oracle.
"""

from versioned_lambda_api.analysis.vtl.apigateway import TemplateInput, render, render_response
from versioned_lambda_api.analysis.vtl.lexer import TemplateError

__all__ = ["TemplateError", "TemplateInput", "render", "render_response"]
