"""The `codesign` CLI: JSON output, help everywhere, one-line errors with non-zero exits."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from codesign.cli import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_catalog_systems_json_lists_validation_systems() -> None:
    code, out, _ = run("catalog", "systems", "--json")
    assert code == 0
    names = {row["name"] for row in json.loads(out)}
    assert {"h100_sxm", "h200_sxm", "b200_sxm", "b300_sxm", "gb200", "gb300"} <= names


def test_catalog_chips_and_precisions_json() -> None:
    code, out, _ = run("catalog", "chips", "--json")
    assert code == 0
    chips = {row["name"]: row for row in json.loads(out)}
    assert chips["h200_sxm"]["hbm_capacity_gb"] == 141
    code, out, _ = run("catalog", "precisions", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["nvfp4"]["bits_effective"] == 4.5
    assert "h100_sxm" not in rows["nvfp4"]["accelerated_on"]


def test_catalog_models_json(shared_dir) -> None:
    code, out, _ = run("catalog", "models", "--json")
    assert code == 0
    rows = {row["id"]: row for row in json.loads(out)}
    v3 = rows["deepseek-ai/DeepSeek-V3"]
    assert v3["total_params"] == pytest.approx(671e9, rel=0.01)
    assert v3["kv_bytes_per_token_bf16"] == 35_136 * 2


def test_model_info_by_id_and_by_path(shared_dir) -> None:
    code, out, _ = run(
        "model", "info", "deepseek-ai/DeepSeek-R1", "--json", "--kv-precision", "fp8"
    )
    assert code == 0
    info = json.loads(out)
    assert info["kv_bytes_per_token"] == 35_136  # 576 x 61 elements at 1 byte
    assert info["params_active"] == pytest.approx(37e9, rel=0.03)
    path = shared_dir / "models" / "hf_configs" / "meta-llama--Meta-Llama-3.1-70B_config.json"
    code, out, _ = run("model", "info", str(path), "--json")
    assert code == 0
    assert json.loads(out)["params_total"] == pytest.approx(70.6e9, rel=0.005)
    # Gemma 4: 5 of every 6 layers sliding (8 kv x 256), every 6th global (2 kv x 512)
    code, out, _ = run("model", "info", "google/gemma-4-26B-A4B", "--json")
    info = json.loads(out)
    assert info["layer_attention"][:6] == [0, 0, 0, 0, 0, 1]
    assert info["extra_attention"][0]["num_kv_heads"] == 2
    assert info["kv_bytes_per_token"] == 5 * 2 * 1024 * 2  # only the 5 global layers grow


def test_model_fit_reports_kv_capacity(shared_dir) -> None:
    code, out, _ = run(
        "model", "fit", "deepseek-ai/DeepSeek-R1", "-s", "h200_sxm", "--tp", "8", "--json"
    )
    assert code == 0
    report = json.loads(out)
    assert report["fits"] and report["kv_tokens_per_worker"] > 100_000
    code, out, _ = run("model", "fit", "deepseek-ai/DeepSeek-R1", "-s", "h100_sxm", "--tp", "8")
    assert code == 1  # does not fit: 671 GB of FP8 weights on 8 x 80 GB
    assert "weights need" in out


def test_system_show_derived_hypothetical() -> None:
    code, out, _ = run("system", "show", "gb200", "--set", "hbm_bandwidth_tb_s=16", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["hbm_bandwidth_tb_s"] == 16
    assert data["name"] == "gb200-custom"
    code, out, _ = run("system", "show", "gb200", "--json")
    assert json.loads(out)["hbm_bandwidth_tb_s"] == 8


def test_system_show_human_output_and_sources() -> None:
    code, out, _ = run("system", "show", "groq3_lpx", "--sources")
    assert code == 0
    assert "SRAM" in out and "secondary" in out


def test_chip_show_derived() -> None:
    code, out, _ = run("chip", "show", "groq3_lpu", "--set", "sram_mb=1000", "--json")
    assert code == 0
    assert json.loads(out)["sram_mb"] == 1000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["system", "show", "gb2000"], "unknown system 'gb2000'"),
        (["system", "show", "gb200", "--set", "hbm_speed=3"], "unknown hardware knob"),
        (["system", "show", "gb200", "--set", "hbm_bandwidth_tb_s"], "expected KEY=VALUE"),
        (["system", "show", "gb200", "--set", "hbm_bandwidth_tb_s=-1"], "greater than 0"),
        (["chip", "show", "nope"], "unknown chip 'nope'"),
        (["model", "info", "no-such/model"], "unknown model"),
        (["model", "info", "/no/such/config.json"], "/no/such/config.json"),
    ],
)
def test_bad_input_is_one_line_error(args: list[str], message: str) -> None:
    code, out, err = run(*args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) <= 2  # one message (rich may wrap a long line)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["catalog"],
        ["system"],
        ["chip"],
        ["model"],
        ["catalog", "systems"],
        ["catalog", "models"],
        ["model", "info"],
        ["model", "fit"],
        ["system", "show"],
        ["chip", "show"],
    ],
)
def test_help_on_every_command(args: list[str]) -> None:
    code, out, _ = run(*args, "--help")
    assert code == 0
    assert "Usage" in out


def test_installed_entry_point_exits_nonzero_without_traceback() -> None:
    exe = shutil.which("codesign") or str(
        __import__("pathlib").Path(sys.executable).parent / "codesign"
    )
    proc = subprocess.run(
        [exe, "system", "show", "nope"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "unknown system 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "codesign" in proc.stdout
