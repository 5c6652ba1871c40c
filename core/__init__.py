"""pluralguard.core — value-system model, geometry, homophily network, the agreement
solver, the exact oracle, the single-consensus ℓp baseline and datasets."""

from . import datasets
from .bounds import BoundPolicy, resolve_bounds
from .consensus import ConsensusResult, limit_p, lp_consensus, transition_p
from .errors import InputError, NotApplicable
from .geometry import normalised_distance, utility
from .mechanism import CAPABILITIES, Mechanism, Outcome, check_outcome, register_mechanism
from .model import Population
from .network import homophily_edges
from .oracle import OracleResult, solve_oracle
from .result import AgreementResult, GroupOutcome, make_outcome
from .solver import solve_agreements
from .validity import ValidityReport, check_result

__all__ = [
    "CAPABILITIES",
    "AgreementResult",
    "BoundPolicy",
    "ConsensusResult",
    "GroupOutcome",
    "InputError",
    "Mechanism",
    "NotApplicable",
    "OracleResult",
    "Outcome",
    "Population",
    "ValidityReport",
    "check_outcome",
    "check_result",
    "datasets",
    "homophily_edges",
    "limit_p",
    "lp_consensus",
    "make_outcome",
    "normalised_distance",
    "register_mechanism",
    "resolve_bounds",
    "solve_agreements",
    "solve_oracle",
    "transition_p",
    "utility",
]
