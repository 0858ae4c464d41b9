"""The offline mapping-template renderer: Velocity 1.7 with API Gateway's variables."""

from __future__ import annotations

import base64
import json
import re

import pytest

from versioned_lambda_api import api_spec
from versioned_lambda_api.analysis.vtl import TemplateError, TemplateInput, render, render_response

CONTEXT: dict[str, object] = {
    "stage": "prod",
    "requestId": "req-1",
    "identity": {"sourceIp": "192.0.2.1"},
}
STAGE_VARIABLES = {"lambdaAlias": "live", "empty": ""}
PLAIN = TemplateInput(context=CONTEXT, stage_variables=STAGE_VARIABLES)


def vtl(template: str, template_input: TemplateInput = PLAIN) -> str:
    return render(template, template_input)


def with_query(**values: str) -> TemplateInput:
    return TemplateInput(querystring=values, context=CONTEXT)


def with_body(body: str) -> TemplateInput:
    return TemplateInput(body=body, context=CONTEXT)


# --- References ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$context.stage", "prod"),
        ("${context.stage}", "prod"),
        ("$!context.stage", "prod"),
        ("$!{context.stage}", "prod"),
        ("[${context.stage}]", "[prod]"),
        ("$context.identity.sourceIp", "192.0.2.1"),
        ('"$context.stage",', '"prod",'),
        ("$context.stage.", "prod."),
        ("$context.stage. more", "prod. more"),
        ("$stageVariables.lambdaAlias", "live"),
        # Null renders as the empty string (API Gateway), quiet or not.
        ("[$missing]", "[]"),
        ("[$!missing]", "[]"),
        ("[${missing}]", "[]"),
        ("[$context.missing]", "[]"),
        ("[$context.identity.missing.deeper]", "[]"),
        ("[$missing.trim()]", "[]"),
        ("[$stageVariables.empty]", "[]"),
        # Velocity 1.7 identifiers may contain '-', so this is the reference $context.stage-1.
        ("[$context.stage-1]", "[]"),
        ("[$context.stage_1]", "[]"),
        # Not references: literal text.
        ("a $ b", "a $ b"),
        ("cost: $1.50", "cost: $1.50"),
        ("$", "$"),
        ("$!", "$!"),
        ("${", "${"),
        ("${context.stage", "${context.stage"),
        ("$.a", "$.a"),
        ("${context.stage}(x)", "prod(x)"),
        ("$context.stage (x)", "prod (x)"),
        # '#' that starts no directive stays literal.
        ('{"color": "#fff"}', '{"color": "#fff"}'),
        ("#foo(bar) #1 # x", "#foo(bar) #1 # x"),
        ("#endif #elsewhere", "#endif #elsewhere"),
        ("#{foo}", "#{foo}"),
        # Comments and unparsed blocks.
        ("a ## comment\nb", "a b"),
        ("a ## comment at the end", "a "),
        ("a#* block\ncomment *#b", "ab"),
        ("#[[$context.stage #if(]]#", "$context.stage #if("),
        ("[$velocityCount][$foreach]", "[][]"),
    ],
)
def test_references_and_literal_text(template: str, expected: str) -> None:
    assert vtl(template) == expected


def test_stage_variable_syntaxes_from_the_reference() -> None:
    # https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-mapping-template-reference.html
    # ("$stageVariables" table): three documented ways to read a stage variable.
    template = (
        "$stageVariables.lambdaAlias $stageVariables['lambdaAlias'] "
        "${stageVariables['lambdaAlias']}"
    )
    assert vtl(template) == "live live live"


def test_context_values_render_as_java_text() -> None:
    context: dict[str, object] = {"flag": True, "count": 3, "ratio": 0.5, "nested": {"a": "b"}}
    template = "$context.flag $context.count $context.ratio $context.nested"
    assert vtl(template, TemplateInput(context=context)) == "true 3 0.5 {a=b}"


# --- Literals and #set --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("#set($x = 42)$x", "42"),
        ("#set($x = -7)$x", "-7"),
        ("#set($x = 1.5)$x", "1.5"),
        ("#set($x = 1.0)$x", "1.0"),
        ("#set($x = 0.001)$x", "0.001"),
        ("#set($x = 0.0001)$x", "1.0E-4"),
        ("#set($x = 9999999.0)$x", "9999999.0"),
        ("#set($x = 10000000.0)$x", "1.0E7"),
        ("#set($x = 123.45)$x", "123.45"),
        ("#set($x = true)$x", "true"),
        ("#set($x = false)$x", "false"),
        ("#set($x = 'single $context.stage')$x", "single $context.stage"),
        ('#set($x = "double $context.stage")$x', "double prod"),
        ('#set($x = "a${context.stage}b")$x', "aprodb"),
        ('#set($x = "#if(true)yes#end")$x', "yes"),
        ('#set($x = "say ""hi""")$x', 'say "hi"'),
        ("#set($x = 'it''s')$x", "it's"),
        # Backslashes are not escapes in Velocity 1.7 string literals.
        ('#set($x = "\\\\\'")$x $x.length()', "\\\\' 3"),
        ('#set($x = "a\\"b")$x', 'a\\"b'),
        ("#set($x = 'a\\nb')$x", "a\\nb"),
        ('#set($x = "")[$x]', "[]"),
        ("#set($x = [1, \"a\", 'b'])$x", "[1, a, b]"),
        ("#set($x = [])$x", "[]"),
        ("#set($x = [1..3])$x", "[1, 2, 3]"),
        ("#set($x = [3..1])$x", "[3, 2, 1]"),
        ("#set($n = 2)#set($x = [$n..4])$x", "[2, 3, 4]"),
        ('#set($x = {"k": "v", "n": 1})$x $x.k $x.n', "{k=v, n=1} v 1"),
        ("#set($x = {})$x", "{}"),
        ('#set($x = {"list": [1, {"a": true}]})$x', "{list=[1, {a=true}]}"),
        ("#set( $x = 'spaces' )$x", "spaces"),
        ("#set ($x = 'space before paren')$x", "space before paren"),
        ("#{set}($x = 'braced')$x", "braced"),
        ("#set($x = $context.stage)$x", "prod"),
        ("#set($x = $context)$x.stage", "prod"),
        ("#set($x = 'b')#set($y = \"a$x\")#set($x = 'c')$y", "ab"),
        # A null value leaves the variable as it was (Velocity 1.7's default).
        ("#set($x = 1)#set($x = $missing)$x", "1"),
        ("#set($x = 1)#set($x = $context.missing.trim())$x", "1"),
        # Property targets put into maps.
        ("#set($m = {})#set($m.k = 'v')$m.k $m", "v {k=v}"),
        ("#set($m = {'in': {}})#set($m.in.k = 1)$m", "{in={k=1}}"),
        ("#set($missing.k = 1)[$missing]", "[]"),
        ("#foreach($i in [1, 2])#set($last = $i)#end$last", "2"),
    ],
)
def test_literals_and_set(template: str, expected: str) -> None:
    assert vtl(template) == expected


