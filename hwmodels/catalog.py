"""The hardware catalog: built-in YAML files, user folders, and runtime registrations.

Built-in entries live in ``hwmodels/catalog/chips/*.yaml`` and
``hwmodels/catalog/systems/*.yaml``. Extra folders (each with ``chips/`` and/or
``systems/`` inside) come from ``$CODESIGN_HARDWARE_DIRS`` (``os.pathsep``-separated);
their entries may replace built-in ones of the same name.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from codesign.errors import NotFoundError, SpecError
from hwmodels.chip import Chip
from hwmodels.system import System

BUILTIN_DIR = Path(__file__).resolve().parent / "catalog"


def format_validation_error(err: ValidationError, where: str) -> str:
    """One readable line per problem: 'where: field.path: message'."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return f"{where}: " + "; ".join(parts)


def _load_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping at the top level")
    return data


class Catalog:
    """Chips and systems by name (case-insensitive) and alias."""

    def __init__(self, dirs: Iterable[Path] = (BUILTIN_DIR,)) -> None:
        self.chips: dict[str, Chip] = {}
        self.systems: dict[str, System] = {}
        self.aliases: dict[str, str] = {}
        self.origin: dict[str, str] = {}  # name -> file or "registered"
        for d in dirs:
            self.load_dir(Path(d))

    def load_dir(self, folder: Path) -> None:
        for path in sorted((folder / "chips").glob("*.yaml")):
            chip = self._validate(Chip, _load_yaml(path), str(path))
            self.add_chip(chip, origin=str(path))
        for path in sorted((folder / "systems").glob("*.yaml")):
            system = self._validate(System, _load_yaml(path), str(path))
            self.add_system(system, origin=str(path))

    def _validate(self, cls: type, data: dict, where: str):
        try:
            return cls.model_validate(data, context={"chips": self.chips})
        except ValidationError as err:
            raise SpecError(format_validation_error(err, where)) from None

    def add_chip(self, chip: Chip, origin: str = "registered") -> None:
        self.chips[chip.name] = chip
        self.origin[f"chip:{chip.name}"] = origin

    def add_system(self, system: System, origin: str = "registered") -> None:
        self.systems[system.name] = system
        self.origin[f"system:{system.name}"] = origin
        for alias in system.aliases:
            self.aliases[alias.lower()] = system.name

    def chip(self, name: str) -> Chip:
        key = name.strip().lower()
        if key in self.chips:
            return self.chips[key]
        raise NotFoundError(_unknown("chip", name, self.chips))

    def system(self, name: str) -> System:
        key = name.strip().lower()
        for k in (key, _underscored(key)):  # "gb300-nvl72", "H100 SXM" spell the same part
            k = self.aliases.get(k, k)
            if k in self.systems:
                return self.systems[k]
        raise NotFoundError(_unknown("system", name, [*self.systems, *self.aliases]))

    def remove(self, kind: str, name: str) -> None:
        table = self.chips if kind == "chip" else self.systems
        table.pop(name, None)
        self.origin.pop(f"{kind}:{name}", None)
        if kind == "system":
            self.aliases = {a: n for a, n in self.aliases.items() if n != name}


def _underscored(key: str) -> str:
    """Hyphens and spaces as underscores (catalog names and aliases use underscores)."""
    return "_".join(key.replace("-", " ").split())


def _unknown(kind: str, name: str, known: Iterable[str]) -> str:
    known = sorted(known)
    close = difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"unknown {kind} {name!r}{hint} (known: {', '.join(known)})"


def catalog_dirs() -> list[Path]:
    dirs = [BUILTIN_DIR]
    for part in os.environ.get("CODESIGN_HARDWARE_DIRS", "").split(os.pathsep):
        if part.strip():
            dirs.append(Path(part.strip()).expanduser())
    return dirs


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    return Catalog(catalog_dirs())


def get_chip(name: str) -> Chip:
    return default_catalog().chip(name)


def get_system(name: str) -> System:
    return default_catalog().system(name)


def list_chips() -> list[Chip]:
    return list(default_catalog().chips.values())


def list_systems() -> list[System]:
    return list(default_catalog().systems.values())
