"""The renderer against a differential oracle: airspeed-ext, the Velocity engine LocalStack uses.

Both engines render the same templates, and where both define the behaviour the output must be
equal. airspeed-ext is plain Velocity in Python: LocalStack adds API Gateway's ``$input`` and
``$util`` on top of it (``VelocityInput`` and ``VelocityUtilApiGateway`` in LocalStack's
``services/apigateway/next_gen/execute_api/template_mapping.py``), so the oracle here gets small
stand-ins, ``OracleInput`` and ``OracleUtil``, written to this renderer's documented semantics
(see ``vtl/apigateway.py``) rather than LocalStack's, which differ on purpose in places (its
``escapeJavaScript`` is ``json.dumps``, which leaves ``'`` and ``/`` alone). What the oracle
checks is therefore the Velocity engine (lexer, parser, evaluator, values); the stand-ins only
carry data across.

Where airspeed-ext differs from API Gateway (or from Velocity 1.7, which API Gateway runs), the
case is listed in ``DIFFERENCES`` with the reason, and the test asserts that the two still
differ, so the list stays true.
"""

from __future__ import annotations

import base64
import copy
import json
import urllib.parse
from collections.abc import Mapping

import airspeed  # type: ignore[import-untyped]
import pytest

from versioned_lambda_api import api_spec
from versioned_lambda_api.analysis.vtl import TemplateError, TemplateInput, render, render_response

CONTEXT: dict[str, object] = {
    "stage": "prod",
    "requestId": "req-1",
    "httpMethod": "POST",
    "resourcePath": "/events",
    "isCanaryRequest": "false",
    "identity": {"sourceIp": "192.0.2.1", "apiKeyId": "k3y1d0"},
}
INPUT = TemplateInput(
    body='{"a": 1, "b": "x", "list": [1, 2], "nested": {"c": "d"}}',
    querystring={"q": "1"},
    header={"H": "v"},
    context=CONTEXT,
    stage_variables={"lambdaAlias": "live", "empty": ""},
)


# --- The oracle ---------------------------------------------------------------------------------


class JavaText(str):
    """A string from the request, with the ``String`` methods the project's templates call that
    airspeed-ext lacks. LocalStack does the same with its ``ExtendedString``
    (``localstack/utils/aws/templating.py``); airspeed-ext looks a method up on the object."""

    __slots__ = ()

    def toLowerCase(self) -> str:  # noqa: N802
        return self.lower()


def _select(root: object, path: str) -> object:
    """``$``, ``$.a.b``: the JSONPaths the corpus uses (the renderer's own cover the rest)."""
    value = root
    for key in path.split(".")[1:]:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


class OracleInput:
    """``$input`` with the renderer's semantics: ``{}`` for an empty body, compact JSON,
    parameters from the path, then the query string, then the headers (names case-insensitive)."""

    def __init__(self, template_input: TemplateInput) -> None:
        self.body = template_input.body or "{}"
        self._root: object = None
        self._params = {
            "path": _java_texts(template_input.path),
            "querystring": _java_texts(template_input.querystring),
            "header": _java_texts(template_input.header),
        }

    def path(self, path: str) -> object:
        if self._root is None:
            self._root = json.loads(self.body)
        return _select(self._root, path)

    def json(self, path: str) -> str:
        return json.dumps(self.path(path), separators=(",", ":"), ensure_ascii=False)

    def params(self, name: str | None = None) -> object:
        if name is None:
            return self._params
        for values in self._params.values():
            if name in values:
                return values[name]
        folded = name.casefold()
        return next(
            (value for key, value in self._params["header"].items() if key.casefold() == folded),
            "",
        )


class OracleUtil:
    """``$util`` with the renderer's semantics (commons-lang 2 ``escapeJavaScript``, UTF-8)."""

    _ESCAPES: Mapping[str, str] = {
        "\b": "\\b",
        "\t": "\\t",
        "\n": "\\n",
        "\f": "\\f",
        "\r": "\\r",
        '"': '\\"',
        "'": "\\'",
        "/": "\\/",
        "\\": "\\\\",
    }

    def escapeJavaScript(self, text: str | None) -> str | None:  # noqa: N802
        if text is None:
            return None
        units = text.encode("utf-16-le", "surrogatepass")
        out = []
        for index in range(0, len(units), 2):
            code = int.from_bytes(units[index : index + 2], "little")
            char = chr(code)
            if char in self._ESCAPES:
                out.append(self._ESCAPES[char])
            elif code > 0x7F or code < 0x20:
                out.append(f"\\u{code:04X}")
            else:
                out.append(char)
        return "".join(out)

    def base64Encode(self, text: str) -> str:  # noqa: N802
        return base64.b64encode(text.encode("utf-8")).decode("ascii")

    def base64Decode(self, text: str) -> str:  # noqa: N802
        return base64.b64decode(text).decode("utf-8")

    def urlEncode(self, text: str) -> str:  # noqa: N802
        return urllib.parse.quote_plus(text, safe="*").replace("~", "%7E")

    def urlDecode(self, text: str) -> str:  # noqa: N802
        return urllib.parse.unquote_plus(text)


