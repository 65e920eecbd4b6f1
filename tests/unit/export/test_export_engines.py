"""Exports of the example deployments parse and use only recorded argument names."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

from codesign.deployment import Deployment
from codesign.export import FORMATS, export
from codesign.export.argdefs import argdefs, flag_names
from codesign.export.check import ArgdefMismatch, check_result, script_argv

EXAMPLES = Path(__file__).parents[3] / "examples"
AGG = EXAMPLES / "deployment-r1-gb200-agg.yaml"  # agg, host KV tier, kv_aware
DISAGG = EXAMPLES / "deployment-r1-disagg-subagents.yaml"  # disagg, MTP, sub-agents


def dep(path: Path, **update: object) -> Deployment:
    return Deployment.from_file(path).model_copy(update=update)


def value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


ENGINES = ("vllm", "sglang", "trtllm")
CASES = [
    (p, fmt, eng)
    for p in (AGG, DISAGG)
    for fmt in FORMATS
    for eng in ENGINES
    if fmt == "dynamo" or eng == fmt
]


@pytest.mark.parametrize(("path", "fmt", "engine"), CASES)
def test_outputs_parse_and_use_recorded_names(path: Path, fmt: str, engine: str) -> None:
    res = export(dep(path, engine=engine), fmt)
    assert res.files
    for rel, text in res.files.items():
        if rel.endswith(".sh"):
            argv = script_argv(text)
            assert argv and all(isinstance(w, str) for w in argv)
        else:
            assert yaml.safe_load(text)
    check_result(res)  # raises on any unrecorded flag/field


def test_vllm_disagg_flags() -> None:
    res = export(dep(DISAGG), "vllm")
    decode = script_argv(res.files["decode.sh"])
    assert decode[:3] == ["vllm", "serve", "deepseek-ai/DeepSeek-R1"]
    # decode pool: tp1 x dp8 with ep8 -> 8 GPUs; vLLM EP spans tp x dp ranks
    assert value(decode, "--data-parallel-size") == "8"
    assert "--enable-expert-parallel" in decode
    assert value(decode, "--max-num-seqs") == "128"
    assert value(decode, "--kv-cache-dtype") == "fp8"
    assert json.loads(value(decode, "--speculative-config")) == {
        "num_speculative_tokens": 2,
        "method": "mtp",
    }
    assert json.loads(value(decode, "--kv-transfer-config"))["kv_connector"] == "NixlConnector"
    sub = script_argv(res.files["subagent-agg.sh"])
    assert sub[2] == "Qwen/Qwen3-32B" and "--speculative-config" not in sub


def test_host_kv_tier_per_engine() -> None:
    # 200 GB per worker of 8 GPUs
    v = script_argv(export(dep(AGG, engine="vllm"), "vllm").files["agg.sh"])
    assert value(v, "--kv-offloading-size") == f"{200e9 / 2**30:.1f}"  # GiB, summed over TP
    s = script_argv(export(dep(AGG), "sglang").files["agg.sh"])
    assert "--enable-hierarchical-cache" in s and value(s, "--hicache-size") == "25"  # GB/rank
    t = yaml.safe_load(export(dep(AGG), "trtllm").files["agg.llm_api.yaml"])
    # bytes per rank (each rank's KV cache manager takes its own host pool): 200 GB / 8
    assert t["kv_cache_config"]["host_cache_size"] == 25 * 10**9
    assert t["kv_cache_config"]["dtype"] == "fp8"


def test_sglang_attention_dp_and_spec() -> None:
    argv = script_argv(export(dep(DISAGG), "sglang").files["decode.sh"])
    # attention-DP ranks inside one instance: tp-size = tp x dp = 8
    assert value(argv, "--tp-size") == "8" and value(argv, "--dp-size") == "8"
    assert "--enable-dp-attention" in argv and value(argv, "--ep-size") == "8"
    assert value(argv, "--max-running-requests") == "1024"  # 128 per DP rank x 8
    assert value(argv, "--disaggregation-mode") == "decode"
    assert value(argv, "--speculative-num-draft-tokens") == "3"


def test_trtllm_options() -> None:
    res = export(dep(DISAGG), "trtllm")
    opts = yaml.safe_load(res.files["decode.llm_api.yaml"])
    assert opts["tensor_parallel_size"] == 8 and opts["enable_attention_dp"] is True
    assert opts["moe_expert_parallel_size"] == 8
    assert opts["speculative_config"] == {"decoding_type": "MTP", "max_draft_len": 2}
    assert opts["cache_transceiver_config"] == {"backend": "DEFAULT"}
    argv = script_argv(res.files["decode.sh"])
    assert value(argv, "--extra_llm_api_options") == "decode.llm_api.yaml"


def test_memory_settings_are_the_ones_predicted() -> None:
    """Each export writes the memory setting whose KV cache the prediction sized
    (``perf.kv_budget``): vLLM 90 % of the GPU, TRT-LLM 90 % of what the weights leave,
    SGLang its own default for the pool's GPU, layout and batch. On a GB200 (198.7 GB) the
    TP8 prefill pool leaves 14 GiB (8K chunk, 256 graph slots), the DEP8 decode pool with
    its batch of 128 16.75 GiB (2 MiB per graph slot and 3 per slot per DP rank over 128
    slots), each 2 GiB more for the MTP draft: 0.914 and 0.899."""
    for pool in ("prefill", "decode"):
        v = script_argv(export(dep(DISAGG, engine="vllm"), "vllm").files[f"{pool}.sh"])
        assert value(v, "--gpu-memory-utilization") == "0.9"
        t = yaml.safe_load(export(dep(DISAGG), "trtllm").files[f"{pool}.llm_api.yaml"])
        assert t["kv_cache_config"]["free_gpu_memory_fraction"] == 0.9
    s = export(dep(DISAGG, engine="sglang"), "sglang").files
    gb200 = 198.675e9
    decode_mib = 512 + 12_288 + 2 * 128 + 1024 + 3 * 128 * 8
    for pool, reserved_mib, want in (("prefill", 14_336, 0.914), ("decode", decode_mib, 0.899)):
        frac = float(value(script_argv(s[f"{pool}.sh"]), "--mem-fraction-static"))
        assert frac == round(1 - (reserved_mib + 2048) * 2**20 / gb200, 3) == want


def test_a_pools_own_memory_setting_is_written() -> None:
    """A pool that sets ``memory_fraction`` gets it in every engine's own setting, the
    prefill pool 0.85 and the decode pool 0.93, as the prediction sized their caches."""
    d = Deployment.from_file(DISAGG)
    pools = [
        p.model_copy(update={"memory_fraction": 0.85 if p.role == "prefill" else 0.93})
        for p in d.pools
    ]
    for pool, want in (("prefill", 0.85), ("decode", 0.93)):
        v = export(dep(DISAGG, engine="vllm", pools=pools), "vllm").files[f"{pool}.sh"]
        assert float(value(script_argv(v), "--gpu-memory-utilization")) == want
        s = export(dep(DISAGG, engine="sglang", pools=pools), "sglang").files[f"{pool}.sh"]
        assert float(value(script_argv(s), "--mem-fraction-static")) == want
        files = export(dep(DISAGG, pools=pools), "trtllm").files
        t = yaml.safe_load(files[f"{pool}.llm_api.yaml"])
        assert t["kv_cache_config"]["free_gpu_memory_fraction"] == want


def test_dynamo_manifest() -> None:
    res = export(dep(DISAGG, engine="trtllm"), "dynamo")
    dgd = yaml.safe_load(res.files["dynamo-graph-deployment.yaml"])
    assert dgd["kind"] == "DynamoGraphDeployment"
    svcs = dgd["spec"]["services"]
    assert set(svcs) == {"Frontend", "prefill", "decode", "subagent-agg"}
    assert svcs["decode"]["resources"]["limits"]["gpu"] == "8"
    assert svcs["subagent-agg"]["resources"]["limits"]["gpu"] == "2"
    fe = shlex.split(svcs["Frontend"]["extraPodSpec"]["mainContainer"]["args"][0])
    assert value(fe, "--router-mode") == "kv"
    pre = shlex.split(svcs["prefill"]["extraPodSpec"]["mainContainer"]["args"][0])
    assert value(pre, "--disaggregation-mode") == "prefill"
    assert value(pre, "--extra-engine-args") == "/config/prefill.yaml"
    cm = yaml.safe_load(res.files["engine-configs-configmap.yaml"])
    assert set(cm["data"]) == {"prefill.yaml", "decode.yaml", "subagent-agg.yaml"}
    assert yaml.safe_load(cm["data"]["decode.yaml"])["enable_attention_dp"] is True


def test_eagle_and_round_robin() -> None:
    data = Deployment.from_file(AGG).model_dump()
    data.update(spec_decoding={"method": "eagle", "draft_tokens": 3}, router="round_robin")
    d = Deployment.model_validate(data)
    for fmt in ("vllm", "sglang", "trtllm"):
        res = export(d.model_copy(update={"engine": fmt}), fmt)
        assert any("EAGLE3_DRAFT_MODEL" in n for n in res.notes)
    dgd = yaml.safe_load(export(d, "dynamo").files["dynamo-graph-deployment.yaml"])
    fe = shlex.split(
        dgd["spec"]["services"]["Frontend"]["extraPodSpec"]["mainContainer"]["args"][0]
    )
    assert value(fe, "--router-mode") == "round-robin"


def test_check_catches_unrecorded_flag() -> None:
    res = export(dep(AGG, engine="vllm"), "vllm")
    res.files["agg.sh"] = res.files["agg.sh"].rstrip() + " \\\n  --no-such-flag 1\n"
    with pytest.raises(ArgdefMismatch, match="--no-such-flag"):
        check_result(res)


def test_recorded_names_cover_what_exports_use() -> None:
    # a few names the exporters depend on, recorded from each engine's definitions
    assert {"--enable-expert-parallel", "--kv-offloading-size"} <= set(argdefs("vllm")["arguments"])
    assert {"--enable-dp-attention", "--hicache-size"} <= set(argdefs("sglang")["arguments"])
    assert "host_cache_size" in argdefs("trtllm")["fields"]["kv_cache_config"]
    assert flag_names(["a", "--x=1", "-3", "--y"]) == ["--x", "--y"]


def test_cuda_graphs_cover_the_decode_batch_or_are_off() -> None:
    # graphs (the default): captured up to the pool's decode batch, which is what the
    # performance model assumes (decode pool: 128 sequences per DP rank, MTP k = 2)
    vllm = script_argv(export(dep(DISAGG, engine="vllm"), "vllm").files["decode.sh"])
    assert value(vllm, "--max-cudagraph-capture-size") == "384"  # 128 x (2 + 1) tokens
    assert "--enforce-eager" not in vllm
    sgl = script_argv(export(dep(DISAGG, engine="sglang"), "sglang").files["decode.sh"])
    assert value(sgl, "--cuda-graph-max-bs-decode") == "128"
    res = export(dep(DISAGG, engine="trtllm"), "trtllm")
    opts = yaml.safe_load(res.files["decode.llm_api.yaml"])
    assert opts["cuda_graph_config"] == {"enable_padding": True, "max_batch_size": 128}
    # a pool without max_batch keeps TRT-LLM's 128-sequence default, and says so
    assert any("128 sequences" in n and "prefill" in n for n in res.notes)
    # eager: each engine's own switch, still only recorded names
    for fmt in ("vllm", "sglang", "trtllm", "dynamo"):
        engine = "trtllm" if fmt == "dynamo" else fmt
        res = export(dep(DISAGG, engine=engine, cuda_graphs=False), fmt)
        check_result(res)
        text = "\n".join(res.files.values())
        want = {"vllm": "--enforce-eager", "sglang": "--disable-cuda-graph"}
        assert want.get(engine, "cuda_graph_config: null") in text
        assert "max-cudagraph" not in text and "cuda-graph-max-bs" not in text
