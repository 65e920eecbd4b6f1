"""Time the kernels of ``cases.plan`` on this machine's device and write a measurement file.

Backends: ``torch`` (the GPU when CUDA is there, else the CPU) and ``numpy`` (the CPU;
no dependency beyond the package's own, so the pipeline runs anywhere). On a GPU:

- each case runs ``warmup`` times, then ``repeats`` times back to back between two CUDA
  events, queued behind a GPU sleep so that launch latency is hidden; the mean is kept;
- GEMM weights rotate over enough copies to exceed twice the L2 cache (256 MB), so a
  small-m GEMM streams its weights from HBM as it does inside a model, instead of
  re-reading a 32 MB matrix from a 50 MB L2;
- FP8 GEMMs use ``torch._scaled_mm`` (e4m3 operands, per-tensor scales, bf16 output) on
  chips that have FP8 tensor cores (compute capability 8.9 and up);
- host-to-device copies come from pinned host memory (``pin_memory``), as an engine's
  host KV tier holds it;
- attention is ``scaled_dot_product_attention`` (flash or cuDNN kernels, grouped-query
  heads), causal for prefill, one query per sequence for decode.

torch is imported only here and only for that backend: the package does not depend on
it. This module needs nothing but numpy (and torch for that backend), so a lent GPU whose
image has PyTorch but not this package's dependencies runs it from a copy of the tree:
``python3 -m codesign.kernels.bench --out FILE``. ``codesign kernels measure`` is the
same, validated into a ``report.KernelReport``.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from codesign.errors import SpecError
from codesign.kernels.cases import Case, plan
from codesign.kernels.report_format import FORMAT_VERSION

ROTATE_BYTES = 256 << 20
SLEEP_CYCLES = 20_000_000  # ~10 ms at 2 GHz: room to queue the timed runs
Progress = Callable[[int, int, str], None]


def _median_s(run: Callable[[], Any], warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class NumpyBackend:
    name = "numpy"

    def __init__(self) -> None:
        self.device = platform.processor() or platform.machine() or "cpu"
        self.framework = f"numpy {np.__version__}"
        self.gemm_dtypes, self.attn_dtype = ["fp32"], "fp32"

    def release(self) -> None:
        """Nothing to free between cases on the CPU."""

    def time(self, case: Case, warmup: int, repeats: int) -> float:
        rng = np.random.default_rng(0)
        s = case.shape
        if case.op == "membw":
            src = np.ones(s["bytes"] // 4, dtype=np.float32)
            dst = np.empty_like(src)
            return _median_s(lambda: np.copyto(dst, src), warmup, repeats)
        if case.op == "gemm":
            a = rng.standard_normal((s["m"], s["k"]), dtype=np.float32)
            b = rng.standard_normal((s["k"], s["n"]), dtype=np.float32)
            return _median_s(lambda: a @ b, warmup, repeats)
        h, kv, d = s["heads"], s["kv_heads"], s["head_dim"]
        group = h // kv
        if case.op == "attn_prefill":
            n = s["q_len"]
            q = rng.standard_normal((s["batch"], h, n, d), dtype=np.float32)
            k = rng.standard_normal((s["batch"], kv, n, d), dtype=np.float32)
            mask = np.triu(np.full((n, n), -np.inf, dtype=np.float32), 1)
        else:
            n = s["kv_len"]
            q = rng.standard_normal((s["batch"], h, 1, d), dtype=np.float32)
            k = rng.standard_normal((s["batch"], kv, n, d), dtype=np.float32)
            mask = np.zeros((1, n), dtype=np.float32)
        v = k.copy()

        def attend() -> np.ndarray:
            kk, vv = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
            scores = q @ kk.transpose(0, 1, 3, 2) / np.sqrt(d) + mask
            p = np.exp(scores - scores.max(axis=-1, keepdims=True))
            return (p / p.sum(axis=-1, keepdims=True)) @ vv

        return _median_s(attend, warmup, repeats)


class TorchBackend:
    name = "torch"

    def __init__(self) -> None:
        try:
            import torch
        except ImportError:
            raise SpecError(
                "the torch backend needs PyTorch: pip install torch (or use --backend numpy)"
            ) from None
        self.torch = torch
        self.cuda = torch.cuda.is_available()
        self.dev = torch.device("cuda" if self.cuda else "cpu")
        self.device = torch.cuda.get_device_name() if self.cuda else (platform.processor() or "cpu")
        self.framework = f"torch {torch.__version__}" + (
            f" (CUDA {torch.version.cuda})" if self.cuda else ""
        )
        fp8 = self.cuda and torch.cuda.get_device_capability() >= (8, 9)
        fp8 = fp8 and hasattr(torch, "_scaled_mm")
        self.gemm_dtypes = (["bf16"] + (["fp8"] if fp8 else [])) if self.cuda else ["fp32", "bf16"]
        self.attn_dtype = "bf16" if self.cuda else "fp32"

    def release(self) -> None:
        """Return cached device memory after a failed case (an OOM leaves it fragmented)."""
        if self.cuda:
            self.torch.cuda.empty_cache()

    def _timed(self, run: Callable[[], Any], warmup: int, repeats: int) -> float:
        if not self.cuda:
            return _median_s(run, warmup, repeats)
        torch = self.torch
        for _ in range(warmup):
            run()
        torch.cuda.synchronize()
        # keep the GPU busy while the host queues the timed runs, so that a kernel of a
        # few microseconds is timed by itself and not by its launch (as a CUDA graph
        # replays it in an engine's decode step)
        if hasattr(torch.cuda, "_sleep"):
            torch.cuda._sleep(SLEEP_CYCLES)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(repeats):
            run()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1e3 / repeats

    def _tensor(self, shape: tuple[int, ...], dtype: str) -> Any:
        torch = self.torch
        kind = {"fp32": torch.float32, "bf16": torch.bfloat16}.get(dtype, torch.bfloat16)
        x = torch.randn(shape, device=self.dev, dtype=kind)
        return x.to(torch.float8_e4m3fn) if dtype == "fp8" else x

    def time(self, case: Case, warmup: int, repeats: int) -> float:
        torch, s = self.torch, case.shape
        if case.op == "membw":
            src = torch.empty(s["bytes"], dtype=torch.uint8, device=self.dev)
            dst = torch.empty_like(src)
            return self._timed(lambda: dst.copy_(src), warmup, repeats)
        if case.op == "h2d":
            host = torch.empty(s["bytes"], dtype=torch.uint8, pin_memory=True)
            dst = torch.empty(s["bytes"], dtype=torch.uint8, device=self.dev)
            return self._timed(lambda: dst.copy_(host, non_blocking=True), warmup, repeats)
        if case.op == "gemm":
            a = self._tensor((s["m"], s["k"]), case.dtype)
            weight_bytes = s["k"] * s["n"] * a.element_size()
            copies = max(1, min(32, -(-ROTATE_BYTES // weight_bytes))) if self.cuda else 1
            # column-major weights, as _scaled_mm requires and as engines store them
            ws = [self._tensor((s["n"], s["k"]), case.dtype).t() for _ in range(copies)]
            turn = iter(range(1 << 62))
            if case.dtype == "fp8":
                one = torch.ones((), device=self.dev)

                def run() -> Any:
                    w = ws[next(turn) % copies]
                    return torch._scaled_mm(
                        a, w, scale_a=one, scale_b=one, out_dtype=torch.bfloat16
                    )
            else:

                def run() -> Any:
                    return a @ ws[next(turn) % copies]

            return self._timed(run, warmup, repeats)
        h, kv, d, b = s["heads"], s["kv_heads"], s["head_dim"], s["batch"]
        causal = case.op == "attn_prefill"
        n = s["q_len"] if causal else s["kv_len"]
        q = self._tensor((b, h, n if causal else 1, d), case.dtype)
        k = self._tensor((b, kv, n, d), case.dtype)
        v = self._tensor((b, kv, n, d), case.dtype)
        sdpa = torch.nn.functional.scaled_dot_product_attention
        return self._timed(
            lambda: sdpa(q, k, v, is_causal=causal, enable_gqa=True), warmup, repeats
        )


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def _driver() -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout else ""
    except (OSError, subprocess.SubprocessError, IndexError):
        return ""


def measure(
    backend: str = "torch",
    quick: bool = False,
    repeats: int = 20,
    warmup: int = 3,
    on_progress: Progress | None = None,
    notes: str = "",
) -> dict[str, Any]:
    """Time every planned case on ``backend``; the measurement record as plain data (the
    layout of ``report.KernelReport``)."""
    if backend not in ("torch", "numpy"):
        raise SpecError(f"unknown backend {backend!r}: use torch or numpy")
    bk: NumpyBackend | TorchBackend = TorchBackend() if backend == "torch" else NumpyBackend()
    cases = plan(bk.gemm_dtypes, bk.attn_dtype, quick, host_link=bool(getattr(bk, "cuda", False)))
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for i, case in enumerate(cases):
        if on_progress:
            on_progress(i, len(cases), f"{case.op} {case.dtype} {case.shape}")
        try:
            seconds = bk.time(case, warmup, repeats)
        except (RuntimeError, MemoryError, ValueError) as exc:
            # one kernel the library refuses (or out of memory) must not lose the lease's
            # other measurements: keep the reason and go on
            reason = (
                str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            )
            skipped.append(
                {"op": case.op, "dtype": case.dtype, "shape": case.shape, "reason": reason}
            )
            bk.release()
            continue
        rows.append(
            {
                "op": case.op,
                "dtype": case.dtype,
                "shape": case.shape,
                "seconds": max(seconds, 1e-9),
                "flops": case.flops,
                "bytes_moved": case.bytes_moved,
            }
        )
    if on_progress:
        on_progress(len(cases), len(cases), "done")
    prov = {
        "device": bk.device,
        "backend": f"{bk.name}-{'cuda' if getattr(bk, 'cuda', False) else 'cpu'}",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "framework": bk.framework,
        "driver": _driver() if getattr(bk, "cuda", False) else "",
        "codesign_commit": os.environ.get("CODESIGN_COMMIT") or _git_commit(),
        "command": " ".join(sys.argv),
        "repeats": repeats,
        "notes": notes,
    }
    if not rows:
        raise SpecError(f"no kernel ran on {bk.device}: first reason: {skipped[0]['reason']}")
    return {
        "format": "codesign-kernels",
        "version": FORMAT_VERSION,
        "provenance": prov,
        "rows": rows,
        "skipped": skipped,
    }


def main(argv: list[str] | None = None) -> int:
    """``python3 -m codesign.kernels.bench``: the same run without the CLI's dependencies."""
    import argparse
    import json

    ap = argparse.ArgumentParser(prog="python3 -m codesign.kernels.bench", description=__doc__)
    ap.add_argument("--out", required=True, type=Path, help="measurement file to write")
    ap.add_argument("--backend", default="torch", choices=["torch", "numpy"])
    ap.add_argument("--quick", action="store_true", help="small shapes: a smoke run")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--notes", default="")
    args = ap.parse_args(argv)

    def show(done: int, total: int, label: str) -> None:
        print(f"[{done}/{total}] {label}", file=sys.stderr, flush=True)

    try:
        record = measure(args.backend, args.quick, args.repeats, args.warmup, show, args.notes)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(
        f"{len(record['rows'])} kernels on {record['provenance']['device']} "
        f"({len(record['skipped'])} skipped) -> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
