"""Shared fixtures: small seeded populations and the path to ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

from pluralguard.core import Population
from populations import SHARED_DATA, clustered

#: A separate project that tests/test_example_project.py runs as an outside user would.
collect_ignore = ["example_project"]


@pytest.fixture
def small_population() -> Population:
    return clustered()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"test fixtures not found at {SHARED_DATA}")
    return SHARED_DATA
