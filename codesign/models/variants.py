"""Quantised checkpoints named after a stored one: ``<base>-FP8``, ``nvidia/<base>-NVFP4``.

Publishers ship quantised copies of a model under its name plus a format suffix (NVIDIA's
ModelOpt ``-FP8`` / ``-NVFP4`` / ``-FP4``, ``-AWQ``, ``-GPTQ-Int4``, ``-W4A16``,
``-FP8-Dynamic``), often under another organisation. The architecture is the base
model's; only the weights' storage changes. When such an id has no config of its own and
its base name matches a stored config (or alias), ``registry.load_model`` serves the
base architecture with the precisions the suffix names, and says so in the model's
notes. A measured row's own ``gemm_quant_mode`` / ``moe_quant_mode`` still decide the
formats its prediction uses (``perf.group.row_precisions``).

Which layers the suffix quantises follows the publishers' recipes: FP8, INT8 and
weight-only INT4 checkpoints quantise every linear layer of the blocks (attention, MLP,
experts); NVFP4 / MXFP4 ones the MLP and expert layers, attention staying as stored
(ModelOpt's DeepSeek-R1 and Llama NVFP4 recipes; ``registry.ALIASES`` holds the
checkpoints whose recipe differs). Embeddings, lm_head, router and norms stay as
stored.
"""

from __future__ import annotations

from codesign.models.arch import WeightPrecisions

# suffix token -> hwmodels precision of the quantised layers (the first match wins)
_FORMATS: tuple[tuple[str, str], ...] = (
    ("nvfp4", "nvfp4"),
    ("mxfp4", "mxfp4"),
    ("fp4", "nvfp4"),
    ("fp8", "fp8"),
    ("w8a8", "int8"),
    ("int8", "int8_wo"),
    ("w4a16", "int4_wo"),
    ("awq", "int4_wo"),
    ("gptq", "int4_wo"),
    ("int4", "int4_wo"),
)
_QUANT_TOKENS = {name for name, _ in _FORMATS}
# tokens that may follow or precede a format token in such a suffix
_MODIFIERS = {"dynamic", "static", "block", "pertensor", "kv", "v1", "v2", "v3"}


def split_quantised_name(model_id: str) -> tuple[str, str] | None:
    """(base name without organisation, precision) for an id ending in a format suffix,
    e.g. ``nvidia/Llama-3.3-70B-Instruct-FP8`` -> (``llama-3.3-70b-instruct``, ``fp8``);
    None when the id carries no format token at its end."""
    name = model_id.strip().rstrip("/").split("/")[-1].lower()
    parts = name.split("-")
    start = len(parts)  # the trailing run of format and modifier tokens
    while start > 1 and (parts[start - 1] in _QUANT_TOKENS or parts[start - 1] in _MODIFIERS):
        start -= 1
    formats = [i for i in range(start, len(parts)) if parts[i] in _QUANT_TOKENS]
    if not formats:
        return None
    # the base ends before the first format token ("DeepSeek-V3-FP8" keeps its "V3")
    fmt = next(p for tok, p in _FORMATS if tok in {parts[i] for i in formats})
    return "-".join(parts[: formats[0]]), fmt


def _family(precision: str) -> str:
    """fp8 and fp8_block, nvfp4 and mxfp4, int4 / int8 and their weight-only forms."""
    return "fp4" if precision.endswith("fp4") else precision.split("_")[0]


def variant_precisions(base: WeightPrecisions, fmt: str, model_id: str) -> WeightPrecisions:
    """The base checkpoint's precisions with the suffix's format on the layers it covers;
    a layer the base already stores in that format's family keeps its own (DeepSeek-V3's
    block-scaled FP8 stays block-scaled under an ``-FP8`` name)."""
    layers = ["dense_mlp", "experts", "shared_experts"]
    if _family(fmt) != "fp4":
        layers.append("attention")
    update = {layer: fmt for layer in layers if _family(getattr(base, layer)) != _family(fmt)}
    if not update:
        return base
    return base.model_copy(update={**update, "source": f"{fmt} from the name {model_id}"})
