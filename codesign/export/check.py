"""Check an export against the argument names recorded for its engine version.

An exporter that writes a flag or field the stated version does not define is a bug; the
check raises instead of handing out a config that the engine would reject."""

from __future__ import annotations

import json
from typing import Any

import yaml

from codesign.errors import CodesignError
from codesign.export.argdefs import argdefs, command_argv, flag_names
from codesign.export.base import ExportResult

K8S_KEYS = {"volumes", "volumeMounts", "mountPath", "configMap", "data", "hostPath", "path"}


class ArgdefMismatch(CodesignError):
    """An export used a name that the stated engine version does not define."""


def script_argv(text: str) -> list[str]:
    """The command of a one-command script (comment and ``export`` lines dropped)."""
    body = "\n".join(line for line in text.splitlines() if not line.startswith(("#", "export ")))
    return command_argv(body)


def _value(argv: list[str], flag: str) -> str | None:
    for i, word in enumerate(argv):
        if word == flag and i + 1 < len(argv):
            return argv[i + 1]
    return None


def _bad(where: str, names: list[str], engine: str, version: str) -> None:
    if names:
        raise ArgdefMismatch(
            f"{where}: {', '.join(sorted(set(names)))} not defined by {engine} {version}"
        )


def check_vllm_argv(argv: list[str], where: str, version: str) -> None:
    d = argdefs("vllm", version)
    f = d["fields"]
    _bad(where, [x for x in flag_names(argv) if x not in d["arguments"]], "vllm", version)
    if spec := _value(argv, "--speculative-config"):
        cfg = json.loads(spec)
        bad = [k for k in cfg if k not in f["speculative_config"]]
        bad += (
            [] if cfg.get("method") in f["speculative_methods"] else [f"method={cfg.get('method')}"]
        )
        _bad(f"{where} --speculative-config", bad, "vllm", version)
    if kvt := _value(argv, "--kv-transfer-config"):
        cfg = json.loads(kvt)
        bad = [k for k in cfg if k not in f["kv_transfer_config"]]
        bad += (
            [] if cfg.get("kv_connector") in f["kv_connectors"] else [str(cfg.get("kv_connector"))]
        )
        _bad(f"{where} --kv-transfer-config", bad, "vllm", version)


def check_sglang_argv(argv: list[str], where: str, version: str) -> None:
    d = argdefs("sglang", version)
    _bad(where, [x for x in flag_names(argv) if x not in d["arguments"]], "sglang", version)


def check_llm_api(opts: dict[str, Any], where: str, version: str) -> None:
    f = argdefs("trtllm", version)["fields"]
    bad = [k for k in opts if k not in f["llm_api"]]
    for key in (
        "kv_cache_config",
        "speculative_config",
        "cache_transceiver_config",
        "cuda_graph_config",
    ):
        bad += [f"{key}.{k}" for k in opts.get(key) or {} if k not in f[key]]
    spec = opts.get("speculative_config")
    if spec and spec.get("decoding_type") not in f["decoding_types"]:
        bad.append(f"decoding_type={spec.get('decoding_type')}")
    _bad(where, bad, "trtllm", version)


def check_trtllm_argv(argv: list[str], where: str, version: str) -> None:
    d = argdefs("trtllm", version)
    _bad(where, [x for x in flag_names(argv) if x not in d["arguments"]], "trtllm", version)


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        out = set(node)
        for k, v in node.items():
            if k not in ("services", "data"):
                out |= _keys(v)
            elif k == "services":
                for svc in v.values():
                    out |= _keys(svc)
        return out
    if isinstance(node, list):
        return set().union(*(_keys(v) for v in node)) if node else set()
    return set()


def check_dynamo(res: ExportResult, version: str) -> None:
    d = argdefs("dynamo", version)
    gd = d["fields"]["graph_deployment"]
    text = res.files["dynamo-graph-deployment.yaml"]
    dgd = yaml.safe_load(text)
    bad = [k for k in _keys(dgd) if k not in gd["keys"] and k not in K8S_KEYS]
    _bad("dynamo-graph-deployment.yaml", bad, "dynamo", version)
    engine_flags = set(d["arguments"]["frontend"]) | set(d["arguments"][res.engine])
    for name, svc in dgd["spec"]["services"].items():
        full = command_argv(svc["extraPodSpec"]["mainContainer"]["args"][0])
        argv, where = full[3:], f"service {name}"  # after `python3 -m dynamo.<component>`
        if full[2] == "dynamo.frontend":
            _bad(where, [x for x in flag_names(argv) if x not in d["arguments"]["frontend"]],
                 "dynamo", version)  # fmt: skip
            mode = _value(argv, "--router-mode")
            _bad(where, [] if mode in d["fields"]["router_modes"] else [f"--router-mode {mode}"],
                 "dynamo", version)  # fmt: skip
            continue
        own = [x for x in flag_names(argv) if x in engine_flags]
        rest = [x for x in argv if x.split("=", 1)[0] not in own]
        if res.engine == "vllm":
            check_vllm_argv(rest, where, res.engine_version)
        elif res.engine == "sglang":
            check_sglang_argv(rest, where, res.engine_version)
        else:
            _bad(where, flag_names(rest), "dynamo", version)
    for path, body in res.files.items():
        if path.startswith("engine-configs/"):
            check_llm_api(yaml.safe_load(body), path, res.engine_version)


def check_result(res: ExportResult, requested: str | None = None) -> None:
    """Raise ArgdefMismatch if any flag or field in ``res`` is not recorded for its version."""
    if res.format == "dynamo":
        check_dynamo(res, requested or argdefs("dynamo")["version"])
        return
    for path, body in res.files.items():
        if path.endswith(".sh"):
            argv = script_argv(body)
            argv = argv[3:] if argv[:2] == ["python", "-m"] else argv[2:]  # program, model
            {"vllm": check_vllm_argv, "sglang": check_sglang_argv, "trtllm": check_trtllm_argv}[
                res.format
            ](argv, path, res.engine_version)
        elif path.endswith(".yaml"):
            check_llm_api(yaml.safe_load(body), path, res.engine_version)
