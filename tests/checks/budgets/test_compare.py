"""The regression statistics on synthetic block medians: deterministic (seeded), no timing involved."""

import itertools
import math

import numpy as np
import pytest

from model_checks.checks.budgets.compare import (
    IMPROVEMENT,
    INCONCLUSIVE,
    NOT_COMPARED,
    REGRESSION,
    UNCHANGED,
    compare,
    interval_rank,
    not_compared,
    p_greater,
    u_distribution,
    u_statistic,
)


@pytest.mark.parametrize(("n", "m"), [(1, 1), (2, 3), (4, 4), (5, 3)])
def test_u_distribution_matches_enumeration(n, m):
    counts = [0] * (n * m + 1)
    for xs in itertools.combinations(range(n + m), n):  # ranks of x among n + m distinct values
        ys = [r for r in range(n + m) if r not in xs]
        counts[int(u_statistic(xs, ys))] += 1
    total = math.comb(n + m, n)
    assert u_distribution(n, m) == pytest.approx([c / total for c in counts])


def test_exact_p_value_on_a_known_case():
    # x all above y: U = n*m, the most extreme of C(8, 4) = 70 arrangements
    assert p_greater([5, 6, 7, 8], [1, 2, 3, 4]) == pytest.approx(1 / 70)
    assert p_greater([1, 2, 3, 4], [5, 6, 7, 8]) == pytest.approx(1.0)


def test_interval_rank_is_the_critical_value():
    assert interval_rank(5, 5) == 3  # P(U <= 2) = 4/252 <= 0.025 < P(U <= 3) = 7/252
    assert interval_rank(2, 2) == 0  # too few for any 95% interval


def runs(rng, n, scale=1.0, spread=0.02):
    """n block medians of a model taking `scale` time units, with log-normal noise."""
    return list(scale * np.exp(rng.normal(0.0, spread, n)))


def test_a_slowed_model_is_flagged_across_repeated_runs():
    rng = np.random.default_rng(1)
    verdicts = [compare(runs(rng, 8, 1.10), runs(rng, 8)).verdict for _ in range(200)]
    assert verdicts.count(REGRESSION) >= 190


def test_an_unchanged_model_is_not_flagged_across_repeated_runs():
    rng = np.random.default_rng(2)
    verdicts = [compare(runs(rng, 8), runs(rng, 8)).verdict for _ in range(500)]
    assert REGRESSION not in verdicts
    assert verdicts.count(UNCHANGED) >= 450


def test_a_small_significant_change_is_not_a_regression():
    rng = np.random.default_rng(3)
    c = compare(runs(rng, 12, 1.02, 0.002), runs(rng, 12, 1.0, 0.002))
    assert c.verdict == UNCHANGED and 1.0 < c.low and c.high < 1.05 and c


def test_too_noisy_is_inconclusive_not_a_verdict():
    rng = np.random.default_rng(4)
    c = compare(runs(rng, 8, 1.08, 0.3), runs(rng, 8, 1.0, 0.3))
    assert c.verdict == INCONCLUSIVE and c and "too noisy" in str(c)
    assert compare([1.0, 1.1], [1.0, 1.05]).verdict == INCONCLUSIVE  # too few blocks for an interval


def test_regression_message_says_by_how_much_and_how_sure():
    c = compare([1.2, 1.21, 1.19, 1.22, 1.2, 1.18], [1.0, 1.01, 0.99, 1.0, 1.02, 0.98])
    assert c.verdict == REGRESSION and not c
    assert c.change == pytest.approx(0.2, abs=0.02)
    text = str(c)
    assert (
        text.startswith("regression: +20")
        and "95% CI" in text
        and "Mann-Whitney p=" in text
        and "minimum effect 5%" in text
    )


def test_min_effect_is_respected():
    base = [1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 1.01]
    slower = [v * 1.08 for v in base]
    assert compare(slower, base, min_effect=0.05).verdict == REGRESSION
    assert compare(slower, base, min_effect=0.10).verdict == UNCHANGED  # +8% is inside +-10%, and surely so
    assert compare([v * 0.8 for v in base], base).verdict == IMPROVEMENT


def test_not_compared_is_not_a_failure_and_says_why():
    c = not_compared("cpu differs")
    assert c.verdict == NOT_COMPARED and c and str(c) == "not compared: cpu differs"
