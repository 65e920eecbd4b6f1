"""Resolve a model id or path to a ModelArch, offline, and list the known models.

Ids map to ``ORG--NAME_config.json`` (+ ``ORG--NAME_hf_quant_config.json``) in
``codesign.paths.hf_config_dirs()``; matching is case-insensitive. ``ALIASES`` maps ids
used elsewhere (validation data, serving recipes) that have no file of their own to a
stored config, optionally with a quantisation taken from another stored checkpoint or
given explicitly.
"""

from __future__ import annotations

import contextlib
import difflib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from codesign.errors import CodesignError, NotFoundError, UnsupportedModelError
from codesign.models.arch import ModelArch
from codesign.models.derived import kv_bytes_per_token, kv_state_bytes_per_sequence
from codesign.models.hf_config import parse_hf_config, precisions_for
from codesign.models.params import param_counts
from codesign.models.quant import parse_quant
from codesign.models.variants import name_key, variant_precisions
from codesign.paths import hf_config_dirs

_CONFIG_SUFFIX = "_config.json"
_QUANT_SUFFIX = "_hf_quant_config.json"


class Alias(BaseModel):
    """An id with no config file of its own: same architecture as ``target``."""

    model_config = ConfigDict(frozen=True)

    target: str
    quant_from: str | None = None  # take hf_quant_config / quantization_config from this id
    precision: dict[str, str] | None = None  # or set component precisions explicitly
    kv_cache: str | None = None
    reason: str = ""


ALIASES: dict[str, Alias] = {
    "meta-llama/Llama-3.1-8B": Alias(
        target="meta-llama/Meta-Llama-3.1-8B", reason="HF renamed Meta-Llama-3.1-* to Llama-3.1-*"
    ),
    "meta-llama/Llama-3.1-8B-Instruct": Alias(
        target="meta-llama/Meta-Llama-3.1-8B", reason="instruct tune, same architecture"
    ),
    "meta-llama/Llama-3.1-70B": Alias(
        target="meta-llama/Meta-Llama-3.1-70B", reason="HF renamed Meta-Llama-3.1-* to Llama-3.1-*"
    ),
    "meta-llama/Llama-3.1-70B-Instruct": Alias(
        target="meta-llama/Meta-Llama-3.1-70B", reason="instruct tune, same architecture"
    ),
    "meta-llama/Llama-3.1-405B": Alias(
        target="meta-llama/Meta-Llama-3.1-405B", reason="HF renamed Meta-Llama-3.1-* to Llama-3.1-*"
    ),
    "meta-llama/Llama-3.1-405B-Instruct": Alias(
        target="meta-llama/Meta-Llama-3.1-405B", reason="instruct tune, same architecture"
    ),
    "nvidia/Llama-3.1-8B-Instruct-FP8": Alias(
        target="meta-llama/Meta-Llama-3.1-8B",
        quant_from="nvidia/Llama-3.1-70B-Instruct-FP8",
        reason="ModelOpt FP8 checkpoint; same recipe as nvidia/Llama-3.1-70B-Instruct-FP8",
    ),
    "nvidia/DeepSeek-R1-NVFP4": Alias(
        target="deepseek-ai/DeepSeek-R1",
        quant_from="nvidia/DeepSeek-V3.1-NVFP4",
        reason="ModelOpt NVFP4 MoE/MLP, attention unquantised; same recipe as V3.1-NVFP4",
    ),
    "nvidia/DeepSeek-R1-FP4": Alias(
        target="deepseek-ai/DeepSeek-R1",
        quant_from="nvidia/DeepSeek-V3.1-NVFP4",
        reason="older name of nvidia/DeepSeek-R1-NVFP4",
    ),
    "nvidia/Qwen3-32B-NVFP4": Alias(
        target="Qwen/Qwen3-32B",
        precision={"attention": "nvfp4", "dense_mlp": "nvfp4"},
        kv_cache="fp8",
        reason="ModelOpt NVFP4: every linear layer but lm_head",
    ),
    # checkpoint revisions that keep the architecture of a stored config
    "deepseek-ai/DeepSeek-R1-0528": Alias(
        target="deepseek-ai/DeepSeek-R1", reason="R1 revision, same architecture"
    ),
    "deepseek-ai/DeepSeek-V3-0324": Alias(
        target="deepseek-ai/DeepSeek-V3", reason="V3 revision, same architecture"
    ),
    "deepseek-ai/DeepSeek-V3.1": Alias(
        target="deepseek-ai/DeepSeek-V3", reason="V3.1 keeps the V3 architecture"
    ),
    "nvidia/DeepSeek-R1-0528-NVFP4": Alias(
        target="deepseek-ai/DeepSeek-R1",
        quant_from="nvidia/DeepSeek-V3.1-NVFP4",
        reason="ModelOpt NVFP4 R1 revision; same recipe as V3.1-NVFP4",
    ),
    "meta-llama/Llama-3.3-70B-Instruct": Alias(
        target="meta-llama/Meta-Llama-3.1-70B", reason="Llama 3.3 70B: Llama 3.1 70B layout"
    ),
    "nvidia/Llama-3.3-70B-Instruct-FP8": Alias(
        target="meta-llama/Meta-Llama-3.1-70B",
        quant_from="nvidia/Llama-3.1-70B-Instruct-FP8",
        reason="ModelOpt FP8, Llama 3.1 70B layout",
    ),
    "Qwen/Qwen3-235B-A22B-Instruct-2507": Alias(
        target="Qwen/Qwen3-235B-A22B", reason="2507 revision, same architecture"
    ),
    "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8": Alias(
        target="Qwen/Qwen3-235B-A22B-FP8", reason="2507 revision, same architecture"
    ),
    "Qwen/Qwen3-Coder-30B-A3B-Instruct": Alias(
        target="Qwen/Qwen3-30B-A3B", reason="Qwen3-30B-A3B layout"
    ),
}


