"""SGLang: one ``python -m sglang.launch_server`` command line per pool."""

from __future__ import annotations

from codesign.deployment import Deployment, Pool
from codesign.export.base import (
    NVME_KV_DIR,
    SHARED_KV_STORE,
    ExportError,
    ExportResult,
    Group,
    env_lines,
    fp8_kv,
    groups,
    host_gb_per_rank,
    kv_note,
    memory_fraction,
    pool_header,
    pool_label,
    register,
    shell_line,
    start_engine_export,
    storage_gb_per_rank,
    uses_draft,
    uses_shared_store,
)


def sglang_server_args(dep: Deployment, group: Group, pool: Pool) -> tuple[list[str], list[str]]:
    """SGLang server flags for one pool (shared by ``sglang.launch_server`` and Dynamo).

    Attention-DP ranks live inside one instance: ``--tp-size`` is tp x dp and
    ``--dp-size`` dp with ``--enable-dp-attention``."""
    par, notes = pool.parallel, []
    argv = ["--tp-size", str(par.tp * par.dp)]
    if par.dp > 1:
        argv += ["--dp-size", str(par.dp), "--enable-dp-attention"]
    if par.pp > 1:
        argv += ["--pp-size", str(par.pp)]
    if par.ep > 0:
        argv += ["--ep-size", str(par.ep)]
    if pool.max_batch:  # per DP rank in the deployment, per instance in SGLang
        argv += ["--max-running-requests", str(pool.max_batch * par.dp)]
    if pool.max_batch_tokens:
        argv += ["--chunked-prefill-size", str(pool.max_batch_tokens)]
    if not dep.cuda_graphs:
        argv.append("--disable-cuda-graph")
    elif pool.max_batch:  # graphs for every decode batch of a DP rank
        argv += ["--cuda-graph-max-bs-decode", str(pool.max_batch)]
    # weights + KV pool as the prediction sized them (the pool's, else SGLang's own
    # default for this GPU and layout, written out: perf.kv_budget)
    argv += ["--mem-fraction-static", f"{memory_fraction(dep, group, pool):g}"]
    if fp8_kv(group.precision):
        argv += ["--kv-cache-dtype", "fp8_e4m3"]
    elif note := kv_note(group.precision, "SGLang"):
        notes.append(note)
    spec = dep.spec_decoding
    if uses_draft(dep, group):
        k = spec.draft_tokens
        argv += ["--speculative-algorithm", "EAGLE" if spec.method == "mtp" else "EAGLE3"]
        argv += ["--speculative-num-steps", str(k), "--speculative-eagle-topk", "1"]
        argv += ["--speculative-num-draft-tokens", str(k + 1)]
        if spec.method == "eagle":
            argv += ["--speculative-draft-model-path", "EAGLE3_DRAFT_MODEL"]
            notes.append("eagle: replace EAGLE3_DRAFT_MODEL with the EAGLE-3 draft checkpoint")
    if group.disagg:
        argv += ["--disaggregation-mode", pool.role, "--disaggregation-transfer-backend", "nixl"]
    host_gb = host_gb_per_rank(dep, group, pool)
    if host_gb > 0:
        gb = max(1, int(host_gb))
        argv += ["--enable-hierarchical-cache", "--hicache-size", str(gb)]
        notes.append(
            f"{pool_label(group, pool)}: --hicache-size is per rank: "
            f"{dep.kv_tiers.host_gb_per_worker:g} GB per worker / "
            f"{par.tp * par.dp * par.pp} ranks = {gb} GB"
        )
    nvme, shared = storage_gb_per_rank(dep, group, pool) > 0, uses_shared_store(dep, group, pool)
    if nvme and shared:
        raise ExportError(
            "sglang: HiCache takes one storage backend, so the node's NVMe (file) and a "
            "shared store (mooncake) cannot both be expressed: drop "
            "kv_tiers.storage_gb_per_worker or shared_storage_tb"
        )
    if (nvme or shared) and host_gb <= 0:
        argv.append("--enable-hierarchical-cache")
        notes.append(
            f"{pool_label(group, pool)}: HiCache stages its storage tier through host "
            "memory; with no host_gb_per_worker SGLang sizes that with its "
            "--hicache-ratio default"
        )
    if shared:
        argv += ["--hicache-storage-backend", "mooncake", "--hicache-mem-layout", "page_first"]
        notes.append(
            f"{pool_label(group, pool)}: the shared store is a Mooncake Store (HiCache's "
            f"mooncake backend): MOONCAKE_MASTER names its master at {SHARED_KV_STORE}, "
            "replace it with the store's address; the store's "
            f"{dep.kv_tiers.shared_storage_tb:g} TB are its own (the servers lend none: "
            "MOONCAKE_GLOBAL_SEGMENT_SIZE=0); these environment names are not checked "
            "against recorded argument names"
        )
    if nvme:
        argv += ["--hicache-storage-backend", "file"]
        notes.append(
            f"{pool_label(group, pool)}: the NVMe tier is HiCache's file backend in "
            f"{NVME_KV_DIR} (SGLANG_HICACHE_FILE_BACKEND_STORAGE_DIR); "
            "SGLANG_HICACHE_FILE_BACKEND_MAX_SIZE caps it per rank only in SGLang versions "
            "whose file backend evicts (older ones grow it without bound); these environment "
            "names are not checked against recorded argument names"
        )
    return argv, notes


def sglang_env(dep: Deployment, group: Group, pool: Pool) -> dict[str, str]:
    """Environment of an SGLang pool: the NVMe tier's directory and size per rank, or the
    shared Mooncake Store's master."""
    if uses_shared_store(dep, group, pool):
        return {
            "MOONCAKE_MASTER": f"{SHARED_KV_STORE}:50051",
            "MOONCAKE_PROTOCOL": "rdma",
            "MOONCAKE_GLOBAL_SEGMENT_SIZE": "0",
        }
    gb = storage_gb_per_rank(dep, group, pool)
    if gb <= 0:
        return {}
    return {
        "SGLANG_HICACHE_FILE_BACKEND_STORAGE_DIR": NVME_KV_DIR,
        "SGLANG_HICACHE_FILE_BACKEND_MAX_SIZE": f"{max(round(gb), 1)}G",
    }


class SglangExporter:
    name = "sglang"

    def export(self, dep: Deployment, version: str | None) -> ExportResult:
        res = start_engine_export(dep, "sglang", version)
        for g in groups(dep):
            for pool in g.pools:
                args, notes = sglang_server_args(dep, g, pool)
                res.notes += notes
                label = pool_label(g, pool)
                header = pool_header("SGLang", res.engine_version, label, g, pool)
                argv = ["python", "-m", "sglang.launch_server", "--model-path", g.model, *args]
                env = env_lines(sglang_env(dep, g, pool))
                res.files[f"{label}.sh"] = header + env + shell_line(argv) + "\n"
        if dep.mode == "disagg":
            res.notes.append("disaggregated: run the SGLang router in PD mode in front")
        return res


register("sglang")(SglangExporter)
