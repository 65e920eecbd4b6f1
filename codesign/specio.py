"""Reading user specs (deployments, job specs) from YAML with one-line, field-naming errors."""

from __future__ import annotations

from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from codesign.errors import SpecError

M = TypeVar("M", bound=BaseModel)


def load_yaml_mapping(text: str, where: str) -> Any:
    """The YAML document in ``text``; a SpecError naming ``where`` when it does not parse."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{where}: not valid YAML: {exc}") from None


def validate_spec(cls: type[M], data: Any, where: str) -> M:
    """``cls.model_validate(data)`` with errors as one SpecError naming each field."""
    from hwmodels.catalog import format_validation_error

    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a mapping at the top level")
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise SpecError(format_validation_error(err, where)) from None