# --- Operators and truthiness ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # Truthiness: only null and false are false.
        ("$missing", False),
        ("$context.missing", False),
        ("false", False),
        ("true", True),
        ('""', True),
        ("0", True),
        ("'false'", True),
        ("[]", True),
        ("{}", True),
        ("$context.stage", True),
        ("$stageVariables.empty", True),
        # == and != (numbers by value, same classes by equals, else string forms).
        ("1 == 1", True),
        ("1 == 1.0", True),
        ("1 == '1'", True),
        ("'1' == 1", True),
        ("true == 'true'", True),
        ("'a' == 'a'", True),
        ("'a' == 'A'", False),
        ("'a' != 'b'", True),
        ("1 != 1", False),
        ("$missing == $alsoMissing", True),
        ("$missing == ''", False),
        ("$missing != ''", True),
        ("[1, 'a'] == [1, 'a']", True),
        ("[1] == [2]", False),
        ("{'a': 1} == {'a': 1}", True),
        ("$context.stage == 'prod'", True),
        # Relational operators compare numbers only.
        ("2 < 3", True),
        ("3 < 3", False),
        ("3 <= 3", True),
        ("4 > 3", True),
        ("3 >= 4", False),
        ("2.5 > 2", True),
        ("'a' < 'b'", False),
        ("'2' < 3", False),
        ("$missing < 1", False),
        # Logic.
        ("true && false", False),
        ("true && true", True),
        ("false || true", True),
        ("false || $missing", False),
        ("!true", False),
        ("! $missing", True),
        ("!!$context.stage", True),
        # Word forms.
        ("1 eq 1", True),
        ("1 ne 2", True),
        ("1 lt 2", True),
        ("2 le 2", True),
        ("3 gt 2", True),
        ("2 ge 3", False),
        ("true and false", False),
        ("false or true", True),
        ("not false", True),
        ("not $context.stage", False),
        # Precedence: * before +, + before ==, == before &&, && before ||.
        ("true || false && false", True),
        ("(true || false) && false", False),
        ("1 + 2 * 3 == 7", True),
        ("(1 + 2) * 3 == 9", True),
        ("1 < 2 == true", True),
        ("!false && false", False),
    ],
)
def test_conditions(condition: str, expected: bool) -> None:
    assert vtl(f"#if({condition})T#{{else}}F#end") == ("T" if expected else "F")


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2", "3"),
        ("7 - 10", "-3"),
        ("6 * 7", "42"),
        ("7 / 2", "3"),
        ("-7 / 2", "-3"),
        ("7 % 3", "1"),
        ("-7 % 3", "-1"),
        ("7 % -3", "1"),
        ("1.5 + 1", "2.5"),
        ("1 / 4.0", "0.25"),
        ("5.5 % 2", "1.5"),
        ("2147483647 + 1", "2147483648"),
        ("$foreachless + 1", ""),
        ("7 / 0", ""),
        ("7 % 0", ""),
        ("7.0 / 0", ""),
        ("true + 1", ""),
        ("[1] * 2", ""),
        # Velocity 1.7's ASTAddNode concatenates when either side is a string; a null side
        # contributes its source text.
        ("'a' + 'b'", "ab"),
        ("'n' + 1", "n1"),
        ("1.5 + 'x'", "1.5x"),
        ("'x' + $missing", "x$missing"),
        ("'x' - 1", ""),
    ],
)
def test_arithmetic(expression: str, expected: str) -> None:
    assert vtl(f"#set($r = {expression})$r") == expected


# --- #if, #foreach and whitespace --------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "expected"),
    [("prod", "P"), ("dev", "D"), ("test", "other"), ("", "other")],
)
def test_if_elseif_else(stage: str, expected: str) -> None:
    template = "#if($context.stage == 'prod')P#elseif($context.stage == 'dev')D#{else}other#{end}"
    assert vtl(template, TemplateInput(context={"stage": stage})) == expected


def test_if_without_else_renders_nothing_when_false() -> None:
    assert vtl("a#if(false)b#end c") == "a c"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("#foreach($i in [1, 2, 3])$i#if($foreach.hasNext),#end#end", "1,2,3"),
        ("#foreach($i in ['a', 'b'])$foreach.index$foreach.count$velocityCount#end", "011122"),
        (
            "#foreach($i in ['a', 'b', 'c'])$foreach.first/$foreach.last #end",
            "true/false false/false false/true ",
        ),
        (
            "#foreach($i in ['a', 'b'])$foreach.hasNext()/$foreach.getIndex() #end",
            "true/0 false/1 ",
        ),
        ("#foreach($i in ['a'])$velocityHasNext#end", "false"),
        ("#foreach($v in {'a': 1, 'b': 2})$v#end", "12"),
        ("#set($m = {'a': 1, 'b': 2})#foreach($k in $m.keySet())$k#end", "ab"),
        ("#foreach($i in $missing)x#end", ""),
        ("#foreach($i in 'abc')x#end", ""),
        ("#foreach($i in [])x#end", ""),
        ("#foreach($i in [1..3])$i#end", "123"),
        ("#set($i = 'outer')#foreach($i in [1])$i#end$i", "1outer"),
        ("#foreach($i in [1])#end[$i]", "[]"),
        (
            "#foreach($a in [1, 2])#foreach($b in ['x', 'y'])"
            "$foreach.parent.index$foreach.index#end#end",
            "00011011",
        ),
        (
            "[#foreach($row in [[1, 2], [3]])[#foreach($n in $row)$n#if($foreach.hasNext),#end#end]"
            "#if($foreach.hasNext),#end#end]",
            "[[1,2],[3]]",
        ),
        ("#foreach($x in [1, $missing, 3])[$x]#end", "[1][][3]"),
    ],
)
def test_foreach(template: str, expected: str) -> None:
    assert vtl(template) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # A line holding only a directive produces nothing, not even its newline.
        ("#set($a = 1)\n$a\n", "1\n"),
        ("    #set($a = 1)   \n$a", "1"),
        ("#set($a = 1) ## why\n$a", "1"),
        ("\t#set($a = 1)#set($b = 2)\n$a$b", "12"),
        ("[\n  #if(true)\n  yes\n  #else\n  no\n  #end\n]\n", "[\n  yes\n]\n"),
        (
            "[\n  #foreach($i in [1, 2])\n  $i#if($foreach.hasNext),#end\n\n  #end\n]",
            "[\n  1,\n\n  2\n\n]",
        ),
        ("#if(true)\r\nwindows\r\n#end\r\n", "windows\r\n"),
        ("text\n#if(true)\nx\n#end", "text\nx\n"),
        # Directives inside a line render in place with no extra whitespace.
        ("a#if(true)b#end c", "ab c"),
        ("x #set($a = 1) y\n", "x  y\n"),
        ('{#foreach($i in [1, 2])"$i"#if($foreach.hasNext), #end#end}', '{"1", "2"}'),
        # Text lines with a reference are kept whole.
        ("  $context.stage\n", "  prod\n"),
        # A line that is only a comment keeps its indentation; the comment eats the newline.
        ("  ## note\nx", "  x"),
    ],
)
def test_whitespace_gobbling(template: str, expected: str) -> None:
    assert vtl(template) == expected


# --- $util ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain text 123", "plain text 123"),
        ("it's", "it\\'s"),
        ('say "hi"', 'say \\"hi\\"'),
        ("back\\slash", "back\\\\slash"),
        ("a/b", "a\\/b"),
        ("</script>", "<\\/script>"),
        ("line\nbreak", "line\\nbreak"),
        ("cr\rtab\t", "cr\\rtab\\t"),
        ("\b\f", "\\b\\f"),
        ("\u0001", "\\u0001"),
        ("\u001f", "\\u001F"),
        ("\u007f", "\u007f"),
        ("\u0080", "\\u0080"),
        ("\u00e9", "\\u00E9"),
        ("\u0100", "\\u0100"),
        ("\u20ac", "\\u20AC"),
        ("\u2028", "\\u2028"),
        ("\U0001f600", "\\uD83D\\uDE00"),
        ("", ""),
    ],
)
def test_escape_javascript_is_commons_lang_2(raw: str, escaped: str) -> None:
    assert vtl("$util.escapeJavaScript($input.params('s'))", with_query(s=raw)) == escaped