def _java_texts(values: Mapping[str, str]) -> dict[str, str]:
    return {JavaText(key): JavaText(value) for key, value in values.items()}


def oracle(
    template: str, template_input: TemplateInput = INPUT, context: dict[str, object] | None = None
) -> str:
    """``template`` rendered by airspeed-ext; ``context``, if given, is the (mutable) $context."""
    namespace = {
        "input": OracleInput(template_input),
        "util": OracleUtil(),
        "context": copy.deepcopy(dict(template_input.context)) if context is None else context,
        "stageVariables": dict(template_input.stage_variables),
    }
    return str(airspeed.Template(template).merge(namespace))


def oracle_or_error(template: str) -> str:
    try:
        return oracle(template)
    except airspeed.TemplateError as error:
        return f"airspeed-ext fails: {type(error).__name__}"


def ours_or_error(template: str) -> str:
    try:
        return render(template, INPUT)
    except TemplateError as error:
        return f"fails: {error}"


# --- Velocity's core, where both engines agree -------------------------------------------------

# Variables the method cases use, so that method calls have receivers of each type.
SETUP = (
    "#set($s = 'AbC')#set($c = 'x,y,z')#set($d = 'a1b22')#set($p = ' a b ')"
    "#set($m = {'a': 1, 'b': 'two'})#set($l = [1, 2, 3])"
)

