"""Errors raised on bad input.

Every error names the offending field and says how to fix it, so that a user
(or the CLI, which prints it on one line) never has to read a traceback from
deep inside numpy.
"""

from __future__ import annotations


class InputError(ValueError):
    """Invalid user input.

    Parameters
    ----------
    field : str
        Name of the offending argument, column or configuration key.
    problem : str
        What is wrong with it.
    fix : str
        What the user should do instead.
    """

    def __init__(self, field: str, problem: str, fix: str) -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        super().__init__(f"{field}: {problem}; {fix}")


class NotApplicable(InputError):
    """An attack or defense that does not apply to a mechanism or threat model.

    A refusal, not a mistake: the suite runner records the grid point as "not
    applicable" with this reason (and ``pluralguard check --strict`` fails on it),
    whereas any other exception during a run is a failed run. Raise it only for
    applicability (a missing mechanism capability, a goal the recipe does not pursue);
    a user's typo (an agent id out of range) is a plain :class:`InputError`.
    """
