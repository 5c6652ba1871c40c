"""Population validation: every bad field gets an error naming it and the fix."""

from __future__ import annotations

import numpy as np
import pytest

from pluralguard.core import InputError, Population


def base(n=4, k=2, m=3):
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, (n, k, m)), rng.dirichlet(np.ones(m), n)


@pytest.mark.parametrize("change, field, text", [
    (lambda X, W: (X[0], W), "X", "dimensions"),
    (lambda X, W: (np.where(X > 0.5, np.nan, X), W), "X", "NaN"),
    (lambda X, W: (X * 3, W), "X", "outside"),
    (lambda X, W: (X, W[:, :2]), "W", "shape"),
    (lambda X, W: (X, W * 2), "W", "simplex"),
    (lambda X, W: (X, W - W.mean()), "W", "negative"),
])
def test_bad_arrays_name_the_field(change, field, text):
    X, W = change(*base())
    with pytest.raises(InputError, match=text) as err:
        Population(X, W)
    assert err.value.field == field
    assert err.value.fix


def test_bounds_must_come_in_pairs_and_be_non_negative():
    X, W = base()
    with pytest.raises(InputError) as err:
        Population(X, W, gamma_x=1.0)
    assert err.value.field == "gamma_w"
    with pytest.raises(InputError, match="negative") as err:
        Population(X, W, gamma_x=[1, 1, -1, 1], gamma_w=1.0)
    assert err.value.field == "gamma_x"
    with pytest.raises(InputError, match="4 entries"):
        Population(X, W, gamma_x=[1, 1], gamma_w=1.0)


def test_weights_and_names_are_validated():
    X, W = base()
    with pytest.raises(InputError, match="positive"):
        Population(X, W, weights=[1, 0, 1, 1])
    with pytest.raises(InputError, match="more than once"):
        Population(X, W, agents=["a", "a", "b", "c"])
    with pytest.raises(InputError, match="names"):
        Population(X, W, values=["v1"])


def test_arrays_are_read_only_and_derivations_validate():
    X, W = base()
    pop = Population(X, W, gamma_x=0.5, gamma_w=np.inf)
    with pytest.raises(ValueError):
        pop.X[0, 0, 0] = 0.0
    assert pop.subset([2, 0]).agents == ("agent2", "agent0")
    twice = pop.append(pop.replace(agents=[f"b{i}" for i in range(4)]))
    assert twice.n == 8 and twice.has_bounds
    with pytest.raises(InputError):
        pop.append(Population(*base(k=3)))


def test_fingerprint_tracks_content():
    X, W = base()
    a, b = Population(X, W), Population(X.copy(), W.copy())
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != a.with_bounds(1.0, 1.0).fingerprint()
    X2 = X.copy()
    X2[0, 0, 0] = np.nextafter(X2[0, 0, 0], 2)
    assert Population(X2, W).fingerprint() != a.fingerprint()
