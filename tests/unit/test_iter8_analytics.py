"""Iter8 v2 analytics maths (iter8-v2.md §4) and the ``iter8`` / ``iter8-fixed`` strategies."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simkit.errors import SpecError
from simkit.records import to_status_analysis
from simkit.strategies.base import Objective, Observation, Plan, Reward, available, create
from simkit.strategies.iter8 import (
    AnalyticsFailure,
    analyze,
    assess_versions,
    assess_winner,
    compute_weights,
    fetch_error,
    gen_round,
    join_messages,
)

LAT, ERR, REW = "ns/latency", "ns/error-rate", "ns/reward"


def plan(
    pattern: str = "A/B",
    n: int = 2,
    limits: tuple[float, float] | None = None,
    direction: str = "High",
    **kw: Any,
) -> Plan:
    versions = tuple(["v1"] + [f"v{i + 2}" for i in range(n - 1)])
    rewards = () if pattern in ("Canary", "Conformance") else (Reward(REW, direction),)  # type: ignore[arg-type]
    return Plan(
        versions=versions[: 1 if pattern == "Conformance" else n],
        testing_pattern=pattern,  # type: ignore[arg-type]
        objectives=kw.pop(
            "objectives", (Objective(LAT, upper_limit=100.0), Objective(ERR, upper_limit=0.01))
        ),
        rewards=kw.pop("rewards", rewards),
        max_candidate_weight=limits[0] if limits else None,
        max_candidate_weight_increment=limits[1] if limits else None,
        **kw,
    )


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def metrics(
    **per_version: tuple[float | None, float | None, float | None],
) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {LAT: {}, ERR: {}, REW: {}}
    for v, (lat, err, rew) in per_version.items():
        out[LAT][v], out[ERR][v], out[REW][v] = lat, err, rew
    return out


# ---------------------------------------------------------------------------- version assessments


def test_limits_are_inclusive_and_none_fails() -> None:
    data, msg = assess_versions(
        plan(n=3), metrics(v1=(100.0, 0.01, 1), v2=(100.5, 0.0, 1), v3=(None, 0.0, 1))
    )
    assert data == {"v1": [True, True], "v2": [False, True], "v3": [False, True]}
    assert msg == "Error: ; Warning: Value for ns/latency metric and v3 version is None.; Info: "


def test_lower_limit() -> None:
    p = plan(objectives=(Objective(LAT, lower_limit=5.0, upper_limit=10.0),))
    data, _ = assess_versions(p, {LAT: {"v1": 5.0, "v2": 4.999}})
    assert data == {"v1": [True], "v2": [False]}


def test_missing_metric_and_version_warnings() -> None:
    data, msg = assess_versions(plan(), {LAT: {"v1": 1.0}})
    assert data == {"v1": [True, False], "v2": [False, False]}
    assert msg == join_messages(
        warnings=[
            "Value for ns/latency metric and v2 version is unavailable.",
            "Aggregated metric object for ns/error-rate metric is unavailable.",
        ]
    )


def test_no_objectives_means_empty_assessment_and_all_feasible() -> None:
    p = plan(objectives=())
    assert assess_versions(p, {}) == ({}, None)
    winner, msg = assess_winner(p, {REW: {"v1": 1.0, "v2": 2.0}}, {})
    assert winner == {"winnerFound": True, "winner": "v2", "bestVersions": ["v2"]}
    assert msg == "Error: ; Warning: ; Info: found unique winner"


# ---------------------------------------------------------------------------- winner


@pytest.mark.parametrize(
    ("assessments", "winner", "message"),
    [
        ({"v1": [True], "v2": [True]}, "v2", "candidate satisfies all objectives"),
        ({"v1": [True], "v2": [False]}, "v1", "baseline satisfies all objectives; candidate does not"),
        ({"v1": [False], "v2": [False]}, None, None),
    ],
)
def test_canary_winner(assessments: dict[str, list[bool]], winner: str | None, message: str | None) -> None:
    data, msg = assess_winner(plan("Canary"), {}, assessments)
    assert data["winner"] == winner and data["winnerFound"] == (winner is not None)
    assert data["bestVersions"] == ([winner] if winner else [])
    assert msg == (join_messages(infos=[message]) if message else None)


def test_conformance_winner_and_weights() -> None:
    p = plan("Conformance")
    assert assess_winner(p, {}, {"v1": [True, True]}) == (
        {"winnerFound": True, "winner": "v1", "bestVersions": ["v1"]},
        "Error: ; Warning: ; Info: baseline satisfies all objectives",
    )
    assert assess_winner(p, {}, {"v1": [True, False]}) == (
        {"winnerFound": False, "winner": None, "bestVersions": []},
        None,
    )
    assert compute_weights(p, ["v1"], None, rng()) == (
        [],
        "weight computation is not applicable to a conformance experiment",
    )


@pytest.mark.parametrize(("direction", "winner"), [("High", "v3"), ("Low", "v2")])
def test_abn_best_feasible_reward(direction: str, winner: str) -> None:
    p = plan("A/B/N", n=4, direction=direction)
    m = metrics(v1=(1, 0, 5.0), v2=(1, 0, 2.0), v3=(1, 0, 9.0), v4=(500, 0, 1.0))  # v4 infeasible
    data, msg = assess_winner(p, m, assess_versions(p, m)[0])
    assert data == {"winnerFound": True, "winner": winner, "bestVersions": [winner]}
    assert msg == "Error: ; Warning: ; Info: found unique winner"


def test_exact_tie_is_no_winner_and_splits_exploitation() -> None:
    p = plan("A/B/N", n=3)
    m = metrics(v1=(1, 0, 1.0), v2=(1, 0, 7.0), v3=(1, 0, 7.0))
    winner, msg = assess_winner(p, m, assess_versions(p, m)[0])
    assert winner == {"winnerFound": False, "winner": None, "bestVersions": ["v2", "v3"]}
    assert (
        msg
        == "Error: ; Warning: ; Info: no unique winner; two or more feasible versions with same reward value"
    )
    # mix = 100 * (0.1/3 + 0.9 * [0, .5, .5]) = [3.33, 48.33, 48.33]; randomised rounding
    for seed in range(20):
        weights = [d["value"] for d in compute_weights(p, winner["bestVersions"], None, rng(seed))[0]]
        assert sum(weights) == 100 and weights[0] in (3, 4) and all(w in (48, 49) for w in weights[1:])


def test_reward_warnings() -> None:
    p = plan(n=2)
    m = metrics(v1=(1, 0, None), v2=(1, 0, 3.0))
    assert assess_winner(p, m, assess_versions(p, m)[0])[1] == (
        "Error: ; Warning: reward value for feasible version v1 is not available; Info: found unique winner"
    )
    m = metrics(v1=(500, 0, 1.0), v2=(500, 0, 3.0))
    assert assess_winner(p, m, assess_versions(p, m)[0]) == (
        {"winnerFound": False, "winner": None, "bestVersions": []},
        "Error: ; Warning: ; Info: no version satisfies all objectives",
    )
    del m[REW]
    assert assess_winner(p, m, {})[1] == "Error: ; Warning: reward metric values are not available; Info: "
    assert assess_winner(replace(p, rewards=()), m, {})[1] == (
        "Error: ; Warning: No reward metric in experiment. Winner assessment cannot be computed for ab or abn "
        "experiments without reward metric.; Info: "
    )


# ---------------------------------------------------------------------------- weights


def weights_of(p: Plan, best: list[str], current: list[int] | None, seed: int = 0) -> list[int]:
    cur = None if current is None else [(f"x{i}", w) for i, w in enumerate(current)]
    data, msg = compute_weights(p, best, cur, rng(seed))
    assert msg == "Error: ; Warning: ; Info: all ok"
    return [d["value"] for d in data]


@pytest.mark.parametrize(
    ("best", "current", "limits", "expected"),
    [
        (["v2"], None, None, [5, 95]),  # candidate winner, no constraints
        ([], None, None, [95, 5]),  # no winner: a losing candidate keeps 5 %
        (["v1"], [5, 95], None, [95, 5]),
        (["v2"], None, (100, 10), [90, 10]),  # first iteration from [100, 0]: +10 at most
        (["v2"], [80, 20], (100, 10), [70, 30]),
        (["v2"], [55, 45], (50, 10), [50, 50]),  # the cap wins over the increment
        (["v1"], [10, 90], (100, 10), [95, 5]),  # decreases are never limited
        (["v2"], [5, 95], (100, 10), [5, 95]),
    ],
)
def test_two_version_weights_are_exact(
    best: list[str], current: list[int] | None, limits: tuple[float, float] | None, expected: list[int]
) -> None:
    for seed in (0, 1, 2):
        assert weights_of(plan(limits=limits), best, current, seed) == expected


def test_old_weights_are_read_by_position() -> None:
    # currentWeightDistribution [candidate, baseline] (baseline without a ref is appended last)
    p = plan(limits=(100, 10))
    data, _ = compute_weights(p, ["v2"], [("v2", 90), ("v1", 10)], rng())
    # the increment is measured against position 1 (10), not against v2's own 90: by name it would be [5, 95]
    assert [d["value"] for d in data] == [80, 20]


def test_short_current_weights_fail_only_with_constraints() -> None:
    p = plan("A/B/N", n=3)
    assert sum(weights_of(p, ["v2"], [100, 0])) == 100
    with pytest.raises(AnalyticsFailure):
        compute_weights(
            replace(p, max_candidate_weight=100.0, max_candidate_weight_increment=10.0),
            ["v2"],
            [("v1", 100), ("v2", 0)],
            rng(),
        )


def test_rounding_can_exceed_the_increment_by_one() -> None:
    # [86.67, 10, 3.33] after constraints: rescaling lets the candidate reach 11 (iter8-v2.md §4.4)
    p = plan("A/B/N", n=3, limits=(100, 10))
    seen = {tuple(weights_of(p, ["v2"], [100, 0, 0], seed)) for seed in range(200)}
    assert all(sum(w) == 100 for w in seen)
    assert {w[1] for w in seen} == {9, 10, 11}  # 86.67 rounded up leaves 13 for [10, 3.33]: 9.75


def test_gen_round_integer_inputs_and_zero_sum() -> None:
    assert gen_round([5.0, 25.0, 70.0], 100, rng(3)) == [5, 25, 70]
    assert sum(gen_round([0.0, 0.0, 0.0], 100, rng(3))) == 100


def test_gen_round_is_unbiased() -> None:
    g = rng(7)
    draws = np.array([gen_round([20.5, 30.25, 49.25], 100, g) for _ in range(4000)])
    assert draws.sum(axis=1).tolist() == [100] * 4000
    assert draws[:, 0].mean() == pytest.approx(20.5, abs=0.05)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=6), st.integers(0, 2**32 - 1))
def test_gen_round_sums_to_total(weights: list[float], seed: int) -> None:
    out = gen_round(weights, 100, rng(seed))
    assert sum(out) == 100 and all(w >= 0 for w in out)
    assert gen_round(weights, 100, rng(seed)) == out


# ---------------------------------------------------------------------------- whole answer and strategies


def test_analyze_shape_and_fetch_errors() -> None:
    p = plan()
    answer = analyze(p, metrics(v1=(1.0, 0.0, 1.0), v2=(None, 0.0, 2.0)), None, rng())
    assert list(answer) == ["aggregatedMetrics", "versionAssessments", "winnerAssessment", "weights"]
    assert answer["aggregatedMetrics"]["data"][LAT]["data"]["v1"] == {
        "max": None,
        "min": None,
        "value": "1.0",
        "sampleSize": None,
    }
    assert answer["aggregatedMetrics"]["message"] == (
        "Error: Error from metrics backend for metric: ns/latency "
        + " " * 28
        + "and version: v2; Warning: ; Info: "
    )
    assert fetch_error("m", "v") == "Error from metrics backend for metric: m" + " " * 29 + "and version: v"
    assert answer["winnerAssessment"]["data"]["winner"] == "v1"
    assert [w["value"] for w in answer["weights"]["data"]] == [95, 5]


def test_to_status_analysis_is_what_etc3_stores() -> None:
    answer = analyze(plan(), metrics(v1=(0.024804743, 0.0, 1.0), v2=(0.01, 0.0, 2.0)), None, rng())
    status = to_status_analysis(
        answer, "http://iter8-analytics.iter8-system:8080/v2/analytics_results", "2021-06-15T15:23:23Z"
    )
    assert status["aggregatedMetrics"]["data"][LAT]["data"]["v1"] == {"value": "24804743n"}
    assert status["aggregatedMetrics"]["data"][ERR]["data"]["v1"] == {"value": "0"}
    assert status["winnerAssessment"]["data"] == {"winner": "v2", "winnerFound": True}  # no bestVersions
    assert status["weights"]["timestamp"] == "2021-06-15T15:23:23Z"
    assert status["versionAssessments"]["provenance"].endswith("/v2/analytics_results")


def observation(
    m: dict[str, dict[str, float | None]], current: tuple[tuple[str, int], ...] | None = None
) -> Observation:
    return Observation(iteration=1, elapsed=10.0, metrics=m, current_weights=current)


def test_iter8_strategy_decision() -> None:
    assert {"iter8", "iter8-fixed"} <= set(available())
    p = plan(limits=(100, 10))
    d = create("iter8", p).decide(
        observation(metrics(v1=(1, 0, 1.0), v2=(1, 0, 2.0)), (("v1", 100), ("v2", 0))), rng()
    )
    assert d.weights == {"v1": 90, "v2": 10} and d.winner == "v2" and d.verdict == "continue"
    assert d.assessments == {"v1": (True, True), "v2": (True, True)}
    assert d.analysis["winnerAssessment"]["message"] == "Error: ; Warning: ; Info: found unique winner"


def test_rollback_when_any_version_fails_a_rollback_objective() -> None:
    objectives = (
        Objective(LAT, upper_limit=100.0),
        Objective(ERR, upper_limit=0.01, rollback_on_failure=True),
    )
    p = plan(objectives=objectives)
    s = create("iter8", p)
    assert s.decide(observation(metrics(v1=(500, 0, 1.0), v2=(1, 0, 2.0))), rng()).verdict == "continue"
    d = s.decide(observation(metrics(v1=(1, 0.5, 1.0), v2=(1, 0, 2.0))), rng())  # the baseline fails it
    assert d.verdict == "rollback" and "v1" in d.reason and ERR in d.reason


def test_fixed_split_and_conformance_never_move_weights() -> None:
    m = metrics(v1=(1, 0, 1.0), v2=(1, 0, 2.0))
    assert create("iter8-fixed", plan()).decide(observation(m), rng()).weights is None
    fixed = create("iter8", replace(plan(), deployment_pattern="FixedSplit")).decide(observation(m), rng())
    assert fixed.weights is None and fixed.analysis["weights"]["data"][1]["value"] == 95
    assert create("iter8", plan("Conformance")).decide(observation(m), rng()).weights is None


def test_strategy_rejects_parameters() -> None:
    with pytest.raises(SpecError):
        create("iter8", plan(), {"explore": 0.2})


def test_same_seed_same_decision() -> None:
    p = plan("A/B/N", n=4, limits=(100, 10))
    m = metrics(v1=(1, 0, 1.0), v2=(1, 0, 3.0), v3=(1, 0, 3.0), v4=(1, 0, 3.0))
    cur = (("v1", 70), ("v2", 10), ("v3", 10), ("v4", 10))
    s = create("iter8", p)
    assert s.decide(observation(m, cur), rng(5)) == s.decide(observation(m, cur), rng(5))