AGREED = [
    # References and literal text.
    "$context.stage",
    "${context.stage}",
    "$!context.stage",
    "$!{context.stage}",
    "[${context.stage}]",
    "$context.identity.sourceIp",
    '"$context.stage",',
    "$context.stage.",
    "$context.stage. more",
    "$stageVariables.lambdaAlias $stageVariables['lambdaAlias'] ${stageVariables['lambdaAlias']}",
    "[$missing]",
    "[$!missing]",
    "[${missing}]",
    "[$context.missing]",
    "[$context.identity.missing.deeper]",
    "[$missing.trim()]",
    "[$stageVariables.empty]",
    "[$context.stage-1]",
    "[$context.stage_1]",
    "a $ b",
    "cost: $1.50",
    "$",
    "$!",
    "$.a",
    "${context.stage}(x)",
    "$context.stage (x)",
    '{"color": "#fff"}',
    "#{foo}",
    "a ## comment\nb",
    "a ## comment at the end",
    "a#* block\ncomment *#b",
    # Literals and #set.
    "#set($x = 42)$x",
    "#set($x = -7)$x",
    "#set($x = 1.5)$x",
    "#set($x = 1.0)$x",
    "#set($x = 0.001)$x",
    "#set($x = 9999999.0)$x",
    "#set($x = 123.45)$x",
    "#set($x = true)$x",
    "#set($x = false)$x",
    "#set($x = 'single $context.stage')$x",
    '#set($x = "double $context.stage")$x',
    '#set($x = "a${context.stage}b")$x',
    '#set($x = "#if(true)yes#end")$x',
    '#set($x = "say ""hi""")$x',
    '#set($x = "\\\\\'")$x $x.length()',
    "#set($x = 'a\\nb')$x",
    '#set($x = "")[$x]',
    "#set($x = [])$x",
    "#set($x = {})$x",
    "#set( $x = 'spaces' )$x",
    "#set ($x = 'space before paren')$x",
    "#set($x = $context.stage)$x",
    "#set($x = $context)$x.stage",
    "#set($x = 'b')#set($y = \"a$x\")#set($x = 'c')$y",
    "#set($m = {})#set($m.k = 'v')$m.k",
    "#set($m = {})#set($old = $m.put('k', 'v'))$m.k",
    "#set($l = [1])#set($ok = $l.add(2))$l.size()",
    # Arithmetic.
    "#set($x = 1 + 2)$x",
    "#set($x = 7 - 10)$x",
    "#set($x = 6 * 7)$x",
    "#set($x = 7 / 2)$x",
    "#set($x = 7 % 3)$x",
    "#set($x = 1.5 + 1)$x",
    "#set($x = 5.5 % 2)$x",
    "#set($x = 2147483647 + 1)$x",
    "#set($x = 'a' + 'b')$x",
    # #if, #elseif, #else.
    "#if($context.stage == 'prod')P#elseif($context.stage == 'dev')D#{else}other#end",
    "a#if(false)b#end c",
    "a#if(true)b#end c",
    # #foreach.
    "#foreach($i in [1, 2, 3])$i#if($foreach.hasNext),#end#end",
    "#foreach($i in ['a', 'b'])$foreach.index$foreach.count$velocityCount#end",
    "#foreach($i in ['a'])$velocityHasNext#end",
    "#set($m = {'a': 1, 'b': 2})#foreach($k in $m.keySet())$k#end",
    "#foreach($i in $missing)x#end",
    "#foreach($i in [])x#end",
    "#foreach($i in [1..3])$i#end",
    "#set($i = 'outer')#foreach($i in [1])$i#end$i",
    "#foreach($i in [1])#end[$i]",
    "#foreach($x in [1, $missing, 3])[$x]#end",
    "#foreach($a in [1, 2])#foreach($b in ['x', 'y'])$a$b$foreach.first$foreach.last #end#end",
    # Whitespace, where both keep it.
    "#set($a = 1)\n$a\n",
    "#if(true)\r\nwindows\r\n#end\r\n",
    "text\n#if(true)\nx\n#end",
    "x #set($a = 1) y\n",
    "  $context.stage\n",
    "  ## note\nx",
    # Methods.
    f"{SETUP}$s.length()",
    f"{SETUP}$s.contains('b')",
    f"{SETUP}$s.startsWith('A')",
    f"{SETUP}$s.matches('A.C')",
    f"{SETUP}$s.matches('b')",
    f"{SETUP}$s.indexOf('b')",
    f"{SETUP}$s.substring(1)",
    f"{SETUP}$s.substring(1, 2)",
    f"{SETUP}$s.length() + 1",
    f"{SETUP}$c.split(',').size()",
    f"{SETUP}$c.split(',').get(1)",
    f"{SETUP}$c.split(',')[0]",
    f"{SETUP}$c.replace(',', ';')",
    f"{SETUP}$d.replaceAll('[0-9]+', '#')",
    f"{SETUP}$p.replaceAll(' ', '+')",
    f"{SETUP}$m.get('a')",
    f"{SETUP}$m.toString()",
    f"{SETUP}$m['a'] $m.a $m.b",
    f"{SETUP}$l.size() $l.get(1) $l.contains(2) $l.isEmpty()",
    f"{SETUP}$l[1] $l[-1]",
    # $input and $util (through the stand-ins).
    "$input.json('$')",
    "$input.json('$.a')",
    "$input.json('$.missing')",
    "$input.json('$.nested')",
    "$input.json('$.list')",
    "$input.path('$.a') $input.path('$.b') $input.path('$.nested.c')",
    "$input.path('$.list').size() $input.path('$.list').get(0)",
    "#foreach($i in $input.path('$.list'))$i#end",
    "$input.path('$.nested').c $input.path('$').a",
    "#set($b = $input.path('$'))$b.b $b.nested.c",
    "$input.body",
    "$input.params('q') $input.params('H') $input.params('h') [$input.params('none')]",
    "#set($q = $input.params().querystring)#foreach($k in $q.keySet())$k=$q.get($k)#end",
    "$input.params().header.H",
    '$util.escapeJavaScript("it\'s ""q"" \\ / caf\u00e9")',
    '$util.escapeJavaScript("it\'s").replaceAll("\\\\\'", "\'")',
    "$util.base64Encode('AbC') $util.base64Decode('QWJD')",
    "$util.urlEncode('a b&c~') $util.urlDecode('a+b%26c')",
]
CONDITIONS = [
    "false",
    "true",
    "'false'",
    "$context.stage",
    "1 == 1",
    "1 == 1.0",
    "'a' == 'a'",
    "'a' == 'A'",
    "'a' != 'b'",
    "1 != 1",
    "$missing == $alsoMissing",
    "$missing == ''",
    "$missing != ''",
    "[1, 'a'] == [1, 'a']",
    "[1] == [2]",
    "{'a': 1} == {'a': 1}",
    "$context.stage == 'prod'",
    "2 < 3",
    "3 < 3",
    "3 <= 3",
    "4 > 3",
    "3 >= 4",
    "2.5 > 2",
    "true && false",
    "true && true",
    "false || true",
    "false || $missing",
    "!true",
    "!!$context.stage",
    "1 eq 1",
    "1 ne 2",
    "1 lt 2",
    "2 le 2",
    "3 gt 2",
    "2 ge 3",
    "true and false",
    "false or true",
    "not false",
    "not $context.stage",
    "true || false && false",
    "(true || false) && false",
    "1 + 2 * 3 == 7",
    "(1 + 2) * 3 == 9",
    "1 < 2 == true",
    "!false && false",
]
AGREED += [f"#if({condition})T#{{else}}F#end" for condition in CONDITIONS]


