"""Running the command line in-process from a test: exit code, standard output, error."""

from __future__ import annotations

import pytest

from pluralguard.eval.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``pluralguard ARGV`` in this process; ``capsys`` is pytest's captured output."""
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err