def test_escape_javascript_of_null_is_null() -> None:
    assert vtl("[$util.escapeJavaScript($missing)]") == "[]"
    assert vtl("#set($x = 'kept')#set($x = $util.escapeJavaScript($missing))$x") == "kept"


def test_escape_javascript_of_a_number_escapes_its_text() -> None:
    assert vtl("$util.escapeJavaScript(1.5)") == "1.5"


TRICKY_STRINGS = [
    "plain",
    "it's",
    "\\'",
    "\\\\''",
    "'\\",
    "mixed 'single' and \"double\" \\ quotes",
    "C:\\path\\to\\file",
    "slash / and </script>",
    "newline\n tab\t cr\r nul\u0000 bell\u0007 unit\u001f del\u007f",
    "caf\u00e9 \u00fc\u00df \u4e2d\u6587 \u20ac \u2028\u2029",
    "emoji \U0001f600\U0001f680 flags \U0001f1ec\U0001f1e7",
    "\\u0041 is not an escape",
    "",
]


@pytest.mark.parametrize("raw", TRICKY_STRINGS)
def test_json_string_idiom_round_trips(raw: str) -> None:
    # The idiom AWS documents for putting a value in a JSON string.
    template = '"$util.escapeJavaScript($input.params(\'s\')).replaceAll("\\\\\'", "\'")"'
    rendered = vtl(template, with_query(s=raw))
    assert json.loads(rendered) == raw


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$util.base64Encode('')", ""),
        ("$util.base64Encode('hello')", "aGVsbG8="),
        (
            "$util.base64Encode($input.params('s'))",
            base64.b64encode("\u00e9\U0001f600".encode()).decode(),
        ),
        ("$util.base64Decode('aGVsbG8=')", "hello"),
        ("$util.base64Decode('w6nwn5iA')", "\u00e9\U0001f600"),
        ("$util.base64Decode($util.base64Encode($input.params('s')))", "\u00e9\U0001f600"),
        ("$util.urlEncode('a b')", "a+b"),
        ("$util.urlEncode('*._-')", "*._-"),
        ("$util.urlEncode('~')", "%7E"),
        ("$util.urlEncode('&=?/+%')", "%26%3D%3F%2F%2B%25"),
        ("$util.urlEncode($input.params('s'))", "%C3%A9%F0%9F%98%80"),
        ("$util.urlDecode('a+b%20c')", "a b c"),
        ("$util.urlDecode('%C3%A9')", "\u00e9"),
        ("$util.urlDecode($util.urlEncode('x=1&y=\"two\"'))", 'x=1&y="two"'),
        ('$util.parseJson(\'{"a": {"b": [10, 20]}}\').a.b[1]', "20"),
        ("$util.parseJson('[1, 2, 3]').size()", "3"),
        ("$util.parseJson('\"text\"')", "text"),
        ('$util.parseJson(\'{"a": [1, {"b": 2}]}\')', '{a=[1,{"b":2}]}'),
    ],
)
def test_util_functions(template: str, expected: str) -> None:
    assert vtl(template, with_query(s="\u00e9\U0001f600")) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("$util.base64Decode('not base64!')", r"^1:7: base64Decode: 'not base64!' is not base64"),
        ("$util.urlDecode('100%')", r"^1:7: urlDecode: illegal escape at '%'"),
        ("$util.urlDecode('%zz')", r"^1:7: urlDecode: illegal escape"),
        ("$util.parseJson('{nope}')", r"^1:7: the argument of \$util.parseJson is not valid JSON"),
        ("$util.base64Encode($missing)", r"^1:7: \$util.base64Encode\(null\) fails"),
        ("$util.toJson('x')", r"^1:7: unknown method \$util.toJson\(\)"),
        ("$util.escapeJavaScript('a', 'b')", r"^1:7: \$util.escapeJavaScript does not take"),
    ],
)
def test_util_errors(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        vtl(template)


# --- Java String, Map and List methods ---------------------------------------------------------


STRING_VARIABLES = (
    "#set($s = $input.params('s'))#set($t = $input.params('t'))#set($nbsp = $input.params('n'))"
    "#set($empty = '')#set($csv = 'a,b,,c,,')#set($lead = ',a')#set($digits = 'a1b2')"
    "#set($abc = 'a,b,c')#set($x = 'x')#set($num = 1.5)#set($int = 42)"
)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("$s.length()", "16"),
        ("$s.substring(6)", "world \U0001f600 !"),
        ("$s.substring(0, 5)", "hello"),
        ("$s.substring(12, 14)", "\U0001f600"),
        ("$s.indexOf('!')", "15"),
        ("$s.indexOf('o', 5)", "7"),
        ("$s.indexOf('zz')", "-1"),
        ("$s.lastIndexOf('o')", "7"),
        ("$s.charAt(1)", "e"),
        ("$s.isEmpty()", "false"),
        ("$s.empty", "false"),
        ("$s.toUpperCase()", "HELLO WORLD \U0001f600 !"),
        ("$s.toLowerCase()", "hello world \U0001f600 !"),
        ("$s.startsWith('hello')", "true"),
        ("$s.startsWith('world', 6)", "true"),
        ("$s.endsWith('!')", "true"),
        ("$s.contains('lo w')", "true"),
        ("$s.equals('hello')", "false"),
        ("$s.substring(0, 5).equals('hello')", "true"),
        ("$s.substring(0, 5).equalsIgnoreCase('HELLO')", "true"),
        ("$s.concat('?')", "hello world \U0001f600 !?"),
        ("$s.toString()", "hello world \U0001f600 !"),
        ("$s.replace('o', '0')", "hell0 w0rld \U0001f600 !"),
        ("$s.replace('.', '!')", "hello world \U0001f600 !"),
        ("$s.replaceAll('[aeiou]', '_')", "h_ll_ w_rld \U0001f600 !"),
        ("$s.replaceFirst('o', '0')", "hell0 world \U0001f600 !"),
        ("$s.matches('hello.*')", "true"),
        ("$s.matches('hello')", "false"),
        ("$s.split(' ').size()", "4"),
        ("$s.split(' ')[1]", "world"),
        ("$s.split(' ').get(0)", "hello"),
        ("$t.trim()", "x"),
        ("$nbsp.trim()", "\u00a0x\u00a0"),
        ("$empty.isEmpty()", "true"),
        ("$csv.split(',').size()", "4"),
        ("$lead.split(',').size()", "2"),
        ("$empty.split(',').size()", "1"),
        ("$digits.split('[0-9]', -1).size()", "3"),
        ("$abc.split(',', 2)[1]", "b,c"),
        ("$abc.split('').size()", "5"),
        ("$x.replaceAll('y*', '-')", "-x-"),
        ("$num.toString()", "1.5"),
        ("$int.toString()", "42"),
        ("$s.length() + 1", "17"),
    ],
)
def test_string_methods(expression: str, expected: str) -> None:
    template = f"{STRING_VARIABLES}#set($r = {expression})$r"
    strings = with_query(s="hello world \U0001f600 !", t="  x \t", n="\u00a0x\u00a0")
    assert vtl(template, strings) == expected


