"""The kernels ``codesign kernels measure`` times, with their work counted from the shape.

The counts follow the performance model's conventions (``codesign.perf.step``), so a
measured time and a predicted one describe the same work:

- ``gemm`` (m x k) @ (k x n): 2 m n k FLOPs; bytes: both operands at the operand
  precision and the bf16 output (a decode GEMM with small m is the weight stream k n);
- ``membw``: a device-to-device copy of ``bytes`` bytes: it reads and writes them, 2x;
- ``h2d``: a copy of ``bytes`` bytes from pinned host memory to the device (what a
  prefix loaded from the host-memory KV tier moves), once over the chip-to-host link;
- ``attn_prefill``: causal attention of ``q_len`` queries over themselves, ``batch``
  sequences: q_len (q_len + 1) / 2 (query, key) pairs per sequence, 4 heads x head_dim
  FLOPs per pair (QK^T and PV, as ``models.attn_layers.flops_per_pair``); bytes: Q, K, V
  and the output once;
- ``attn_decode``: one query per sequence over ``kv_len`` cached keys: 4 heads x head_dim
  x kv_len FLOPs, and the K and V cache read, batch x kv_len x kv_heads x head_dim x 2.

Shapes are the ones serving runs: Llama-3.1-8B/70B projections and MLPs and a
DeepSeek-V3 expert (n, k of 2048 x 7168), tokens per step from 1 (decode) to 16K (prefill
chunks); attention with 32 query and 8 KV heads of 128 (Llama-3.1-8B).
"""

from __future__ import annotations

from dataclasses import dataclass, field

BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1}

GEMM_NK = ((4096, 4096), (14336, 4096), (4096, 14336), (8192, 8192), (28672, 8192), (2048, 7168))
GEMM_M = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
MEMBW_BYTES = (64 << 20, 256 << 20, 1 << 30, 4 << 30)
H2D_BYTES = (64 << 20, 1 << 30)
PREFILL_LEN = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
DECODE_BATCH = (1, 8, 32, 128)
DECODE_KV = (1024, 4096, 16384, 65536)
DECODE_MAX_TOKENS = 2 << 20  # batch x kv_len, keeps the cache under ~9 GB in bf16
HEADS, KV_HEADS, HEAD_DIM = 32, 8, 128

# small enough for a CPU in a few seconds (tests, a smoke run before a GPU lease)
QUICK_GEMM_NK = ((256, 256), (512, 1024))
QUICK_GEMM_M = (1, 16, 128)
QUICK_MEMBW_BYTES = (8 << 20, 32 << 20)
QUICK_PREFILL_LEN = (64, 256)
QUICK_DECODE = ((4, 256), (4, 1024))
QUICK_HEADS, QUICK_KV_HEADS, QUICK_HEAD_DIM = 4, 2, 64


@dataclass(frozen=True)
class Case:
    op: str
    dtype: str
    shape: dict[str, int] = field(hash=False)
    flops: float
    bytes_moved: float


def gemm_case(m: int, n: int, k: int, dtype: str) -> Case:
    nb = BYTES[dtype]
    moved = (m * k + k * n) * nb + m * n * BYTES["bf16"]
    return Case("gemm", dtype, {"m": m, "n": n, "k": k}, 2.0 * m * n * k, float(moved))


def membw_case(nbytes: int) -> Case:
    return Case("membw", "bytes", {"bytes": nbytes}, 0.0, 2.0 * nbytes)


def h2d_case(nbytes: int) -> Case:
    return Case("h2d", "bytes", {"bytes": nbytes}, 0.0, float(nbytes))


def prefill_case(batch: int, q_len: int, heads: int, kv_heads: int, dim: int, dtype: str) -> Case:
    pairs = batch * q_len * (q_len + 1) / 2.0
    moved = batch * q_len * dim * (2 * heads + 2 * kv_heads) * BYTES[dtype]
    shape = {"batch": batch, "q_len": q_len, "heads": heads, "kv_heads": kv_heads, "head_dim": dim}
    return Case("attn_prefill", dtype, shape, 4.0 * heads * dim * pairs, float(moved))


def decode_case(batch: int, kv_len: int, heads: int, kv_heads: int, dim: int, dtype: str) -> Case:
    cache = batch * kv_len * kv_heads * dim * 2 * BYTES[dtype]
    qo = batch * heads * dim * 2 * BYTES[dtype]
    shape = {
        "batch": batch,
        "kv_len": kv_len,
        "heads": heads,
        "kv_heads": kv_heads,
        "head_dim": dim,
    }
    return Case("attn_decode", dtype, shape, 4.0 * heads * dim * kv_len * batch, float(cache + qo))


def plan(
    gemm_dtypes: list[str], attn_dtype: str, quick: bool, host_link: bool = False
) -> list[Case]:
    """Every case of a run, cheapest first within each kind (``host_link``: a device with
    a host link to time, i.e. a GPU)."""
    cases = [membw_case(b) for b in (QUICK_MEMBW_BYTES if quick else MEMBW_BYTES)]
    if host_link:
        cases += [h2d_case(b) for b in (QUICK_MEMBW_BYTES if quick else H2D_BYTES)]
    for dtype in gemm_dtypes:
        for n, k in QUICK_GEMM_NK if quick else GEMM_NK:
            cases += [gemm_case(m, n, k, dtype) for m in (QUICK_GEMM_M if quick else GEMM_M)]
    h, kv, d = (
        (QUICK_HEADS, QUICK_KV_HEADS, QUICK_HEAD_DIM) if quick else (HEADS, KV_HEADS, HEAD_DIM)
    )
    for s in QUICK_PREFILL_LEN if quick else PREFILL_LEN:
        cases.append(prefill_case(1, s, h, kv, d, attn_dtype))
    decode = QUICK_DECODE if quick else [(b, L) for b in DECODE_BATCH for L in DECODE_KV]
    for b, L in decode:
        if b * L <= DECODE_MAX_TOKENS:
            cases.append(decode_case(b, L, h, kv, d, attn_dtype))
    return cases
