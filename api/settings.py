"""Service settings: from arguments or ``CODESIGN_*`` environment variables."""

from __future__ import annotations

import os

from pydantic import BaseModel, Field


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


class Settings(BaseModel):
    database_url: str | None = Field(None, description="default: CODESIGN_DATABASE_URL or SQLite")
    max_spec_bytes: int = 262_144
    max_budget: int = 1_000_000
    max_trace_bytes: int = 512 * 1024 * 1024
    max_jobs_per_key: int = 8
    max_page: int = 1000
    sse_poll_s: float = 0.25
    sse_keepalive_s: float = 15.0
    ray_address: str | None = None

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        data: dict[str, object] = {
            "database_url": os.environ.get("CODESIGN_DATABASE_URL"),
            "max_spec_bytes": _env_int("CODESIGN_MAX_SPEC_BYTES", 262_144),
            "max_budget": _env_int("CODESIGN_MAX_BUDGET", 1_000_000),
            "max_trace_bytes": _env_int("CODESIGN_MAX_TRACE_BYTES", 512 * 1024 * 1024),
            "max_jobs_per_key": _env_int("CODESIGN_MAX_JOBS_PER_KEY", 8),
            "ray_address": os.environ.get("CODESIGN_RAY_ADDRESS"),
        }
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(data)