@pytest.mark.parametrize(
    ("regex", "replacement", "expected"),
    [
        ("(\\w+)@(\\w+)", "$2 at $1", "mail: example at joe, other at ann"),
        ("(\\w+)@(\\w+)", "[$0]", "mail: [joe@example], [ann@other]"),
        ("(\\w+)@(\\w+)", "\\$1", "mail: $1, $1"),
        ("(\\w+)@(\\w+)", "a\\\\b", "mail: a\\b, a\\b"),
        ("(\\w+)@(\\w+)", "$12", "mail: joe2, ann2"),
        ("(?<user>\\w+)@(\\w+)", "${user}!", "mail: joe!, ann!"),
        ("(\\w+)@(x)?(\\w+)", "<$2>", "mail: <>, <>"),
        ("@", "\\q", "mail: joeqexample, annqother"),
        ("\\Q.\\E", "!", "mail: joe@example, ann@other"),
        ("[,:]", "", "mail joe@example ann@other"),
        ("(?i)MAIL", "M", "M: joe@example, ann@other"),
        ("\\z", "\\$", "mail: joe@example, ann@other$"),
    ],
)
def test_java_replace_all_replacement_rules(regex: str, replacement: str, expected: str) -> None:
    template = "$input.params('s').replaceAll($input.params('r'), $input.params('p'))"
    template_input = TemplateInput(
        querystring={"s": "mail: joe@example, ann@other", "r": regex, "p": replacement}
    )
    assert vtl(template, template_input) == expected


@pytest.mark.parametrize(
    ("subject", "regex", "matches"),
    [
        ("a\nb", "a.b", False),
        ("a\rb", "a.b", False),
        ("a\u2028b", "a.b", False),
        ("a\nb", "(?s)a.b", True),
        ("\u00e9", "\\w", False),
        ("\u0663", "\\d", False),
        ("\u00c9", "(?i)\u00e9", False),
        ("A", "(?i)a", True),
        ("ab", "a|b", False),
        ("1.5", "\\d+\\.\\d+", True),
        ("x", "\\p{L}", None),
        ("x", "[a-z&&[^q]]", None),
        ("x", "[a[b]]", None),
        ("x", "(unclosed", None),
    ],
)
def test_java_regex_semantics(subject: str, regex: str, matches: bool | None) -> None:
    template = "$input.params('s').matches($input.params('r'))"
    template_input = TemplateInput(querystring={"s": subject, "r": regex})
    if matches is None:
        with pytest.raises(TemplateError, match=r"^1:20: (regex|invalid regex)"):
            vtl(template, template_input)
    else:
        assert vtl(template, template_input) == ("true" if matches else "false")


@pytest.mark.parametrize(
    ("replacement", "message"),
    [
        ("$", "illegal group reference"),
        ("$x", "illegal group reference"),
        ("$3", "no group 3"),
        ("${nope}", "no group named 'nope'"),
        ("trailing\\", "character to be escaped is missing"),
    ],
)
def test_java_replacement_errors(replacement: str, message: str) -> None:
    template_input = TemplateInput(querystring={"s": "a-b", "p": replacement})
    with pytest.raises(TemplateError, match=rf"^1:30: replacement .*{re.escape(message)}"):
        vtl(
            "#set($r = $input.params('s').replaceAll('(a)-(b)', $input.params('p')))",
            template_input,
        )


def test_invalid_replacement_is_only_an_error_when_something_matches() -> None:
    assert vtl("#set($s = 'abc')$s.replaceAll('z', '$')") == "abc"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("$m.size()", "3"),
        ("$m.isEmpty()", "false"),
        ("$m.get('a')", "1"),
        ("$m.a", "1"),
        ("$m['b']", "two"),
        ("$m.get('zzz')", ""),
        ("$m.containsKey('c')", "true"),
        ("$m.containsKey('zzz')", "false"),
        ("$m.containsValue('two')", "true"),
        ("$m.keySet()", "[a, b, c]"),
        ("$m.values()", "[1, two, [x, y]]"),
        ("$m.put('a', 9)", "1"),
        ("$m.c.size()", "2"),
        ("$m.c.get(1)", "y"),
        ("$m.c[0]", "x"),
        ("$m.c[-1]", "y"),
        ("$m.c.contains('x')", "true"),
        ("$m.c.indexOf('y')", "1"),
        ("$m.c.isEmpty()", "false"),
        ("$m.c.empty", "false"),
        ("$m.toString()", "{a=1, b=two, c=[x, y]}"),
        ("$m", "{a=1, b=two, c=[x, y]}"),
        ("$m.size", ""),
    ],
)
def test_map_and_list_methods(expression: str, expected: str) -> None:
    assert vtl("#set($m = {'a': 1, 'b': 'two', 'c': ['x', 'y']})" + expression) == expected


def test_map_put_changes_the_map() -> None:
    assert vtl("#set($m = {})#set($ignored = $m.put('k', 'v'))$m") == "{k=v}"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("$context.stage.nope()", r"^1:16: unknown method String\.nope\(\)"),
        ("$context.stage.substring('x')", r"^1:16: String\.substring does not take \(String\)"),
        ("$context.stage.substring(9)", r"^1:16: String\.substring\(9\) is out of range"),
        ("$context.stage.substring(3, 1)", r"^1:16: String\.substring\(3, 1\) is out of range"),
        ("$context.stage.charAt(4)", r"^1:16: String\.charAt\(4\) is out of range"),
        ("$context.stage.replaceAll($missing, 'x')", r"^1:16: String\.replaceAll does not take"),
        ("$context.frobnicate()", r"^1:10: unknown method Map\.frobnicate\(\)"),
        ("#set($l = [1])$l.get(5)", r"^1:18: get\(5\) is out of range"),
        ("#set($l = [1])$l[3]", r"^1:17: index 3 is out of range"),
        ("#set($l = [1])$l.push(2)", r"^1:18: unknown method List\.push\(\)"),
        ("$input.frobnicate()", r"^1:8: unknown method \$input\.frobnicate\(\)"),
        ("$input", r"^1:1: \$input has no text of its own"),
        (
            "#set($s = 'a,b')#set($a = $s.split(','))$a",
            r"^1:41: a Java array \(from split\(\)\) prints",
        ),
        ("#foreach($x in [1])$foreach#end", r"^1:20: \$foreach has no text"),
        ("#set($n = 1)$n.foo()", r"^1:16: unknown method Integer\.foo\(\)"),
    ],
)
def test_method_errors(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        vtl(template)


def test_split_result_is_usable_as_a_list() -> None:
    assert vtl("#set($s = 'a,b')#foreach($p in $s.split(','))<$p>#end") == "<a><b>"


# --- $input ---------------------------------------------------------------------------------

BODY = json.dumps(
    {
        "name": "Ann",
        "quote": 'say "hi"',
        "n": 10,
        "ratio": 1.5,
        "ok": True,
        "nothing": None,
        "obj": {"x": 1, "y": [1, 2]},
        "list": [{"id": "a"}, {"id": "b"}],
        "strange key": "s",
    }
)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$input.json('$.name')", '"Ann"'),
        ("$input.path('$.name')", "Ann"),
        ("$input.json('$.quote')", '"say \\"hi\\""'),
        ("$input.path('$.quote')", 'say "hi"'),
        ("$input.json('$.n')", "10"),
        ("$input.path('$.n')", "10"),
        ("#set($n = $input.path('$.n'))#if($n > 9)big#end", "big"),
        ("$input.json('$.ratio')", "1.5"),
        ("$input.json('$.ok')", "true"),
        ("$input.json('$.nothing')", "null"),
        ("[$input.path('$.nothing')]", "[]"),
        ("$input.json('$.obj')", '{"x":1,"y":[1,2]}'),
        ("$input.path('$.obj')", "{x=1, y=[1,2]}"),
        ("$input.path('$.obj').x", "1"),
        ("$input.path('$.obj').size()", "2"),
        ("$input.json('$.obj.y')", "[1,2]"),
        ("$input.json(\"$.obj['y'][0]\")", "1"),
        ("$input.json('$[\"obj\"].x')", "1"),
        ("$input.json(\"$['strange key']\")", '"s"'),
        ("$input.json('$.list[1]')", '{"id":"b"}'),
        ("$input.json('$.list[-1].id')", '"b"'),
        ("$input.json('$.list[*].id')", '["a","b"]'),
        ("$input.path('$.list[*].id')", '["a","b"]'),
        ("$input.path('$.list[*].id').size()", "2"),
        ("$input.json('$.obj.*')", "[1,[1,2]]"),
        ("$input.path('$.list')", '[{"id":"a"},{"id":"b"}]'),
        ("$input.path('$.list').size()", "2"),
        ("$input.path('$.list').get(0).id", "a"),
        ("#foreach($e in $input.path('$.list'))$e.id#end", "ab"),
        ("$input.json('$.missing')", "null"),
        ("[$input.path('$.missing')]", "[]"),
        ("[$input.path('$.missing.deeper')]", "[]"),
        ("[$input.path('$.list[9]')]", "[]"),
        ('$input.json("$.name")', '"Ann"'),
    ],
)
def test_input_json_and_path(template: str, expected: str) -> None:
    assert vtl(template, with_body(BODY)) == expected


