"""Flagger semantics on hand-built observation sequences: cumulative threshold, no advance on a
failed check, maxWeight overshoot, stepWeights, missing value = failure, A/B iterations."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from simkit.errors import SpecError
from simkit.strategies import base
from simkit.strategies.base import Decision, Objective, Observation, Plan
from simkit.strategies.flagger import FlaggerStrategy

ERR = "ns/error-rate"
PLAN = Plan(versions=("v1", "v2"), objectives=(Objective(ERR, upper_limit=0.05),))
GOOD, BAD = 0.01, 0.2


def run(params: dict[str, Any], values: list[float | None], plan: Plan = PLAN) -> list[Decision]:
    """Feed one error-rate value per iteration, passing the state back, until a final verdict."""
    strategy = FlaggerStrategy(plan, params)
    rng = np.random.default_rng(0)
    state: Any = {}
    decisions = []
    for i, v in enumerate(values, start=1):
        obs = Observation(iteration=i, elapsed=20.0 * i, metrics={ERR: {"v1": 0.0, "v2": v}}, state=state)
        d = strategy.decide(obs, rng)
        decisions.append(d)
        state = json.loads(json.dumps(d.state, allow_nan=False))  # journal-safe state
        if d.verdict != "continue":
            break
    return decisions


def canary_weights(decisions: list[Decision]) -> list[int]:
    return [d.weights["v2"] for d in decisions if d.weights is not None]


def test_threshold_counts_failed_checks_cumulatively() -> None:
    # interval 1 has no analysis (weight 0); then fail, pass, fail -> 2 failures in total
    ds = run({"stepWeight": 10, "threshold": 2}, [GOOD, BAD, GOOD, BAD, GOOD])
    assert [d.verdict for d in ds] == ["continue", "continue", "continue", "rollback"]
    assert canary_weights(ds) == [10, 10, 20, 0]
    assert ds[-1].weights == {"v1": 100, "v2": 0}
    assert "threshold 2" in ds[-1].reason


def test_a_failed_check_does_not_advance_the_weight() -> None:
    ds = run({"stepWeight": 10, "threshold": 5}, [GOOD, GOOD, BAD, BAD, GOOD])
    assert canary_weights(ds) == [10, 20, 20, 20, 30]
    assert ds[3].state["failedChecks"] == 2


def test_threshold_one_rolls_back_on_first_failure() -> None:
    ds = run({"stepWeight": 10}, [GOOD, BAD])
    assert [d.verdict for d in ds] == ["continue", "rollback"]


def test_weight_overshoots_max_weight_then_promotes() -> None:
    # Flagger docs: maxWeight 50, stepWeight 20 runs 20 -> 40 -> 60 -> promotion
    ds = run({"stepWeight": 20, "maxWeight": 50}, [GOOD] * 10)
    assert canary_weights(ds) == [20, 40, 60, 100]
    assert ds[-1].verdict == "promote" and ds[-1].winner == "v2"
    assert ds[-1].weights == {"v1": 0, "v2": 100}


def test_step_weights_list_and_its_max_weight() -> None:
    ds = run({"stepWeights": [1, 5, 25, 50], "maxWeight": 90}, [GOOD] * 10)
    assert canary_weights(ds) == [1, 5, 25, 50, 100]
    assert ds[-1].verdict == "promote"


def test_step_weight_capped_at_100() -> None:
    ds = run({"stepWeight": 60}, [GOOD] * 10)
    assert canary_weights(ds) == [60, 100, 100]
    assert [d.verdict for d in ds][-1] == "promote"


def test_missing_value_is_a_failed_check() -> None:
    ds = run({"stepWeight": 10}, [GOOD, None])
    assert ds[-1].verdict == "rollback"
    assert "no values found" in ds[-1].reason


def test_first_interval_is_not_analysed() -> None:
    ds = run({"stepWeight": 10}, [BAD, GOOD])
    assert [d.verdict for d in ds] == ["continue", "continue"]
    assert canary_weights(ds) == [10, 20]


def test_checks_parameter_overrides_objectives_and_lower_limits() -> None:
    ds = run({"stepWeight": 10, "checks": [{"metric": ERR, "lower": 0.5}]}, [GOOD, GOOD])
    assert ds[-1].verdict == "rollback"
    assert "lower limit 0.5" in ds[-1].reason


def test_ab_mode_holds_ab_weight_for_passing_iterations() -> None:
    ds = run({"iterations": 3, "abWeight": 40, "threshold": 3}, [GOOD, GOOD, BAD, GOOD, GOOD, GOOD])
    assert canary_weights(ds) == [40, 40, 40, 40, 100]
    assert [d.state["iterations"] for d in ds[:-1]] == [1, 2, 2, 3]
    assert ds[-1].verdict == "promote"


def test_assessments_cover_every_version() -> None:
    ds = run({"stepWeight": 10}, [GOOD, GOOD])
    assert ds[-1].assessments == {"v1": (True,), "v2": (True,)}


def test_registered_and_created_by_name() -> None:
    strategy = base.create("flagger", PLAN, {"stepWeight": 5})
    assert strategy.name == "flagger"
    assert "flagger" in base.available()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"stepWeight": 10, "bogus": 1}, "bogus"),
        ({"stepWeight": 0}, "stepWeight"),
        ({"stepWeight": 150}, "stepWeight"),
        ({"stepWeights": [10, 5]}, "stepWeights[1]"),
        ({"stepWeight": "ten"}, "stepWeight"),
        ({"stepWeight": 10, "checks": [{"metric": ERR}]}, "checks[0]"),
    ],
)
def test_bad_parameters_raise_spec_error(params: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as err:
        FlaggerStrategy(PLAN, params)
    assert err.value.field == field
    assert "<strategy params>" in str(err.value)


def test_more_than_one_candidate_is_rejected() -> None:
    with pytest.raises(SpecError, match="one baseline and one candidate"):
        FlaggerStrategy(Plan(versions=("a", "b", "c")), {"stepWeight": 10})
