"""Thompson sampling: seeded determinism, increment cap, baseline floor, SRM hold, feasibility
rollback and promotion, on hand-built cumulative counts."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from simkit.errors import SpecError
from simkit.strategies.base import Decision, Objective, Observation, Plan, Reward
from simkit.strategies.thompson import ThompsonStrategy

REQ, REW, ERRS, RATE = "ns/requests", "ns/reward", "ns/errors", "ns/error-rate"
PLAN = Plan(
    versions=("v1", "v2"),
    rewards=(Reward(REW),),
    request_count=REQ,
    objectives=(Objective(RATE, upper_limit=0.05),),
)
ROLES = {"metrics": {"errors": ERRS, "errorRate": RATE}}


def simulate(
    strategy: ThompsonStrategy,
    rates: dict[str, float],
    seed: int,
    steps: int = 12,
    error_rates: dict[str, float] | None = None,
    per_interval: int = 400,
) -> list[Decision]:
    """Traffic follows the strategy's weights; rewards ~ Poisson(rate) per request; errors ~ Binomial."""
    traffic = np.random.default_rng(seed + 1000)
    rng = np.random.default_rng(seed)
    versions = strategy.plan.versions
    n = dict.fromkeys(versions, 0.0)
    r = dict.fromkeys(versions, 0.0)
    e = dict.fromkeys(versions, 0.0)
    weights = {versions[0]: 100} | {v: 0 for v in versions[1:]}
    state: Any = {}
    out = []
    for i in range(1, steps + 1):
        split = traffic.multinomial(per_interval, [weights[v] / 100 for v in versions])
        for v, k in zip(versions, split, strict=True):
            n[v] += k
            r[v] += traffic.poisson(rates[v] * k)
            e[v] += traffic.binomial(k, (error_rates or {}).get(v, 0.0))
        metrics: dict[str, dict[str, float | None]] = {
            REQ: dict(n),
            REW: dict(r),
            ERRS: dict(e),
            RATE: {v: e[v] / n[v] if n[v] else None for v in versions},
        }
        d = strategy.decide(Observation(i, 20.0 * i, metrics, tuple(weights.items()), state=state), rng)
        out.append(d)
        state = json.loads(json.dumps(d.state, allow_nan=False))  # journal-safe state
        if d.verdict != "continue":
            break
        assert d.weights is not None
        weights = dict(d.weights)
    return out


def test_same_seed_same_decisions() -> None:
    runs = [simulate(ThompsonStrategy(PLAN, ROLES), {"v1": 0.1, "v2": 0.12}, seed=7) for _ in range(2)]
    assert [(d.weights, d.verdict, d.reason) for d in runs[0]] == [
        (d.weights, d.verdict, d.reason) for d in runs[1]
    ]


def test_increment_cap_and_top_two_ramp() -> None:
    ds = simulate(ThompsonStrategy(PLAN, ROLES), {"v1": 0.1, "v2": 0.1}, seed=3, steps=10)
    weights = [d.weights["v2"] for d in ds if d.weights and d.verdict == "continue"]  # promotion jumps
    steps = np.diff([0, *weights])
    assert steps.max() <= 10
    assert weights[:5] == [10, 20, 30, 40, 50]  # top-two with two versions targets 50/50
    assert all(sum(d.weights.values()) == 100 for d in ds if d.weights)


def test_clearly_better_candidate_is_promoted_with_early_stop() -> None:
    ds = simulate(
        ThompsonStrategy(PLAN, {**ROLES, "earlyStop": True}), {"v1": 0.1, "v2": 0.3}, seed=5, steps=20
    )
    assert ds[-1].verdict == "promote" and ds[-1].winner == "v2"
    assert ds[-1].weights == {"v1": 0, "v2": 100}


