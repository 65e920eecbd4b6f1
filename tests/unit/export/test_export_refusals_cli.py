"""Refusals with clear reasons; `codesign export` writes files and fails in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from codesign.cli.export import export_command
from codesign.deployment import Deployment
from codesign.errors import SpecError
from codesign.export import export
from codesign.export.base import ExportError

EXAMPLES = Path(__file__).parents[3] / "examples"
DISAGG = EXAMPLES / "deployment-r1-disagg-subagents.yaml"

app = typer.Typer()
app.command()(export_command)
runner = CliRunner()


def test_non_gpu_pool_refused_naming_pool_and_system() -> None:
    d = Deployment.from_file(DISAGG)
    pools = [d.pools[0], d.pools[1].model_copy(update={"system": "groq3_lpx"})]
    d = d.model_copy(update={"pools": pools})
    for fmt in ("dynamo", "vllm", "sglang", "trtllm"):
        with pytest.raises(ExportError, match=r"decode pool on system groq3_lpx \(chip kind lpu\)"):
            export(d, fmt)


def test_afd_refused() -> None:
    d = Deployment.model_validate(
        {"model": "m", "mode": "afd", "pools": [
            {"role": "attention", "system": "gb200"}, {"role": "ffn", "system": "gb200"}]}
    )  # fmt: skip
    with pytest.raises(ExportError, match="afd"):
        export(d, "vllm")


def test_unknown_version_and_format() -> None:
    d = Deployment.from_file(DISAGG)
    with pytest.raises(SpecError, match=r"vllm version 0\.1\.0 \(recorded: 0\.33\.0\)"):
        export(d, "vllm", "0.1.0")
    with pytest.raises(SpecError, match="unknown export format"):
        export(d, "k8s")


def test_cli_out_writes_files(tmp_path: Path) -> None:
    r = runner.invoke(app, [str(DISAGG), "--format", "dynamo", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    manifest = tmp_path / "dynamo-graph-deployment.yaml"
    assert yaml.safe_load(manifest.read_text())["kind"] == "DynamoGraphDeployment"
    assert (tmp_path / "engine-configs" / "decode.yaml").is_file()  # engine trtllm


def test_cli_stdout_and_json(tmp_path: Path) -> None:
    r = runner.invoke(app, [str(DISAGG), "--format", "vllm"])
    assert r.exit_code == 0 and "vllm serve" in r.output
    r = runner.invoke(app, [str(DISAGG), "-f", "sglang", "--json", "-o", str(tmp_path)])
    assert r.exit_code == 0 and '"engine_version": "0.5.23"' in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "k8s"], "unknown export format"),
        (["--format", "vllm", "--engine-version", "9.9"], "no argument definitions recorded"),
    ],
)
def test_cli_bad_input_one_line(args: list[str], message: str) -> None:
    r = runner.invoke(app, [str(DISAGG), *args])
    assert r.exit_code != 0
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0]
