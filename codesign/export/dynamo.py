"""NVIDIA Dynamo: a ``DynamoGraphDeployment`` manifest (frontend + one worker service per pool)
plus the engine config files it references (TRT-LLM) as a ConfigMap."""

from __future__ import annotations

import shlex
from typing import Any

import yaml

from codesign.deployment import Deployment, Pool
from codesign.export.argdefs import argdefs, default_version
from codesign.export.base import (
    NVME_KV_DIR,
    ExportResult,
    Group,
    check_expressible,
    gpus_per_worker,
    groups,
    pool_label,
    register,
    storage_gb_per_rank,
)
from codesign.export.sglang import sglang_env, sglang_server_args
from codesign.export.trtllm import dump_yaml, llm_api_options
from codesign.export.vllm import vllm_engine_args, vllm_env

ROUTER_MODE = {"kv_aware": "kv", "round_robin": "round-robin", "session_affinity": "round-robin"}
IMAGE = {"vllm": "vllm-runtime", "sglang": "sglang-runtime", "trtllm": "tensorrtllm-runtime"}
CONFIG_DIR = "/config"


def worker_argv(dep: Deployment, group: Group, pool: Pool) -> tuple[list[str], list[str]]:
    """The worker's ``python3 -m dynamo.<engine>`` argument vector."""
    disagg_mode = ["--disaggregation-mode", pool.role] if group.disagg else []
    if dep.engine == "vllm":
        args, notes = vllm_engine_args(dep, group, pool)
        return ["python3", "-m", "dynamo.vllm", "--model", group.model, *args, *disagg_mode], notes
    if dep.engine == "sglang":
        args, notes = sglang_server_args(dep, group, pool)
        return ["python3", "-m", "dynamo.sglang", "--model-path", group.model, *args], notes
    cfg = f"{CONFIG_DIR}/{pool_label(group, pool)}.yaml"
    argv = ["python3", "-m", "dynamo.trtllm", "--model", group.model, "--extra-engine-args", cfg]
    return argv + disagg_mode, []


def _service(dep: Deployment, group: Group, pool: Pool, version: str) -> tuple[dict, list[str]]:
    argv, notes = worker_argv(dep, group, pool)
    gpus = str(gpus_per_worker(pool))
    container: dict[str, Any] = {
        "image": f"nvcr.io/nvidia/ai-dynamo/{IMAGE[dep.engine]}:{version}",
        "workingDir": "/workspace",
        "command": ["/bin/sh", "-c"],
        "args": [shlex.join(argv)],
    }
    spec: dict[str, Any] = {
        "componentType": "worker",
        "replicas": pool.workers,
        "envFromSecret": "hf-token-secret",
        "resources": {"requests": {"gpu": gpus}, "limits": {"gpu": gpus}},
        "extraPodSpec": {"mainContainer": container},
    }
    mounts: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    if dep.engine == "trtllm":
        mounts.append({"name": "engine-configs", "mountPath": CONFIG_DIR})
        volumes.append({"name": "engine-configs", "configMap": {"name": "engine-configs"}})
    if storage_gb_per_rank(dep, group, pool) > 0:  # the node's NVMe, for the KV tier
        mounts.append({"name": "nvme-kv-cache", "mountPath": NVME_KV_DIR})
        volumes.append({"name": "nvme-kv-cache", "hostPath": {"path": NVME_KV_DIR}})
    env_of = {"vllm": vllm_env, "sglang": sglang_env}.get(dep.engine)
    env = env_of(dep, group, pool) if env_of is not None else {}
    if env:
        spec["envs"] = [{"name": k, "value": v} for k, v in env.items()]
    if mounts:
        container["volumeMounts"] = mounts
        spec["extraPodSpec"]["volumes"] = volumes
    return spec, notes


class DynamoExporter:
    name = "dynamo"

    def export(self, dep: Deployment, version: str | None) -> ExportResult:
        check_expressible(dep, "dynamo")
        version = version or default_version("dynamo")
        argdefs("dynamo", version)
        engine_version = default_version(dep.engine)
        res = ExportResult("dynamo", dep.engine, engine_version)
        router = ROUTER_MODE[dep.router]
        frontend = [
            "python3",
            "-m",
            "dynamo.frontend",
            "--http-port",
            "8000",
            "--router-mode",
            router,
        ]
        services: dict[str, Any] = {
            "Frontend": {
                "componentType": "main",
                "replicas": 1,
                "extraPodSpec": {
                    "mainContainer": {
                        "image": f"nvcr.io/nvidia/ai-dynamo/{IMAGE[dep.engine]}:{version}",
                        "workingDir": "/workspace",
                        "command": ["/bin/sh", "-c"],
                        "args": [shlex.join(frontend)],
                    }
                },
            }
        }
        configs: dict[str, str] = {}
        for g in groups(dep):
            for pool in g.pools:
                label = pool_label(g, pool)
                services[label], notes = _service(dep, g, pool, version)
                res.notes += notes
                if dep.engine == "trtllm":
                    opts, tnotes = llm_api_options(dep, g, pool)
                    res.notes += tnotes
                    text = dump_yaml(opts, f"# TRT-LLM {engine_version} LLM-API options: {label}\n")
                    configs[f"{label}.yaml"] = text
                    res.files[f"engine-configs/{label}.yaml"] = text
        name = dep.model.split("/")[-1].lower().replace(".", "-").replace("_", "-")
        dgd = {
            "apiVersion": "nvidia.com/v1alpha1",
            "kind": "DynamoGraphDeployment",
            "metadata": {"name": f"{name}-{dep.mode}"},
            "spec": {"services": services},
        }
        head = (
            f"# Dynamo {version} DynamoGraphDeployment ({dep.engine} {engine_version} workers), "
            f"exported by codesign from a {dep.mode} deployment of {dep.model}\n"
        )
        res.files["dynamo-graph-deployment.yaml"] = head + yaml.safe_dump(dgd, sort_keys=False)
        if configs:
            cm = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "engine-configs"},
                "data": configs,
            }
            res.files["engine-configs-configmap.yaml"] = yaml.safe_dump(cm, sort_keys=False)
        if dep.router == "session_affinity":
            res.notes.append("router session_affinity: exported as round-robin (not mapped)")
        t = dep.kv_tiers
        if t.host_gb_per_worker > 0 or t.storage_gb_per_worker > 0 or t.shared_storage_tb > 0:
            res.notes.append(
                "the host, NVMe and shared-store KV tiers use the engine's own settings; KVBM "
                "settings are not in the recorded Dynamo argument names"
            )
        if dep.engine != "vllm":
            res.notes.append(f"image {IMAGE[dep.engine]}:{version} name not verified")
        return res


register("dynamo")(DynamoExporter)
