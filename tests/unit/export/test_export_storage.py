"""The node's NVMe KV tier in each engine's own terms, per GPU rank: TRT-LLM's
``disk_cache_size`` (bytes), SGLang HiCache's file backend (environment), vLLM through
LMCache's local disk (environment, GB); Dynamo carries them with a hostPath mount."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from codesign.deployment import Deployment
from codesign.export import FORMATS, export
from codesign.export.base import NVME_KV_DIR, ExportError
from codesign.export.check import check_result, script_argv

EXAMPLES = Path(__file__).parents[3] / "examples"
AGG = EXAMPLES / "deployment-r1-gb200-agg.yaml"  # 8 GPUs per worker, 200 GB host
DISAGG = EXAMPLES / "deployment-r1-disagg-subagents.yaml"


def dep(path: Path, engine: str, storage_gb: float = 4000.0) -> Deployment:
    d = Deployment.from_file(path)
    tiers = d.kv_tiers.model_copy(update={"storage_gb_per_worker": storage_gb})
    return d.model_copy(update={"engine": engine, "kv_tiers": tiers})


def env_of(script: str) -> dict[str, str]:
    lines = [ln[len("export ") :] for ln in script.splitlines() if ln.startswith("export ")]
    return dict(ln.split("=", 1) for ln in lines)


def value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


@pytest.mark.parametrize(
    ("engine", "fmt"),
    [(e, f) for e in ("vllm", "sglang", "trtllm") for f in FORMATS if f in ("dynamo", e)],
)
def test_storage_exports_use_recorded_names(engine: str, fmt: str) -> None:
    check_result(export(dep(AGG, engine), fmt))


def test_storage_per_engine_per_rank() -> None:
    # 4,000 GB per worker of 8 GPUs: 500 GB per rank
    t = yaml.safe_load(export(dep(AGG, "trtllm"), "trtllm").files["agg.llm_api.yaml"])
    kv = t["kv_cache_config"]
    assert kv["disk_cache_size"] == 500 * 10**9 and kv["disk_cache_path"] == NVME_KV_DIR
    assert kv["use_kv_cache_manager_v2"] is True
    s = export(dep(AGG, "sglang"), "sglang").files["agg.sh"]
    argv = script_argv(s)
    assert value(argv, "--hicache-storage-backend") == "file"
    assert argv.count("--enable-hierarchical-cache") == 1
    assert env_of(s) == {
        "SGLANG_HICACHE_FILE_BACKEND_STORAGE_DIR": NVME_KV_DIR,
        "SGLANG_HICACHE_FILE_BACKEND_MAX_SIZE": "500G",
    }
    v = export(dep(AGG, "vllm"), "vllm").files["agg.sh"]
    argv = script_argv(v)
    assert json.loads(value(argv, "--kv-transfer-config"))["kv_connector"] == "LMCacheConnectorV1"
    assert "--kv-offloading-size" not in argv  # LMCache holds the host tier too
    assert env_of(v) == {
        "LMCACHE_LOCAL_CPU": "True",
        "LMCACHE_MAX_LOCAL_CPU_SIZE": "25",
        "LMCACHE_LOCAL_DISK": f"file://{NVME_KV_DIR}/",
        "LMCACHE_MAX_LOCAL_DISK_SIZE": "500",
    }
    # without a storage tier nothing of it is written
    plain = export(dep(AGG, "vllm", 0.0), "vllm").files["agg.sh"]
    assert "LMCACHE" not in plain and "--kv-offloading-size" in plain


def test_dynamo_mounts_the_drives_and_sets_the_environment() -> None:
    res = export(dep(AGG, "sglang"), "dynamo")
    svc = yaml.safe_load(res.files["dynamo-graph-deployment.yaml"])["spec"]["services"]["agg"]
    assert {"name": "SGLANG_HICACHE_FILE_BACKEND_MAX_SIZE", "value": "500G"} in svc["envs"]
    pod = svc["extraPodSpec"]
    assert pod["volumes"] == [{"name": "nvme-kv-cache", "hostPath": {"path": NVME_KV_DIR}}]
    assert pod["mainContainer"]["volumeMounts"] == [
        {"name": "nvme-kv-cache", "mountPath": NVME_KV_DIR}
    ]
    assert (
        "Frontend" in yaml.safe_load(res.files["dynamo-graph-deployment.yaml"])["spec"]["services"]
    )


def test_the_prefill_pool_gets_the_tier_within_its_nodes_drives() -> None:
    """Disagg: the prefill pool gets the tier (the engines look prefixes up on the prefill
    workers and send the decode workers the whole context, as the evaluation and the
    simulator model it), sized per rank; a narrower prefill pool gets at most its chip's
    share of the node's drives (GB200: 4 x 3.84 TB per 4-GPU tray, 3,840 GB per chip). The
    decode and sub-agent pools get none."""
    res = export(dep(DISAGG, "trtllm"), "trtllm")
    sub = yaml.safe_load(res.files["subagent-agg.llm_api.yaml"])["kv_cache_config"]
    assert "disk_cache_size" not in sub and "host_cache_size" not in sub
    kv = yaml.safe_load(res.files["prefill.llm_api.yaml"])["kv_cache_config"]
    assert kv["disk_cache_size"] == 500 * 10**9  # 4,000 GB over 8 GPUs
    kv = yaml.safe_load(res.files["decode.llm_api.yaml"])["kv_cache_config"]
    assert "disk_cache_size" not in kv and "host_cache_size" not in kv
    d = dep(DISAGG, "trtllm")
    pools = [d.pools[0].model_copy(update={"parallel": d.pools[0].parallel.model_copy(
        update={"tp": 1})}), d.pools[1]]  # fmt: skip
    narrow = export(d.model_copy(update={"pools": pools}), "trtllm")
    kv = yaml.safe_load(narrow.files["prefill.llm_api.yaml"])["kv_cache_config"]
    assert kv["disk_cache_size"] == 3840 * 10**9  # 4,000 GB capped at the chip's share


def test_vllm_disagg_with_storage_is_refused() -> None:
    with pytest.raises(ExportError, match="takes one KV connector"):
        export(dep(DISAGG, "vllm"), "vllm")


def shared(path: Path, engine: str, nvme_gb: float = 0.0) -> Deployment:
    d = dep(path, engine, nvme_gb)
    tiers = d.kv_tiers.model_copy(
        update={"shared_storage_tb": 100.0, "shared_storage_read_gb_s": 400.0}
    )
    return d.model_copy(update={"kv_tiers": tiers})


def test_shared_store_per_engine() -> None:
    """vLLM reads it through LMCache's remote backend, SGLang through HiCache's Mooncake
    backend; the store's address is a name to replace; TRT-LLM has no shared store."""
    v = export(shared(AGG, "vllm"), "vllm")
    check_result(v)
    env = env_of(v.files["agg.sh"])
    assert env["LMCACHE_REMOTE_URL"] == "lm://SHARED_KV_STORE:65432"
    assert "LMCACHE_LOCAL_DISK" not in env  # no NVMe tier in this deployment
    assert any("SHARED_KV_STORE" in n for n in v.notes)
    s = export(shared(AGG, "sglang"), "sglang")
    check_result(s)
    argv = script_argv(s.files["agg.sh"])
    assert value(argv, "--hicache-storage-backend") == "mooncake"
    assert env_of(s.files["agg.sh"])["MOONCAKE_MASTER"] == "SHARED_KV_STORE:50051"
    dyn = export(shared(AGG, "sglang"), "dynamo")
    check_result(dyn)
    svc = yaml.safe_load(dyn.files["dynamo-graph-deployment.yaml"])["spec"]["services"]["agg"]
    assert {"name": "MOONCAKE_GLOBAL_SEGMENT_SIZE", "value": "0"} in svc["envs"]
    for fmt in ("trtllm", "dynamo"):
        with pytest.raises(ExportError, match="TRT-LLM has no built-in shared store"):
            export(shared(AGG, "trtllm"), fmt)
    with pytest.raises(ExportError, match="HiCache takes one storage backend"):
        export(shared(AGG, "sglang", 4000.0), "sglang")
    with pytest.raises(ExportError, match="takes one KV connector"):
        export(shared(DISAGG, "vllm"), "vllm")
    # disagg: the prefill pool reads the store; a decode pool looks no prefixes up
    d = export(shared(DISAGG, "sglang"), "sglang")
    check_result(d)
    assert "mooncake" in script_argv(d.files["prefill.sh"])
    assert "mooncake" not in script_argv(d.files["decode.sh"])
    assert "MOONCAKE_MASTER" not in env_of(d.files["decode.sh"])
