"""Numeric formats: storage bits per element and which peak FLOP/s rate computes them.

Block-scaled formats store a shared scale per block, which adds bits per element:
NVFP4 has an FP8 (E4M3) scale per 16 elements (4 + 8/16 = 4.5 bits), MXFP4, MXFP6 and MXFP8 an
E8M0 scale per 32 elements (4.25, 6.25 and 8.25 bits), DeepSeek-style FP8 block
quantisation an FP32 scale per 128x128 weight block (8 + 32/16384 bits).
Sources: NVIDIA "Introducing NVFP4" developer blog (2025) and the OCP Microscaling
Formats (MX) v1.0 specification.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from codesign.errors import NotFoundError

# Peak-rate classes a chip may publish (keys of Chip.peak_dense_tflops).
COMPUTE_FORMATS: tuple[str, ...] = (
    "fp32",
    "tf32",
    "bf16",
    "fp16",
    "fp8",
    "fp6",
    "fp4",
    "nvfp4",
    "mxfp4",
    "int8",
    "int4",
)


class Precision(BaseModel):
    """A numeric format for weights, activations or KV cache."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    bits_per_element: float = Field(gt=0, le=64, description="value bits, without scales")
    scale_bits: float = Field(default=0.0, ge=0, description="bits of one block scale")
    block_elements: int = Field(default=1, ge=1, description="elements sharing one scale")
    compute_formats: tuple[str, ...] = Field(
        description="peak-rate classes that compute this format natively, best first",
    )
    weight_only: bool = Field(
        default=False, description="weights stored narrow but computed in bf16 (dequantised)"
    )
    description: str = ""

    @property
    def bits_effective(self) -> float:
        """Stored bits per element including the amortised block scale."""
        if self.scale_bits == 0:
            return self.bits_per_element
        return self.bits_per_element + self.scale_bits / self.block_elements

    @property
    def bytes_per_element(self) -> float:
        return self.bits_effective / 8.0


def _p(name: str, bits: float, formats: tuple[str, ...], **kw: object) -> Precision:
    return Precision(name=name, bits_per_element=bits, compute_formats=formats, **kw)


PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        _p("fp32", 32, ("fp32",), description="IEEE single precision"),
        _p("bf16", 16, ("bf16", "fp16"), description="bfloat16"),
        _p("fp16", 16, ("fp16", "bf16"), description="IEEE half precision"),
        _p("fp8", 8, ("fp8",), description="FP8 E4M3, per-tensor or per-channel scales"),
        _p(
            "fp8_block",
            8,
            ("fp8",),
            scale_bits=32,
            block_elements=128 * 128,
            description="FP8 with an FP32 scale per 128x128 block (DeepSeek-V3 style)",
        ),
        _p(
            "mxfp8",
            8,
            ("fp8",),
            scale_bits=8,
            block_elements=32,
            description="MXFP8 (E4M3) with an E8M0 scale per 32 elements",
        ),
        _p(
            "fp6",
            6,
            ("fp6", "mxfp4", "fp4"),
            scale_bits=8,
            block_elements=32,
            description="MXFP6 (E2M3/E3M2) with an E8M0 scale per 32 elements",
        ),
        _p(
            "nvfp4",
            4,
            ("nvfp4", "fp4"),
            scale_bits=8,
            block_elements=16,
            description="NVFP4 (E2M1) with an FP8 E4M3 scale per 16 elements",
        ),
        _p(
            "mxfp4",
            4,
            ("mxfp4", "fp4"),
            scale_bits=8,
            block_elements=32,
            description="MXFP4 (E2M1) with an E8M0 scale per 32 elements",
        ),
        _p(
            "fp4",
            4,
            ("fp4", "nvfp4", "mxfp4"),
            scale_bits=8,
            block_elements=16,
            description="generic 4-bit float; costed like NVFP4",
        ),
        _p("int8", 8, ("int8",), description="INT8 weights and activations"),
        _p(
            "int8_wo",
            8,
            ("bf16",),
            scale_bits=16,
            block_elements=4096,
            weight_only=True,
            description="INT8 weight-only (per-channel scales), computed in bf16",
        ),
        _p(
            "int4_wo",
            4,
            ("bf16",),
            scale_bits=16,
            block_elements=128,
            weight_only=True,
            description="INT4 weight-only (AWQ/GPTQ-style, group 128), computed in bf16",
        ),
    )
}

# When a chip has no native rate for a format, the work runs at the next wider rate
# (weights are dequantised on the fly); the order is the fallback chain.
FALLBACK_CHAIN: tuple[str, ...] = ("fp4", "fp6", "fp8", "bf16", "fp16", "fp32")

ALIASES: dict[str, str] = {
    "fp8_e4m3": "fp8",
    "float8": "fp8",
    "e4m3": "fp8",
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "float32": "fp32",
    "w4a16": "int4_wo",
    "w8a16": "int8_wo",
    "int4": "int4_wo",
    "nvfp4_awq": "nvfp4",
    "w4a8": "nvfp4",
    "fp8_pb_wo": "fp8_block",
}


def get_precision(name: str) -> Precision:
    """Look a precision up by name or alias; raise with the valid names otherwise."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    try:
        return PRECISIONS[key]
    except KeyError:
        valid = ", ".join(sorted(PRECISIONS))
        raise NotFoundError(f"unknown precision {name!r}; valid: {valid}") from None


def bytes_per_element(name: str) -> float:
    """Stored bytes per element of a named precision, block scales included."""
    return get_precision(name).bytes_per_element