@pytest.mark.parametrize("template", AGREED)
def test_agrees_with_airspeed(template: str) -> None:
    assert render(template, INPUT) == oracle(template)


# --- Where airspeed-ext differs ----------------------------------------------------------------

JAVA_TEXT = (
    "API Gateway prints Java objects with their toString (AbstractMap: {k=v}, AbstractList: "
    "[a, b], Double.toString); airspeed-ext prints Python's str(). LocalStack wraps values in "
    "VTLMap/VTLJsonDict/VTLJsonList (template_mapping.py) to print them as AWS does"
)
NULL_IS_FALSE = (
    "Velocity 1.7: a null reference is false in a condition (user guide, #if); airspeed-ext "
    "takes an undefined reference as true, and !null as false"
)
TRUTH = (
    "Velocity 1.7: only null and false are false; airspeed-ext uses Python's truth ('', 0, "
    "[] and {} are false)"
)
EQUALS = (
    "Velocity 1.7's == (ASTEQNode) compares objects of different classes by their toString; "
    "airspeed-ext uses Python's =="
)
RELATIONAL = (
    "Velocity 1.7's < and friends compare numbers only, anything else is false; airspeed-ext "
    "uses Python's comparison (and fails on str < int, None < int)"
)
JAVA_MATH = (
    "Java's integer / and % truncate toward zero; airspeed-ext uses Python's floor division "
    "(/ is // even for decimals)"
)
NULL_MATH = (
    "Velocity 1.7's math nodes give null for a null or non-number operand and for division "
    "by zero; airspeed-ext raises Python's TypeError/ZeroDivisionError, or applies Python's "
    "meaning (True + 1 == 2, [1] * 2 == [1, 1])"
)
CONCAT = (
    "Velocity 1.7's ASTAddNode concatenates when either side is a string (a null side prints "
    "as its source text); airspeed-ext raises Python's TypeError"
)
SET_NULL = (
    "Velocity 1.7 (directive.set.null.allowed=false) leaves the variable unchanged when #set "
    "gets null; airspeed-ext sets it to null"
)
LOOP_SCOPE = (
    "Velocity 1.7 has one context, so a #set inside #foreach is seen after it; airspeed-ext "
    "scopes it to the loop"
)
WHITESPACE = (
    "a line holding only directives renders nothing here (a documented approximation, "
    "vtl/parser.py); airspeed-ext keeps its indentation, as Velocity 1.7 does. The data is the "
    "same, which the project-template tests below check"
)
MISSING_METHOD = (
    "a Java String/Map/List method airspeed-ext does not provide (it renders null); "
    "LocalStack adds a few through ExtendedString (localstack/utils/aws/templating.py)"
)
LENIENT_TEXT = (
    "text this renderer leaves as it is (test_references_and_literal_text); airspeed-ext "
    "rejects it as a broken reference, macro call or block end"
)

