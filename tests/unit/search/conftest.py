import pytest
from search_helpers import TINY

from search.driver import build_load
from search.spec import JobSpec


@pytest.fixture(scope="session")
def tiny_spec() -> JobSpec:
    return JobSpec.from_data(TINY)


@pytest.fixture(scope="session")
def tiny_load(tiny_spec):
    return build_load(tiny_spec)
