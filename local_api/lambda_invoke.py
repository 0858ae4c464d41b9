"""Lambda's ``Invoke`` as the Lambda service answers it, for the stack's one function: what lets
any boto3 Lambda client (``endpoint_url``, or ``AWS_ENDPOINT_URL_LAMBDA``) invoke the local
runtime processes, as the release tool's pre-traffic check does.

The request and reply are those of botocore's service model (lambda 2015-03-31, ``Invoke``):
``POST /2015-03-31/functions/{FunctionName}/invocations[?Qualifier=...]``, the event as the
body; the reply is 200 with the function's bytes, ``X-Amz-Executed-Version`` and, when the
function failed, ``X-Amz-Function-Error: Unhandled`` with its error document. Lambda's own
refusals carry ``x-amzn-ErrorType`` and a JSON body, as Lambda words them (an unknown function
or qualifier: 404 ``ResourceNotFoundException``, "Function not found: <ARN>").

Everything here is a plain function; :mod:`local_api.server` does the I/O.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

from local_api import routing
from local_api.runtime_api import InvocationResult
from local_api.stack import Function, LocalStack

INVOKE_PATH = re.compile(r"/2015-03-31/functions/(?P<function>[^/]+)/invocations")
# Lambda refuses a synchronous request body above 6 MB with this number of bytes
# (RequestEntityTooLargeException, "Request must be smaller than 6291456 bytes for the
# InvokeFunction operation").
MAX_PAYLOAD_BYTES = 6_291_456
SYNCHRONOUS = "RequestResponse"
_LATEST = "$LATEST"


@dataclass(frozen=True)
class LambdaError:
    """A refusal of Lambda's own: the function never ran."""

    status: int
    error_type: str
    message: str

    def body(self) -> str:
        # Lambda's error bodies: {"Type": "User", "Message": ...}; botocore reads either case.
        return json.dumps({"Type": "User", "Message": self.message})


@dataclass(frozen=True)
class Target:
    """What an Invoke runs: the qualifier it named, the alias (None for a version number) and
    the version that alias resolved to."""

    qualifier: str
    alias: str | None
    version: str


@dataclass(frozen=True)
class Answer:
    """What the local API answers an Invoke."""

    status: int
    body: bytes
    headers: dict[str, str]
    request_id: str
    invoked: Target | None
    """What ran; None when Lambda refused the call."""


def reply(invoked: Target, result: InvocationResult) -> Answer:
    """Invoke's answer to a call that ran: 200 whatever the function did, its bytes (its reply
    or the error document), the version that ran, and ``X-Amz-Function-Error: Unhandled``
    when it failed."""
    headers = {"X-Amz-Executed-Version": invoked.version}
    if result.is_error:
        headers["X-Amz-Function-Error"] = "Unhandled"
    return Answer(200, result.payload, headers, result.request_id, invoked)


def refusal(error: LambdaError) -> Answer:
    headers = {"x-amzn-ErrorType": error.error_type}
    return Answer(error.status, error.body().encode(), headers, str(uuid.uuid4()), None)


# What a call that arrives as the local API stops gets: its environments are gone.
STOPPING = LambdaError(500, "ServiceException", "the local API is stopping")


def is_invoke(method: str, url_path: str) -> bool:
    """Whether a request is Lambda's Invoke rather than a request to a stage (whose paths start
    with ``/<stage>/``): Lambda's path is matched first."""
    return method == "POST" and INVOKE_PATH.fullmatch(url_path) is not None


def not_found(function: Function, qualifier: str | None) -> LambdaError:
    arn = function.arn if qualifier is None else f"{function.arn}:{qualifier}"
    return LambdaError(404, "ResourceNotFoundException", f"Function not found: {arn}")


def invalid_parameter(message: str) -> LambdaError:
    return LambdaError(400, "InvalidParameterValueException", message)