def test_input_json_of_the_whole_body_is_compact_json() -> None:
    rendered = vtl("$input.json('$')", with_body(BODY))
    assert rendered.startswith('{"name":"Ann","quote":"say \\"hi\\"","n":10,')
    assert json.loads(rendered) == json.loads(BODY)


def test_input_path_returns_the_shared_parsed_body() -> None:
    # A change made through $input.path('$') shows in $input.json('$'), as reported for AWS
    # (https://qiita.com/makisyu/items/649f2c1945bde57c129f).
    template = "#set($body = $input.path('$'))#set($body.url = \"u/$body.id\")$input.json('$')"
    assert vtl(template, with_body('{"id": 7}')) == '{"id":7,"url":"u/7"}'


def test_input_body_is_the_raw_payload_even_when_not_json() -> None:
    assert vtl("$input.body", with_body("a=1&b='2'")) == "a=1&b='2'"
    assert vtl("$input.getBody()", with_body("raw")) == "raw"


@pytest.mark.parametrize("template", ["$input.body", "$input.json('$')", "$input.path('$')"])
def test_empty_payload_reads_as_an_empty_object(template: str) -> None:
    # API Gateway substitutes "{}" for an empty body: LocalStack verified it against AWS
    # (https://github.com/localstack/localstack/pull/12413).
    assert vtl(template, with_body("")) == "{}"


@pytest.mark.parametrize(
    ("body", "template", "message"),
    [
        ("not json", "$input.json('$')", r"^1:8: the payload is not valid JSON"),
        ("{'single': 1}", "$input.path('$.single')", r"^1:8: the payload is not valid JSON"),
        ('{"n": NaN}', "$input.path('$.n')", r"^1:8: the payload is not valid JSON"),
        ("{}", "$input.json('$..deep')", r"^1:8: JSONPath '\$\.\.deep': deep scan"),
        ("{}", "$input.json('$.a[?(@.b)]')", r"^1:8: JSONPath .* is not supported"),
        ("{}", "$input.json('a.b')", r"^1:8: JSONPath 'a\.b' must start with \$"),
        ("{}", "$input.json(1)", r"^1:8: \$input\.json needs a JSONPath string, got Integer"),
        ("{}", "$input.path('$.').size()", r"^1:8: JSONPath '\$\.': a name is missing"),
    ],
)
def test_input_errors(body: str, template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        vtl(template, with_body(body))


PARAMS = TemplateInput(
    path={"id": "from-path"},
    querystring={"id": "from-query", "q": "from-query", "empty": ""},
    header={"id": "from-header", "q": "from-header", "Idempotency-Key": "k1", "X-Only": "h"},
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("id", "from-path"),
        ("q", "from-query"),
        ("empty", ""),
        ("X-Only", "h"),
        ("x-only", "h"),
        ("idempotency-key", "k1"),
        ("absent", ""),
    ],
)
def test_input_params_searches_path_then_query_then_header(name: str, expected: str) -> None:
    template_input = TemplateInput(
        path=PARAMS.path, querystring=PARAMS.querystring, header=PARAMS.header
    )
    assert vtl(f"[$input.params('{name}')]", template_input) == f"[{expected}]"


def test_input_params_without_a_name_is_every_parameter() -> None:
    assert vtl("$input.params()", PARAMS) == (
        "{path={id=from-path}, querystring={id=from-query, q=from-query, empty=}, "
        "header={id=from-header, q=from-header, Idempotency-Key=k1, X-Only=h}}"
    )
    assert vtl("$input.params().querystring.keySet()", PARAMS) == "[id, q, empty]"
    assert vtl("[$input.params().header.get('x-only')]", PARAMS) == "[]"
    assert vtl("$input.params().path.id", PARAMS) == "from-path"


# --- Documented examples ---------------------------------------------------------------------
# The AWS developer guide pages these come from (their text is also in the awsdocs GitHub
# repository, amazon-api-gateway-developer-guide, doc_source/*.md):
REFERENCE = "https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-mapping-template-reference.html"
EXAMPLES = "https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-mapping-variable-examples.html"
PHOTOS = "https://docs.aws.amazon.com/apigateway/latest/developerguide/example-photos.html"


def test_documented_context_variables_example() -> None:
    # REFERENCE ("$context Variable Template Example") and EXAMPLES (Example 1).
    template = """{
    "stage" : "$context.stage",
    "request_id" : "$context.requestId",
    "api_id" : "$context.apiId",
    "resource_path" : "$context.resourcePath",
    "resource_id" : "$context.resourceId",
    "http_method" : "$context.httpMethod",
    "source_ip" : "$context.identity.sourceIp",
    "user-agent" : "$context.identity.userAgent",
    "account_id" : "$context.identity.accountId",
    "api_key" : "$context.identity.apiKey",
    "caller" : "$context.identity.caller",
    "user" : "$context.identity.user",
    "user_arn" : "$context.identity.userArn"
}"""
    context: dict[str, object] = {
        "stage": "prod",
        "requestId": "abcdefg-000-000-0000-abcdefg",
        "apiId": "abcd1234",
        "resourcePath": "/",
        "resourceId": "efg567",
        "httpMethod": "GET",
        "identity": {
            "sourceIp": "192.0.2.1",
            "userAgent": "curl/7.84.0",
            "accountId": "111122223333",
            "apiKey": "MyTestKey",
            "caller": "ABCD-0000-12345",
            "user": "ABCD-0000-12345",
            "userArn": "arn:aws:sts::111122223333:assumed-role/Admin/carlos-salazar",
        },
    }
    # The documented output, written there as a JavaScript object literal.
    assert json.loads(render(template, TemplateInput(context=context))) == {
        "stage": "prod",
        "request_id": "abcdefg-000-000-0000-abcdefg",
        "api_id": "abcd1234",
        "resource_path": "/",
        "resource_id": "efg567",
        "http_method": "GET",
        "source_ip": "192.0.2.1",
        "user-agent": "curl/7.84.0",
        "account_id": "111122223333",
        "api_key": "MyTestKey",
        "caller": "ABCD-0000-12345",
        "user": "ABCD-0000-12345",
        "user_arn": "arn:aws:sts::111122223333:assumed-role/Admin/carlos-salazar",
    }


