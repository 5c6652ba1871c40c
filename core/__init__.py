"""pluralguard.core — value-system model, geometry, homophily network, the agreement
solver, the exact oracle, the single-consensus ℓp baseline and datasets."""

from .bounds import BoundPolicy, resolve_bounds
from .errors import InputError
from .geometry import normalised_distance, utility
from .model import Population
from .network import homophily_edges
from .result import AgreementResult
from .solver import solve_agreements

__all__ = [
    "AgreementResult",
    "BoundPolicy",
    "InputError",
    "Population",
    "homophily_edges",
    "normalised_distance",
    "resolve_bounds",
    "solve_agreements",
    "utility",
]
