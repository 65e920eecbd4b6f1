"""Pieces of the job spec shared by `search.spec` and `search.subagents`: the strict base
model, list checks, the precision lists and the system-name resolution."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

CUSTOM = "custom"  # the hypothetical system of a co-design job (space.hardware)
SAME = "same"  # decode system equal to the prefill system


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _nonempty_unique(v: list, what: str = "list") -> list:
    if not v:
        raise ValueError(f"empty {what}: the search space needs at least one value")
    if len(set(map(str, v))) != len(v):
        raise ValueError(f"duplicate values in {v}")
    return v


def resolve_systems(v: list[str], keep: tuple[str, ...] = (SAME, CUSTOM)) -> list[str]:
    """Catalog names of ``v`` (``keep``: placeholders passed through); unknown -> ValueError."""
    from hwmodels import get_system

    out = []
    for s in v:
        if s in keep:
            out.append(s)
            continue
        try:
            out.append(get_system(s).name)
        except Exception as exc:
            raise ValueError(str(exc)) from None
    return _nonempty_unique(out)


class PrecisionSpace(_Strict):
    gemm: list[str] = Field(default_factory=lambda: ["fp8"])
    kv: list[str] = Field(default_factory=lambda: ["fp8"])

    @field_validator("gemm", "kv")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        from hwmodels.precision import get_precision

        for p in v:
            try:
                get_precision(p)
            except Exception as exc:
                raise ValueError(str(exc)) from None
        return _nonempty_unique(v)
