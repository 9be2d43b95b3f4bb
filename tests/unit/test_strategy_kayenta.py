"""Kayenta judge and strategy: the Mann-Whitney interval against an independent root search, the
classifier's degenerate cases, group scoring, critical/NODATA rules, and the score thresholds."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from scipy import optimize, stats

from simkit.errors import SpecError
from simkit.strategies.base import Decision, Objective, Observation, Plan
from simkit.strategies.kayenta import KayentaStrategy
from simkit.strategies.kayenta_judge import MetricConfig, MetricResult, classify, mann_whitney_interval, score

RNG = np.random.default_rng(0)


def wdiff(x: np.ndarray, y: np.ndarray, mu: float, zq: float) -> float:
    """R's wilcox.test / Kayenta's wilcoxonDiff written out independently (average ranks)."""
    ranks = stats.rankdata(np.concatenate([x - mu, y]))
    nx, ny = len(x), len(y)
    dz = ranks[:nx].sum() - nx * (nx + 1) / 2 - nx * ny / 2
    _, ties = np.unique(ranks, return_counts=True)
    n = nx + ny
    sigma = np.sqrt(nx * ny / 12 * ((n + 1) - np.sum(ties**3 - ties) / (n * (n - 1))))
    return float((dz - np.sign(dz) * 0.5) / sigma - zq)


def reference_root(x: np.ndarray, y: np.ndarray, zq: float) -> float:
    lo, hi = x.min() - y.max(), x.max() - y.min()
    if wdiff(x, y, lo, zq) <= 0:
        return float(lo)
    if wdiff(x, y, hi, zq) >= 0:
        return float(hi)
    return float(optimize.brentq(lambda m: wdiff(x, y, m, zq), lo, hi, xtol=1e-12))


@pytest.mark.parametrize("seed", range(12))
def test_interval_matches_an_independent_brent_search(seed: int) -> None:
    rng = np.random.default_rng(seed)
    nx, ny = rng.integers(3, 30, 2)
    control = np.round(rng.normal(10, 2, ny), 1)  # rounded: ties inside and across samples
    experiment = np.round(rng.normal(10 + rng.normal(0, 2), 2, nx), 1)
    got = mann_whitney_interval(control, experiment)
    z = stats.norm.ppf(0.99)
    assert got.lower == pytest.approx(reference_root(experiment, control, z), abs=1e-9)
    assert got.upper == pytest.approx(reference_root(experiment, control, -z), abs=1e-9)
    assert (
        wdiff(experiment, control, got.estimate - 1e-9, 0)
        >= 0
        >= wdiff(experiment, control, got.estimate + 1e-9, 0)
    )


def test_hand_computed_shift() -> None:
    # all 25 pairwise differences of [11..15] - [1..5] are 6..14; their median (Hodges-Lehmann) is 10
    got = mann_whitney_interval(np.array([1.0, 2, 3, 4, 5]), np.array([11.0, 12, 13, 14, 15]))
    assert got.estimate == 10.0
    assert (got.lower, got.upper) == (6.0, 14.0)  # n=5: the 98% interval reaches the extreme differences


def cfg(**kw: Any) -> MetricConfig:
    return MetricConfig(name=kw.pop("name", "m"), **kw)


def test_classifier_degenerate_cases() -> None:
    assert classify([1.0, 2.0], [2.0, 1.0], cfg(), RNG).classification == "Pass"  # identical data
    assert classify([3.0, 3.0], [3.0, 3.0, 3.0], cfg(), RNG).classification == "Pass"  # one distinct value
    assert classify([], [1.0], cfg(), RNG).classification == "Nodata"
    assert classify([None, None], [1.0], cfg(must_have_data=True), RNG).classification == "NodataFailMetric"
    assert classify([None], [1.0], cfg(must_have_data=True, critical=True), RNG).classification == "Nodata"
    assert classify([None, 1.0, 1.1, 0.9], [1.0, 1.05, 0.95], cfg(), RNG).classification == "Pass"


def test_classifier_direction_and_effect_size_gate() -> None:
    base = [1.0, 1.1, 0.9, 1.05, 0.95, 1.02, 0.98, 1.01, 0.99, 1.03]
    high = [3.0 + v for v in base]
    assert classify(base, high, cfg(), RNG).classification == "High"
    assert classify(base, high, cfg(direction="decrease"), RNG).classification == "Pass"
    assert classify(high, base, cfg(), RNG).classification == "Low"
    assert classify(base, high, cfg(allowed_increase=5.0), RNG).classification == "Pass"  # ratio ~4 < 5


def test_both_constant_series_get_noise_and_are_classified() -> None:
    assert classify([1.0] * 8, [2.0] * 8, cfg(), RNG).classification == "High"


def result(name: str, label: str, group: str = "default", critical: bool = False) -> MetricResult:
    return MetricResult(name, group, label, "", critical)


def test_group_scores_weights_and_leftover_share() -> None:
    results = [
        result("a1", "Pass", "a"),
        result("a2", "High", "a"),
        result("b1", "Pass", "b"),
        result("b2", "Nodata", "b"),
        result("c1", "Low", "c"),
        result("c2", "NodataFailMetric", "c"),
    ]
    judgement = score(results, {"a": 60.0})
    assert judgement.group_scores == {"a": 50.0, "b": 100.0, "c": 0.0}
    assert judgement.score == pytest.approx(0.6 * 50 + 0.2 * 100 + 0.2 * 0)


def test_critical_failure_and_nodata_majority_force_zero() -> None:
    assert score([result("a", "Pass"), result("b", "High", critical=True)], {}).score == 0.0
    assert score([result("a", "Pass"), result("b", "Nodata", critical=True)], {}).score == 0.0
    assert score([result("a", "Pass"), result("b", "High")], {}).score == 50.0
    nodata = score(
        [result("a", "Pass"), result("b", "Nodata"), result("c", "Pass"), result("d", "Nodata")], {}
    )
    assert nodata.score == 0.0 and "50%" in nodata.zero_reason
    assert score([result("a", "Pass"), result("b", "Nodata"), result("c", "Pass")], {}).score == 100.0


LAT, ERR = "ns/latency", "ns/errors"
PLAN = Plan(versions=("base", "can"), objectives=(Objective(LAT, upper_limit=2.0),))
NOISE = [0.0, 0.05, -0.04, 0.02, -0.01, 0.03, -0.02, 0.01, -0.03, 0.04]


def run(
    params: dict[str, Any], canary_shift: float, steps: int = 20, other: float | None = 0.0
) -> list[Decision]:
    """Latency around 1.0 on the baseline and 1.0 + shift on the canary; a second gauge `other`."""
    strategy = KayentaStrategy(PLAN, params)
    rng = np.random.default_rng(1)
    state: Any = {}
    out = []
    for i in range(1, steps + 1):
        noise = NOISE[i % len(NOISE)]
        metrics: dict[str, dict[str, float | None]] = {
            LAT: {"base": 1.0 + noise, "can": 1.0 + canary_shift - noise},
            ERR: {"base": 0.5 + noise, "can": None if other is None else 0.5 + other - noise},
        }
        d = strategy.decide(Observation(iteration=i, elapsed=20.0 * i, metrics=metrics, state=state), rng)
        out.append(d)
        state = json.loads(json.dumps(d.state, allow_nan=False))  # journal-safe state
        if d.verdict != "continue":
            break
    return out


TWO = [{"name": LAT, "direction": "increase"}, {"name": ERR, "direction": "increase"}]


def test_passing_canary_ramps_to_max_weight_and_promotes() -> None:
    ds = run({"metrics": TWO, "stepWeight": 20, "maxWeight": 60, "minSamples": 3}, canary_shift=0.0)
    weights = [d.weights["can"] for d in ds if d.weights]
    assert weights == [20, 20, 20, 40, 60, 100]
    assert ds[-1].verdict == "promote" and ds[-1].winner == "can"
    assert "collecting samples" in ds[1].reason


def test_score_at_or_below_marginal_rolls_back() -> None:
    # latency High, errors Pass -> score 50; a score equal to marginal fails the orchestration
    ds = run({"metrics": TWO, "thresholds": {"marginal": 50, "pass": 95}}, canary_shift=1.0)
    assert ds[-1].verdict == "rollback"
    assert ds[-1].state["lastScore"] == 50.0
    assert ds[-1].weights == {"base": 100, "can": 0}


def test_marginal_score_holds_the_weight() -> None:
    ds = run({"metrics": TWO, "thresholds": {"marginal": 40, "pass": 95}}, canary_shift=1.0, steps=8)
    assert all(d.verdict == "continue" for d in ds)
    assert [d.weights["can"] for d in ds if d.weights][-4:] == [10, 10, 10, 10]
    assert "marginal" in ds[-1].reason


def test_critical_metric_failure_rolls_back() -> None:
    metrics = [{"name": LAT, "direction": "increase", "critical": True}, {"name": ERR}]
    ds = run({"metrics": metrics, "thresholds": {"marginal": 10, "pass": 40}}, canary_shift=1.0)
    assert ds[-1].verdict == "rollback" and "critical" in ds[-1].reason


def test_nodata_for_half_the_metrics_rolls_back() -> None:
    ds = run({"metrics": TWO}, canary_shift=0.0, other=None)
    assert ds[-1].verdict == "rollback" and "no data" in ds[-1].reason


def test_defaults_come_from_objectives_and_window_is_bounded() -> None:
    ds = run({"lookbackIntervals": 4}, canary_shift=0.0, steps=12)
    assert all(len(series) <= 4 for series in ds[-1].state["samples"][LAT].values())
    assert list(ds[-1].state["samples"]) == [LAT]


def test_per_count_samples_are_interval_means() -> None:
    strategy = KayentaStrategy(PLAN, {"metrics": [{"name": LAT, "per": "ns/requests"}]})
    state: Any = {}
    # cumulative mean 1.0 over 100 requests, then 2.0 over 200: the second interval's mean is 3.0
    for i, (mean, n) in enumerate([(1.0, 100.0), (2.0, 200.0)], start=1):
        metrics = {LAT: {"base": mean, "can": mean}, "ns/requests": {"base": n, "can": n}}
        state = strategy.decide(
            Observation(i, 20.0 * i, metrics, state=state), np.random.default_rng(0)
        ).state
    assert state["samples"][LAT]["base"] == [1.0, 3.0]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"metrics": [{"name": LAT, "direction": "up"}]}, "metrics[0].direction"),
        ({"metrics": [{"name": LAT, "colour": 1}]}, "metrics[0].colour"),
        ({"thresholds": {"marginal": 90, "pass": 80}}, "thresholds"),
        ({"stepWeight": 0}, "stepWeight"),
    ],
)
def test_bad_parameters(params: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as err:
        KayentaStrategy(PLAN, params)
    assert err.value.field == field