def _norm(model_id: str) -> str:
    return model_id.strip().lower()


def _file_id(path: Path) -> str:
    stem = path.name[: -len(_CONFIG_SUFFIX)]
    org, sep, name = stem.partition("--")
    return f"{org}/{name}" if sep else stem


@lru_cache(maxsize=8)
def _index(dirs: tuple[str, ...]) -> dict[str, tuple[str, Path]]:
    """lower-case id -> (id as spelled in the file name, config path); first folder wins."""
    out: dict[str, tuple[str, Path]] = {}
    for d in dirs:
        folder = Path(d)
        if not folder.is_dir():
            continue
        for p in sorted(folder.glob(f"*{_CONFIG_SUFFIX}")):
            if p.name.endswith(_QUANT_SUFFIX):
                continue
            mid = _file_id(p)
            out.setdefault(_norm(mid), (mid, p))
    return out


def model_index() -> dict[str, tuple[str, Path]]:
    return _index(tuple(str(d) for d in hf_config_dirs()))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CodesignError(f"malformed JSON in {path}: {exc}") from None
    except OSError as exc:
        raise NotFoundError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CodesignError(f"malformed config {path}: expected a JSON object")
    return data


def _quant_path(config_path: Path) -> Path | None:
    if config_path.name == "config.json":
        q = config_path.with_name("hf_quant_config.json")
    else:
        q = config_path.with_name(config_path.name[: -len(_CONFIG_SUFFIX)] + _QUANT_SUFFIX)
    return q if q.is_file() else None


@lru_cache(maxsize=512)
def _load_path(path: str, model_id: str, mtime: float) -> ModelArch:
    p = Path(path)
    q = _quant_path(p)
    return parse_hf_config(
        _read_json(p), _read_json(q) if q else None, model_id=model_id, source_path=str(p)
    )


def load_config_file(path: Path, model_id: str | None = None) -> ModelArch:
    """Parse a config.json file (and its sibling hf_quant_config.json when present)."""
    p = path.resolve()
    mid = model_id or (p.parent.name if p.name == "config.json" else _file_id(p))
    return _load_path(str(p), mid, p.stat().st_mtime)


def _apply_alias(alias_id: str, alias: Alias) -> ModelArch:
    base = load_model(alias.target)
    update: dict[str, Any] = {"id": alias_id, "notes": (*base.notes, f"alias: {alias.reason}")}
    prec = base.precision
    if alias.quant_from:
        idx = model_index()
        if _norm(alias.quant_from) not in idx:
            raise NotFoundError(
                f"alias {alias_id}: quantisation source {alias.quant_from} has no config file"
            )
        qpath = idx[_norm(alias.quant_from)][1]
        qfile = _quant_path(qpath)
        cfg = _read_json(qpath)
        rules = parse_quant(
            cfg.get("quantization_config"), _read_json(qfile) if qfile else None, alias_id
        )
        prec = precisions_for(base, rules)
    if alias.precision:
        prec = prec.model_copy(update={**alias.precision, "source": f"alias {alias_id}"})
    if alias.kv_cache:
        prec = prec.model_copy(update={"kv_cache": alias.kv_cache})
    update["precision"] = prec
    return base.model_copy(update=update)


def load_model(id_or_path: str | Path) -> ModelArch:
    """A ModelArch from an HF id (case-insensitive), alias, config file or folder."""
    text = str(id_or_path).strip()
    path = Path(text).expanduser()
    if path.is_dir():
        cfg = path / "config.json"
        if not cfg.is_file():
            raise NotFoundError(f"{path} has no config.json")
        return load_config_file(cfg, path.name)
    if path.is_file():
        return load_config_file(path)
    idx = model_index()
    key = _norm(text)
    if key in idx:
        mid, p = idx[key]
        return load_config_file(p, mid)
    aliases = {_norm(k): (k, v) for k, v in ALIASES.items()}
    if key in aliases:
        return _apply_alias(*aliases[key])
    # other spellings of one id: a trailing slash, "org--name" (the config files' own), or a
    # bare name that exactly one stored config carries
    alt = key.rstrip("/").replace("--", "/", 1)

    def same(k: str) -> bool:
        return k == alt or ("/" not in alt and k.split("/")[-1] == alt)

    hits = [k for k in idx if same(k)] + [k for k in aliases if same(k)]
    if len(hits) == 1:
        if hits[0] in idx:
            mid, p = idx[hits[0]]
            return load_config_file(p, mid)
        return _apply_alias(*aliases[hits[0]])
    if text.endswith(".json") or ("/" in text and text.startswith((".", "/", "~"))):
        raise NotFoundError(f"model config file {text} does not exist")
    variant = _named_variant(text, key, idx, aliases)
    if variant is not None:
        return variant
    known = [mid for mid, _ in idx.values()] + list(ALIASES)
    close = difflib.get_close_matches(text, known, n=5, cutoff=0.4)
    close += [k for k in known if key and key.split("/")[-1] in k.lower() and k not in close]
    hint = f"; did you mean: {', '.join(close[:5])}" if close else ""
    raise NotFoundError(
        f"unknown model {text!r} (no config in {', '.join(str(d) for d in hf_config_dirs())}){hint}"
    )


