"""TRT-LLM: ``trtllm-serve`` per pool with its extra LLM-API options YAML."""

from __future__ import annotations

from typing import Any

import yaml

from codesign.deployment import Deployment, Pool
from codesign.export.base import (
    NVME_KV_DIR,
    ExportError,
    ExportResult,
    Group,
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


def llm_api_options(dep: Deployment, group: Group, pool: Pool) -> tuple[dict[str, Any], list[str]]:
    """LLM-API options for one pool (the YAML given to ``--extra_llm_api_options``).

    Attention-DP ranks live inside one instance: tensor_parallel_size is tp x dp with
    enable_attention_dp."""
    par, notes = pool.parallel, []
    if uses_shared_store(dep, group, pool):
        raise ExportError(
            "trtllm: a KV store shared by the workers cannot be expressed: TRT-LLM has no "
            "built-in shared store (only through an LMCache or Dynamo KVBM connector, not "
            "exported here); drop kv_tiers.shared_storage_tb or use engine vllm or sglang"
        )
    opts: dict[str, Any] = {
        "tensor_parallel_size": par.tp * par.dp,
        "pipeline_parallel_size": par.pp,
        "enable_attention_dp": par.dp > 1,
    }
    if par.dp > 1 and dep.adp_balance_timeout_iters:
        # the wait the model charges (codesign.serving.adp_balance) assumes no extra
        # batching wait once every rank has a prefill (TRT-LLM's default is 10 iterations)
        opts["attention_dp_config"] = {
            "enable_balance": True,
            "timeout_iters": dep.adp_balance_timeout_iters,
            "batching_wait_iters": 0,
        }
    if par.ep > 0:
        opts["moe_expert_parallel_size"] = par.ep
    if pool.max_batch:
        opts["max_batch_size"] = pool.max_batch
    if pool.max_batch_tokens:
        opts["max_num_tokens"] = pool.max_batch_tokens
    # decode steps as CUDA graphs up to the pool's batch (TRT-LLM's own default stops at
    # 128 sequences and runs larger batches eagerly); null turns graphs off
    graphs: dict[str, Any] = {"enable_padding": True}
    if pool.max_batch:
        graphs["max_batch_size"] = pool.max_batch
    opts["cuda_graph_config"] = graphs if dep.cuda_graphs else None
    if dep.cuda_graphs and not pool.max_batch:
        notes.append(
            f"{pool_label(group, pool)}: no max_batch, so TRT-LLM captures CUDA graphs up to "
            "128 sequences and runs larger decode batches eagerly"
        )
    # the KV pool's share of the memory the weights leave, as the prediction sized it
    # (the pool's, else TRT-LLM's default, written out: perf.kv_budget)
    kv: dict[str, Any] = {
        "enable_block_reuse": True,
        "free_gpu_memory_fraction": memory_fraction(dep, group, pool),
    }
    if fp8_kv(group.precision):
        kv["dtype"] = "fp8"
    elif note := kv_note(group.precision, "TRT-LLM"):
        notes.append(note)
    host_gb = host_gb_per_rank(dep, group, pool)
    if host_gb > 0:
        # bytes per rank: every rank's KV cache manager takes its own host pool of this size
        # (KV cache manager v2 sizes a missing one from the RAM shared by the local ranks)
        kv["host_cache_size"] = int(host_gb * 1e9)
    disk_gb = storage_gb_per_rank(dep, group, pool)
    if disk_gb > 0:  # bytes per rank; read by KV cache manager v2 only
        kv["disk_cache_size"] = int(disk_gb * 1e9)
        kv["disk_cache_path"] = NVME_KV_DIR
        kv["use_kv_cache_manager_v2"] = True
        notes.append(
            f"{pool_label(group, pool)}: the NVMe KV tier needs TRT-LLM's KV cache manager "
            f"v2 (a prototype; PyTorch backend) and the directory {NVME_KV_DIR} to exist on "
            "the node's drives before the server starts"
        )
    opts["kv_cache_config"] = kv
    spec = dep.spec_decoding
    if uses_draft(dep, group):
        if spec.method == "mtp":
            opts["speculative_config"] = {
                "decoding_type": "MTP",
                "max_draft_len": spec.draft_tokens,
            }
        else:
            opts["speculative_config"] = {
                "decoding_type": "Eagle3",
                "max_draft_len": spec.draft_tokens,
                "speculative_model": "EAGLE3_DRAFT_MODEL",
            }
            notes.append("eagle: replace EAGLE3_DRAFT_MODEL with the EAGLE-3 draft checkpoint")
    if group.disagg:
        opts["cache_transceiver_config"] = {"backend": "DEFAULT"}
    return opts, notes


def dump_yaml(data: dict[str, Any], header: str) -> str:
    return header + yaml.safe_dump(data, sort_keys=False)


class TrtllmExporter:
    name = "trtllm"

    def export(self, dep: Deployment, version: str | None) -> ExportResult:
        res = start_engine_export(dep, "trtllm", version)
        version = res.engine_version
        for g in groups(dep):
            for pool in g.pools:
                opts, notes = llm_api_options(dep, g, pool)
                res.notes += notes
                label = pool_label(g, pool)
                cfg = f"{label}.llm_api.yaml"
                res.files[cfg] = dump_yaml(opts, f"# TRT-LLM {version} LLM-API options: {label}\n")
                header = pool_header("TRT-LLM", version, label, g, pool)
                argv = ["trtllm-serve", g.model, "--backend", "pytorch"]
                argv += ["--extra_llm_api_options", cfg]
                res.files[f"{label}.sh"] = header + shell_line(argv) + "\n"
        if dep.mode == "disagg":
            res.notes.append(
                "disaggregated: start context (prefill) and generation (decode) servers with "
                "these files and `trtllm-serve disaggregated -c <config>` in front (or use Dynamo)"
            )
        return res


register("trtllm")(TrtllmExporter)
