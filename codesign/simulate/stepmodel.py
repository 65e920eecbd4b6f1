"""Per-pool step-time functions for the simulator, tabulated from the analytic step model.

``codesign.perf.step.step_time`` is a sum of components that each depend on one or two
load figures (see its module docstring): dense GEMMs, experts and communication on the
step's tokens; lm_head on the sampled tokens; decode attention on (sequences, context);
prefill attention on (chunk tokens, cached tokens before them); host KV loads on the host
tokens; fixed costs. ``PoolModel`` calls ``step_time`` once per component on a grid
(vectorised) and then answers a step's time with a few list look-ups in plain Python,
so an engine step costs about a microsecond to time. Tests check it against
``step_time`` itself at random loads.

Loads are per attention-DP rank, as in ``StepLoad``. With speculative decoding a decode
step is a verify step of k + 1 tokens per sequence plus k draft passes (as
``codesign.perf.group_decode.decode_time``) and yields E tokens per sequence in expectation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from codesign.deployment import DeploymentPrecision, Pool
from codesign.errors import SpecError
from codesign.models import kv_elements_per_token, load_model
from codesign.perf.calibration import Calibration
from codesign.perf.collectives import kv_paths
from codesign.perf.engine import (
    DEFAULT_CHUNK_TOKENS,
    PREFILL_OWN_BATCH,
    byte_sizes,
    efficiency,
    ttft_overhead_s,
)
from codesign.perf.hardware import HwVec, hw_vectors_indexed, with_shared_store
from codesign.perf.kv_budget import pool_memory_fraction
from codesign.perf.memory import RESERVES_MAX_TOKENS, memory_use, weights_misfit
from codesign.perf.predict import make_layout, make_load, row_precisions
from codesign.perf.profile import ModelProfile, build_profile
from codesign.perf.step import launch_floor_s, layer_fixed_s, step_time
from codesign.serving.specdec import expected_tokens_per_step
from hwmodels import System, derive_system, get_system

DEFAULT_MAX_BATCH = 2048  # running sequences per DP rank when the pool sets no max_batch
CTX_STEP_TOKENS = 512  # grid of the decode-attention table
PF_NEW_STEP_TOKENS = 256  # grid of the prefill-attention table (chunk tokens)
PF_CTX_STEP_TOKENS = 4096  # grid of the prefill-attention table (cached tokens before)
CHUNK_MEMO_SIZE = 1 << 16  # remembered one-chunk step times per pool (then forgotten)


@dataclass
class PoolModel:
    """Everything the simulator needs about one pool's workers."""

    role: str
    system: System
    workers: int
    chips_per_worker: int
    dp: int
    max_seqs: int  # running sequences per worker
    chunk_tokens: int  # tokens per engine step per DP rank
    kv_tokens_per_worker: int  # device KV capacity
    kv_bytes_per_token: float  # one copy of one token's KV (host tier, transfers)
    host_tokens_per_worker: int
    ttft_overhead_s: float  # request handling: fixed and per-layer parts
    ttft_per_input_token_s: float  # request handling per uncached prompt token
    layers: int
    spec_k: int
    spec_tokens_per_step: float  # E: output tokens per sequence per decode step
    host_bw_bytes_per_s: float  # per worker, chip-to-host link
    scale_out_bytes_per_s: float  # per request's KV transfer: NICs of its KV-holding GPUs
    scale_up_bytes_per_s: float  # the same over the scale-up links
    scale_up_domain: int
    # tables
    tok_s: list[float]  # GEMM + experts + comm (+ lm_head of 0 tokens) by step tokens
    head_s: list[float]  # extra lm_head time by sampled tokens
    dec_attn_s: list[float]  # decode attention of one sequence by context / CTX_STEP
    pf_attn_s: list[list[float]]  # [ctx index][new index]
    host_kv_s_per_token: float
    fixed_s: float
    layer_overhead_s: float
    # eager steps (no CUDA graph): the least a step takes, the engine overhead plus the
    # host's kernel launches (``perf.step``); 0 with CUDA graphs
    eager_floor_s: float = 0.0
    # KV a running sequence holds for its output, in halves of the output: 2 where the
    # engine reserves prompt + maximum output at admission (TRT-LLM's default policy), 1
    # where it pages the cache and holds the prompt plus half the output on average
    # (vLLM, SGLang; ``perf.memory.kv_tokens_held_per_seq``)
    kv_out_halves: int = 2
    # a running sequence's recurrent state (linear-attention / Mamba layers) in KV-token
    # equivalents, held beside its KV (``perf.memory.MemoryUse.state_tokens_per_seq``)
    state_tokens: int = 0
    # prefills run as steps of their own while the decoding sequences wait (SGLang's
    # scheduler; ``perf.engine.PREFILL_OWN_BATCH``); else chunks ride the decode steps
    prefill_pauses_decode: bool = False
    # KV on the node's NVMe per worker and the time to read one token of it
    storage_tokens_per_worker: int = 0
    storage_kv_s_per_token: float = 0.0
    # the time to read one token from a store shared by the part's workers (0: none)
    shared_kv_s_per_token: float = 0.0
    # derived (the fields above are not changed after construction):
    # a decode-only step without speculation less its attention, by sequences
    dec_base_s: list[float] = field(init=False, repr=False, compare=False)
    pf_last: tuple[int, int] = field(init=False, repr=False, compare=False)  # last cells
    _chunk_memo: dict[tuple[int, int, float], float] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        # the same sums, in the same order, as ``step_s(n, ctx)`` (exact, not a fit; at
        # n = 0, + 0 x attention adds 0.0)
        t = self.fixed_s + 0.0
        n = min(len(self.tok_s), len(self.head_s)) if not self.spec_k else 0
        self.dec_base_s = [t + self.tok_s[i] + self.head_s[i] for i in range(n)]
        self.pf_last = (len(self.pf_attn_s) - 2, len(self.pf_attn_s[0]) - 2)

    # --- tables ---------------------------------------------------------------------
    def _tok(self, tokens: int) -> float:
        t = self.tok_s
        if tokens < len(t):
            return t[tokens]
        n = len(t) - 1
        return t[n] + (t[n] - t[n - 1]) * (tokens - n)

    def _head(self, sampled: int) -> float:
        h = self.head_s
        if sampled < len(h):
            return h[sampled]
        n = len(h) - 1
        return h[n] + (h[n] - h[n - 1]) * (sampled - n)

    def decode_attn_s(self, ctx: float) -> float:
        """Decode attention of one sequence at context ``ctx`` (linear interpolation)."""
        x = ctx / CTX_STEP_TOKENS
        i = int(x)
        d = self.dec_attn_s
        if i >= len(d) - 1:
            i = len(d) - 2
        return d[i] + (d[i + 1] - d[i]) * (x - i)

    def prefill_attn_s(self, new: float, before: float) -> float:
        """Prefill attention of ``new`` tokens after ``before`` cached ones (bilinear)."""
        if new <= 0:
            return 0.0
        x, y = new / PF_NEW_STEP_TOKENS, before / PF_CTX_STEP_TOKENS
        p = self.pf_attn_s
        i, j = int(y), int(x)
        i_max, j_max = self.pf_last
        if i > i_max:
            i = i_max
        if j > j_max:
            j = j_max
        fy, fx = y - i, x - j
        a, b = p[i], p[i + 1]
        lo = a[j] + (a[j + 1] - a[j]) * fx
        hi = b[j] + (b[j + 1] - b[j]) * fx
        return lo + (hi - lo) * fy

    # --- a step -----------------------------------------------------------------------
    def step_s(
        self,
        n_dec: int,
        ctx_mean: float,
        n_pf: int = 0,
        pf_attn_s: float = 0.0,
        pf_seqs: int = 0,
        load_s: float = 0.0,
    ) -> float:
        """One engine step of one DP rank: ``n_dec`` decoding sequences at mean context
        ``ctx_mean``, ``n_pf`` prefill tokens of ``pf_seqs`` sequences whose attention
        takes ``pf_attn_s``, and ``load_s`` loading cached prefixes from host memory, the
        node's NVMe or a shared store (``load_s``)."""
        t = self.fixed_s + pf_attn_s + load_s
        if n_dec:
            x = ctx_mean / CTX_STEP_TOKENS  # decode_attn_s, inline
            i = int(x)
            d = self.dec_attn_s
            if i >= len(d) - 1:
                i = len(d) - 2
            dec_attn = n_dec * (d[i] + (d[i + 1] - d[i]) * (x - i))
        else:
            dec_attn = 0.0
        k = self.spec_k
        if k and n_dec:
            # verify k + 1 tokens per sequence (k as a prefill after ctx), then k drafts
            floor = self.eager_floor_s
            base = self._tok(n_dec) + self._head(n_dec) + dec_attn
            if floor and base + self.fixed_s < floor:
                base = floor - self.fixed_s
            hd = self._head(n_dec)
            draft = (base - hd) / self.layers + hd + self.layer_overhead_s
            t += self._tok(n_dec * (k + 1) + n_pf) + self._head(n_dec * (k + 1) + pf_seqs)
            t += dec_attn + n_dec * self.prefill_attn_s(k, ctx_mean)
            return (t if t > floor else floor) + k * draft
        n, tok, h = n_dec + n_pf, self.tok_s, self.head_s
        tt = tok[n] if n < len(tok) else self._tok(n)
        n = n_dec + pf_seqs
        t = t + tt + (h[n] if n < len(h) else self._head(n)) + dec_attn
        return t if t > self.eager_floor_s else self.eager_floor_s

    def run_step_s(self, n_dec: int, ctx_mean: float) -> float:
        """``step_s(n_dec, ctx_mean)`` (a decode-only step), from ``dec_base_s``."""
        base = self.dec_base_s  # empty with speculative decoding
        if n_dec >= len(base):
            return self.step_s(n_dec, ctx_mean)
        x = ctx_mean / CTX_STEP_TOKENS
        i = int(x)
        d = self.dec_attn_s
        if i >= len(d) - 1:
            i = len(d) - 2
        t = base[n_dec] + n_dec * (d[i] + (d[i + 1] - d[i]) * (x - i))
        return t if t > self.eager_floor_s else self.eager_floor_s

    def load_s(self, host_tokens: float, storage_tokens: float, shared_tokens: float) -> float:
        """Seconds one rank spends loading a cached prefix from host memory, the node's
        NVMe and a shared store."""
        return (
            host_tokens * self.host_kv_s_per_token
            + storage_tokens * self.storage_kv_s_per_token
            + shared_tokens * self.shared_kv_s_per_token
        )

    def chunk_step_s(self, c: int, done: int, load_s: float) -> float:
        """A step with one prefill chunk (``c`` tokens after ``done``, ``load_s`` loading
        its cached prefix) and no decoding sequences: ``step_s`` with the loads ``Worker``
        gives it, remembered by its arguments (a pure function of them)."""
        key = (c, done, load_s)
        memo = self._chunk_memo
        dt = memo.get(key)
        if dt is None:
            dp = self.dp
            even = -(-c // dp)
            attn = 0.0 + self.prefill_attn_s(c, done)
            n_pf = c if c > even else even
            dt = self.step_s(0, 0.0, n_pf, attn, -(-1 // dp), load_s)
            if len(memo) >= CHUNK_MEMO_SIZE:
                memo.clear()
            memo[key] = dt
        return dt

    def kv_held(self, n_in: int, n_out: int) -> int:
        """KV tokens a running request holds at admission: its prompt and the engine's
        share of its output (``kv_out_halves`` halves, rounded up)."""
        return n_in + (n_out * self.kv_out_halves + 1) // 2 + self.state_tokens

    def kv_transfer_s(self, tokens: float, same_domain: bool) -> float:
        """Seconds to move ``tokens`` of KV from a prefill worker to a decode worker."""
        bw = self.scale_up_bytes_per_s if same_domain else self.scale_out_bytes_per_s
        return tokens * self.kv_bytes_per_token / max(bw, 1e-9)


def resolve_system(pool: Pool) -> System:
    """The pool's catalog system (with its hypothetical overrides); NotFoundError if unknown."""
    s = get_system(pool.system)
    return derive_system(s, set=pool.hardware) if pool.hardware else s


def _precisions(prec: DeploymentPrecision, prof: ModelProfile) -> tuple[str, str]:
    gemm = row_precisions(prec.gemm or "", "", "", "", prof)[0]
    moe = prec.moe or (prof.native_moe if not prec.gemm else gemm)
    moe = row_precisions(moe, moe, "", "", prof)[1]
    return gemm, moe


def _check_layout(prof: ModelProfile, pool: Pool) -> tuple[int, int]:
    par = pool.parallel
    where = f"{pool.role} pool"
    if prof.num_heads and prof.num_heads % par.tp:
        raise SpecError(f"{where}: tp={par.tp} does not divide the {prof.num_heads} heads")
    if not prof.is_moe:
        if par.ep:
            raise SpecError(f"{where}: ep set but the model has no experts")
        return 0, 0
    ep = par.ep or par.tp * par.dp
    if prof.num_experts % ep:
        raise SpecError(f"{where}: ep={ep} does not divide the {prof.num_experts} experts")
    return max(par.tp * par.dp // ep, 1), ep


def build_pool_model(
    model: str,
    pool: Pool,
    precision: DeploymentPrecision,
    engine: str,
    calib: Calibration,
    host_gb_per_worker: float = 0.0,
    spec_k: int = 0,
    spec_alpha: float = 0.0,
    max_context_tokens: int = 262_144,
    eager: bool = False,
    storage_gb_per_worker: float = 0.0,
    shared_read_bytes_per_s_per_chip: float = 0.0,
) -> PoolModel:
    """Tabulate the step model for one pool (raises SpecError for impossible pools)."""
    arch = load_model(model)
    prof = build_profile(arch)
    kv_elems = float(kv_elements_per_token(arch))
    system = resolve_system(pool)
    gemm, moe = _precisions(precision, prof)
    moe_tp, moe_ep = _check_layout(prof, pool)
    par = pool.parallel
    hw = hw_vectors_indexed(
        [system], np.zeros(1, dtype=np.int64), np.array([gemm]), np.array([moe])
    )
    if shared_read_bytes_per_s_per_chip > 0:  # (the share is the caller's: its readers)
        hw = with_shared_store(hw, np.array([shared_read_bytes_per_s_per_chip]), np.ones(1))
    nb = byte_sizes([gemm], [moe], [precision.kv])
    lay = make_layout(
        *(np.array([float(v)]) for v in (par.tp, par.dp, moe_tp, moe_ep, par.pp)), prof.is_moe
    )
    draft = spec_k > 0  # SGLang reserves memory for a draft model (perf.kv_budget)
    use = memory_use(
        prof,
        lay,
        nb,
        hw.mem_bytes,
        kv_elems,
        [engine],
        pool_memory_fraction(engine, float(hw.mem_bytes[0]), pool, draft),
        draft,
    )
    where = f"{pool.role} pool on {system.name}"
    if not bool(use.fits[0]):
        raise SpecError(f"{where}: {weights_misfit(use, hw.mem_bytes, engine)}")
    host_cap_gb = system.host_kv_gb_per_chip * float(lay.gpus[0])
    if host_gb_per_worker > host_cap_gb + 1e-6:
        raise SpecError(
            f"{where}: kv_tiers.host_gb_per_worker={host_gb_per_worker:g} exceeds the "
            f"{host_cap_gb:.0f} GB of host memory a worker has on {system.name}"
        )
    storage_cap_gb = system.storage_kv_gb_per_chip * float(lay.gpus[0])
    if storage_gb_per_worker > storage_cap_gb + 1e-6:
        raise SpecError(
            f"{where}: kv_tiers.storage_gb_per_worker={storage_gb_per_worker:g} exceeds the "
            f"{storage_cap_gb:.0f} GB of NVMe a worker has on {system.name}"
        )
    eff = efficiency(calib, hw, [engine])  # GPU time; an eager step's floor is applied per step
    eager_eff = efficiency(calib, hw, [engine], True) if eager else None
    floor_s = float(launch_floor_s(prof, eager_eff)[0]) if eager_eff is not None else 0.0
    kv_bpt = kv_elems * float(nb.kv_store[0])
    max_seqs_rank = pool.max_batch or DEFAULT_MAX_BATCH
    chunk = pool.max_batch_tokens or DEFAULT_CHUNK_TOKENS
    tables = _tables(prof, hw, lay, nb, eff, chunk, max_seqs_rank, spec_k, max_context_tokens)
    gpus = int(lay.gpus[0])
    paths = float(kv_paths(prof.kv_split(lay.tp), lay.pp)[0])
    alpha = spec_alpha if spec_k else 0.0
    per_layer_s = float(layer_fixed_s(prof, eff)[0])  # engine + MoE fixed cost, mean
    return PoolModel(
        role=pool.role,
        system=system,
        workers=pool.workers,
        chips_per_worker=par.chips,
        dp=par.dp,
        max_seqs=max_seqs_rank * par.dp,
        chunk_tokens=chunk,
        kv_tokens_per_worker=int(use.kv_tokens_per_worker[0]),
        state_tokens=int(np.ceil(np.asarray(use.state_tokens_per_seq, dtype=float).max())),
        kv_bytes_per_token=kv_bpt,
        host_tokens_per_worker=int(host_gb_per_worker * 1e9 / max(kv_bpt, 1e-9)),
        ttft_overhead_s=float(ttft_overhead_s(calib, [engine], prof.units)[0]),
        ttft_per_input_token_s=calib.ttft_per_input_token_us * 1e-6,
        layers=prof.layers,
        spec_k=spec_k,
        spec_tokens_per_step=float(expected_tokens_per_step(spec_k, alpha)) if spec_k else 1.0,
        host_bw_bytes_per_s=float(hw.host_bw[0]) * gpus,
        # a request's KV moves over the links of the GPUs that hold distinct parts of it
        scale_out_bytes_per_s=float(hw.so_bw[0]) * paths,
        scale_up_bytes_per_s=float(hw.su_bw[0]) * paths,
        scale_up_domain=int(hw.su_domain[0]),
        fixed_s=per_layer_s * prof.layers + float(eff.step_overhead_s[0]),
        layer_overhead_s=per_layer_s,
        eager_floor_s=floor_s,
        kv_out_halves=2 if engine in RESERVES_MAX_TOKENS else 1,
        prefill_pauses_decode=engine in PREFILL_OWN_BATCH,
        storage_tokens_per_worker=int(storage_gb_per_worker * 1e9 / max(kv_bpt, 1e-9)),
        **tables,
    )


def _tables(
    prof, hw: HwVec, lay, nb, eff, chunk: int, max_seqs: int, spec_k: int, max_ctx: int
) -> dict:
    """Component tables from ``step_time`` (see the module docstring)."""

    def run(n_dec, ctx, n_pf, ctx_pf, pf_seqs, host=0.0, sto=0.0, sh=0.0) -> dict:
        load = make_load(n_dec, ctx, n_pf, ctx_pf, pf_seqs, host, sto, sh)
        return step_time(prof, hw, lay, load, nb, eff)

    n_tok = chunk + max_seqs * (spec_k + 1) + 2
    tok = np.arange(n_tok, dtype=np.float64)
    a = run(0, 0, tok, 0, 0)
    tok_s = a["total"] - a["fixed"]
    n_head = max_seqs * 2 + 2 + chunk // 64
    h = run(0, 0, 0, 0, np.arange(n_head, dtype=np.float64))
    head_s = h["total"] - h["total"][0]
    ctx = np.arange(max_ctx // CTX_STEP_TOKENS + 3, dtype=np.float64) * CTX_STEP_TOKENS
    dec = run(1, ctx, 0, 0, 0)["attn_decode"]
    new = np.arange(max(chunk, spec_k + 1) // PF_NEW_STEP_TOKENS + 3) * PF_NEW_STEP_TOKENS
    before = np.arange(max_ctx // PF_CTX_STEP_TOKENS + 3) * PF_CTX_STEP_TOKENS
    nn, bb = np.meshgrid(new.astype(np.float64), before.astype(np.float64))
    pf = run(0, 0, nn.ravel(), bb.ravel(), np.where(nn.ravel() > 0, 1.0, 0.0))["attn_prefill"]
    host = run(0, 0, 0, 0, 0, 1e6)["kv_load"]
    sto = run(0, 0, 0, 0, 0, 0.0, 1e6)["kv_load"]
    # (no shared store: no rate; its reads never happen)
    has_shared = bool(np.any(np.asarray(hw.shared_bw) > 0))
    shared = run(0, 0, 0, 0, 0, 0.0, 0.0, 1e6)["kv_load"] if has_shared else np.zeros(1)
    return {
        "tok_s": tok_s.tolist(),
        "head_s": head_s.tolist(),
        "dec_attn_s": dec.tolist(),
        "pf_attn_s": pf.reshape(nn.shape).tolist(),
        "host_kv_s_per_token": float(host[0]) / 1e6,
        "storage_kv_s_per_token": float(sto[0]) / 1e6,
        "shared_kv_s_per_token": float(shared[0]) / 1e6,
    }