def _named_variant(
    text: str, key: str, idx: dict[str, tuple[str, Path]], aliases: dict[str, tuple[str, Alias]]
) -> ModelArch | None:
    """A quantised copy, tune or dated revision of one stored model (``models.variants``):
    its architecture with the precisions a format suffix names, or None when no stored
    id or several different ones share the name's key. Among the ids that share it, one
    of the same organisation is preferred, then one whose own name names no format,
    then the shortest name; ids tied on those must share one architecture."""
    base_key, fmt = name_key(text)
    org = key.split("/")[0] if "/" in key else ""
    keys = {k: name_key(k) for k in set(idx) | set(aliases)}
    ranked = sorted(
        (k.split("/")[0] != org, kfmt is not None, len(k), k)
        for k, (kbase, kfmt) in keys.items()
        if kbase == base_key
    )
    if not ranked:
        return None
    tied = [r[3] for r in ranked if r[:3] == ranked[0][:3]]
    archs = [load_model(idx[k][0] if k in idx else aliases[k][0]) for k in tied]
    if any(_shape(a) != _shape(archs[0]) for a in archs[1:]):
        return None  # equally good names of different architectures: ambiguous
    base = archs[0]
    what = f"{fmt} weights" if fmt else "same architecture"
    precision = variant_precisions(base.precision, fmt, text) if fmt else base.precision
    return base.model_copy(
        update={
            "id": text,
            "precision": precision,
            "notes": (*base.notes, f"named after {base.id}: {what}"),
        }
    )


def _shape(arch: ModelArch) -> dict[str, Any]:
    """What two configs of one architecture share, context limit aside (for ties in
    ``_named_variant``)."""
    return arch.model_dump(
        exclude={"id", "notes", "precision", "source_path", "max_context_tokens"}
    )


class ModelEntry(BaseModel):
    """One row of the model catalog."""

    model_config = ConfigDict(frozen=True)

    id: str
    architecture: str = ""
    family: str = ""
    supported: bool
    total_params: int | None = None
    active_params: int | None = None
    kv_bytes_per_token_bf16: float | None = None
    state_bytes_per_sequence: float | None = None
    max_context_tokens: int | None = None
    weight_precision: str | None = None
    unsupported_reason: str | None = None
    alias_of: str | None = None


def _entry(
    mid: str,
    arch_or_err: ModelArch | CodesignError,
    alias_of: str | None = None,
    raw: dict[str, Any] | None = None,
) -> ModelEntry:
    if isinstance(arch_or_err, CodesignError):
        archs = (raw or {}).get("architectures") or [""]
        return ModelEntry(
            id=mid,
            architecture=archs[0],
            family=str((raw or {}).get("model_type", "")),
            supported=False,
            unsupported_reason=str(arch_or_err),
        )
    a = arch_or_err
    counts = param_counts(a)
    p = a.precision
    return ModelEntry(
        id=mid,
        architecture=a.architecture,
        family=a.family,
        supported=True,
        total_params=counts.total,
        active_params=counts.active,
        kv_bytes_per_token_bf16=kv_bytes_per_token(a, "bf16"),
        state_bytes_per_sequence=kv_state_bytes_per_sequence(a),
        max_context_tokens=a.max_context_tokens,
        weight_precision=f"attn={p.attention} mlp={p.dense_mlp} experts={p.experts}",
        alias_of=alias_of,
    )


def list_models(include_aliases: bool = True) -> list[ModelEntry]:
    """Every config in hf_config_dirs() (de-duplicated ids), supported or not, then aliases."""
    rows: list[ModelEntry] = []
    for mid, path in model_index().values():
        try:
            rows.append(_entry(mid, load_config_file(path, mid)))
        except UnsupportedModelError as exc:
            raw = None
            with contextlib.suppress(CodesignError):
                raw = _read_json(path)
            rows.append(_entry(mid, exc, raw=raw))
        except CodesignError as exc:
            rows.append(_entry(mid, exc))
    if include_aliases:
        for alias_id, alias in ALIASES.items():
            try:
                rows.append(_entry(alias_id, load_model(alias_id), alias_of=alias.target))
            except CodesignError as exc:
                rows.append(_entry(alias_id, exc, alias_of=alias.target))
    return sorted(rows, key=lambda r: r.id.lower())
