"""The component as other languages see it: the schema its plugin serves, the examples that use
it from YAML and TypeScript, and a construction through Pulumi's component provider.

The schema is generated offline, from what ``components/__main__.py`` hands to
``component_provider_host``, and compared with the committed snapshot ``components/schema.json``.
When the component's inputs or outputs change on purpose, regenerate the snapshot with

    UPDATE_SCHEMA=1 venv/bin/pytest tests/test_schema.py

and commit it with the change (``pulumi package get-schema ./components`` shows the same schema
with the Pulumi CLI).

The examples are checked against the committed schema without npm or the CLI: every property
they set on the component must exist among its inputs with a value of the right type, and a
reference to another resource's output (``${table.arn}`` in YAML, ``table.arn`` in TypeScript)
is accepted only where the schema takes an Output (the property is not ``plain``). The YAML is
parsed; for TypeScript, a small parser reads the object literal passed to
``new VersionedLambdaApi(...)``: strings, numbers, booleans, arrays, objects, comments and dotted
references. Anything else in that literal (a spread, a call, a template string) fails the test
rather than being guessed at.
"""

import ast
import difflib
import json
import os
import re
import runpy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi.provider.experimental
import pytest
import yaml
from pulumi.provider.experimental.component import ComponentProvider

from tests.conftest import PROJECT, ROOT
from versioned_lambda_api import VersionedLambdaApi, __version__
from versioned_lambda_api.args import parse_args
from versioned_lambda_api.component import PACKAGE, TYPE_TOKEN
from versioned_lambda_api.testing import start_mocks

PLUGIN = ROOT / "components"
SCHEMA_PATH = PLUGIN / "schema.json"
YAML_EXAMPLE = ROOT / "examples" / "yaml"
TS_EXAMPLE = ROOT / "examples" / "typescript"
TABLE_NAME = "events-0a1b2c3"
TABLE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/events-0a1b2c3"


@dataclass(frozen=True)
class Reference:
    """Another resource's output (``table.arn``): known only at deploy time."""

    text: str


# --- The plugin and its schema -----------------------------------------------------------------


