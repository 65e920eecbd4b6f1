"""Shared base for hardware specs: strict fields, YAML/JSON round-trip, sourced numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hwmodels.provenance import Grade, Source

DEFAULT_SOURCE = Source(ref="codesign default (see the field's description)", grade=Grade.assumed)


class Spec(BaseModel):
    """Base of every hardware spec: unknown fields are errors, models are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    def to_yaml(self) -> str:
        return yaml.safe_dump(
            self.model_dump(mode="json", exclude_none=True), sort_keys=False, width=100
        )

    @classmethod
    def from_yaml(cls, text: str) -> Self:
        return cls.model_validate(yaml.safe_load(text))

    @classmethod
    def from_file(cls, path: str | Path) -> Self:
        return cls.from_yaml(Path(path).read_text())


class Sourced(Spec):
    """A spec whose published numbers each carry a Source in ``sources``.

    ``sources`` maps a field name (or ``field.key`` for dict entries) to its citation;
    ``"*"`` gives a default citation for every number not listed. Validation rejects a
    spec with a number that has no citation at all.
    """

    sources: dict[str, Source] = Field(default_factory=dict)

    def _sourced_numbers(self) -> list[str]:
        """Names of the numeric fields (and numeric dict entries) given explicitly."""
        names: list[str] = []
        for name, value in self:
            if name not in self.model_fields_set or value == type(self).model_fields[name].default:
                continue  # a code default, documented where it is defined
            if name == "sources" or value is None or isinstance(value, bool):
                continue
            if isinstance(value, int | float):
                names.append(name)
            elif isinstance(value, dict):
                names.extend(f"{name}.{k}" for k, v in value.items() if isinstance(v, int | float))
        return names

    @model_validator(mode="after")
    def _every_number_is_sourced(self) -> Self:
        if "*" in self.sources:
            return self
        missing = [
            n
            for n in self._sourced_numbers()
            if n not in self.sources and n.split(".")[0] not in self.sources
        ]
        if missing:
            raise ValueError(
                "every published number needs a source: add entries under 'sources' for "
                + ", ".join(missing)
                + " (or a '*' default)"
            )
        return self

    def source_of(self, field: str) -> Source | None:
        """The citation of one number, falling back to its parent field and to '*'."""
        found = (
            self.sources.get(field)
            or self.sources.get(field.split(".")[0])
            or self.sources.get("*")
        )
        if found is None and field.split(".")[0] not in self.model_fields_set:
            return DEFAULT_SOURCE
        return found


def dump_json_ready(spec: BaseModel) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude_none=True)