DIFFERENCES: dict[str, str] = {
    "${": LENIENT_TEXT,
    "${context.stage": LENIENT_TEXT,
    "#foo(bar) #1 # x": LENIENT_TEXT,
    "#endif #elsewhere": LENIENT_TEXT,
    "#[[$x #if]]#": "Velocity 1.7's #[[ ]]# unparsed content; airspeed-ext does not know it",
    "#{set}($x = 'braced')$x": "Velocity 1.7's braced directive #{set}; airspeed-ext does not "
    "know it",
    "#set($x = 'it''s')$x": "Velocity 1.7 reads a doubled quote in a string literal as one "
    "quote; airspeed-ext ends the literal",
    '#set($x = "a\\"b")$x': 'Velocity 1.7 does not end a "..." literal at \\"; airspeed-ext does',
    "#set($x = 0.0001)$x": JAVA_TEXT,
    "#set($x = 10000000.0)$x": JAVA_TEXT,
    "#set($x = [1, \"a\", 'b'])$x": JAVA_TEXT,
    "#set($x = [1..3])$x": JAVA_TEXT,
    '#set($x = {"k": "v", "n": 1})$x': JAVA_TEXT,
    "$input.path('$.nested')": JAVA_TEXT,
    "$input.path('$.list')": JAVA_TEXT + " (a JSON array prints as JSON: localstack#12379)",
    f"{SETUP}$m.keySet() $m.values()": JAVA_TEXT,
    "#set($x = 1)#set($x = $missing)$x": SET_NULL,
    "#set($x = 1)#set($x = $context.missing.trim())$x": SET_NULL,
    "#set($missing.k = 1)[$missing]": "Velocity 1.7 ignores a #set into a property of null; "
    "airspeed-ext raises KeyError",
    "#foreach($i in [1, 2])#set($last = $i)#end$last": LOOP_SCOPE,
    "#if($missing)T#{else}F#end": NULL_IS_FALSE,
    "#if($context.missing)T#{else}F#end": NULL_IS_FALSE,
    "#if(! $missing)T#{else}F#end": NULL_IS_FALSE,
    "#if(0)T#{else}F#end": TRUTH,
    "#if('')T#{else}F#end": TRUTH,
    "#if([])T#{else}F#end": TRUTH,
    "#if({})T#{else}F#end": TRUTH,
    "#if($stageVariables.empty)T#{else}F#end": TRUTH,
    "#if(1 == '1')T#{else}F#end": EQUALS,
    "#if('1' == 1)T#{else}F#end": EQUALS,
    "#if(true == 'true')T#{else}F#end": EQUALS,
    "#if('a' < 'b')T#{else}F#end": RELATIONAL,
    "#if('2' < 3)T#{else}F#end": RELATIONAL,
    "#if($missing < 1)T#{else}F#end": RELATIONAL,
    "#set($x = -7 / 2)$x": JAVA_MATH,
    "#set($x = -7 % 3)$x": JAVA_MATH,
    "#set($x = 7 % -3)$x": JAVA_MATH,
    "#set($x = 1 / 4.0)$x": JAVA_MATH,
    "#set($x = $foreachless + 1)$x": NULL_MATH,
    "#set($x = 7 / 0)$x": NULL_MATH,
    "#set($x = 7 % 0)$x": NULL_MATH,
    "#set($x = 7.0 / 0)$x": NULL_MATH,
    "#set($x = true + 1)$x": NULL_MATH,
    "#set($x = [1] * 2)$x": NULL_MATH,
    "#set($x = 'x' - 1)$x": NULL_MATH,
    "#set($x = 'n' + 1)$x": CONCAT,
    "#set($x = 1.5 + 'x')$x": CONCAT,
    "#set($x = 'x' + $missing)$x": CONCAT,
    "#foreach($v in {'a': 1, 'b': 2})$v#end": "Velocity 1.7 iterates a Map's values; "
    "airspeed-ext iterates a dict's keys",
    "#foreach($i in 'abc')x#end": "Velocity 1.7 does not iterate a String; airspeed-ext "
    "iterates its characters",
    "#foreach($a in [1, 2])#foreach($b in ['x'])$foreach.parent.index#end#end": "Velocity "
    "1.7's $foreach.parent; airspeed-ext has no parent",
    "    #set($a = 1)   \n$a": WHITESPACE,
    "#set($a = 1) ## why\n$a": WHITESPACE,
    "\t#set($a = 1)#set($b = 2)\n$a$b": WHITESPACE,
    "[\n  #if(true)\n  yes\n  #else\n  no\n  #end\n]\n": WHITESPACE,
    f"{SETUP}$s.indexOf('z')": "Java's indexOf gives -1; airspeed-ext's is Python's "
    "str.index, which raises",
    f"{SETUP}$s.replaceAll('(b)', '[$1]')": "Java's replacement reads $1 as group 1; "
    "airspeed-ext passes it to Python's re.sub, which reads \\1",
    f"{SETUP}$s.indexOf('C', 1)": MISSING_METHOD,
    f"{SETUP}$s.startsWith('b', 1)": MISSING_METHOD,
    f"{SETUP}$s.isEmpty()": MISSING_METHOD,
    f"{SETUP}$p.trim()": MISSING_METHOD,
    f"{SETUP}$s.toLowerCase() $s.toUpperCase()": MISSING_METHOD,
    f"{SETUP}$s.toString()": MISSING_METHOD,
    f"{SETUP}$s.equals('AbC') $s.equalsIgnoreCase('abc')": MISSING_METHOD,
    f"{SETUP}$s.endsWith('C')": MISSING_METHOD,
    f"{SETUP}$s.concat('d')": MISSING_METHOD,
    f"{SETUP}$s.charAt(1)": MISSING_METHOD,
    f"{SETUP}$c.lastIndexOf(',')": MISSING_METHOD,
    f"{SETUP}$d.replaceFirst('[0-9]', '#')": MISSING_METHOD,
    f"{SETUP}$m.size() $m.isEmpty()": MISSING_METHOD,
    f"{SETUP}$m.containsKey('a') $m.containsValue(1)": MISSING_METHOD,
    f"{SETUP}$l.indexOf(2)": MISSING_METHOD,
    f"{SETUP}$l.toString()": MISSING_METHOD,
    f"{SETUP}$l.empty $s.empty": "Velocity 1.7 calls isEmpty() for .empty; airspeed-ext "
    "looks for an attribute",
}