def test_clearly_better_candidate_wins_and_ramps_without_early_stop() -> None:
    ds = simulate(ThompsonStrategy(PLAN, ROLES), {"v1": 0.1, "v2": 0.3}, seed=5, steps=20)
    assert all(d.verdict == "continue" for d in ds)
    won = [i for i, d in enumerate(ds) if d.winner == "v2"]
    assert won and all(ds[i].winner == "v2" for i in range(won[0], len(ds)))
    after = [ds[i].weights["v2"] for i in range(won[0], len(ds))]
    assert all(b - a <= 10 for a, b in zip(after, after[1:], strict=False))  # still under the ramp cap
    assert after[-1] == 95  # everything but the baseline floor


def test_baseline_floor_with_plain_thompson() -> None:
    plan = Plan(versions=("v1", "v2", "v3"), rewards=(Reward(REW),), request_count=REQ)
    strategy = ThompsonStrategy(plan, {"topTwo": False, "maxIncrement": 100, "minRequests": 10})
    counts = {REQ: {"v1": 5000.0, "v2": 5000.0, "v3": 5000.0}, REW: {"v1": 100.0, "v2": 1000.0, "v3": 1000.0}}
    d = strategy.decide(
        Observation(2, 40.0, counts, (("v1", 34), ("v2", 33), ("v3", 33))), np.random.default_rng(0)
    )
    assert d.verdict == "continue"
    assert d.weights is not None and d.weights["v1"] == 5
    assert abs(d.weights["v2"] - d.weights["v3"]) <= 8


def test_sample_ratio_mismatch_holds_the_weights() -> None:
    strategy = ThompsonStrategy(PLAN, ROLES)
    state = {"weights": {"v1": 50, "v2": 50}, "prevRequests": {"v1": 1000.0, "v2": 1000.0}}
    metrics = {REQ: {"v1": 1900.0, "v2": 1100.0}, REW: {"v1": 100.0, "v2": 300.0}}
    d = strategy.decide(
        Observation(5, 100.0, metrics, (("v1", 50), ("v2", 50)), state=state), np.random.default_rng(0)
    )
    assert d.verdict == "continue"
    assert d.weights == {"v1": 50, "v2": 50}
    assert "sample ratio mismatch" in d.reason
    balanced = {REQ: {"v1": 1510.0, "v2": 1490.0}, REW: {"v1": 100.0, "v2": 110.0}}
    d2 = strategy.decide(
        Observation(5, 100.0, balanced, (("v1", 50), ("v2", 50)), state=state), np.random.default_rng(0)
    )
    assert "sample ratio mismatch" not in d2.reason


def test_requests_at_weight_zero_are_a_mismatch() -> None:
    strategy = ThompsonStrategy(PLAN, ROLES)
    metrics = {REQ: {"v1": 500.0, "v2": 300.0}, REW: {"v1": 50.0, "v2": 30.0}}
    d = strategy.decide(Observation(1, 20.0, metrics, (("v1", 100), ("v2", 0))), np.random.default_rng(0))
    assert "sample ratio mismatch" in d.reason and "weight 0" in d.reason


def test_credibly_infeasible_candidate_rolls_back() -> None:
    ds = simulate(
        ThompsonStrategy(PLAN, ROLES),
        {"v1": 0.1, "v2": 0.3},
        seed=2,
        steps=20,
        error_rates={"v1": 0.0, "v2": 0.2},
    )
    assert ds[-1].verdict == "rollback"
    assert ds[-1].weights == {"v1": 100, "v2": 0}
    assert "credibly infeasible" in ds[-1].reason


def test_missing_reward_role_names_the_role() -> None:
    with pytest.raises(SpecError) as err:
        ThompsonStrategy(Plan(versions=("a", "b")), {})
    assert err.value.field == "metrics.reward"


def test_count_model_needs_requests() -> None:
    with pytest.raises(SpecError) as err:
        ThompsonStrategy(Plan(versions=("a", "b"), rewards=(Reward(REW),)), {"rewardModel": "bernoulli"})
    assert err.value.field == "metrics.requests"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"prior": [1]}, "prior"),
        ({"feasibility": 2}, "feasibility"),
        ({"metrics": {"clicks": REW}}, "metrics.clicks"),
        ({"rewardModel": "gauss"}, "rewardModel"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_parameters(params: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as err:
        ThompsonStrategy(PLAN, params)
    assert err.value.field == field
