"""Provenance of published numbers: where a figure comes from and how much to trust it."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Grade(StrEnum):
    """How a number was obtained, best first."""

    measured = "measured"  # measured by us or in a reproducible benchmark artifact
    vendor_primary = "vendor_primary"  # vendor datasheet, MLPerf system description
    secondary = "secondary"  # press or third parties quoting the vendor
    assumed = "assumed"  # our assumption or a user override without a citation


class Source(BaseModel):
    """A citation for one number: the reference and its grade."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ref: str = Field(min_length=1, description="where the number comes from (URL, document)")
    grade: Grade


OVERRIDE_SOURCE = Source(ref="user override", grade=Grade.assumed)
