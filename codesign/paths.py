"""Where run-time data lives: the `../shared` folder beside the checkout, and user folders.

The shared data (validation rows, traces, Hugging Face configs, reference facts) is read at
run time and never copied into the package. Resolution order for the shared folder:

1. ``$CODESIGN_SHARED_DIR`` when set;
2. ``../shared`` beside the repository that holds this package (editable installs, CI);
3. ``../shared`` beside the current working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from codesign.errors import NotFoundError

_REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_dir(required: bool = True) -> Path | None:
    """Return the shared data folder, or raise NotFoundError naming what was tried."""
    candidates: list[Path] = []
    env = os.environ.get("CODESIGN_SHARED_DIR")
    if env:
        candidates.append(Path(env).expanduser())
    candidates.append(_REPO_ROOT.parent / "shared")
    candidates.append(Path.cwd().parent / "shared")
    for path in candidates:
        if path.is_dir():
            return path.resolve()
    if required:
        tried = ", ".join(str(p) for p in candidates)
        raise NotFoundError(
            f"shared data folder not found (tried {tried}); set CODESIGN_SHARED_DIR"
        )
    return None


def hf_config_dirs() -> list[Path]:
    """Folders searched for ``ORG--NAME_config.json`` files, user folders first.

    ``$CODESIGN_MODEL_DIRS`` holds extra folders separated by ``os.pathsep``.
    """
    dirs: list[Path] = []
    for part in os.environ.get("CODESIGN_MODEL_DIRS", "").split(os.pathsep):
        if part.strip():
            dirs.append(Path(part.strip()).expanduser())
    shared = shared_dir(required=False)
    if shared is not None:
        dirs.append(shared / "models" / "hf_configs")
    return dirs
