"""Fixtures of the simulator tests."""

from __future__ import annotations

import pytest
from sim_helpers import tool_trace as _tool_trace


@pytest.fixture(scope="session")
def tool_trace():
    return _tool_trace()