@pytest.mark.parametrize(("template", "reason"), DIFFERENCES.items())
def test_listed_differences_still_differ(template: str, reason: str) -> None:
    assert reason
    assert ours_or_error(template) != oracle_or_error(template)


def test_no_template_is_both_agreed_and_listed() -> None:
    assert not set(AGREED) & set(DIFFERENCES)


# --- The project's own templates ----------------------------------------------------------------


@pytest.mark.parametrize(
    "template_input",
    [
        TemplateInput(context=CONTEXT),
        TemplateInput(
            body='{"name": "caf\u00e9 \U0001f600", "quote": "it\'s \\"q\\""}',
            querystring={"limit": "10", "next": "it's", "o'key": "v'al"},
            header={"Idempotency-Key": "key-'1'", "Content-Type": "application/json"},
            context=CONTEXT,
        ),
        TemplateInput(
            body="not JSON: ' \" \\",
            querystring={"q": 'quote " and \\ backslash', "u": "caf\u00e9", "nl": "a\nb"},
            header={"idempotency-key": "k-1"},
            context={key: value for key, value in CONTEXT.items() if key != "identity"},
        ),
    ],
)
def test_the_default_request_template_gives_the_same_event(template_input: TemplateInput) -> None:
    ours = render(api_spec.DEFAULT_REQUEST_TEMPLATE, template_input)
    theirs = oracle(api_spec.DEFAULT_REQUEST_TEMPLATE, template_input)
    # The whitespace of directive-only lines differs (see WHITESPACE); the event does not.
    assert json.loads(ours) == json.loads(theirs)


def lambda_result(status: int, body: object) -> str:
    return json.dumps({"statusCode": status, "body": body})


@pytest.mark.parametrize(
    "body",
    [
        lambda_result(200, {"id": "e-1"}),
        lambda_result(201, {"id": "e-1", "note": "caf\u00e9"}),
        lambda_result(400, {"message": "field 'name' must be a string"}),
        lambda_result(299, {"id": "e-1"}),
        json.dumps({"errorMessage": "", "errorType": "MemoryError"}),
    ],
)
def test_the_success_response_template_gives_the_same_response(body: str) -> None:
    template = api_spec.SUCCESS_TEMPLATE
    template_input = TemplateInput(body=body, context=CONTEXT)
    context = copy.deepcopy(CONTEXT)
    override: dict[str, object] = {"header": {}}
    context["responseOverride"] = override
    theirs = oracle(template, template_input, context)
    status = override.get("status")
    assert render_response(template, template_input) == (
        theirs,
        None if status is None else int(str(status)),
    )


@pytest.mark.parametrize(
    "message",
    [
        api_spec.UNAVAILABLE_PREFIX + json.dumps({"message": "try later, it's busy"}),
        "Task timed out after 3.00 seconds",
    ],
)
def test_the_error_response_templates_give_the_same_body(message: str) -> None:
    template_input = TemplateInput(
        body=json.dumps({"errorMessage": message, "errorType": "Error"}), context=CONTEXT
    )
    for response in api_spec.INTEGRATION_RESPONSES[1:]:
        assert render(response.template, template_input) == oracle(
            response.template, template_input
        )
