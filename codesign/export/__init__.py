"""Deployment configs people can apply: Dynamo, vLLM, SGLang, TRT-LLM (one module each).

``export(deployment, fmt, version)`` returns the files to write; every flag and field an
exporter writes is checked against the argument names recorded for the stated engine
version in ``argdefs/`` (see ``check.py``)."""

from __future__ import annotations

from codesign.deployment import Deployment
from codesign.errors import SpecError
from codesign.export import dynamo, sglang, trtllm, vllm  # noqa: F401 (registers)
from codesign.export.base import EXPORTERS, ExportError, ExportResult

FORMATS = ("dynamo", "vllm", "sglang", "trtllm")


def export(dep: Deployment, fmt: str, version: str | None = None) -> ExportResult:
    if fmt not in EXPORTERS:
        raise SpecError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")
    from codesign.export.check import check_result

    result = EXPORTERS[fmt]().export(dep, version)
    check_result(result, version)
    return result


__all__ = ["FORMATS", "ExportError", "ExportResult", "export"]