ALL_PARAMS_TEMPLATE = """#set($allParams = $input.params())
{
  "params" : {
    #foreach($type in $allParams.keySet())
    #set($params = $allParams.get($type))
    "$type" : {
      #foreach($paramName in $params.keySet())
      "$paramName" : "$util.escapeJavaScript($params.get($paramName))"
      #if($foreach.hasNext),#end
      #end
    }
    #if($foreach.hasNext),#end
    #end
  }
}
"""


def test_documented_parameter_mapping_example() -> None:
    # REFERENCE ("Parameter Mapping Template Example") and EXAMPLES (Example 2).
    template_input = TemplateInput(
        path={"petId": "7"},
        querystring={"q": 'a "quoted" /path', "page": "2"},
        header={"Accept": "*/*"},
    )
    rendered = render(ALL_PARAMS_TEMPLATE, template_input)
    assert json.loads(rendered) == {
        "params": {
            "path": {"petId": "7"},
            "querystring": {"q": 'a "quoted" /path', "page": "2"},
            "header": {"Accept": "*/*"},
        }
    }
    # Lines with only directives vanish; "#if($foreach.hasNext),#end" lines hold text, so
    # they keep their indentation (and print "," between entries).
    assert rendered == (
        '{\n  "params" : {\n    "path" : {\n      "petId" : "7"\n      \n    }\n    ,\n'
        '    "querystring" : {\n      "q" : "a \\"quoted\\" \\/path"\n      ,\n'
        '      "page" : "2"\n      \n    }\n    ,\n    "header" : {\n'
        '      "Accept" : "*\\/*"\n      \n    }\n    \n  }\n}\n'
    )


def test_documented_parameter_mapping_example_breaks_on_an_apostrophe() -> None:
    # REFERENCE ($util table): escapeJavaScript turns ' into \', which JSON does not allow;
    # the example above does not undo it, so an apostrophe makes its output invalid JSON.
    rendered = render(ALL_PARAMS_TEMPLATE, TemplateInput(querystring={"q": "it's"}))
    assert '"q" : "it\\\'s"' in rendered
    with pytest.raises(json.JSONDecodeError):
        json.loads(rendered)


def test_documented_input_json_example() -> None:
    # REFERENCE ("Example JSON Mapping Template Using $input").
    template = """{
    "name" : "$input.params('name')",
    "body" : $input.json('$')
}"""
    template_input = TemplateInput(body='{"a": [1, 2], "b": "x"}', querystring={"name": "me"})
    assert json.loads(render(template, template_input)) == {
        "name": "me",
        "body": {"a": [1, 2], "b": "x"},
    }


def test_documented_input_json_subsection_examples() -> None:
    # REFERENCE ("Example Mapping Template Using $input"): a property of the body, then the
    # same wrapped in $util.escapeJavaScript.
    template_input = TemplateInput(body='{"mykey": {"k": "v"}}', querystring={"name": "me"})
    plain = """{
    "name" : "$input.params('name')",
    "body" : $input.json('$.mykey')
}"""
    escaped = """{
    "name" : "$input.params('name')",
    "body" : $util.escapeJavaScript($input.json('$.mykey'))
}"""
    assert json.loads(render(plain, template_input)) == {"name": "me", "body": {"k": "v"}}
    assert render(escaped, template_input) == (
        '{\n    "name" : "me",\n    "body" : {\\"k\\":\\"v\\"}\n}'
    )


def test_documented_request_and_response_example() -> None:
    # REFERENCE ("Example Request and Response Using $input"). The documented response shows
    # "things" unescaped, but escapeJavaScript escapes every '"' (commons-lang), so what API
    # Gateway sends for that line is the escaped text below; "id" and "count" match the page.
    template = """{
    "id" : "$input.params('id')",
    "count" : "$input.path('$.things').size()",
    "things" : $util.escapeJavaScript($input.json('$.things'))
}"""
    body = """{
    "things" : {
        "1" : {},
        "2" : {},
        "3" : {}
    }
}"""
    rendered = render(template, TemplateInput(body=body, path={"id": "abc"}))
    assert rendered == (
        '{\n    "id" : "abc",\n    "count" : "3",\n'
        '    "things" : {\\"1\\":{},\\"2\\":{},\\"3\\":{}}\n}'
    )


def test_documented_pets_size_and_count() -> None:
    # REFERENCE ($input.path row): $input.path('$.pets') of three pets has size 3. Older
    # revisions of the page wrote .count(), which java.util.List does not have.
    body = json.dumps(
        {
            "pets": [
                {"id": 1, "type": "dog", "price": 249.99},
                {"id": 2, "type": "cat", "price": 124.99},
                {"id": 3, "type": "fish", "price": 0.99},
            ]
        }
    )
    assert render("$input.path('$.pets').size()", with_body(body)) == "3"
    assert render("$input.path('$.pets')[0].price", with_body(body)) == "249.99"
    with pytest.raises(TemplateError, match=r"unknown method List\.count\(\)"):
        render("$input.path('$.pets').count()", with_body(body))


def test_documented_escape_javascript_idiom() -> None:
    # REFERENCE ($util table, escapeJavaScript): $util.escapeJavaScript(data).replaceAll("\\'","'")
    template = '"$util.escapeJavaScript($input.params(\'data\')).replaceAll("\\\\\'","\'")"'
    rendered = render(template, with_query(data='it\'s "quoted"'))
    assert rendered == '"it\'s \\"quoted\\""'
    assert json.loads(rendered) == 'it\'s "quoted"'


def test_documented_parse_json_example() -> None:
    # REFERENCE ($util table, parseJson): payload, template and output exactly as documented.
    payload = '{"errorMessage":"{\\"key1\\":\\"var1\\",\\"key2\\":{\\"arr\\":[1,2,3]}}"}'
    template = (
        "#set ($errorMessageObj = $util.parseJson($input.path('$.errorMessage')))\n"
        "{\n"
        '   "errorMessageObjKey2ArrVal" : $errorMessageObj.key2.arr[0]\n'
        "}\n"
    )
    assert render(template, with_body(payload)) == ('{\n   "errorMessageObjKey2ArrVal" : 1\n}\n')


PHOTOS_DATA = {
    "photos": {
        "page": 1,
        "pages": "1234",
        "perpage": 100,
        "total": "123398",
        "photo": [
            {
                "id": "12345678901",
                "owner": "23456789@A12",
                "secret": "abc123d456",
                "server": "1234",
                "farm": 1,
                "title": "Sample photo 1",
                "ispublic": 1,
                "isfriend": 0,
                "isfamily": 0,
            },
            {
                "id": "23456789012",
                "owner": "34567890@B23",
                "secret": "bcd234e567",
                "server": "2345",
                "farm": 2,
                "title": "Sample photo 2",
                "ispublic": 1,
                "isfriend": 0,
                "isfamily": 0,
            },
        ],
    }
}


def test_documented_photos_input_mapping_template() -> None:
    # PHOTOS ("Input Mapping Template"): it copies every field, so the output is the input.
    template = """#set($inputRoot = $input.path('$'))
{
  "photos": {
    "page": $inputRoot.photos.page,
    "pages": "$inputRoot.photos.pages",
    "perpage": $inputRoot.photos.perpage,
    "total": "$inputRoot.photos.total",
    "photo": [
#foreach($elem in $inputRoot.photos.photo)
      {
        "id": "$elem.id",
        "owner": "$elem.owner",
        "secret": "$elem.secret",
        "server": "$elem.server",
        "farm": $elem.farm,
        "title": "$elem.title",
        "ispublic": $elem.ispublic,
        "isfriend": $elem.isfriend,
        "isfamily": $elem.isfamily
      }#if($foreach.hasNext),#end
\t\t\t
#end
    ]
  }
}"""
    assert json.loads(render(template, with_body(json.dumps(PHOTOS_DATA)))) == PHOTOS_DATA


