"""pluralguard.core — value-system model, geometry, homophily network, the agreement
solver, the exact oracle, the single-consensus ℓp baseline and datasets."""

from . import datasets
from .bounds import BoundPolicy, resolve_bounds
from .consensus import ConsensusResult, limit_p, lp_consensus, transition_p
from .errors import InputError
from .geometry import normalised_distance, utility
from .model import Population
from .network import homophily_edges
from .oracle import OracleResult, solve_oracle
from .result import AgreementResult
from .solver import solve_agreements
from .validity import ValidityReport, check_result

__all__ = [
    "AgreementResult",
    "BoundPolicy",
    "ConsensusResult",
    "InputError",
    "OracleResult",
    "Population",
    "ValidityReport",
    "check_result",
    "datasets",
    "homophily_edges",
    "limit_p",
    "lp_consensus",
    "normalised_distance",
    "resolve_bounds",
    "solve_agreements",
    "solve_oracle",
    "transition_p",
    "utility",
]
