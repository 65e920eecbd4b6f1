"""Importer protocol, registry and shared helpers (gzip-tolerant open, error messages).

Each trace format is one module defining a class with ``name``, ``description``,
``suffixes``, ``sniff(path)`` and ``load(paths, progress)``, registered with `register`.
`load_trace` picks the importer by name or by sniffing, accepts a file or a folder of
files, and either returns a complete `Trace` or raises `TraceFormatError` naming the file,
the line or record and the field: nothing is half-imported.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar, Protocol, TextIO

from codesign.errors import NotFoundError, SpecError
from codesign.workload.schema import Trace

Progress = Callable[[int, int], None]  # (files done, files total)


class TraceFormatError(SpecError):
    """A trace file is malformed; the message names file, line/record and field."""


def bad_record(path: Path | str, where: str, field: str, why: str) -> TraceFormatError:
    return TraceFormatError(f"{path}: {where}: field '{field}': {why}")


class TraceImporter(Protocol):
    name: ClassVar[str]
    description: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]

    def sniff(self, path: Path) -> bool:
        """True when the file looks like this format (cheap: reads the first bytes)."""
        ...

    def load(self, paths: list[Path], progress: Progress | None = None) -> Trace:
        """Read all files into one trace; raise TraceFormatError on bad input."""
        ...


_REGISTRY: dict[str, TraceImporter] = {}


def register(cls: type) -> type:
    _REGISTRY[cls.name] = cls()
    return cls


def importers() -> dict[str, TraceImporter]:
    from codesign.workload import importers as _pkg  # noqa: F401  (registers all)

    return dict(_REGISTRY)


def get_importer(name: str) -> TraceImporter:
    regs = importers()
    if name not in regs:
        raise NotFoundError(f"unknown trace format '{name}' (known: {', '.join(sorted(regs))})")
    return regs[name]


def open_text(path: Path) -> TextIO:
    """Open a text file, transparently gunzipping when it starts with the gzip magic."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def read_head(path: Path, n_chars: int = 4096) -> str:
    try:
        with open_text(path) as fh:
            return fh.read(n_chars)
    except (OSError, UnicodeDecodeError, EOFError):
        return ""


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) for non-blank lines; gzip errors name the file."""
    try:
        with open_text(path) as fh:
            for lineno, line in enumerate(fh, start=1):
                if line.strip():
                    yield lineno, line
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise TraceFormatError(f"{path}: cannot read: {exc}") from exc


def _strip_suffixes(path: Path) -> str:
    name = path.name.lower()
    return name[:-3] if name.endswith(".gz") else name


def expand_paths(path: Path, importer: TraceImporter | None) -> list[Path]:
    """A file stays itself; a folder gives its trace files (matching suffixes), sorted."""
    if not path.exists():
        raise NotFoundError(f"trace path not found: {path}")
    if path.is_file():
        return [path]
    all_suffixes = tuple(s for imp in importers().values() for s in imp.suffixes)
    suffixes = importer.suffixes if importer is not None else all_suffixes
    files = sorted(
        p for p in path.iterdir() if p.is_file() and _strip_suffixes(p).endswith(suffixes)
    )
    if not files:
        raise NotFoundError(f"no trace files ({', '.join(suffixes)}) in folder {path}")
    return files


def detect_format(path: Path) -> str:
    for name, imp in importers().items():
        if imp.sniff(path):
            return name
    raise TraceFormatError(
        f"{path}: cannot tell the trace format; pass --format ({', '.join(sorted(importers()))})"
    )


def load_trace(path: Path | str, fmt: str | None = None, progress: Progress | None = None) -> Trace:
    """Import a trace file or a folder of trace files of one format."""
    path = Path(path)
    importer = get_importer(fmt) if fmt else None
    files = expand_paths(path, importer)
    if importer is None:
        importer = get_importer(detect_format(files[0]))
        files = expand_paths(path, importer)
    return importer.load(files, progress)
