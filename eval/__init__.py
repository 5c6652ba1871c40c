"""pluralguard.eval — metrics, scenarios, suites, reports, the CLI and the CI gate.

The public names load lazily (PEP 562), so that importing a submodule — e.g. the
pytest plugin, which pytest loads in every session — stays cheap.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {"METRICS": "metrics", "run_scenario": "scenario", "run_suite": "runner",
            "load_suite": "suite", "write_report": "report", "casestudy": "casestudy"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
