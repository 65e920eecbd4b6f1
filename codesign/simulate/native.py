"""The simulator's compiled build (optional) and the guard that keeps it honest.

Cython compiles the seven hot modules *unchanged*; ``engine.pxd``, ``worker.pxd`` and
``kvstore.pxd`` declare ``Simulator``, ``Worker`` and ``RunCache`` as native classes
(attribute reads become field reads instead of dictionary/slot lookups, their methods
C calls). The results are bit-identical to the pure-Python modules
(``tests/unit/simulate/test_sim_native.py`` replays in both and compares every request
row and metric); ``codesign bench simulate`` measures ~1.4-1.5x the requests/s.

``make venv`` builds it when Cython and a C compiler are there (``python -m
codesign.simulate.build``, ~30 s). The pure-Python modules run instead when there is no
build, when ``CODESIGN_PURE_PYTHON=1``, or when a hot module's source changed after the
build (a stamp holds the sources' digest): a stale build is never imported.

Every attribute a compiled class sets must be declared in its ``.pxd`` (a new one raises
AttributeError in the compiled build; the equivalence test catches it).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path

PACKAGE = "codesign.simulate"
HOT_MODULES = ("engine", "worker", "batching", "kvstore", "router", "stepmodel", "requests")
PURE_ENV = "CODESIGN_PURE_PYTHON"
HERE = Path(__file__).resolve().parent
STAMP = HERE / "_native_stamp.json"


def source_digest() -> str:
    """SHA-256 over the hot modules' ``.py`` and the ``.pxd`` declarations."""
    h = hashlib.sha256()
    for name in HOT_MODULES:
        for suffix in (".py", ".pxd"):
            p = HERE / f"{name}{suffix}"
            if p.exists():
                h.update(f"{p.name}\0".encode())
                h.update(p.read_bytes())
    return h.hexdigest()


def _extension_files() -> list[Path]:
    return [
        HERE / f"{name}{suffix}"
        for name in HOT_MODULES
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        if (HERE / f"{name}{suffix}").exists()
    ]


def _stale_reason() -> str | None:
    """Why the compiled build must not be used (None: use it, or there is none)."""
    if not _extension_files():
        return None
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return f"{PURE_ENV} is set"
    try:
        stamp = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return "the build has no stamp"
    if stamp.get("digest") != source_digest():
        return "a simulator source changed after the build (rebuild: make native)"
    return None


class _SourceFinder:
    """Imports the hot modules from their ``.py`` files (ahead of compiled ones)."""

    names = frozenset(f"{PACKAGE}.{m}" for m in HOT_MODULES)

    @classmethod
    def find_spec(cls, fullname: str, path: object = None, target: object = None):
        if fullname not in cls.names:
            return None
        src = HERE / f"{fullname.rsplit('.', 1)[1]}.py"
        return importlib.util.spec_from_file_location(fullname, src)


_reason: str | None = None


def select_implementation() -> None:
    """Called by the package before any hot module is imported: when the compiled build
    must not be used, route the hot modules to their sources (all of them: a compiled
    ``Worker`` needs the compiled ``Simulator``)."""
    global _reason
    _reason = _stale_reason()
    if _reason is not None and _SourceFinder not in sys.meta_path:
        sys.meta_path.insert(0, _SourceFinder)  # type: ignore[arg-type]


def implementation() -> str:
    """'compiled (Cython)' or 'pure Python' with the reason, for reports."""
    mod = sys.modules.get(f"{PACKAGE}.engine")
    if mod is not None and not str(getattr(mod, "__file__", "")).endswith(".py"):
        return "compiled (Cython)"
    if _reason is not None:
        return f"pure Python ({_reason})"
    return "pure Python (no compiled build: make native)"


def build() -> list[Path]:
    """Cythonize the hot modules and compile them next to their sources; write the stamp.
    Raises ImportError without Cython, and the compiler's error without a C compiler."""
    from Cython.Build import cythonize
    from setuptools import Extension, setup

    root = HERE.parent.parent
    digest = source_digest()
    clean()  # unlink, never overwrite: this process may have the old build mapped
    with tempfile.TemporaryDirectory(prefix="codesign-native-") as tmp:
        exts = [
            Extension(f"{PACKAGE}.{m}", [str(Path("codesign", "simulate", f"{m}.py"))])
            for m in HOT_MODULES
        ]
        cwd = Path.cwd()
        os.chdir(root)
        try:
            setup(
                name="codesign-simulate-native",
                script_args=[
                    *("-q", "build_ext", "--inplace", "--parallel", "2"),
                    *("--build-temp", tmp, "--build-lib", tmp),
                ],
                ext_modules=cythonize(
                    exts,
                    build_dir=tmp,
                    force=True,  # the mtime check ignores directive changes
                    quiet=True,
                    compiler_directives={
                        "language_level": 3,
                        "binding": False,
                        # annotations stay Python objects (``now: float`` is not a C double)
                        "annotation_typing": False,
                    },
                ),
            )
        finally:
            os.chdir(cwd)
    STAMP.write_text(json.dumps({"digest": digest}) + "\n")
    return _extension_files()


def clean() -> None:
    """Remove the compiled build (the pure-Python modules run)."""
    for p in _extension_files():
        p.unlink()
    STAMP.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["clean"]:
        clean()
        print("simulator: compiled build removed")
        return 0
    if args not in ([], ["build"]):
        print(f"usage: python -m {PACKAGE}.build [build | clean] (got {' '.join(args)!r})")
        return 2
    try:
        files = build()
    except ImportError:
        print("simulator: Cython is not installed; the pure-Python modules run")
        return 1
    except SystemExit as exc:  # setuptools reports a failed compile this way
        print(f"simulator: compiling failed ({exc}); the pure-Python modules run")
        return 1
    print(f"simulator: compiled {len(files)} modules")
    return 0