def named_qualifier(function: Function, named: str) -> str | LambdaError | None:
    """The qualifier a FunctionName carries (None when it carries none), when it names
    ``function``: its name, full ARN or partial ARN (``<account>:function:<name>``), each with
    an optional ``:<qualifier>``; else ResourceNotFoundException."""
    account = function.arn.split(":")[4]
    forms = (function.arn, f"{account}:function:{function.name}", function.name)
    for form in forms:
        if named == form:
            return None
        if named.startswith(form + ":"):
            return named[len(form) + 1 :]
    # Lambda names what it did not find by the ARN of what was asked.
    region, account = function.arn.split(":")[3:5]
    if named.startswith("arn:"):
        asked = named
    elif ":function:" in named:
        asked = f"arn:aws:lambda:{region}:{named}"
    else:
        asked = f"arn:aws:lambda:{region}:{account}:function:{named}"
    return LambdaError(404, "ResourceNotFoundException", f"Function not found: {asked}")


def requested_qualifier(function: Function, url_path: str, query: str) -> str | LambdaError | None:
    """The qualifier an Invoke names, in its FunctionName or its ``Qualifier`` parameter
    (None: neither), or Lambda's refusal of another function or of two qualifiers that
    differ."""
    matched = INVOKE_PATH.fullmatch(url_path)
    if matched is None:
        return not_found(function, None)
    in_name = named_qualifier(function, unquote(matched["function"]))
    if isinstance(in_name, LambdaError):
        return in_name
    in_query = parse_qs(query).get("Qualifier", [None])[-1]
    if in_name is not None and in_query is not None and in_name != in_query:
        return invalid_parameter(
            "The derived qualifier from the function name does not match the specified qualifier."
        )
    return in_name if in_name is not None else in_query


def target(
    stack: LocalStack,
    url_path: str,
    query: str,
    invocation_type: str | None,
    *,
    running: Collection[str],
    draw: float,
) -> Target | LambdaError:
    """The alias and version an Invoke of ``url_path`` and ``query`` runs, or Lambda's refusal.

    ``running``: the versions that have a runtime process; ``draw`` (uniform in [0, 1)) picks
    a weighted alias' version."""
    qualifier = requested_qualifier(stack.function, url_path, query)
    if isinstance(qualifier, LambdaError):
        return qualifier
    if (invocation_type or SYNCHRONOUS) != SYNCHRONOUS:
        return invalid_parameter(
            f"the local API serves InvocationType {SYNCHRONOUS} only (the one API Gateway and "
            f"the release tool's check use); got {invocation_type!r}"
        )
    if qualifier is None or qualifier == _LATEST:
        return invalid_parameter(
            f"the local API runs the stack's aliases and published versions, not {_LATEST}: "
            f"name one as Qualifier (aliases: {', '.join(sorted(stack.aliases))}; versions: "
            f"{', '.join(sorted(running, key=int))})"
        )
    alias = stack.aliases.get(qualifier)
    version = qualifier if alias is None else routing.pick_version(alias, draw)
    if version not in running:
        return not_found(stack.function, qualifier)
    return Target(qualifier, None if alias is None else alias.name, version)


def too_large(length: int) -> LambdaError | None:
    if length <= MAX_PAYLOAD_BYTES:
        return None
    return LambdaError(
        413,
        "RequestEntityTooLargeException",
        f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation",
    )


def payload_problem(payload: bytes) -> LambdaError | None:
    """InvalidRequestContentException for a payload that is not JSON, which Lambda refuses
    before invoking anything."""
    try:
        json.loads(payload)
    except ValueError as error:
        return LambdaError(
            400,
            "InvalidRequestContentException",
            f"Could not parse request body into json: {error}",
        )
    return None


def runtime_processes(stack: LocalStack) -> list[tuple[str, str]]:
    """Each (alias, version) that gets a runtime process: those the stage's requests reach,
    then one for each version an alias points to that none of those runs, so that Invoke
    reaches every alias (a canary at share 0 takes no request, but its check invokes it)."""
    processes = routing.served_versions(stack)
    for alias in stack.aliases.values():
        for version, weight in alias.versions().items():
            if weight > 0 and version not in {v for _, v in processes}:
                processes.append((alias.name, version))
    return processes


def log_line(
    qualifier: str, *, status: int, invoked: Target | None, ms: float, request_id: str
) -> str:
    """One Invoke as the local API logs it, like a request to a stage; alias and version are
    ``-`` when Lambda refused it."""
    alias = "-" if invoked is None else invoked.alias or "-"
    version = "-" if invoked is None else f"v{invoked.version}"
    return f"INVOKE {qualifier or '-'} {status} {alias} {version} {ms:.0f}ms {request_id}"
