"""The Pareto computation of ``simkit tune``: front, constraint, choice, paired deltas.

Besides hand-made cases, a seeded random check compares the front with its definition (no front
point is dominated by a feasible point; every other feasible point is), and a mutation check
shows that test detects a front that keeps a dominated point or drops a non-dominated one."""

from __future__ import annotations

import numpy as np
import pytest

from simkit.tune.pareto import choose, dominates, false_promotion_limit, paired_delta, pareto_mask


def is_front(points: np.ndarray, feasible: np.ndarray, mask: np.ndarray) -> bool:
    ok = np.flatnonzero(feasible)
    for i in range(len(points)):
        dominated = any(dominates(points[j], points[i]) for j in ok if j != i)
        if mask[i] != (bool(feasible[i]) and not dominated):
            return False
    return True


def test_hand_made_front() -> None:
    pts = np.array([[100, 60, 0.1], [80, 60, 0.1], [80, 90, 0.0], [120, 90, 0.2], [80, 60, 0.1]], float)
    # row 0 is dominated by row 1, row 3 by everything; rows 1 and 4 tie and both stay
    assert pareto_mask(pts).tolist() == [False, True, True, False, True]


def test_infeasible_points_are_off_the_front_and_dominate_nothing() -> None:
    pts = np.array([[10, 10, 0.0], [50, 50, 0.5]], float)
    assert pareto_mask(pts, np.array([False, True])).tolist() == [False, True]


@pytest.mark.parametrize("seed", range(20))
def test_the_front_matches_its_definition_on_random_points(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pts = rng.integers(0, 5, size=(25, 3)).astype(float)  # small integers: many ties and dominations
    feasible = rng.random(25) < 0.7
    assert is_front(pts, feasible, pareto_mask(pts, feasible))


def test_mutation_the_definition_check_catches_a_wrong_front() -> None:
    rng = np.random.default_rng(7)
    pts = rng.integers(0, 5, size=(25, 3)).astype(float)
    feasible = np.ones(25, dtype=bool)
    mask = pareto_mask(pts, feasible)
    assert mask.any() and (~mask).any()
    for i in range(25):
        wrong = mask.copy()
        wrong[i] = not wrong[i]
        assert not is_front(pts, feasible, wrong)


def test_the_false_promotion_limit_is_the_baseline_plus_its_margin_or_the_option() -> None:
    assert false_promotion_limit(0.04, 0.07, None) == pytest.approx(0.07)
    assert false_promotion_limit(0.04, 0.07, 0.02) == 0.02
    assert false_promotion_limit(0.0, 0.0, None) == 0.0


def test_choose_knee_and_single_objectives() -> None:
    pts = np.array([[0, 100, 0.5], [50, 50, 0.1], [100, 0, 0.5], [200, 200, 0.9]], float)
    front = pareto_mask(pts)
    assert front.tolist() == [True, True, True, False]
    assert choose(pts, front, "knee") == 1  # the compromise, closest to the utopia point
    assert choose(pts, front, "bad_requests") == 0
    assert choose(pts, front, "time_to_decision") == 2
    assert choose(pts, front, "false_rollback") == 1
    ties = np.array([[5, 5, 0.1], [5, 5, 0.1]], float)
    assert choose(ties, pareto_mask(ties), "knee") == 0  # ties go to the earlier candidate (the baseline)
    with pytest.raises(ValueError):
        choose(pts, front, "speed")


def test_paired_delta_is_tighter_than_the_unpaired_spread() -> None:
    rng = np.random.default_rng(0)
    common = rng.normal(1000, 300, size=60)  # seed-to-seed variation both candidates share
    base, cand = common, common - 50 + rng.normal(0, 5, size=60)
    d, lo, hi = paired_delta(cand, base, np.random.default_rng(1))
    assert d == pytest.approx(-50, abs=3) and lo < d < hi and hi < 0 and hi - lo < 10
    again = paired_delta(cand, base, np.random.default_rng(1))
    assert again == (d, lo, hi)
