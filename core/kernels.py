"""Compiled kernels: numba when it is installed, plain Python otherwise.

The hot loops of the solver — the link rule's walk over the candidate links, its
cheap feasibility proofs, and one iteration of message passing — are written once in
the subset of Python that numba compiles (Lam, Pitrou & Seibert, *Numba: a
LLVM-based Python JIT compiler*, LLVM-HPC 2015). :func:`jit` compiles them when
numba is importable (``pip install pluralguard[fast]``) and leaves them as Python
functions otherwise; callers whose loops would be too slow as Python pick a
vectorised numpy path instead (:data:`COMPILED`).

Set the environment variable ``PLURALGUARD_PURE=1`` to use the numpy paths even
with numba installed (the tests run both). Compiled code is cached on disk, so only
the first process on a machine pays for compilation.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

try:  # pragma: no cover - exercised by whichever environment runs the tests
    if os.environ.get("PLURALGUARD_PURE", "") == "1":
        raise ImportError("PLURALGUARD_PURE=1")
    import numba
except ImportError:  # pragma: no cover
    numba = None

#: Whether the kernels are compiled (numba installed and not disabled).
COMPILED = numba is not None


def jit(function: Callable[..., Any] | None = None, *, fast: bool = False) -> Any:
    """Compile ``function`` with numba (no Python objects, cached), or return it as is.

    ``@jit(fast=True)`` also lets the compiler reorder floating-point sums (vectorised
    reductions): results may differ from the Python path in the last bits, so it is
    only for iterative methods that stop at a tolerance.
    """
    if function is None:
        return lambda f: jit(f, fast=fast)
    if numba is None:
        return function
    return numba.njit(cache=True, nogil=True, fastmath=fast)(function)


def pick(kernel: Callable[..., Any]) -> Callable[..., Any]:
    """The compiled ``kernel`` when :data:`COMPILED`, else its Python original.

    Read at call time, so a test may set ``kernels.COMPILED = False`` to run the Python
    path of a kernel that numba compiled.
    """
    return kernel if COMPILED else getattr(kernel, "py_func", kernel)
