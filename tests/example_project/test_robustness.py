"""Our CI: the mechanism's own tests, and pluralguard's robustness gate on it."""

import numpy as np
from median_clusters import median_clusters, weighted_median

from pluralguard.core import check_outcome, datasets


def test_weighted_median_is_the_median_for_equal_weights():
    values = np.array([[3.0, -1.0], [1.0, 0.0], [2.0, 5.0]])
    assert weighted_median(values, np.ones(3)).tolist() == [2.0, 0.0]


def test_the_mechanism_returns_a_valid_outcome():
    population = datasets.load_population_file("population.csv")
    outcome = median_clusters(population, k=4)
    check_outcome(outcome, population)
    assert outcome.n_groups == 4


def test_robustness_gate(pluralguard_check):
    # the suite's baseline, tolerances and limits; fails with the gate's summary
    pluralguard_check("robustness.toml", "baseline.json")
