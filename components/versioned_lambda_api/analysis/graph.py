"""A program's resources as registered with the engine: the input of routing and preflight."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ResourceRecord:
    """One registered resource: its inputs, the outputs it resolved to, and where it sits."""

    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    id: str
    urn: str = ""
    parent_urn: str = ""
    dependencies: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``type name``, short enough to name the resource in a finding."""
        return f"{self.type.rpartition(':')[2]} {self.name}"


@dataclass
class ResourceGraph:
    """The resources of one program run, in registration order, keyed by logical name.

    Pulumi allows one logical name for resources of different types (their URNs differ, e.g. a
    queue and a component both called ``orders``): the second is keyed ``<type>::<name>``.
    """

    resources: dict[str, ResourceRecord] = field(default_factory=dict)

    def add(self, record: ResourceRecord) -> None:
        if self.find(record.type, record.name) is not None:
            # Pulumi refuses two resources with one URN; refusing a reused type and name
            # makes collisions between component instances or stages visible.
            raise ValueError(f"{record.type} resource name {record.name!r} registered twice")
        key = record.name if record.name not in self.resources else f"{record.type}::{record.name}"
        self.resources[key] = record

    def find(self, typ: str, name: str) -> ResourceRecord | None:
        """The resource of type ``typ`` called ``name``, if registered."""
        for key in (name, f"{typ}::{name}"):
            record = self.resources.get(key)
            if record is not None and record.type == typ:
                return record
        return None

    def of_type(self, typ: str) -> list[ResourceRecord]:
        """Every resource of a type token, in registration order."""
        return [record for record in self.resources.values() if record.type == typ]

    def one(self, typ: str) -> ResourceRecord:
        """The single resource of a type token."""
        found = self.of_type(typ)
        if len(found) != 1:
            raise LookupError(f"expected one {typ}, found {[r.name for r in found]}")
        return found[0]

    def by_urn(self, urn: str) -> ResourceRecord | None:
        return next((r for r in self.resources.values() if r.urn == urn), None)

    def by_id(self, typ: str, resource_id: str) -> ResourceRecord | None:
        return next((r for r in self.of_type(typ) if r.id == resource_id), None)

    def children(self, parent_urn: str) -> list[ResourceRecord]:
        """Resources whose parent is ``parent_urn`` (``""``: those under the stack)."""
        known = {r.urn for r in self.resources.values()}
        return [
            r
            for r in self.resources.values()
            if r.parent_urn == parent_urn or (parent_urn == "" and r.parent_urn not in known)
        ]
