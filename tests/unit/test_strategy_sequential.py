"""Sequential (confidence-sequence) strategy: A/A Monte Carlo keeps false decisions under alpha
across 30 looks; clearly worse candidates roll back, clearly better ones are promoted."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from simkit.errors import SpecError
from simkit.strategies.base import Decision, Observation, Plan, Reward
from simkit.strategies.sequential import SequentialStrategy, half_width

REQ, ERRS, REW = "ns/requests", "ns/errors", "ns/reward"
PLAN = Plan(versions=("v1", "v2"), rewards=(Reward(REW),), request_count=REQ)
PARAMS = {"metrics": {"errors": ERRS}}


def simulate(
    seeds: int,
    looks: int,
    error: tuple[float, float],
    reward: tuple[float, float],
    per_look: int = 400,
    params: dict[str, Any] | None = None,
) -> list[list[Decision]]:
    """Cumulative counts for `seeds` independent runs, generated look by look for all runs at once;
    the traffic split of each run follows that run's own decisions."""
    strategy = SequentialStrategy(PLAN, params or PARAMS)
    rng = np.random.default_rng(12345)
    n = np.zeros((seeds, 2))
    e = np.zeros((seeds, 2))
    r = np.zeros((seeds, 2))
    weight = np.zeros(seeds)
    states: list[Any] = [{} for _ in range(seeds)]
    done = np.zeros(seeds, dtype=bool)
    history: list[list[Decision]] = [[] for _ in range(seeds)]
    for look in range(1, looks + 1):
        to_candidate = rng.binomial(per_look, weight / 100)
        new = np.stack([per_look - to_candidate, to_candidate], axis=1)
        n += new
        e += rng.binomial(new.astype(int), np.array(error))
        r += rng.poisson(new * np.array(reward))
        for s in np.nonzero(~done)[0]:
            metrics = {
                REQ: {"v1": n[s, 0], "v2": n[s, 1]},
                ERRS: {"v1": e[s, 0], "v2": e[s, 1]},
                REW: {"v1": r[s, 0], "v2": r[s, 1]},
            }
            d = strategy.decide(Observation(look, 20.0 * look, metrics, state=states[s]), rng)
            history[s].append(d)
            states[s] = json.loads(json.dumps(d.state, allow_nan=False))  # journal-safe state
            assert d.weights is not None
            weight[s] = d.weights["v2"]
            done[s] = d.verdict != "continue"
    return history


def test_aa_false_decisions_stay_below_alpha_under_repeated_looks() -> None:
    seeds, alpha = 300, 0.05
    runs = simulate(seeds, 30, error=(0.02, 0.02), reward=(0.1, 0.1))
    false = sum(1 for h in runs if h[-1].verdict != "continue")
    slack = 3 * math.sqrt(alpha * (1 - alpha) / seeds)
    assert false / seeds <= alpha + slack
    # the schedule did ramp: most runs reach maxWeight 50 without a decision
    assert sum(1 for h in runs if h[-1].weights and h[-1].weights["v2"] == 50) > seeds / 2


def test_clearly_worse_candidate_rolls_back() -> None:
    runs = simulate(20, 30, error=(0.02, 0.10), reward=(0.1, 0.1))
    assert all(h[-1].verdict == "rollback" for h in runs)
    assert all(h[-1].weights == {"v1": 100, "v2": 0} for h in runs)
    assert "error rate" in runs[0][-1].reason


def test_clearly_better_reward_promotes() -> None:
    runs = simulate(20, 30, error=(0.02, 0.02), reward=(0.1, 0.2))
    assert all(h[-1].verdict == "promote" and h[-1].winner == "v2" for h in runs)


def test_not_enough_evidence_holds_verdict_and_ramps() -> None:
    strategy = SequentialStrategy(PLAN, PARAMS)
    metrics = {REQ: {"v1": 400.0, "v2": 0.0}, ERRS: {"v1": 8.0, "v2": 0.0}, REW: {"v1": 40.0, "v2": 0.0}}
    d = strategy.decide(Observation(1, 20.0, metrics), np.random.default_rng(0))
    assert d.verdict == "continue" and "not enough evidence yet" in d.reason
    assert d.weights == {"v1": 90, "v2": 10}


def test_signs_of_harm_hold_the_weight() -> None:
    strategy = SequentialStrategy(PLAN, PARAMS)
    # 2% vs 5% errors: z of about 2 (signs of harm) but not credible yet at 200 requests
    metrics = {
        REQ: {"v1": 2000.0, "v2": 200.0},
        ERRS: {"v1": 40.0, "v2": 10.0},
        REW: {"v1": 200.0, "v2": 20.0},
    }
    d = strategy.decide(Observation(3, 60.0, metrics, state={"weight": 20}), np.random.default_rng(0))
    assert d.verdict == "continue" and "holding weight 20" in d.reason
    assert d.weights == {"v1": 80, "v2": 20}


def test_half_width_is_the_normal_mixture_boundary() -> None:
    # GrowthBook's sequential interval written out: rho from alpha and N, sigma^2 = SE^2 * n
    alpha, tuning, se2, n = 0.025, 5000.0, 1e-4, 3000.0
    rho = math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)
    sigma = math.sqrt(se2 * n)
    expected = sigma * math.sqrt(
        2 * (n * rho**2 + 1) * math.log(math.sqrt(n * rho**2 + 1) / alpha) / (n * rho) ** 2
    )
    assert half_width(se2, n, alpha, tuning) == pytest.approx(expected, rel=1e-12)
    # wider than the fixed-horizon 97.5% interval, as the price of anytime validity
    assert half_width(se2, n, alpha, tuning) > 2.24 * math.sqrt(se2)


def test_needs_some_test_and_a_requests_role() -> None:
    with pytest.raises(SpecError) as err:
        SequentialStrategy(Plan(versions=("a", "b"), request_count=REQ), {})
    assert err.value.field == "metrics.errors"
    with pytest.raises(SpecError) as err:
        SequentialStrategy(Plan(versions=("a", "b")), PARAMS)
    assert err.value.field == "metrics.requests"
    with pytest.raises(SpecError) as err:
        SequentialStrategy(PLAN, {"guardrails": [{"numerator": ERRS, "direction": "sideways"}]})
    assert err.value.field == "guardrails[0].direction"
