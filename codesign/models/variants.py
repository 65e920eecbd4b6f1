"""Checkpoints named after a stored one: quantised copies (``<base>-FP8``,
``nvidia/<base>-NVFP4``), tunes and dated revisions (``-Instruct``, ``-Thinking-2507``).

Publishers ship quantised copies of a model under its name plus a format suffix (NVIDIA's
ModelOpt ``-FP8`` / ``-NVFP4`` / ``-FP4``, ``-AWQ``, ``-GPTQ-Int4``, ``-W4A16``,
``-FP8-Dynamic``), often under another organisation. The architecture is the base
model's; only the weights' storage changes. Tunes and dated revisions keep the
architecture too. When such an id has no config of its own and its name, less those
suffixes (``name_key``), matches one stored config or alias, ``registry.load_model``
serves that architecture, with the precisions a format suffix names, and says so in
the model's notes. A measured row's own ``gemm_quant_mode`` / ``moe_quant_mode`` still
decide the formats its prediction uses (``perf.group.row_precisions``).

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
# tokens that follow a format token in such a suffix ("FP8-Dynamic", "FP4-v2")
_MODIFIERS = {"dynamic", "static", "block", "pertensor", "kv", "v1", "v2", "v3"}
# tunes and dated revisions of one architecture ("-Instruct", "-Thinking-2507")
_TUNES = {"instruct", "chat", "base", "thinking", "it", "hf", "exp"}


def _is_revision(token: str) -> bool:
    return len(token) == 4 and token.isdigit()


def name_key(model_id: str) -> tuple[str, str | None]:
    """(architecture key, precision or None) of an id: its name without organisation,
    lower case, less a trailing run of tune, dated-revision and format tokens, and the
    precision the format token names. ``nvidia/Llama-3.3-70B-Instruct-FP8`` ->
    (``llama-3.3-70b``, ``fp8``); ``Qwen/Qwen3-235B-A22B-Thinking-2507`` ->
    (``qwen3-235b-a22b``, None); ``deepseek-ai/DeepSeek-V3-FP8`` keeps its ``v3``
    (a modifier such as v3 or dynamic is stripped only after a format token)."""
    name = model_id.strip().rstrip("/").split("/")[-1].lower()
    parts = name.split("-")

    def strippable(tok: str) -> bool:
        return tok in _QUANT_TOKENS or tok in _MODIFIERS or tok in _TUNES or _is_revision(tok)

    start = len(parts)
    while start > 1 and strippable(parts[start - 1]):
        start -= 1
    # the key ends at the first token of the run that is not a modifier
    cut = next((i for i in range(start, len(parts)) if parts[i] not in _MODIFIERS), len(parts))
    found = {t for t in parts[cut:] if t in _QUANT_TOKENS}
    fmt = next((p for tok, p in _FORMATS if tok in found), None)
    return "-".join(parts[:cut]), fmt


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
