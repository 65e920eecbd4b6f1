"""Shared fixtures: the ../shared data folder and the PostgreSQL test database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codesign.paths import shared_dir as _shared_dir


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared data folder; missing is a failure in CI and a skip elsewhere."""
    path = _shared_dir(required=False)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("../shared is missing in CI; set CODESIGN_SHARED_DIR")
        pytest.skip("../shared data folder not found (set CODESIGN_SHARED_DIR)")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """CODESIGN_TEST_POSTGRES_URL; tests using it skip only when it is unset."""
    url = os.environ.get("CODESIGN_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must set CODESIGN_TEST_POSTGRES_URL (see .ci/run)")
        pytest.skip("CODESIGN_TEST_POSTGRES_URL is not set")
    return url
