"""Extra model-config and hardware folders for one command (``--configs``, ``--hardware``).

Each puts a folder in front of the ones its environment variable names
(``CODESIGN_MODEL_DIRS``, ``CODESIGN_HARDWARE_DIRS``) for the duration of a ``with``
block, and clears the lookups cached from the old folders on the way in and out.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from codesign.errors import NotFoundError


def _clear_model_caches() -> None:
    from codesign.models import registry

    for value in vars(registry).values():
        clear = getattr(value, "cache_clear", None)
        if callable(clear):
            clear()


def _clear_hardware_caches() -> None:
    from hwmodels import catalog

    catalog.default_catalog.cache_clear()


def _read_hardware() -> None:
    """Read the catalog with the extra folder now, so that a spec it cannot read is one
    error for the command, not the same reason on every row."""
    from hwmodels import catalog

    catalog.default_catalog()


@contextlib.contextmanager
def _prepended(
    variable: str,
    extra: Path | None,
    flag: str,
    clear: Callable[[], None],
    check: Callable[[], None] = lambda: None,
) -> Iterator[None]:
    if extra is None:
        yield
        return
    if not extra.is_dir():
        raise NotFoundError(f"{flag} {extra} is not a directory")
    old = os.environ.get(variable)
    os.environ[variable] = os.pathsep.join([str(extra.resolve())] + ([old] if old else []))
    clear()
    try:
        check()
        yield
    finally:
        if old is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = old
        clear()


def model_dirs(extra: Path | None) -> contextlib.AbstractContextManager[None]:
    """Search ``extra`` for ORG--NAME_config.json before the other model folders."""
    return _prepended("CODESIGN_MODEL_DIRS", extra, "--configs", _clear_model_caches)


def hardware_dirs(extra: Path | None) -> contextlib.AbstractContextManager[None]:
    """Read chips/ and systems/ YAML specs from ``extra`` besides the built-in catalog
    (a system there is predicted from its spec sheet, as the catalog's are)."""
    return _prepended(
        "CODESIGN_HARDWARE_DIRS", extra, "--hardware", _clear_hardware_caches, _read_hardware
    )
