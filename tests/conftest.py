"""Test session set-up: say where the shared fixtures come from (see populations.py)."""

from __future__ import annotations

import os

from populations import REQUIRE_DATA_VAR, SHARED_DATA_VAR

#: A separate project that tests/test_example_project.py runs as an outside user would.
collect_ignore = ["example_project"]


def pytest_report_header() -> str:
    folder = os.environ.get(SHARED_DATA_VAR)
    if not folder:
        return (f"shared fixtures: ${SHARED_DATA_VAR} is unset; tests that need its "
                "files are skipped (tests/data/README.md)")
    required = os.environ.get(REQUIRE_DATA_VAR) == "1"
    return (f"shared fixtures: {folder} (${SHARED_DATA_VAR}); a missing file "
            f"{'fails' if required else 'skips'} its test")
