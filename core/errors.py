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
