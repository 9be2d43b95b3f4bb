"""Argo Rollouts semantics on hand-built sequences: strict `>` limits, Inconclusive pause,
consecutiveErrorLimit, pauses, expressions, background analysis."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from simkit.errors import SpecError
from simkit.strategies.argo import ArgoStrategy
from simkit.strategies.base import Decision, Observation, Plan

ERR = "ns/error-rate"
PLAN = Plan(versions=("stable", "canary"), interval_seconds=20.0)


def run(params: dict[str, Any], values: list[float | None], baseline: float = 0.01) -> list[Decision]:
    strategy = ArgoStrategy(PLAN, params)
    rng = np.random.default_rng(0)
    state: Any = {}
    out = []
    for i, v in enumerate(values, start=1):
        obs = Observation(
            iteration=i, elapsed=20.0 * i, metrics={ERR: {"stable": baseline, "canary": v}}, state=state
        )
        d = strategy.decide(obs, rng)
        out.append(d)
        state = json.loads(json.dumps(d.state, allow_nan=False))  # journal-safe state
        if d.verdict != "continue":
            break
    return out


def analysis(**metric: Any) -> dict[str, Any]:
    return {"analysis": {"metrics": [{"name": "errors", "metric": ERR, **metric}]}}


def steps(*items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"steps": list(items), **extra}


def canary(ds: list[Decision]) -> list[int]:
    return [d.weights["canary"] for d in ds if d.weights is not None]


def test_failure_limit_zero_aborts_on_first_failed_measurement() -> None:
    # iteration 1 sets the weight (no measurement of a split it just changed); iteration 2 measures
    ds = run(steps({"setWeight": 20}, analysis(successCondition="result <= 0.05", count=3)), [0.0, 0.2])
    assert [d.verdict for d in ds] == ["continue", "rollback"]
    assert ds[-1].weights == {"stable": 100, "canary": 0}
    assert "Failed" in ds[-1].reason


def test_failure_limit_one_aborts_on_second_failure() -> None:
    params = steps({"setWeight": 20}, analysis(successCondition="result <= 0.05", count=4, failureLimit=1))
    ds = run(params, [0.0, 0.2, 0.01, 0.2])
    assert [d.verdict for d in ds] == ["continue", "continue", "continue", "rollback"]


def test_count_reached_with_one_failure_within_limit_is_successful() -> None:
    params = steps(
        {"setWeight": 20},
        analysis(successCondition="result <= 0.05", count=3, failureLimit=1),
        {"setWeight": 50},
    )
    ds = run(params, [0.0, 0.2, 0.01, 0.01, 0.0])
    assert canary(ds) == [20, 20, 20, 100]
    assert ds[-1].verdict == "promote" and ds[-1].winner == "canary"


def test_inconclusive_pauses_then_simulated_human_resumes() -> None:
    params = steps(
        {"setWeight": 20},
        analysis(successCondition="result < 0.01", failureCondition="result > 0.05"),
        {"setWeight": 40},
        pauseIterations=2,
    )
    ds = run(params, [0.0, 0.03, 0.03, 0.03, 0.03])
    assert "Inconclusive" in ds[1].reason
    assert canary(ds) == [20, 20, 20, 100]
    assert [d.verdict for d in ds] == ["continue", "continue", "continue", "promote"]


def test_inconclusive_limit_allows_that_many_inconclusive_measurements() -> None:
    metric = analysis(
        successCondition="result < 0.01", failureCondition="result > 0.05", count=3, inconclusiveLimit=1
    )
    ds = run(steps({"setWeight": 20}, metric), [0.0, 0.03, 0.0, 0.0])
    assert ds[-1].verdict == "promote"


def test_failure_condition_wins_over_success_condition() -> None:
    metric = analysis(successCondition="result < 1", failureCondition="result > 0.05")
    ds = run(steps({"setWeight": 20}, metric), [0.0, 0.2])
    assert ds[-1].verdict == "rollback"


def test_consecutive_error_limit_is_strict_and_reset_by_success() -> None:
    metric = analysis(successCondition="result <= 0.05", count=10, consecutiveErrorLimit=2)
    # errors: 1, 2, then a success resets, then 1, 2, 3 (> 2) -> Error -> abort
    ds = run(steps({"setWeight": 20}, metric), [0.0, None, None, 0.01, None, None, None, 0.0])
    assert [d.verdict for d in ds][-1] == "rollback"
    assert len(ds) == 7
    assert "Error" in ds[-1].reason


def test_default_consecutive_error_limit_is_four() -> None:
    metric = analysis(successCondition="result <= 0.05", count=10)
    ds = run(steps({"setWeight": 20}, metric), [0.0] + [None] * 6)
    assert len(ds) == 6 and ds[-1].verdict == "rollback"


def test_failure_limit_minus_one_disables_failure() -> None:
    metric = analysis(successCondition="result <= 0.05", count=3, failureLimit=-1)
    ds = run(steps({"setWeight": 20}, metric), [0.0, 0.5, 0.5, 0.5])
    assert ds[-1].verdict == "promote"


def test_timed_pause_holds_ceil_duration_over_interval() -> None:
    ds = run(steps({"setWeight": 10}, {"pause": {"duration": "50s"}}, {"setWeight": 30}), [0.0] * 6)
    assert canary(ds) == [10, 10, 10, 100]


def test_indefinite_pause_uses_pause_iterations() -> None:
    ds = run(
        steps(
            {"setWeight": 10},
            {"pause": {}},
            {"setWeight": 30},
            {"pause": {"duration": 20}},
            pauseIterations=3,
        ),
        [0.0] * 10,
    )
    assert canary(ds) == [10, 10, 10, 30, 100]


def test_expression_with_argo_syntax_and_baseline() -> None:
    metric = analysis(successCondition="result[0] <= baseline * 1.5 && !(result[0] > 1)", count=2)
    ok = run(steps({"setWeight": 20}, metric), [0.0, 0.012, 0.014], baseline=0.01)
    bad = run(steps({"setWeight": 20}, metric), [0.0, 0.02], baseline=0.01)
    assert ok[-1].verdict == "promote"
    assert bad[-1].verdict == "rollback"


def test_limit_condition_mapping() -> None:
    metric = analysis(failureCondition={"upper": 0.05})
    assert run(steps({"setWeight": 20}, metric), [0.0, 0.06])[-1].verdict == "rollback"
    assert run(steps({"setWeight": 20}, metric), [0.0, 0.05])[-1].verdict == "promote"


def test_background_analysis_aborts_during_a_pause() -> None:
    params = steps(
        {"setWeight": 20},
        {"pause": {"duration": 100}},
        {"setWeight": 50},
        analysis={
            "metrics": [{"metric": ERR, "failureCondition": "result > 0.05", "interval": 1}],
            "startingStep": 1,
        },
    )
    ds = run(params, [0.0, 0.01, 0.2, 0.0])
    assert [d.verdict for d in ds] == ["continue", "continue", "rollback"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (
            steps({"setWeight": 20}, analysis(successCondition="__import__('os')")),
            "steps[1].analysis.metrics[0].successCondition",
        ),
        (
            steps({"setWeight": 20}, analysis(successCondition="result <=")),
            "steps[1].analysis.metrics[0].successCondition",
        ),
        (steps({"setWeight": 120}), "steps[0].setWeight"),
        (steps({"jump": 1}), "steps[0]"),
        ({"steps": []}, "steps"),
        (steps({"setWeight": 20}, surprise=True), "surprise"),
        (steps({"pause": {"duration": "soon"}}), "steps[0].pause.duration"),
    ],
)
def test_bad_parameters_raise_spec_error(params: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as err:
        ArgoStrategy(PLAN, params)
    assert err.value.field == field


def test_error_measurements_do_not_count_towards_count() -> None:
    metric = analysis(successCondition="result <= 0.05", count=2)
    ds = run(steps({"setWeight": 20}, metric), [0.0, None, 0.01, 0.01, 0.0])
    assert [d.verdict for d in ds] == ["continue", "continue", "continue", "promote"]
