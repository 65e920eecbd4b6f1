"""Every bundled example parses as what it claims to be (a job spec or a deployment)."""

from __future__ import annotations

from pathlib import Path

import pytest

from codesign.deployment import Deployment
from search.space import model_is_moe
from search.spec import JobSpec

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_parses(path: Path, shared_dir) -> None:
    if path.name.startswith("deployment-"):
        assert Deployment.from_file(path).pools
    else:
        spec = JobSpec.from_file(path)
        model_is_moe(spec)  # the space suits the model (e.g. MTP only with MTP layers)


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 5
