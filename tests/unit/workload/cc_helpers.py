"""Builders of small Claude Code-format traces (session dicts) for the workload tests."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any


def call(
    t: float,
    n_in: int,
    hashes: list[int],
    stop: str = "tool_use",
    out: int = 10,
    think: float = 0.0,
    model: str = "claude-opus-4-5",
) -> dict[str, Any]:
    return {
        "t": t,
        "type": "n",
        "model": model,
        "in": n_in,
        "out": out,
        "hash_ids": hashes,
        "input_types": ["text"],
        "output_types": ["text"],
        "stop": stop,
        "api_time": 1.0,
        "think_time": think,
    }


def session(sid: str, requests: list[dict[str, Any]], tool: int = 100, system: int = 50) -> dict:
    return {
        "id": sid,
        "models": ["claude-opus-4-5"],
        "block_size": 64,
        "hash_id_scope": "local",
        "tool_tokens": tool,
        "system_tokens": system,
        "requests": requests,
        "totals": {},
    }


def write(path: Path, doc: dict, gz: bool = True) -> Path:
    data = json.dumps(doc).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path
