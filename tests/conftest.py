"""Shared fixtures: small seeded populations and the path to ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pluralguard.core import Population
from populations import clustered


def _shared_data() -> Path:
    """../shared/data next to the checkout, or $PLURALGUARD_SHARED_DATA."""
    candidates = [os.environ.get("PLURALGUARD_SHARED_DATA", ""),
                  Path(__file__).resolve().parents[1].parent / "shared" / "data",
                  "/work/shared/data"]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return Path(candidates[1])


SHARED_DATA = _shared_data()


@pytest.fixture
def small_population() -> Population:
    return clustered()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"test fixtures not found at {SHARED_DATA}")
    return SHARED_DATA