def hosted(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the plugin's entry point passes to ``component_provider_host`` when Pulumi runs it."""
    calls: list[dict[str, Any]] = []

    def record(components: list[type[pulumi.ComponentResource]], name: str, **rest: Any) -> None:
        calls.append({"components": components, "name": name, **rest})

    monkeypatch.setattr(pulumi.provider.experimental, "component_provider_host", record)
    runpy.run_path(str(PLUGIN / "__main__.py"), run_name="__main__")
    (call,) = calls
    return call


def served_schema(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    call = hosted(monkeypatch)
    provider = ComponentProvider(call["components"], call["name"], version=call["version"])
    assert provider.schema is not None
    schema: dict[str, Any] = json.loads(provider.schema)
    return schema


def schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2) + "\n"


def committed_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


def test_the_plugin_is_run_by_python_and_installs_this_distribution() -> None:
    assert yaml.safe_load((PLUGIN / "PulumiPlugin.yaml").read_text()) == {"runtime": "python"}
    requirements = [
        line.strip()
        for line in (PLUGIN / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # The distribution itself, so its dependencies are declared once, in pyproject.toml.
    assert requirements == ["."]


def test_the_entry_point_hosts_the_component_under_its_package_name_and_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    call = hosted(monkeypatch)
    assert call == {"components": [VersionedLambdaApi], "name": PACKAGE, "version": __version__}
    assert f"{PACKAGE}:index:{VersionedLambdaApi.__name__}" == TYPE_TOKEN


def test_the_committed_schema_is_the_one_the_plugin_serves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served = served_schema(monkeypatch)
    if os.environ.get("UPDATE_SCHEMA"):
        SCHEMA_PATH.write_text(schema_text(served))
    committed = committed_schema()
    if served != committed:
        diff = difflib.unified_diff(
            schema_text(committed).splitlines(),
            schema_text(served).splitlines(),
            "components/schema.json (committed)",
            "schema the plugin serves",
            lineterm="",
        )
        pytest.fail(
            "The component's schema changed. If that is intended, regenerate the snapshot with "
            "`UPDATE_SCHEMA=1 venv/bin/pytest tests/test_schema.py` and commit it:\n"
            + "\n".join(diff),
            pytrace=False,
        )


def test_the_schema_offers_code_path_beside_code_and_the_outputs_per_stage() -> None:
    schema = committed_schema()
    component = schema["resources"][TYPE_TOKEN]
    inputs = component["inputProperties"]
    assert inputs["codePath"]["type"] == "string"
    assert inputs["code"]["$ref"] == "pulumi.json#/Archive"
    assert sorted(component["requiredInputs"]) == ["handler", "routes", "stages"]
    assert component["properties"]["stageUrls"]["additionalProperties"]["type"] == "string"
    canary_mode = schema["types"][f"{PACKAGE}:index:CanaryMode"]
    assert [member["value"] for member in canary_mode["enum"]] == ["stage", "alias"]


# --- Checking a program's properties against the schema ----------------------------------------


def schema_problems(value: Any, prop: dict[str, Any], path: str) -> list[str]:
    """Every way ``value`` does not fit the schema property ``prop``."""
    if isinstance(value, Reference):
        if prop.get("plain"):
            return [f"{path} must be known when the program runs, got the output {value.text}"]
        return []
    ref = prop.get("$ref", "")
    if ref.startswith("#/types/"):
        return _type_problems(value, committed_schema()["types"][ref[len("#/types/") :]], path)
    if ref:
        return [f"{path}: no offline check for {ref}"]
    kind = prop["type"]
    if kind == "array":
        if not isinstance(value, list):
            return [f"{path} must be a list, got {value!r}"]
        return [
            problem
            for index, item in enumerate(value)
            for problem in schema_problems(item, prop["items"], f"{path}[{index}]")
        ]
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{path} must be an object, got {value!r}"]
        return [
            problem
            for key, item in value.items()
            for problem in schema_problems(item, prop["additionalProperties"], f"{path}.{key}")
        ]
    fits = {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
    }[kind]
    return [] if fits else [f"{path} must be a {kind}, got {value!r}"]


def _type_problems(value: Any, typ: dict[str, Any], path: str) -> list[str]:
    if "enum" in typ:
        allowed = [member["value"] for member in typ["enum"]]
        return [] if value in allowed else [f"{path} must be one of {allowed}, got {value!r}"]
    return properties_problems(value, typ["properties"], typ.get("required", []), path)


def properties_problems(
    value: Any, properties: dict[str, Any], required: list[str], path: str
) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path} must be an object, got {value!r}"]
    problems = [f"{path}.{key} is required" for key in required if key not in value]
    for key, item in value.items():
        if key not in properties:
            problems.append(f"{path} has no input {key!r}; the schema has {sorted(properties)}")
        else:
            problems += schema_problems(item, properties[key], f"{path}.{key}")
    return problems


def component_problems(properties: Any, path: str) -> list[str]:
    component = committed_schema()["resources"][TYPE_TOKEN]
    problems = properties_problems(
        properties, component["inputProperties"], component["requiredInputs"], path
    )
    if isinstance(properties, dict) and ("code" in properties) == ("codePath" in properties):
        problems.append(f"{path} must set exactly one of code and codePath")
    return problems


def test_the_check_refuses_what_a_consumer_could_get_wrong() -> None:
    """The checker itself: a misspelt key, a wrong type, an output where a plain value is
    needed, an unknown enum value and a missing required key are each reported."""
    properties = {
        "codePath": "../../function",
        "handler": Reference("config.handler"),
        "memorySize": 256.5,
        "routes": [{"path": "events", "method": "GET", "template": "x"}],
        "stages": [{"name": "dev", "canaryMode": "weighted"}],
        "environment": {"TABLE_NAME": Reference("table.name"), "SHARDS": 4},
    }
    assert component_problems(properties, "api") == [
        "api.handler must be known when the program runs, got the output config.handler",
        "api.memorySize must be a integer, got 256.5",
        "api.routes[0] has no input 'template'; the schema has "
        "['method', 'path', 'requestTemplate']",
        "api.stages[0].alias is required",
        "api.stages[0].canaryMode must be one of ['stage', 'alias'], got 'weighted'",
        "api.environment.SHARDS must be a string, got 4",
    ]
    assert component_problems({**properties, "code": "x"}, "api")[-1] == (
        "api must set exactly one of code and codePath"
    )


# --- The YAML example ------------------------------------------------------------------------


def yaml_values(value: Any) -> Any:
    """The program's values, with ``${resource.output}`` interpolations as references."""
    if isinstance(value, dict):
        return {key: yaml_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [yaml_values(item) for item in value]
    if isinstance(value, str) and "${" in value:
        return Reference(value)
    return value


def yaml_component() -> tuple[dict[str, Any], dict[str, Any]]:
    """The YAML program and the properties of its one VersionedLambdaApi."""
    program = yaml.safe_load((YAML_EXAMPLE / "Pulumi.yaml").read_text())
    (resource,) = [
        resource for resource in program["resources"].values() if resource["type"] == TYPE_TOKEN
    ]
    return program, yaml_values(resource["properties"])


def test_the_yaml_example_uses_the_plugin_in_this_repository() -> None:
    program, _ = yaml_component()
    assert program["runtime"] == "yaml"
    assert (YAML_EXAMPLE / program["packages"][PACKAGE]).resolve() == PLUGIN


def test_every_property_the_yaml_example_sets_fits_the_schema() -> None:
    _, properties = yaml_component()
    assert component_problems(properties, "resources.api.properties") == []
    assert properties["environment"]["TABLE_NAME"] == Reference("${events.name}")


# --- The TypeScript example ------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s+|//[^\n]*|/\*.*?\*/
    |(?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    |(?P<number>-?\d+(?:\.\d+)?)
    |(?P<name>[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)
    |(?P<punct>[{}\[\]:,)])""",
    re.VERBOSE | re.DOTALL,
)


def ts_tokens(source: str) -> Iterator[tuple[str, str]]:
    """(kind, text) of each token; comments and whitespace are dropped, anything the grammar
    does not know (a spread, a call, a template string) stops the parse."""
    position = 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None:
            raise ValueError(f"cannot read {source[position : position + 30]!r}")
        position = match.end()
        if match.lastgroup is not None:
            yield match.lastgroup, match.group(match.lastgroup)


class TsLiteral:
    """A recursive-descent reader of one TypeScript object literal; it reads tokens only as far
    as the literal goes, so the rest of the file may hold anything."""

    def __init__(self, source: str) -> None:
        self.tokens = ts_tokens(source)
        self.peeked: tuple[str, str] | None = None

    def peek(self) -> str:
        if self.peeked is None:
            self.peeked = next(self.tokens)
        return self.peeked[1]

    def next(self) -> tuple[str, str]:
        self.peek()
        assert self.peeked is not None
        token, self.peeked = self.peeked, None
        return token

    def expect(self, text: str) -> None:
        kind, found = self.next()
        if found != text or kind != "punct":
            raise ValueError(f"expected {text!r}, got {found!r}")

    def value(self) -> Any:
        kind, text = self.next()
        if kind == "string":
            # The escapes a plain JavaScript string shares with Python's (\n, \', \u00e9).
            unquoted: str = ast.literal_eval(text)
            return unquoted
        if kind == "number":
            return float(text) if "." in text else int(text)
        if kind == "name":
            return {"true": True, "false": False}.get(text, Reference(text))
        if text == "[":
            return self.sequence("]", self.value)
        if text == "{":
            return dict(self.sequence("}", self.entry))
        raise ValueError(f"unexpected {text!r}")

    def entry(self) -> tuple[str, Any]:
        kind, key = self.next()
        if kind not in ("name", "string") or "." in key:
            raise ValueError(f"expected a property name, got {key!r}")
        self.expect(":")
        return (key[1:-1] if kind == "string" else key), self.value()

    def sequence(self, close: str, item: Any) -> list[Any]:
        items: list[Any] = []
        while self.peek() != close:
            items.append(item())
            if self.peek() != close:
                self.expect(",")
        self.next()
        return items


def ts_component_args(source: str) -> Any:
    """The args literal of the one ``new VersionedLambdaApi(name, {...})`` in ``source``."""
    (match,) = re.finditer(r"new\s+(?:[\w$]+\.)?VersionedLambdaApi\(\s*(['\"]).*?\1\s*,", source)
    reader = TsLiteral(source[match.end() :])
    args = reader.value()
    if reader.next()[1] != ")":
        raise ValueError("expected ')' after the args literal")
    return args


def test_the_typescript_reader_reads_literals_and_refuses_what_it_cannot_judge() -> None:
    source = """new api.VersionedLambdaApi("x", {
        a: 'it\\'s', "b": [1, 2.5, true], // comment
        c: { d: table.arn, /* note */ }, })"""
    assert ts_component_args(source) == {
        "a": "it's",
        "b": [1, 2.5, True],
        "c": {"d": Reference("table.arn")},
    }
    for unreadable in ("{ ...base }", "{ a: f(1) }", "{ a: `x${y}` }", "{ a: 1 + 2 }"):
        with pytest.raises(ValueError, match="cannot read"):
            ts_component_args(f'new VersionedLambdaApi("x", {unreadable})')


def test_the_typescript_example_imports_the_generated_sdk_the_package_adds() -> None:
    project = yaml.safe_load((TS_EXAMPLE / "Pulumi.yaml").read_text())
    assert project["runtime"]["name"] == "nodejs"
    assert (TS_EXAMPLE / project["packages"][PACKAGE]).resolve() == PLUGIN
    dependencies = json.loads((TS_EXAMPLE / "package.json").read_text())["dependencies"]
    # Where `pulumi package add` generates the SDK and how it names it (no namespace: @pulumi).
    assert dependencies[f"@pulumi/{PACKAGE}"] == f"file:sdks/{PACKAGE}"
    assert f'from "@pulumi/{PACKAGE}"' in (TS_EXAMPLE / "index.ts").read_text()


def test_every_property_the_typescript_example_sets_fits_the_schema() -> None:
    properties = ts_component_args((TS_EXAMPLE / "index.ts").read_text())
    assert component_problems(properties, "VersionedLambdaApi args") == []
    assert properties["policyStatements"][0]["resources"] == [Reference("table.arn")]


# --- Through Pulumi's component provider -------------------------------------------------------


def resolved(value: Any, outputs: bool = True) -> Any:
    """The example's values as the provider hands them to the component at deploy time: a
    reference is an Output of the table's name or ARN (or, with ``outputs`` false, the value
    itself, for checks that run outside a Pulumi program)."""
    if isinstance(value, Reference):
        known = TABLE_ARN if value.text.rstrip("}").endswith(".arn") else TABLE_NAME
        return pulumi.Output.from_input(known) if outputs else known
    if isinstance(value, dict):
        return {key: resolved(item, outputs) for key, item in value.items()}
    if isinstance(value, list):
        return [resolved(item, outputs) for item in value]
    # The engine sends every number as a double.
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


@pytest.mark.parametrize(
    ("folder", "read"),
    [
        (YAML_EXAMPLE, lambda: yaml_component()[1]),
        (TS_EXAMPLE, lambda: ts_component_args((TS_EXAMPLE / "index.ts").read_text())),
    ],
    ids=["yaml", "typescript"],
)
def test_the_examples_args_are_valid_for_the_component(
    folder: Path, read: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider maps them to the Python args and the component's own validation accepts
    them; the provider runs in the program's folder, where codePath is resolved."""
    monkeypatch.chdir(folder)
    provider = ComponentProvider([VersionedLambdaApi], PACKAGE, version=__version__)
    definition = provider._component_defs["VersionedLambdaApi"]
    mapped = provider.map_inputs(resolved(read(), outputs=False), definition)
    plan = parse_args(mapped)  # type: ignore[arg-type]
    assert isinstance(plan.code, pulumi.AssetArchive)
    assert "handler.py" in plan.code.assets
    assert [stage.name for stage in plan.stages] == ["dev", "prod"]


def test_the_provider_constructs_the_component_from_another_languages_inputs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What ``pulumi up`` of the YAML example asks the plugin: construct, with camelCase inputs
    and doubles, under the recording mocks; the state goes back under the schema's names."""
    monkeypatch.chdir(YAML_EXAMPLE)
    mocks = start_mocks(PROJECT, "dev", {"aws:region": "us-east-1"}, published_version=2)
    provider = ComponentProvider([VersionedLambdaApi], PACKAGE, version=__version__)
    inputs = resolved(yaml_component()[1])

    @pulumi.runtime.test
    def construct() -> pulumi.Output[Any]:
        result = provider.construct("api", TYPE_TOKEN, inputs)
        state = result.state
        assert set(state) == set(committed_schema()["resources"][TYPE_TOKEN]["properties"])
        return pulumi.Output.all(result.urn, state["liveVersions"], state["canaryAliases"]).apply(
            check
        )

    def check(values: list[Any]) -> None:
        urn, live_versions, canary_aliases = values
        assert urn.endswith(f"${TYPE_TOKEN}::api")
        assert live_versions == {"dev": "2", "prod": "1"}
        assert canary_aliases == {"dev": "dev-canary", "prod": "prod-canary"}

    construct()
    function = mocks.graph.one("aws:lambda/function:Function")
    code = function.inputs["code"]
    assert isinstance(code, pulumi.AssetArchive)
    assert sorted(code.assets) == sorted(
        path.relative_to(ROOT / "function").as_posix()
        for path in (ROOT / "function").rglob("*.py")
        if "__pycache__" not in path.parts
    )
    assert function.inputs["environment"] == {"variables": {"TABLE_NAME": TABLE_NAME}}