def test_documented_photos_output_mapping_template() -> None:
    # PHOTOS ("Output Mapping Template" and "Transformed Data").
    template = """#set($inputRoot = $input.path('$'))
{
  "photos": [
#foreach($elem in $inputRoot.photos.photo)
    {
      "id": "$elem.id",
      "owner": "$elem.owner",
      "title": "$elem.title",
      "ispublic": $elem.ispublic,
      "isfriend": $elem.isfriend,
      "isfamily": $elem.isfamily
    }#if($foreach.hasNext),#end
\t\t
#end
  ]
}"""
    assert json.loads(render(template, with_body(json.dumps(PHOTOS_DATA)))) == {
        "photos": [
            {
                "id": "12345678901",
                "owner": "23456789@A12",
                "title": "Sample photo 1",
                "ispublic": 1,
                "isfriend": 0,
                "isfamily": 0,
            },
            {
                "id": "23456789012",
                "owner": "34567890@B23",
                "title": "Sample photo 2",
                "ispublic": 1,
                "isfriend": 0,
                "isfamily": 0,
            },
        ]
    }


def test_documented_foreach_over_the_whole_payload() -> None:
    # The same pattern over a top-level array: #foreach over $input.path('$').
    template = '[#foreach($e in $input.path(\'$\')){"id": "$e.id"}#if($foreach.hasNext),#end#end]'
    assert json.loads(render(template, with_body('[{"id": 1}, {"id": 2}]'))) == [
        {"id": "1"},
        {"id": "2"},
    ]


# --- The project's own templates ---------------------------------------------------------------

REQUEST_CONTEXT: dict[str, object] = {
    "stage": "prod",
    "httpMethod": "POST",
    "resourcePath": "/events",
    "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
    "isCanaryRequest": "false",
    "identity": {"apiKeyId": "k3y1d0"},
}

BODIES = [
    '{"name": "plain"}',
    '{"quote": "say \\"hi\\"", "apostrophe": "it\'s"}',
    '{"path": "C:\\\\temp\\\\new", "slash": "a/b"}',
    '{"text": "caf\u00e9 \u4e2d\u6587 \U0001f600"}',
    '{\n  "multi": "line"\n}\n',
    "not JSON at all: ' \" \\ \u00e9",
]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize(
    "query",
    [
        {},
        {"limit": "10"},
        {"next": "it's", "o'key": "v'al"},
        {"q": 'quote " and \\ backslash', "u": "caf\u00e9 \U0001f600", "nl": "a\nb"},
    ],
)
def test_default_request_template(body: str, query: dict[str, str]) -> None:
    template_input = TemplateInput(
        body=body,
        querystring=query,
        header={"Idempotency-Key": "key-'1'", "Content-Type": "application/json"},
        context=REQUEST_CONTEXT,
    )
    event = json.loads(render(api_spec.DEFAULT_REQUEST_TEMPLATE, template_input))
    assert base64.b64decode(event.pop("bodyBase64"), validate=True) == body.encode("utf-8")
    assert event == {
        "stage": "prod",
        "method": "POST",
        "resourcePath": "/events",
        "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        "isCanaryRequest": "false",
        "query": query,
        "idempotencyKey": "key-'1'",
        "callerId": "k3y1d0",
    }


def test_default_request_template_text() -> None:
    template_input = TemplateInput(
        body='{"a": 1}',
        querystring={"limit": "5", "next": "it's"},
        context=REQUEST_CONTEXT,
    )
    assert render(api_spec.DEFAULT_REQUEST_TEMPLATE, template_input) == (
        "{\n"
        '  "stage": "prod",\n'
        '  "method": "POST",\n'
        '  "resourcePath": "/events",\n'
        '  "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",\n'
        '  "isCanaryRequest": "false",\n'
        '  "bodyBase64": "eyJhIjogMX0=",\n'
        '  "query": {"limit": "5", "next": "it\'s"},\n'
        '  "idempotencyKey": "",\n'
        '  "callerId": "k3y1d0"\n'
        "}\n"
    )


def test_default_request_template_without_idempotency_key_or_body() -> None:
    event = json.loads(
        render(api_spec.DEFAULT_REQUEST_TEMPLATE, TemplateInput(context=REQUEST_CONTEXT))
    )
    assert event["idempotencyKey"] == ""
    assert event["query"] == {}
    # API Gateway hands the template "{}" for an empty body, so the function receives the
    # bytes of "{}", not an empty body (see test_empty_payload_reads_as_an_empty_object).
    assert base64.b64decode(event["bodyBase64"]) == b"{}"


@pytest.mark.parametrize("name", ["Idempotency-Key", "idempotency-key", "IDEMPOTENCY-KEY"])
def test_default_request_template_header_name_case(name: str) -> None:
    # HTTP/2 clients send header names in lower case.
    template_input = TemplateInput(header={name: "k-1"}, context=REQUEST_CONTEXT)
    event = json.loads(render(api_spec.DEFAULT_REQUEST_TEMPLATE, template_input))
    assert event["idempotencyKey"] == "k-1"


def test_the_idempotency_key_comes_from_the_header_only() -> None:
    # $input.params('Idempotency-Key') would take a query or path parameter of that name too.
    template_input = TemplateInput(
        querystring={"Idempotency-Key": "from-query"},
        path={"Idempotency-Key": "from-path"},
        context=REQUEST_CONTEXT,
    )
    event = json.loads(render(api_spec.DEFAULT_REQUEST_TEMPLATE, template_input))
    assert event["idempotencyKey"] == ""


def test_without_api_keys_the_caller_id_is_empty() -> None:
    context = {key: value for key, value in REQUEST_CONTEXT.items() if key != "identity"}
    event = json.loads(render(api_spec.DEFAULT_REQUEST_TEMPLATE, TemplateInput(context=context)))
    assert event["callerId"] == ""


def test_default_request_template_without_canary_context() -> None:
    context = {key: value for key, value in REQUEST_CONTEXT.items() if key != "isCanaryRequest"}
    event = json.loads(render(api_spec.DEFAULT_REQUEST_TEMPLATE, TemplateInput(context=context)))
    assert event["isCanaryRequest"] == ""


def responses_by_status() -> dict[str, api_spec.IntegrationResponse]:
    return {response.status_code: response for response in api_spec.INTEGRATION_RESPONSES}


def lambda_error(message: str) -> str:
    """The body Lambda returns for an unhandled Python exception."""
    return json.dumps(
        {
            "errorMessage": message,
            "errorType": "InvalidRequestError",
            "requestId": "0f9c1c3e-4a2b-4b8e-9d55-7c1f0a1b2c3d",
            "stackTrace": ['  File "/var/task/handler.py", line 1, in handler\n'],
        }
    )


ERROR_BODIES = [
    {"message": "body is not valid JSON: Expecting value at line 1 column 1"},
    {"message": "field 'name' must be a string, got 3", "field": "name"},
    {"message": 'quote " backslash \\ slash / caf\u00e9 \U0001f600 newline \n'},
]


@pytest.mark.parametrize("error_body", ERROR_BODIES)
def test_the_unavailable_template_passes_the_json_after_the_prefix(
    error_body: dict[str, str],
) -> None:
    prefix = api_spec.UNAVAILABLE_PREFIX
    response = responses_by_status()["503"]
    assert response.template is not None
    assert response.selection_pattern is not None
    message = prefix + json.dumps(error_body)
    assert re.fullmatch(response.selection_pattern, message)
    rendered = render(response.template, TemplateInput(body=lambda_error(message)))
    assert rendered == json.dumps(error_body)
    assert json.loads(rendered) == error_body


