"""Declared parameter constraints: every declared parameter rejects an invalid value,
naming itself; every parameter of a recipe, a defense, the threat model and the
validated functions is declared."""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from pluralguard.attacks import ATTACKS, Goal, ThreatModel, make_attack
from pluralguard.core import datasets
from pluralguard.core.errors import InputError
from pluralguard.core.params import (
    AgentIds,
    Boolean,
    Integer,
    Names,
    Options,
    OrNone,
    Real,
    agent_indices,
    check,
    params_of,
)
from pluralguard.defenses import DEFENSES, make_defense
from pluralguard.eval.aggregates import rank_defenses, worst_case
from pluralguard.eval.casestudy import casestudy
from pluralguard.eval.report import write_report
from pluralguard.eval.runner import plan, run_suite
from pluralguard.eval.scenario import run_scenario
from pluralguard.eval.suite import load_suite

EVS = datasets.load("evs2017")
SUITE = load_suite()

#: Validated functions and valid arguments to call them with (one is replaced).
FUNCTIONS = {
    run_scenario: {"population": EVS, "mechanism": "consensus"},
    run_suite: {"suite": SUITE, "out": "unused"},
    plan: {"suite": SUITE},
    write_report: {"results_dir": "unused"},
    casestudy: {"names": ["evs2017"], "out": "unused"},
    worst_case: {"results": pd.DataFrame()},
    rank_defenses: {"results": pd.DataFrame()},
}


def _declared():
    """(id, builder, parameter name as users write it, constraint) for every declared
    parameter."""
    cases = []
    for name, cls in ATTACKS.items():
        for param, constraint in params_of(cls).items():
            if param != "threat":
                cases.append((f"attack {name}.{param}", make_attack, name, param, constraint))
    for param, constraint in params_of(ThreatModel).items():
        if param != "goal":
            cases.append((f"threat.{param}", make_attack, "overshoot", param, constraint))
    for param, constraint in params_of(Goal).items():
        shown = Goal.PARAM_LABELS.get(param, param)
        cases.append((f"goal.{shown}", make_attack, "overshoot", shown, constraint))
    for name, cls in DEFENSES.items():
        for param, constraint in params_of(cls).items():
            cases.append((f"defense {name}.{param}", make_defense, name, param, constraint))
    for func, valid in FUNCTIONS.items():
        for param, constraint in func.__param_constraints__.items():
            cases.append((f"{func.__name__}({param})", func, valid, param, constraint))
    return cases


CASES = _declared()


@pytest.mark.parametrize("builder, target, param, constraint",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_declared_parameter_rejects_an_invalid_value(builder, target, param,
                                                           constraint) -> None:
    bad = constraint.invalid()
    with pytest.raises(InputError) as err:
        if isinstance(target, str):  # a registry name: make_attack / make_defense
            builder(target, **{param: bad})
        else:
            builder(**{**target, param: bad})
    assert err.value.field == param
    assert "\n" not in str(err.value) and err.value.fix


@pytest.mark.parametrize("cls", [*ATTACKS.values(), *DEFENSES.values(), ThreatModel, Goal],
                         ids=lambda c: c.__name__)
def test_every_field_is_declared(cls) -> None:
    declared = set(params_of(cls))
    assert {f.name for f in fields(cls)} == declared


@pytest.mark.parametrize("func", list(FUNCTIONS), ids=lambda f: f.__name__)
def test_every_function_parameter_is_declared(func) -> None:
    import inspect

    params = set(inspect.signature(func.__wrapped__).parameters)
    assert set(func.__param_constraints__) == params


def test_defaults_pass_their_own_constraints() -> None:
    for cls in [*ATTACKS.values(), *DEFENSES.values()]:
        cls()  # raises if a default violated its declaration


# ---------------------------------------------------------------- the constraints
@pytest.mark.parametrize("constraint, good, bad", [
    (Integer(0, 10), [0, 10, np.int64(3)], [-1, 11, 2.0, True, "3", None]),
    (Real(0, 1, closed="left"), [0, 0.5, np.float32(0.25), 1 - 1e-12],
     [1, -0.1, math.nan, math.inf, "0.5", False]),
    (Real(0, inf=True), [0, math.inf, 10**300], [-math.inf, math.nan, -1]),
    (Options(("a", "b")), ["a", "b"], ["c", 1, None]),
    (Boolean(), [True, False, np.bool_(True)], ["maybe", 1, 0, "true"]),
    (OrNone(Integer(1)), [None, 1], [0, "x"]),
    (AgentIds(), [3, "AT", [1, "DE"], (0,)], [1.5, -1, "", [], [True], [1, None]]),
])
def test_constraints_accept_and_reject(constraint, good, bad) -> None:
    for value in good:
        check("x", value, constraint)
    for value in bad:
        with pytest.raises(InputError, match=r"^x: "):
            check("x", value, constraint)


def test_normalisation_is_stated_and_harmless() -> None:
    assert check("x", np.int64(3), Integer()) == 3 and type(check("x", np.int64(3),
                                                                  Integer())) is int
    assert check("a", 3, AgentIds()) == (3,)
    assert check("a", ["AT", 2], AgentIds()) == ("AT", 2)
    assert check("r", "sybil", Names(lambda: ["sybil", "overshoot"])) == ("sybil",)
    assert make_attack("sybil", attackers=[2, 5]).threat.attackers == (2, 5)


def test_agent_names_resolve_against_the_population() -> None:
    assert agent_indices(("AT", 0, "AT"), EVS.agents, "attackers").tolist() == sorted(
        {0, EVS.agents.index("AT")})
    got = agent_indices(("DE", 1), EVS.agents, "victims")
    assert sorted(got.tolist()) == sorted({EVS.agents.index("DE"), 1})
    with pytest.raises(InputError, match="did you mean 'AT'"):
        agent_indices(("at",), EVS.agents, "attackers")
    with pytest.raises(InputError, match="out of range"):
        agent_indices((34,), EVS.agents, "attackers")


def test_a_threat_model_names_its_attackers_by_name() -> None:
    by_name = make_attack("overshoot", attackers=("AT", "DE"))
    by_index = make_attack("overshoot", attackers=(EVS.agents.index("AT"),
                                                   EVS.agents.index("DE")))
    mech = {"kind": "consensus"}
    a = run_scenario(EVS, mech, by_name, budget=0.1).row
    b = run_scenario(EVS, mech, by_index, budget=0.1).row
    assert a["n_attackers"] == 2
    assert {k: v for k, v in a.items() if k != "attack"} == pytest.approx(
        {k: v for k, v in b.items() if k != "attack"}, nan_ok=True)
