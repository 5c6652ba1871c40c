"""Threat model, registry, recipes' contracts, applicability and query accounting."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pluralguard.attacks import (
    ATTACKS,
    AttackContext,
    Goal,
    QueryBudgetExhausted,
    ThreatModel,
    list_attacks,
    make_attack,
)
from pluralguard.attacks.camouflage import alie_z
from pluralguard.attacks.geometry import project_budget, region_point
from pluralguard.attacks.protocol import MessageDeviation
from pluralguard.core import Population
from pluralguard.core.bounds import resolve_bounds
from pluralguard.core.errors import InputError, NotApplicable
from pluralguard.core.geometry import accepts, normalised_distance
from pluralguard.core.mechanism import Mechanism
from pluralguard.core.message_passing import IterationState
from pluralguard.core.network import homophily_edges
from pluralguard.eval.scenario import make_mechanism, run_scenario
from populations import bounded, clustered

NAMES = ("stubborn", "overshoot", "infiltrate", "exclude", "bridge", "sybil",
         "threshold_shift", "camouflage", "protocol", "best_response")
DECLARED = {"kind": "agreements", "bounds": "declared"}
QUANTILE = {"kind": "agreements", "bounds": "quantile:0.5"}
DUAL = {"kind": "agreements", "bounds": "quantile:0.5", "method": "dual"}
CONSENSUS = {"kind": "consensus", "p": 2}


# -------------------------------------------------------------------- registry
def test_registry_lists_every_recipe_with_one_line() -> None:
    listed = dict(list_attacks())
    assert tuple(listed) == NAMES
    for name, summary in listed.items():
        assert summary and "\n" not in summary and len(summary) < 100, name
        cls = ATTACKS[name]
        assert cls.__doc__ and "Budget" in cls.__doc__ and "Goal" in cls.__doc__, name
        assert cls.default_budget in cls.default_budgets or name == "stubborn", name
        assert cls().threat.goal.kind == cls.goals[0], name  # default goal first


def test_make_attack_mixes_recipe_threat_and_goal_fields() -> None:
    atk = make_attack("sybil", bound=0.5, sybils=3, fraction=0.1, goal="selfish",
                      group=1, knowledge="white")
    assert atk.bound == 0.5
    assert atk.threat.sybils == 3 and atk.threat.fraction == 0.1
    assert atk.threat.goal == Goal("selfish", group=1)
    # recipe defaults are refined, and giving one way of choosing attackers replaces
    # the default's
    inf = make_attack("infiltrate")
    assert (inf.threat.count, inf.threat.select) == (3, "near_target")
    inf = make_attack("infiltrate", fraction=0.2)
    assert inf.threat.count is None and inf.threat.fraction == 0.2
    assert make_attack("protocol").threat.protocol is True
    assert make_attack("best_response").threat.knowledge == "black"


@pytest.mark.parametrize(("call", "field"), [
    (lambda: make_attack("nope"), "attack"),
    (lambda: make_attack("sybil", colour=1), "colour"),
    (lambda: make_attack("sybil", goal="conquer"), "goal"),
    (lambda: make_attack("protocol", mode="loud"), "mode"),
    (lambda: make_attack("best_response", recipes="sybl"), "recipes"),
    (lambda: ThreatModel(attackers=(1,), fraction=0.1), "attackers"),
    (lambda: ThreatModel(fraction=1.5), "fraction"),
    (lambda: ThreatModel(count=0), "count"),
    (lambda: ThreatModel(select="loudest"), "select"),
    (lambda: ThreatModel(knowledge="grey"), "knowledge"),
    (lambda: ThreatModel(sybils=-1), "sybils"),
    (lambda: ThreatModel(queries=-1), "queries"),
    (lambda: ThreatModel(bound_range=(0.5, 0.1)), "bound_range"),
    (lambda: Goal("merge", groups=(1, 1)), "groups"),
    (lambda: Goal("capture", group=-1), "group"),
])
def test_invalid_threat_models_name_the_field(call, field: str) -> None:
    with pytest.raises(InputError) as err:
        call()
    assert err.value.field == field


# ------------------------------------------------------------------- selection
def test_attacker_selection_modes() -> None:
    pop = bounded()
    mech = Mechanism("agreements", {"bounds": "quantile:0.5"})

    def chosen(**kw) -> np.ndarray:
        return AttackContext(pop, mech, ThreatModel(**kw), seed=5).attackers

    np.testing.assert_array_equal(chosen(attackers=(7, 2, 7)), [2, 7])
    assert chosen(fraction=0.1).size == 3
    np.testing.assert_array_equal(chosen(count=4), chosen(count=4))  # seeded
    with pytest.raises(InputError, match="attackers"):
        chosen(attackers=(99,))
    # central: highest degree in the homophily network under the bounds in force
    gx, gw = resolve_bounds(pop, "quantile:0.5")
    e = homophily_edges(pop, gx, gw)
    degree = np.bincount(e.i, minlength=pop.n) + np.bincount(e.j, minlength=pop.n)
    central = chosen(count=3, select="central")
    assert degree[central].min() >= np.sort(degree)[-3]
    # near_target: the outsiders nearest the largest group's agreement; in_target: members
    clean = mech(pop)
    g = int(np.argmax(np.bincount(clean.labels)))
    d = normalised_distance(pop.X, pop.W, clean.X[g], clean.W[g])
    outside = np.flatnonzero(clean.labels != g)
    near = chosen(count=2, select="near_target")
    np.testing.assert_array_equal(near, np.sort(outside[np.argsort(d[outside])[:2]]))
    inside = chosen(count=2, select="in_target")
    assert (clean.labels[inside] == g).all()


def test_targets_are_shared_by_recipes_with_the_same_threat() -> None:
    pop = bounded()
    threat = ThreatModel(count=2, select="central", sybils=2, goal=Goal("capture"))
    mech = Mechanism("agreements", {"bounds": "quantile:0.5"})
    plans = [ATTACKS[n](threat=threat).plan(pop, mech, 0.1)
             for n in ("overshoot", "infiltrate", "sybil", "camouflage")]
    for plan in plans[1:]:
        np.testing.assert_array_equal(plan.attackers, plans[0].attackers)
        np.testing.assert_array_equal(plan.target_group, plans[0].target_group)
        np.testing.assert_array_equal(plan.target_point[0], plans[0].target_point[0])


# -------------------------------------------------------------- applicability
APPLIES = {  # recipe -> mechanisms it applies to, and the capability the others lack
    "stubborn": ({"declared"}, {"quantile": "declared_bounds", "consensus": "declared_bounds"}),
    "overshoot": ({"declared", "quantile", "consensus", "dual"}, {}),
    "infiltrate": ({"declared", "quantile"}, {"consensus": "groups"}),
    "exclude": ({"declared", "quantile", "consensus"}, {}),
    "bridge": ({"declared", "quantile"}, {"consensus": "groups"}),
    "sybil": ({"declared", "quantile", "consensus"}, {}),
    "threshold_shift": ({"quantile"}, {"declared": "threshold", "consensus": "links"}),
    "camouflage": ({"declared", "quantile", "consensus"}, {}),
    "protocol": ({"dual"}, {"declared": "message_passing", "quantile": "message_passing",
                            "consensus": "message_passing"}),
    "best_response": ({"declared", "quantile", "consensus"}, {}),
}
MECHANISMS = {"declared": DECLARED, "quantile": QUANTILE, "dual": DUAL,
              "consensus": CONSENSUS}


@pytest.mark.parametrize(("name", "mech"), [
    *((n, m) for n in NAMES for m in ("declared", "quantile", "consensus")),
    ("protocol", "dual"), ("overshoot", "dual")])
def test_every_recipe_runs_where_it_applies_and_says_why_not(name: str, mech: str) -> None:
    ok, errors = APPLIES[name]
    pop = bounded(n=20 if mech == "dual" else 30)
    params = {"queries": 8, "knowledge": "white"} if name == "best_response" else {}
    attack = make_attack(name, **params)
    budget = ATTACKS[name].default_budget
    if mech in ok:
        row = run_scenario(pop, MECHANISMS[mech], attack, budget=budget).row
        assert row["attack"] == name and np.isfinite(row["utility_loss_mean"])
        # the clean run, the plan's own queries (path recipes try up to 8 shares of
        # their budget and the smaller budgets of their curve), the truth check
        assert row["queries"] <= (8 if name == "best_response" else 2 + 8 + 4)
        return
    with pytest.raises(NotApplicable) as err:
        run_scenario(pop, MECHANISMS[mech], attack, budget=budget)
    assert err.value.field == "mechanism"
    # names the attack, the mechanism and the capability it lacks
    assert f"'{name}'" in err.value.problem and f"'{errors[mech]}'" in err.value.problem
    assert make_mechanism(MECHANISMS[mech]).title in err.value.problem


@pytest.mark.parametrize(("name", "params", "mechanism", "field", "why"), [
    ("protocol", {"protocol": False}, DUAL, "protocol", "does not allow"),
    ("protocol", {}, {"kind": "agreements", "method": "exact"}, "mechanism", "message_passing"),
    ("sybil", {"sybils": 0}, QUANTILE, "sybils", "allows none"),
    ("bridge", {"sybils": 0}, QUANTILE, "sybils", "allows none"),
    ("infiltrate", {"knowledge": "black"}, QUANTILE, "knowledge", "white-box"),
    ("overshoot", {"knowledge": "black", "queries": 0}, QUANTILE, "queries", "at least 1"),
    ("best_response", {"queries": 1}, QUANTILE, "queries", "at least 2"),
    ("threshold_shift", {}, {"kind": "agreements", "bounds": "fixed:1,0.3"}, "mechanism",
     "lacks capability 'threshold'"),
    ("stubborn", {}, {"kind": "agreements", "bounds": "fixed:1,0.3"}, "mechanism",
     "lacks capability 'declared_bounds'"),
    ("bridge", {"goal": "selfish"}, QUANTILE, "goal", "does not pursue"),
])
def test_invalid_combinations_explain_why(name: str, params: dict, mechanism: dict,
                                          field: str, why: str) -> None:
    with pytest.raises(NotApplicable) as err:
        run_scenario(bounded(), mechanism, make_attack(name, **params), budget=0.1)
    assert err.value.field == field
    assert why in err.value.problem


@pytest.mark.parametrize("budget", [-0.1, float("nan")])
def test_budget_must_be_a_non_negative_number(budget: float) -> None:
    with pytest.raises(InputError, match="budget"):
        make_attack("overshoot").plan(bounded(), Mechanism("consensus"), budget)


# ------------------------------------------------------------ recipe contracts
EPS_RECIPES = ("overshoot", "infiltrate", "exclude", "camouflage", "threshold_shift",
               "best_response")


@pytest.mark.parametrize(("name", "mech"), [
    *((n, m) for n in EPS_RECIPES for m in ("declared", "quantile")
      if (n, m) != ("threshold_shift", "declared"))])
def test_declarations_stay_within_budget_and_honest_rows_untouched(name: str,
                                                                   mech: str) -> None:
    pop = bounded()
    params = {"queries": 10, "knowledge": "white"} if name == "best_response" else {}
    budget = 0.07
    mechanism = Mechanism("agreements", {"bounds": MECHANISMS[mech]["bounds"]})
    plan = make_attack(name, **params).plan(pop, mechanism, budget)
    hat, A = plan.declared, plan.attackers
    n = pop.n
    d = normalised_distance(hat.X[A], hat.W[A], pop.X[A], pop.W[A])
    assert (d <= budget + 1e-9).all()
    honest = np.setdiff1d(np.arange(n), A)
    np.testing.assert_array_equal(hat.X[honest], pop.X[honest])
    np.testing.assert_array_equal(hat.W[honest], pop.W[honest])
    np.testing.assert_array_equal(hat.gamma_x[honest], pop.gamma_x[honest])


def test_stubborn_withholds_the_budget_share_of_the_bound() -> None:
    pop = bounded()
    atk = make_attack("stubborn", attackers=(4, 9), bound_range=(0.01, 10.0))
    for b, keep in ((0.0, 1.0), (0.75, 0.25), (1.0, 0.0), (3.0, 0.0)):
        plan = atk.plan(pop, Mechanism("agreements"), b)
        np.testing.assert_array_equal(plan.declared.X, pop.X)
        np.testing.assert_allclose(plan.declared.gamma_x[[4, 9]],
                                   np.maximum(keep * pop.gamma_x[[4, 9]], 0.01))


def test_stubborn_attacker_gains_under_declared_bounds() -> None:
    row = run_scenario(bounded(), DECLARED, make_attack("stubborn", attackers=(0,)),
                       budget=1.0).row
    assert row["attacker_gain"] > 0


def test_sybil_point_is_camouflaged_within_budget_of_the_agreement() -> None:
    pop = bounded()
    mech = Mechanism("agreements", {"bounds": "quantile:0.5"})
    plan = make_attack("sybil", sybils=4).plan(pop, mech, 0.03)
    g = plan.info["group"]
    clean = mech(pop)
    hat = plan.declared
    assert hat.n == pop.n + 4 and plan.sybils.tolist() == list(range(pop.n, pop.n + 4))
    d = normalised_distance(hat.X[pop.n:], hat.W[pop.n:], clean.X[g], clean.W[g])
    assert (d <= 0.03 + 1e-9).all()
    gx, gw = resolve_bounds(pop, "quantile:0.5")
    members = np.flatnonzero(clean.labels == g)
    assert plan.info["in_region"]
    assert accepts(hat.X[pop.n], hat.W[pop.n], pop.X[members], pop.W[members], gx[members],
                   gw[members]).all()


def test_infiltrators_join_the_target_group_and_pull_it() -> None:
    res = run_scenario(bounded(), DECLARED, make_attack("infiltrate"), budget=math.inf)
    assert res.plan.info["in_region"] == [True, True, True]
    assert res.row["join_success"] == 1.0
    assert res.row["capture"] > 0


def test_exclude_wedge_cuts_the_far_victims_off() -> None:
    """On a line (bounds 1.1): victims at −0.6, −0.55, a core at 0.3 … 0.6, the attacker
    at 0.65 — one group, common region [−0.45, 0.5]. The attacker copies the core
    member at 0.6 with a bound that only just accepts it; their link is the shortest,
    so the group has to contain 0.6, which the victims (reaching 0.5 and 0.55) do not
    accept: they lose their group."""
    pos = np.array([-0.6, -0.55, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65])
    X = pos[:, None, None] * np.ones((1, 1, 2)) / np.sqrt(2)  # ‖ΔX‖_F = |Δpos|
    W = np.tile([0.5, 0.5], (10, 1))
    pop = Population(X, W, gamma_x=np.full(10, 1.1), gamma_w=np.full(10, 0.5))
    assert Mechanism("agreements")(pop).n_groups == 1
    atk = make_attack("exclude", attackers=(9,), victims=(0, 1))
    res = run_scenario(pop, DECLARED, atk, budget=math.inf)
    assert res.plan.info["mode"] == "wedge" and res.plan.info["anchors"] == [8]
    assert res.row["exclusion_rate"] == 1.0 and res.row["attack_success"] == 1.0
    labels = res.attacked.labels
    assert labels[0] == labels[1] != labels[2] == labels[8] == labels[9]


def test_camouflage_z_follows_baruch_et_al() -> None:
    assert alie_z(50, 12) == pytest.approx(0.5828, abs=1e-4)  # Φ⁻¹(36/50)
    assert alie_z(100, 1) == 0.0
    assert alie_z(10, 9) > 0


def test_protocol_hook_constant_and_nudge() -> None:
    X = np.zeros((3, 2, 2))
    W = np.full((3, 2), 0.5)
    state = IterationState(50, np.zeros(3, dtype=int), X, W)
    aim_X, aim_W = np.ones((1, 2, 2)), np.array([[1.0, 0.0]])
    const = MessageDeviation((1,), "constant", aim_X, aim_W, 0.1, 100)
    msg = const(state)
    assert set(msg) == {1}
    np.testing.assert_array_equal(msg[1][0], aim_X[0])
    nudge = MessageDeviation((1,), "nudge", aim_X, aim_W, 0.1, 100)(state)
    assert normalised_distance(nudge[1][0], nudge[1][1], X[1], W[1]) == pytest.approx(0.05)


def test_protocol_stubborn_messages_capture_the_group() -> None:
    pop = bounded(n=20)
    res = run_scenario(pop, DUAL, make_attack("protocol", count=2, select="in_target"),
                       budget=math.inf)
    assert res.plan.hook is not None and res.plan.declared is pop
    assert res.row["capture"] > 0.5


# --------------------------------------------------------------- reproducible
@pytest.mark.parametrize("name", ["overshoot", "sybil", "camouflage", "best_response"])
def test_same_seed_same_plan_and_curve(name: str) -> None:
    pop = bounded()
    mech = Mechanism("agreements", {"bounds": "quantile:0.5"})
    atk = make_attack(name, **({"queries": 6} if name == "best_response" else {}))
    a, b = atk.plan(pop, mech, 0.1, seed=2), atk.plan(pop, mech, 0.1, seed=2)
    assert a.declared.fingerprint() == b.declared.fingerprint()
    curve = atk.curve(pop, mech, seed=2)
    assert len(curve) == len(ATTACKS[name].default_budgets)


# ------------------------------------------------------------------- queries
def test_queries_are_counted_cached_and_limited() -> None:
    pop = bounded()
    mech = Mechanism("consensus")
    ctx = AttackContext(pop, mech, ThreatModel(knowledge="black", queries=2), seed=0)
    ctx.query(pop)
    ctx.query(pop)
    assert ctx.queries == 1  # identical declarations are cached
    other = pop.replace(X=np.clip(pop.X + 0.01, -1, 1))
    ctx.query(other)
    with pytest.raises(QueryBudgetExhausted):
        ctx.query(other.replace(X=np.clip(pop.X - 0.01, -1, 1)))


@pytest.mark.parametrize("mech", [DECLARED, CONSENSUS])
def test_best_response_reports_queries_within_budget(mech: dict) -> None:
    atk = make_attack("best_response", queries=12, attackers=(0, 1))
    res = run_scenario(bounded(), mech, atk, budget=0.1)
    info = res.plan.info
    assert 2 <= res.row["queries"] <= 12
    assert info["source"] in {*ATTACKS, "truth", "structure", "restarts", "local"}
    assert "infiltrate" in info["skipped"]  # white-box recipes do not seed a black box
    assert res.row["attacker_gain"] == pytest.approx(info["score"], abs=1e-12)


def test_best_response_uses_the_closed_form_under_the_mean() -> None:
    atk = make_attack("best_response", knowledge="white", attackers=(3,), queries=20)
    plan = atk.plan(bounded(), Mechanism("consensus", {"p": 2}), 0.1)
    assert plan.info["closed_form"] and plan.info["phases"] == {}
    assert plan.info["source"] == "closed_form"
    assert plan.queries <= 20


# ------------------------------------------------------------------ geometry
@st.composite
def valid_points(draw, k: int = 2, m: int = 3) -> tuple[np.ndarray, np.ndarray]:
    X = draw(arrays(float, (k, m), elements=st.floats(-1, 1)))
    raw = draw(arrays(float, m, elements=st.floats(0, 1))) + 1e-3
    return X, raw / raw.sum()


@settings(max_examples=60, deadline=None)
@given(v=valid_points(), t=st.tuples(arrays(float, (2, 3), elements=st.floats(-3, 3)),
                                     arrays(float, 3, elements=st.floats(-1, 2))),
       q=valid_points(), budget=st.floats(0.0, 0.6))
def test_project_budget_is_the_projection_onto_ball_and_valid_set(v, t, q, budget) -> None:
    pX, pW = project_budget(v[0], v[1], t[0], t[1], budget)
    assert (np.abs(pX) <= 1).all() and (pW >= 0).all() and pW.sum() == pytest.approx(1)
    assert normalised_distance(pX, pW, *v) <= budget + 1e-9
    # no valid point within the budget is closer to the target
    qX, qW = project_budget(v[0], v[1], q[0], q[1], budget)  # a feasible competitor
    assert (normalised_distance(pX, pW, *t) <= normalised_distance(qX, qW, *t) + 1e-7)


def test_region_point_lies_in_every_acceptable_set() -> None:
    pop = bounded()
    gx, gw = resolve_bounds(pop, "quantile:0.5")
    clean = Mechanism("agreements", {"bounds": "quantile:0.5"})(pop)
    members = np.flatnonzero(clean.labels == np.argmax(np.bincount(clean.labels)))
    target = (np.ones((pop.k, pop.m)), np.eye(pop.m)[0])
    p = region_point(pop, gx, gw, members, target)
    assert accepts(p[0], p[1], pop.X[members], pop.W[members], gx[members], gw[members]).all()
    # the agreement is in the region, so the region point is at least as close to t
    g = clean.labels[members[0]]
    assert normalised_distance(*p, *target) <= normalised_distance(clean.X[g], clean.W[g],
                                                                   *target) + 1e-9


def test_bridge_closest_pair_is_blockwise_exact(monkeypatch):
    """The blocked closest-pair search finds the dense minimum of r_ij and its pair."""
    from pluralguard.attacks import bridge

    pop = clustered(seed=3)
    rng = np.random.default_rng(0)
    gx, gw = rng.uniform(0.2, 0.6, pop.n), rng.uniform(0.1, 0.4, pop.n)
    A, B = np.arange(0, pop.n // 2), np.arange(pop.n // 2, pop.n)
    dX = np.linalg.norm(pop.X[A][:, None] - pop.X[B][None], axis=(2, 3))
    dW = np.linalg.norm(pop.W[A][:, None] - pop.W[B][None], axis=2)
    r = np.maximum(dX / np.minimum(gx[A][:, None], gx[B][None]),
                   dW / np.minimum(gw[A][:, None], gw[B][None]))
    a, b = np.unravel_index(np.argmin(r), r.shape)
    monkeypatch.setattr(bridge, "_PAIR_BLOCK", 100)  # 3 rows per block, 10 blocks
    ratio, i, j = bridge.chain_ratio(pop, gx, gw, A, B)
    assert ratio == pytest.approx(r[a, b], rel=1e-12) and (i, j) == (A[a], B[b])


def test_recipes_declare_the_mechanism_settings_they_need():
    """Only the agreement mechanism has the settings; a setting given stays the user's."""
    assert ATTACKS["protocol"].mechanism_settings("agreements", {}) == {"method": "dual"}
    assert ATTACKS["stubborn"].mechanism_settings("agreements", {"method": "dual"}) == {
        "bounds": "declared"}
    assert ATTACKS["stubborn"].mechanism_settings("agreements", {"bounds": "fixed:1,1"}) == {}
    assert ATTACKS["protocol"].mechanism_settings("consensus", {}) == {}
    assert ATTACKS["sybil"].mechanism_settings("agreements", {}) == {}