@pytest.mark.parametrize(
    "message",
    [
        "Task timed out after 3.00 seconds",
        "An error occurred (AccessDeniedException) when calling the PutItem operation: 'no'",
        'KeyError: "stage"',
    ],
)
def test_internal_error_response_template(message: str) -> None:
    response = responses_by_status()["500"]
    assert response.template is not None
    assert response.selection_pattern is not None
    assert re.fullmatch(response.selection_pattern, message)
    template_input = TemplateInput(
        body=lambda_error(message), context={"requestId": "c6af9ac6-7b61-11e6"}
    )
    rendered = render(response.template, template_input)
    assert json.loads(rendered) == {"message": "Internal error", "requestId": "c6af9ac6-7b61-11e6"}
    assert message not in rendered


def reply(status: object, body: object) -> str:
    return json.dumps({"statusCode": status, "body": body})


def test_a_200_reply_answers_its_body() -> None:
    body = {"id": "e1", "servedBy": {"stage": "prod", "version": "4"}, "note": 'caf\u00e9 "'}
    rendered, status = render_response(
        responses_by_status()["200"].template, TemplateInput(body=reply(200, body))
    )
    assert status is None
    assert json.loads(rendered) == body


@pytest.mark.parametrize("code", [400, 404, 409, 413, 422])
@pytest.mark.parametrize("body", ERROR_BODIES)
def test_a_client_error_reply_sets_its_status_and_answers_its_body(
    code: int, body: dict[str, str]
) -> None:
    # A client mistake is a reply, not a raised error, so Lambda does not count it in Errors.
    rendered, status = render_response(
        responses_by_status()["200"].template, TemplateInput(body=reply(code, body))
    )
    assert status == code
    assert json.loads(rendered) == body
    assert str(code) in api_spec.METHOD_RESPONSE_STATUSES


@pytest.mark.parametrize(
    "result",
    [
        pytest.param(json.loads(reply(418, {"message": "teapot"})), id="undeclared status"),
        pytest.param(json.loads(reply(500, {"message": "mine"})), id="server status"),
        pytest.param(json.loads(reply("400.0", {})), id="not a status"),
        pytest.param({"id": "e1"}, id="no statusCode"),
    ],
)
def test_a_reply_that_breaks_the_contract_is_a_500(result: dict[str, object]) -> None:
    rendered, status = render_response(
        responses_by_status()["200"].template,
        TemplateInput(body=json.dumps(result), context={"requestId": "req-2"}),
    )
    assert status == 500
    assert json.loads(rendered) == {"message": "Internal error", "requestId": "req-2"}


@pytest.mark.parametrize(
    "error",
    [
        pytest.param({"errorMessage": "", "errorType": "MemoryError"}, id="empty message"),
        pytest.param({"errorType": "Runtime.ExitError"}, id="no message"),
    ],
)
def test_an_error_no_pattern_selects_is_a_500_without_the_stack_trace(
    error: dict[str, str],
) -> None:
    # An empty errorMessage looks like a success to the selection patterns, so the default
    # response must recognise Lambda's error shape itself.
    body = json.dumps({**error, "stackTrace": ['  File "/var/task/handler.py", line 9\n']})
    assert not any(
        re.search(r.selection_pattern, error.get("errorMessage", ""))
        for r in api_spec.INTEGRATION_RESPONSES
        if r.selection_pattern is not None
    )
    rendered, status = render_response(
        responses_by_status()["200"].template,
        TemplateInput(body=body, context={"requestId": "req-1"}),
    )
    assert status == 500
    assert json.loads(rendered) == {"message": "Internal error", "requestId": "req-1"}
    assert "stackTrace" not in rendered
    assert "MemoryError" not in rendered


# --- Malformed templates ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "position", "reason"),
    [
        ("a\n#if(true)\nx", "2:1", "#if is not closed by #end"),
        ("#foreach($i in [1])\n  #if(true)x\n#end", "1:1", "#foreach is not closed by #end"),
        ("x #end", "1:3", "#end without a matching #if or #foreach"),
        ("line\n  #else", "2:3", "#else without a matching #if"),
        ("#foreach($i in [1])#elseif(true)#end", "1:20", "#elseif without a matching #if"),
        ("#if(true)#else#elseif(true)#end", "1:15", "#elseif after #else"),
        ("#if(true)#else#else#end", "1:15", "#else after #else"),
        ("#set($x)", "1:1", "bad #set: expected #set($name = value)"),
        ("#set(x = 1)", "1:1", "bad #set: expected #set($name = value)"),
        ("#set($x == 1)", "1:1", "bad #set: expected #set($name = value)"),
        ("#set($x.y() = 1)", "1:1", "bad #set: cannot assign to $x.y()"),
        ("#set($x = )", "1:11", "expected a value, found ')'"),
        ("#set($x = 1", "1:1", "#set: expected ')' at the end of the template"),
        ("#set($x = null)", "1:11", "Velocity 1.7 has no null literal"),
        ("#set($x = 'abc)", "1:11", "unterminated string literal"),
        ('\n\n  $a.b("unterminated)', "3:8", "unterminated string literal"),
        ("#set", "1:1", "#set must be followed by '('"),
        ("#if x", "1:1", "#if must be followed by '('"),
        ("#if(true x", "1:1", "#if: expected ')'"),
        ("#if()#end", "1:5", "expected a value, found ')#end'"),
        ("#foreach($x $list)#end", "1:1", "bad #foreach: expected #foreach($item in list)"),
        ("#foreach($x.y in $list)#end", "1:1", "bad #foreach: expected #foreach($item in list)"),
        ("$util.escapeJavaScript('a'", "1:23", "unterminated call of escapeJavaScript(: no ')'"),
        ("$a.b('x' 'y')", "1:10", "expected ',' or ')' in the arguments of b()"),
        ("#set($l = [1, 2)", "1:16", "expected ',' or ']' in a list"),
        ("#set($m = {'a' 1})", "1:16", "expected ':' in a map"),
        ("a #* never closed", "1:3", "unterminated block comment"),
        ("#[[ never closed", "1:1", "unterminated #[[ ]]# block"),
        ("#macro(m)x#end", "1:1", "#macro is not supported"),
        ("#define($d)x#end", "1:1", "#define is not supported"),
        ("#foreach($i in [1])#break#end", "1:20", "#break is not supported"),
        ("#include('x')", "1:1", "#include is not supported"),
        ("  $util.nope('x')", "1:9", "unknown method $util.nope() called with (String)"),
        ("\n$context.stage.nope()", "2:16", "unknown method String.nope() called with ()"),
        ("${a.b('x'}", "1:10", "expected ',' or ')' in the arguments of b()"),
        ("$a.b($)", "1:6", "'$' is not followed by a reference name"),
        ("$context.stage(x)", "1:16", "expected a value, found 'x)'"),
        ("#set(${x = 1)", "1:6", "unterminated ${...} reference"),
    ],
)
def test_malformed_templates(template: str, position: str, reason: str) -> None:
    with pytest.raises(TemplateError) as caught:
        vtl(template)
    line, column = position.split(":")
    assert (caught.value.line, caught.value.column) == (int(line), int(column))
    assert caught.value.reason.startswith(reason)
    assert str(caught.value) == f"{position}: {caught.value.reason}"


def test_runtime_errors_name_the_position_in_nested_strings() -> None:
    template = '#set($x = "ok")\n#set($y = "$x.substring(5)")'
    with pytest.raises(TemplateError, match=r"^2:15: String\.substring\(5\) is out of range"):
        vtl(template)
