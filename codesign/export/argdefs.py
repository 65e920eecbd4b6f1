"""Recorded argument names per engine version (argdefs/*.yaml) and the check against them.

Each data file names the flags and config fields one engine version defines, read from that
engine's own published argument definitions (the file says which artifact/commit and path).
"""

from __future__ import annotations

import shlex
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from codesign.errors import SpecError

ARGDEFS_DIR = Path(__file__).parent / "argdefs"
ENGINES = ("vllm", "sglang", "trtllm", "dynamo")


@cache
def _all() -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(ARGDEFS_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        out[(data["engine"], str(data["version"]))] = data
    return out


def versions(engine: str) -> list[str]:
    """Engine versions with recorded argument names."""
    return sorted(v for e, v in _all() if e == engine)


def default_version(engine: str) -> str:
    vs = versions(engine)
    if not vs:
        raise SpecError(f"no argument definitions recorded for {engine}")
    return vs[-1]


def argdefs(engine: str, version: str | None = None) -> dict[str, Any]:
    """The recorded names for one engine version; a clear error for an unknown version."""
    version = version or default_version(engine)
    try:
        return _all()[(engine, version)]
    except KeyError:
        known = ", ".join(versions(engine)) or "none"
        raise SpecError(
            f"no argument definitions recorded for {engine} version {version} (recorded: {known})"
        ) from None


def flag_names(argv: list[str]) -> list[str]:
    """The option names in an argument vector (``--x`` or ``--x=v``), in order."""
    return [a.split("=", 1)[0] for a in argv if a.startswith("-") and not _is_number(a)]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def command_argv(line: str) -> list[str]:
    """Split a shell command line (``\\``-continued lines allowed) into words."""
    return shlex.split(line.replace("\\\n", " "))
