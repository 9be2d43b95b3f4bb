"""The planning model: effects, closed forms, and the count model driving the policy's own rule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from simkit.errors import SpecError
from simkit.plan.model import Arm, Counts, metric_value, parse_effect, single_look_power, with_effect
from simkit.plan.planner import plan_detection, setup
from simkit.spec.bundle import load_scenario
from simkit.spec.scenario import Behaviour

ROOT = Path(__file__).resolve().parents[2] / "scenarios"


def test_parse_effect_absolute_and_relative() -> None:
    e = parse_effect("error-rate=+0.003")
    assert (e.metric, e.delta, e.relative) == ("error-rate", 0.003, False)
    r = parse_effect("mean-latency=+3%")
    assert (r.metric, r.relative) == ("mean-latency", True) and r.delta == pytest.approx(0.03)


@pytest.mark.parametrize("text", ["error-rate", "p99=+1", "error-rate=fast", "error-rate=nan"])
def test_parse_effect_rejects_bad_input_naming_the_option(text: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_effect(text)
    assert "--effect" in str(info.value)


def test_with_effect_shifts_what_it_names_only() -> None:
    b = Behaviour.model_validate({"errors": {"rate": 0.008}, "feedback": {"probability": 0.2}})
    e = with_effect(b, (parse_effect("error-rate=+0.003"),))
    assert e.errors.rate == pytest.approx(0.011) and e.latencyFactor == 1.0
    slow = with_effect(b, (parse_effect("mean-latency=+10%"),))
    assert slow.latencyFactor == pytest.approx(1.1) and slow.errors.rate == 0.008
    with pytest.raises(SpecError):
        with_effect(b, (parse_effect("error-rate=+2"),))


def test_metric_values_follow_the_bench_convention() -> None:
    arm = Arm(error_rate=0.01, latency_mean=0.02, latency_sd=0.01, latency_p95=0.04, feedback=0.2)
    c = Counts(n=1000, errors=10, feedback=198, latency_sum=20.0)
    assert metric_value("bench/error-rate", c, arm, milliseconds=True) == 0.01
    assert metric_value("bench/mean-latency", c, arm, milliseconds=True) == pytest.approx(20.0)
    assert metric_value("bench/95th-percentile-tail-latency", c, arm, milliseconds=True) == pytest.approx(
        40.0
    )
    assert metric_value("bench/error-rate", Counts(), arm, milliseconds=True) is None  # no sample


def test_single_look_fixed_power_is_the_z_test() -> None:
    base = Arm(0.008, 0.02, 0.01, 0.04, 0.2)
    cand = Arm(0.011, 0.02, 0.01, 0.04, 0.2)
    fixed, seq = single_look_power(
        effect_metric="error-rate", base=base, cand=cand, n_c=1800, n_b=16200, limit=0.01, alpha=0.05
    )
    assert fixed == pytest.approx(norm.cdf((0.011 - 0.01) / math.sqrt(0.011 * 0.989 / 1800)))
    assert seq is not None and 0 < seq < fixed  # the anytime-valid look pays for its validity


def test_count_model_through_flagger_matches_the_closed_form_first_look() -> None:
    """Flagger with threshold 1 rolls back at the first failed check, so P(detected by iteration 2)
    is the one-look power in closed form. Level: |difference| <= 4 Monte Carlo standard errors
    (about 6e-5 two-sided). Mutation: the same comparison against the power of the effect halved
    must fail, so the check can tell a wrong effect from the right one."""
    path = ROOT / "production" / "error-regression-0.3pp"
    s = setup(
        load_scenario(path),
        strategy="flagger",
        params={"stepWeight": 10, "maxWeight": 50, "threshold": 1},
        effects=(parse_effect("error-rate=+0.003"),),
        qps=300,
    )
    paths = 4000
    d = plan_detection(s, paths=paths, seed=3, alpha=0.05)
    row = d.rows[1]
    assert row.fixed_power is not None
    se = math.sqrt(row.fixed_power * (1 - row.fixed_power) / paths)
    assert abs(row.detected - row.fixed_power) <= 4 * se
    base, cand = s.arms.values()
    halved = Arm(0.0095, cand.latency_mean, cand.latency_sd, cand.latency_p95, cand.feedback)
    wrong, _ = single_look_power(
        effect_metric="error-rate",
        base=base,
        cand=halved,
        n_c=row.candidate_requests,
        n_b=1,
        limit=0.01,
        alpha=0.05,
    )
    assert wrong is not None and abs(row.detected - wrong) > 4 * se


def test_plan_is_reproducible_with_its_seed() -> None:
    s = setup(
        load_scenario(ROOT / "suite" / "aa"),
        strategy="sequential",
        params={},
        effects=(parse_effect("error-rate=+0.03"),),
        qps=20,
    )
    a = plan_detection(s, paths=300, seed=1, alpha=0.05)
    b = plan_detection(s, paths=300, seed=1, alpha=0.05)
    c = plan_detection(s, paths=300, seed=2, alpha=0.05)
    assert a == b and a != c
    assert np.all(np.diff([r.detected for r in a.rows]) >= 0)  # "detected by" only grows
