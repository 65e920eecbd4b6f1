"""vLLM: one ``vllm serve`` command line per pool (one engine instance per worker)."""

from __future__ import annotations

from codesign.deployment import Deployment, Pool
from codesign.export.base import (
    NVME_KV_DIR,
    SHARED_KV_STORE,
    ExportError,
    ExportResult,
    Group,
    compact_json,
    env_lines,
    fp8_kv,
    gpus_per_worker,
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

GIB = 2**30


def vllm_engine_args(dep: Deployment, group: Group, pool: Pool) -> tuple[list[str], list[str]]:
    """vLLM engine flags for one pool (shared by ``vllm serve`` and ``dynamo.vllm``)."""
    par, notes = pool.parallel, []
    argv = [
        "--tensor-parallel-size", str(par.tp),
        "--pipeline-parallel-size", str(par.pp),
        "--data-parallel-size", str(par.dp),
    ]  # fmt: skip
    if par.ep > 0:
        argv.append("--enable-expert-parallel")
        if par.ep != par.tp * par.dp:
            notes.append(
                f"{pool_label(group, pool)}: vLLM expert parallel spans tp x dp = "
                f"{par.tp * par.dp} ranks, not ep = {par.ep}"
            )
    if pool.max_batch:
        argv += ["--max-num-seqs", str(pool.max_batch)]
    if pool.max_batch_tokens:
        argv += ["--max-num-batched-tokens", str(pool.max_batch_tokens)]
    spec = dep.spec_decoding
    k = spec.draft_tokens if uses_draft(dep, group) else 0
    if not dep.cuda_graphs:
        argv.append("--enforce-eager")
    elif pool.max_batch:  # graphs for every decode batch (k + 1 tokens per sequence)
        argv += ["--max-cudagraph-capture-size", str(pool.max_batch * (k + 1))]
    # the share of GPU memory for weights and KV cache the prediction assumed (the pool's,
    # else vLLM's default, written out: perf.kv_budget)
    argv += ["--gpu-memory-utilization", f"{memory_fraction(dep, group, pool):g}"]
    if fp8_kv(group.precision):
        argv += ["--kv-cache-dtype", "fp8"]
    elif note := kv_note(group.precision, "vLLM"):
        notes.append(note)
    argv.append("--enable-prefix-caching")
    if k:
        cfg: dict[str, object] = {"num_speculative_tokens": spec.draft_tokens}
        if spec.method == "mtp":
            cfg["method"] = "mtp"
        else:
            cfg.update(method="eagle3", model="EAGLE3_DRAFT_MODEL")
            notes.append("eagle: replace EAGLE3_DRAFT_MODEL with the EAGLE-3 draft checkpoint")
        argv += ["--speculative-config", compact_json(cfg)]
    if group.disagg:
        argv += [
            "--kv-transfer-config",
            compact_json({"kv_connector": "NixlConnector", "kv_role": "kv_both"}),
        ]
    shared = uses_shared_store(dep, group, pool)
    if storage_gb_per_rank(dep, group, pool) > 0 or shared:
        if group.disagg:
            raise ExportError(
                "vllm: an NVMe or shared-store KV tier with disaggregated pools cannot be "
                "expressed: vLLM takes one KV connector (NIXL moves the KV between the "
                "pools; those tiers need LMCache's); drop kv_tiers.storage_gb_per_worker "
                "and shared_storage_tb, or use mode agg"
            )
        # LMCache holds the host and NVMe tiers (its environment: ``vllm_env``)
        argv += [
            "--kv-transfer-config",
            compact_json({"kv_connector": "LMCacheConnectorV1", "kv_role": "kv_both"}),
        ]
        if host_gb_per_rank(dep, group, pool) <= 0:
            notes.append(
                f"{pool_label(group, pool)}: LMCache stages NVMe and shared-store reads through "
                "host memory; "
                "with no host_gb_per_worker its CPU buffer keeps LMCache's default size, "
                "a host tier the evaluation did not count"
            )
        tiers = [
            name
            for name, on in (
                ("host", host_gb_per_rank(dep, group, pool) > 0),
                (f"NVMe ({NVME_KV_DIR})", storage_gb_per_rank(dep, group, pool) > 0),
                ("shared-store", shared),
            )
            if on
        ]
        notes.append(
            f"{pool_label(group, pool)}: LMCache keeps the {', '.join(tiers)} KV tier(s) "
            "(LMCACHE_* sizes per rank, GB); LMCache's environment names are from its "
            "documentation, not checked against recorded argument names"
        )
        if shared:
            notes.append(
                f"{pool_label(group, pool)}: LMCACHE_REMOTE_URL names an LMCache server at "
                f"{SHARED_KV_STORE}: replace it with the store's address (a Mooncake Store "
                "is mooncakestore://MASTER:PORT with LMCache's extra_config); the store's "
                f"{dep.kv_tiers.shared_storage_tb:g} TB are set on the store itself"
            )
    elif host_gb_per_rank(dep, group, pool) > 0:  # summed over the worker's ranks
        gib = host_gb_per_rank(dep, group, pool) * gpus_per_worker(pool) * 1e9 / GIB
        argv += ["--kv-offloading-size", f"{gib:.1f}", "--kv-offloading-backend", "native"]
        if group.disagg:
            notes.append(
                "host KV offload together with the NIXL transfer connector: check that this "
                "vLLM version combines --kv-offloading-size with --kv-transfer-config"
            )
    return argv, notes


def vllm_env(dep: Deployment, group: Group, pool: Pool) -> dict[str, str]:
    """Environment of a vLLM pool: LMCache's CPU and local-disk tiers per rank (GB) and
    the shared store's address."""
    gb = storage_gb_per_rank(dep, group, pool)
    shared = uses_shared_store(dep, group, pool)
    if gb <= 0 and not shared:
        return {}
    # LMCache stages disk reads through its CPU buffer; without a host tier in the
    # deployment its default size applies (``vllm_engine_args`` notes it)
    env = {"LMCACHE_LOCAL_CPU": "True"}
    host_gb = host_gb_per_rank(dep, group, pool)
    if host_gb > 0:
        env["LMCACHE_MAX_LOCAL_CPU_SIZE"] = f"{host_gb:g}"
    if gb > 0:
        env["LMCACHE_LOCAL_DISK"] = f"file://{NVME_KV_DIR}/"
        env["LMCACHE_MAX_LOCAL_DISK_SIZE"] = f"{gb:g}"
    if shared:
        env["LMCACHE_REMOTE_URL"] = f"lm://{SHARED_KV_STORE}:65432"
        env["LMCACHE_REMOTE_SERDE"] = "naive"
    return env


class VllmExporter:
    name = "vllm"

    def export(self, dep: Deployment, version: str | None) -> ExportResult:
        res = start_engine_export(dep, "vllm", version)
        for g in groups(dep):
            for pool in g.pools:
                args, notes = vllm_engine_args(dep, g, pool)
                res.notes += notes
                label = pool_label(g, pool)
                header = pool_header("vLLM", res.engine_version, label, g, pool)
                cmd = shell_line(["vllm", "serve", g.model, *args])
                env = env_lines(vllm_env(dep, g, pool))
                res.files[f"{label}.sh"] = header + env + cmd + "\n"
        if dep.mode == "disagg":
            res.notes.append(
                "disaggregated: prefill and decode instances exchange KV over NIXL; a P/D-aware "
                "proxy or router (e.g. Dynamo) must send each request to both"
            )
        if dep.router != "round_robin":
            res.notes.append(f"router {dep.router}: put a {dep.router} router in front")
        return res


register("vllm")(VllmExporter)
