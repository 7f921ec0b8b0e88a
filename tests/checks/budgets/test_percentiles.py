import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from model_checks.checks.budgets.percentiles import STATISTICS, Percentiles, median, min_samples, percentile, rounds_for

KNOWN = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0, 5.0]


@pytest.mark.parametrize("q", [0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 1.0])
def test_percentile_matches_numpy_on_known_samples(q):
    assert percentile(KNOWN, q) == pytest.approx(np.percentile(KNOWN, 100 * q))


@given(
    st.lists(st.floats(min_value=1e-3, max_value=1e6, allow_nan=False), min_size=1, max_size=300),
    st.floats(min_value=0.0, max_value=1.0),
)
def test_percentile_matches_numpy_everywhere(samples, q):
    assert percentile(samples, q) == pytest.approx(float(np.percentile(samples, 100 * q)), rel=1e-9, abs=1e-9)


def test_percentiles_of_nanoseconds_are_milliseconds_like_numpy():
    rng = np.random.default_rng(0)
    ns = rng.lognormal(mean=13, sigma=0.4, size=1000)
    p = Percentiles.of_ns(list(ns))
    ms = ns / 1e6
    for name, q in STATISTICS.items():
        want = ms.mean() if q is None else np.percentile(ms, 100 * q)
        assert p.get(name) == pytest.approx(want, rel=1e-12)
    assert p.n == 1000 and p.min == pytest.approx(ms.min()) and "p99" in str(p)
    with pytest.raises(KeyError, match="unknown statistic 'p42'"):
        p.get("p42")


def test_rejects_empty_and_out_of_range():
    with pytest.raises(ValueError):
        percentile([], 0.5)
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)


def test_min_samples_is_the_two_beyond_rule():
    assert min_samples(0.9) == 64
    assert min_samples(0.99) == 662
    # the rule itself: at n, P(at least 2 samples above the q-quantile) >= 0.99; at n - 1 it is not
    for q in (0.5, 0.9, 0.95, 0.99):
        n = min_samples(q)

        def p_two_beyond(n, q=q):
            t = 1 - q
            return 1 - (1 - t) ** n - n * t * (1 - t) ** (n - 1)

        assert p_two_beyond(n) >= 0.99 > p_two_beyond(n - 1)


def test_rounds_cover_the_most_demanding_statistic():
    assert rounds_for(["p50", "p99"]) == 662
    assert rounds_for(["mean"]) == min_samples(0.5)
    assert rounds_for(["p90"], floor=100) == 100
    assert Percentiles.of_ns([1e6] * 64).trustworthy("p90")
    assert not Percentiles.of_ns([1e6] * 64).trustworthy("p99")


def test_median():
    assert median([1.0, 3.0, 2.0, 10.0]) == 2.5 and math.isclose(median([5.0]), 5.0)
