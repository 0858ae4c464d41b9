"""The stack's DynamoDB tables in moto's server, and their items kept in a folder between runs.

moto keeps its state in memory only (its recorder replays every request ever made, which grows
without end), so ``--data DIR`` keeps each table's items instead: ``DIR/<table>.jsonl``, one
item a line in DynamoDB's JSON (the types as keys, ``{"S": "..."}``; binary values in base64,
as on the wire), written when the local API stops and loaded when it starts.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local_api.stack import Table

_BATCH = 25  # BatchWriteItem's most requests per call


class KeptItemsError(Exception):
    """A file of kept items that cannot be read back."""


def create_tables(client: Any, tables: tuple[Table, ...]) -> None:
    for table in tables:
        client.create_table(TableName=table.name, **table.create_arguments)


def data_file(folder: Path, table: Table) -> Path:
    return folder / f"{table.name}.jsonl"


def load_items(client: Any, table: Table, folder: Path) -> int:
    """Put the items kept for ``table`` in ``folder`` back; how many there were."""
    path = data_file(folder, table)
    if not path.exists():
        return 0
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line:
            continue
        try:
            items.append(item_from_json(json.loads(line)))
        except ValueError as error:
            raise KeptItemsError(
                f"{path} line {number} is not an item in DynamoDB's JSON ({error}); "
                "fix it, or move the file away to start with an empty table"
            ) from error
    for start in range(0, len(items), _BATCH):
        requests = [{"PutRequest": {"Item": item}} for item in items[start : start + _BATCH]]
        unprocessed = {table.name: requests}
        try:
            while unprocessed:
                answer = client.batch_write_item(RequestItems=unprocessed)
                unprocessed = answer["UnprocessedItems"]
        except (BotoCoreError, ClientError) as error:
            raise KeptItemsError(
                f"{path} holds items table {table.name} refuses ({error}); fix them, or move "
                "the file away to start with an empty table"
            ) from error
    return len(items)


def dump_items(client: Any, table: Table, folder: Path) -> int:
    """Write ``table``'s items to ``folder``, replacing what was kept (a half-written file is
    never left in its place); how many there were."""
    folder.mkdir(parents=True, exist_ok=True)
    path = data_file(folder, table)
    partial = path.with_name(path.name + ".partial")
    count = 0
    with partial.open("w") as output:
        for item in _scan(client, table.name):
            output.write(json.dumps(item_to_json(item), ensure_ascii=False) + "\n")
            count += 1
    os.replace(partial, path)
    return count


def _scan(client: Any, name: str) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator("scan").paginate(TableName=name):
        yield from page["Items"]


def item_to_json(value: Any) -> Any:
    """An item as boto3 gives it, with its binary values (bytes) in base64."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {key: item_to_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [item_to_json(item) for item in value]
    return value


def item_from_json(value: Any, kind: str = "") -> Any:
    """:func:`item_to_json` undone: the values of ``B`` and ``BS`` back to bytes."""
    if kind == "B" and isinstance(value, str):
        return base64.b64decode(value)
    if kind == "BS" and isinstance(value, list):
        return [base64.b64decode(item) for item in value]
    if isinstance(value, dict):
        return {key: item_from_json(item, key) for key, item in value.items()}
    if isinstance(value, list):
        return [item_from_json(item) for item in value]
    return value
