"""The planning model: effects, closed forms, and the count model driving the policy's own rule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from simkit.errors import SpecError
from simkit.plan.model import Arm, parse_effect, single_look_power, with_effect
from simkit.plan.planner import plan_detection, setup
from simkit.plan.scraped import Timeline, VersionSeries, run_paths
from simkit.spec.bundle import load_scenario
from simkit.spec.scenario import Behaviour
from simkit.strategies.base import create

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


def test_metric_values_are_what_prometheus_would_compute() -> None:
    """Two pods, scrapes at 0, 30 and 60 s, 1,200 expected predictions over [0, 60): at 60 s the
    increase over [0, 60] starts from the 30-s samples (the series are born there) and Prometheus
    extrapolates back to the window start (to the zero point: 30 s), so it doubles the
    increments; the ratios are exact. A series born at 60 s has one sample: no value."""
    arm = Arm(error_rate=0.01, latency_mean=0.02, latency_sd=0.01, latency_p95=0.04, feedback=0.2)
    vs = VersionSeries(arm, paths=1, pods=2, scrapes=3, first_scrape=0)
    t = np.array([0, 30_000, 60_000])
    vs.scrape(0, None)
    for k in (1, 2):
        vs.serve(np.array([600.0]), np.ones(1), k, None)
        vs.scrape(k, None)
    v = vs.values(0, 2, t, 0, 60_000)
    assert v["request-count"][0] == pytest.approx(1200.0)
    assert v["error-count"][0] == pytest.approx(12.0)
    assert v["error-rate"][0] == pytest.approx(0.01)
    assert v["mean-latency"][0] == pytest.approx(0.02)
    assert v["engagement-rate"][0] == pytest.approx(0.2 * 0.99)
    late = VersionSeries(arm, paths=1, pods=2, scrapes=3, first_scrape=0)
    late.scrape(0, None)
    late.scrape(1, None)
    late.serve(np.array([600.0]), np.ones(1), 2, None)
    late.scrape(2, None)
    w = late.values(0, 2, t, 0, 60_000)
    assert np.isnan(w["error-rate"][0]) and w["request-count"][0] == 0.0  # ``or on() vector(0)``


def test_bucket_indicators_and_p95_are_increase_and_histogram_quantile_of_the_buckets() -> None:
    """Half the predictions within 10 ms, half within 25 ms, the same timeline as above: each
    cumulative bucket's increase doubles its increments (le=0.005 stays 0), and the p95 is the
    linear interpolation inside the 10-25 ms bucket: 10 + 15 * (0.95 * 1200 - 600) / 600 ms."""
    shares = (0.0, 0.5, 0.5) + (0.0,) * 12
    arm = Arm(
        0.0,
        0.015,
        0.005,
        0.02,
        0.0,
        buckets=shares,
        bucket_means=(0, 0.008, 0.02) + (0,) * 12,
        bucket_vars=(0.0,) * 15,
    )
    vs = VersionSeries(arm, paths=1, pods=2, scrapes=3, first_scrape=0)
    vs.scrape(0, None)
    for k in (1, 2):
        vs.serve(np.array([600.0]), np.ones(1), k, None)
        vs.scrape(k, None)
    v = vs.values(0, 2, np.array([0, 30_000, 60_000]), 0, 60_000)
    assert v["latency-bucket-le-0.005"][0] == 0.0
    assert v["latency-bucket-le-0.01"][0] == pytest.approx(600.0)
    assert v["latency-bucket-le-0.025"][0] == pytest.approx(1200.0)
    assert v["latency-bucket-le-10"][0] == pytest.approx(1200.0)
    assert v["latency-bucket-le-inf"][0] == pytest.approx(1200.0)
    assert v["95th-percentile-tail-latency"][0] == pytest.approx(0.01 + 0.015 * (0.95 * 1200 - 600) / 600)
    assert v["mean-latency"][0] == pytest.approx(0.014)


def test_late_error_series_lose_their_first_errors() -> None:
    """What ``--verify`` showed the old count model missed: with few errors per pod, the per-pod
    ``code="500"`` series appear late and ``increase()`` sees fewer errors than were served
    (measured in the simulation: 0.0098 observed against 0.011 served at 300 qps). Level: the mean
    over 4,000 paths is below the served rate by more than 5 of its standard errors."""
    arm = Arm(error_rate=0.011, latency_mean=0.02, latency_sd=0.01, latency_p95=0.04, feedback=0.0)
    paths = 4000
    vs = VersionSeries(arm, paths=paths, pods=2, scrapes=3, first_scrape=0)
    rng = np.random.default_rng(5)
    vs.scrape(0, rng)
    for k in (1, 2):
        vs.serve(np.full(paths, 15.0 * 30), np.ones(1), k, rng)
        vs.scrape(k, rng)
    rate = vs.values(0, 2, np.array([0, 30_000, 60_000]), 0, 60_000)["error-rate"]
    se = rate.std() / np.sqrt(paths)
    assert rate.mean() < 0.011 - 5 * se
    served = vs.err.now.sum() / (vs.err.now.sum() + vs.ok.now.sum())
    assert abs(served - 0.011) < 5 * np.sqrt(0.011 / (paths * 900))  # the draw itself is unbiased


def test_single_look_fixed_power_is_the_z_test() -> None:
    base = Arm(0.008, 0.02, 0.01, 0.04, 0.2)
    cand = Arm(0.011, 0.02, 0.01, 0.04, 0.2)
    fixed, seq = single_look_power(
        effect_metric="error-rate", base=base, cand=cand, n_c=1800, n_b=16200, limit=0.01, alpha=0.05
    )
    assert fixed == pytest.approx(norm.cdf((0.011 - 0.01) / math.sqrt(0.011 * 0.989 / 1800)))
    assert seq is not None and 0 < seq < fixed  # the anytime-valid look pays for its validity


def test_paths_through_flagger_match_the_closed_form_when_prometheus_sees_the_raw_counts() -> None:
    """Flagger with threshold 1 rolls back at the first failed check. On a timeline where every
    series exists long before the start and the scrapes fall exactly on the window's ends (0 and
    60 s), ``increase()`` is the raw count and P(detected by iteration 2) is the one-look power in
    closed form. Level: |difference| <= 4 Monte Carlo standard errors (about 6e-5 two-sided).
    Mutation: the same comparison against the power of the effect halved must fail."""
    path = ROOT / "production" / "error-regression-0.3pp"
    s = setup(
        load_scenario(path),
        strategy="flagger",
        params={"stepWeight": 10, "maxWeight": 50, "threshold": 1},
        effects=(parse_effect("error-rate=+0.003"),),
        qps=300,
    )
    paths = 4000
    base_v, cand_v = s.plan.versions
    outcomes = run_paths(
        plan=s.plan,
        strategy=create("flagger", s.plan, {"stepWeight": 10, "maxWeight": 50, "threshold": 1}),
        arms=s.arms,
        timeline=Timeline(begin=-600.0, scrapes=(-600.0, 0.0, 60.0), pods={base_v: 2, cand_v: 2}),
        qps=300,
        weights=((base_v, 90), (cand_v, 10)),
        paths=paths,
        rng=np.random.default_rng(3),
        milliseconds=lambda m: "latency" in m,
    )
    detected = sum(o.detected_at == 2 for o in outcomes) / paths
    base, cand = s.arms.values()
    right, _ = single_look_power(
        effect_metric="error-rate", base=base, cand=cand, n_c=1800, n_b=1, limit=0.01, alpha=0.05
    )
    assert right is not None
    se = math.sqrt(right * (1 - right) / paths)
    assert abs(detected - right) <= 4 * se
    halved = Arm(0.0095, cand.latency_mean, cand.latency_sd, cand.latency_p95, cand.feedback)
    wrong, _ = single_look_power(
        effect_metric="error-rate", base=base, cand=halved, n_c=1800, n_b=1, limit=0.01, alpha=0.05
    )
    assert wrong is not None and abs(detected - wrong) > 4 * se


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
