"""Whether the horizon holds enough evidence to decide (simkit.bench.evidence): the ideal test's z."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from simkit.bench import evidence
from simkit.bench.evidence import Z_DECIDE, latency_estimate
from simkit.bench.truth import ground_truth
from simkit.spec.bundle import load_scenario
from simkit.spec.scenario import Distribution

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "scenarios" / "suite"
PRODUCTION = ROOT / "scenarios" / "production"


def folders(root: Path) -> list[Path]:
    return sorted(d for d in root.iterdir() if (d / "scenario.yaml").exists())


def two_proportions_z(p1: float, p2: float, n: float) -> float:
    return abs(p2 - p1) / math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / n)


def test_the_threshold_is_a_two_sided_5_percent_test_with_80_percent_power() -> None:
    assert math.isclose(Z_DECIDE, 1.959964 + 0.841621, abs_tol=1e-5)
    assert stats.norm.sf(1.959964 - Z_DECIDE) == pytest.approx(0.80, abs=1e-6)


def test_the_suite_short_of_evidence_is_what_the_hand_calculation_says() -> None:
    """150 s, feedback 2 s late (1% of the information lost), an equal split of the traffic."""
    got = {d.name: ground_truth(load_scenario(d), declared=False) for d in folders(SUITE)}
    undecidable = sorted(name for name, t in got.items() if not t.decidable)
    assert undecidable == [
        "aa",  # nothing to tell apart: z 0
        "delayed-feedback",  # 20% of the feedback arrives after the horizon: z 2.79
        "error-regression-low-traffic",  # 5% against 0.2% errors in 150 predictions: z 2.64
        "low-traffic",
        "slightly-better",
        "three-versions",
    ]
    q = 0.998  # 1 - error rate
    assert got["low-traffic"].z == pytest.approx(two_proportions_z(0.2 * q, 0.3 * q, 150 / 2), rel=0.02)
    assert got["slightly-better"].z == pytest.approx(two_proportions_z(0.2 * q, 0.22 * q, 750 / 2), rel=0.02)
    assert got["three-versions"].z == pytest.approx(two_proportions_z(0.2 * q, 0.3 * q, 750 / 3), rel=0.02)
    assert got["clearly-better"].z == pytest.approx(two_proportions_z(0.2 * q, 0.3 * q, 750 / 2), rel=0.02)
    assert got["clearly-better"].decidable and got["clearly-better"].z < 3.3
    assert got["error-regression-low-traffic"].z == pytest.approx(
        two_proportions_z(0.002, 0.05, 300 / 2), rel=1e-6
    )


def test_every_suite_scenario_declares_the_decidability_its_generators_give() -> None:
    for folder in folders(SUITE):
        bundle = load_scenario(folder)
        declared = bundle.scenario.spec.truth.get("decidable")
        assert declared is ground_truth(bundle, declared=False).decidable, folder.name


def test_every_production_scenario_with_a_better_candidate_is_decidable() -> None:
    """The production bench's scores do not move: there keeping the baseline stays a false rollback."""
    better = [t for t in (ground_truth(load_scenario(d)) for d in folders(PRODUCTION)) if t.label == "better"]
    assert len(better) == 4
    for t in better:
        assert t.decidable and t.z > 10, t.scenario


def test_a_declared_decidability_takes_precedence(tmp_path: Path) -> None:
    folder = tmp_path / "low"
    shutil.copytree(SUITE / "low-traffic", folder)
    doc = yaml.safe_load((folder / "scenario.yaml").read_text())
    doc["spec"]["truth"]["decidable"] = True
    (folder / "scenario.yaml").write_text(yaml.safe_dump(doc))
    bundle = load_scenario(folder)
    assert ground_truth(bundle).decidable is True
    assert ground_truth(bundle, declared=False).decidable is False


def test_an_objective_that_separates_the_versions_counts(tmp_path: Path) -> None:
    """An infeasible (slow) baseline and a fast candidate with the same engagement: the reward
    says nothing, the latency objectives tell them apart."""
    folder = tmp_path / "slow"
    shutil.copytree(SUITE / "clearly-better", folder)
    doc = yaml.safe_load((folder / "scenario.yaml").read_text())
    predictors = doc["spec"]["predictors"]
    predictors["suite/model/baseline"]["latency"] = {
        "distribution": "lognormal",
        "median": "60ms",
        "p99": "300ms",
    }
    predictors["suite/model/candidate"]["feedback"] = predictors["suite/model/baseline"]["feedback"]
    doc["spec"]["truth"] = {}
    (folder / "scenario.yaml").write_text(yaml.safe_dump(doc))
    t = ground_truth(load_scenario(folder))
    assert t.best == ("v2",) and t.decidable and t.z > 10


def test_latency_spreads_match_the_lognormal_formulas() -> None:
    d = Distribution(distribution="lognormal", median=0.020, p99=0.060)
    mu, sigma = math.log(0.020), math.log(3.0) / stats.norm.ppf(0.99)
    n = 400.0
    var_mean = (math.exp(sigma**2) - 1) * math.exp(2 * mu + sigma**2) * 1e6  # ms^2
    got = latency_estimate(value=0.0, latency=d, q=None, scale=1000.0, n=n)
    assert got.se2 == pytest.approx(var_mean / n, rel=0.03)
    x95 = math.exp(mu + sigma * stats.norm.ppf(0.95))
    density = stats.norm.pdf(stats.norm.ppf(0.95)) / (x95 * sigma) / 1000.0  # per ms
    got = latency_estimate(value=0.0, latency=d, q=0.95, scale=1000.0, n=n)
    assert got.se2 == pytest.approx(0.95 * 0.05 / (n * density**2), rel=0.03)


def _simulated_power(seed: int, *, sims: int = 4000) -> float:
    """suite/delayed-feedback's ideal test run ``sims`` times: Poisson(750) predictions split
    evenly, engagement 0.2/0.3 (x 0.998) seen only when it arrives (exponential, mean 30 s) by
    150 s; a two-proportion z-test on what arrived, one-sided at 1.96 (the other tail is nil)."""
    rng = np.random.default_rng(seed)
    seen = 1.0 - (30.0 / 150.0) * (1.0 - math.exp(-5.0))  # mean P(arrived by 150 s), t uniform
    n = rng.poisson(750 / 2, size=(sims, 2))
    p = np.array([0.2, 0.3]) * 0.998 * seen
    k = rng.binomial(n, p)
    ph = k / n
    z = (ph[:, 1] - ph[:, 0]) / np.sqrt((ph * (1 - ph) / n).sum(axis=1))
    return float(np.mean(z > 1.959964))


def test_the_z_predicts_the_power_of_a_simulated_ideal_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """The z of delayed feedback predicts the simulated test's power ``Phi(z - 1.96)`` within
    0.03 (4,000 runs: SE 0.0065, so 4.6 SE: a false failure below 1e-5; the simulated test uses
    the arrival proportion, 1.5% less efficient than the module's Fisher bound: 0.01 of power).
    Mutation check: ignoring the feedback delay (every feedback seen at once) predicts 0.89,
    which the same simulation rejects."""
    bundle = load_scenario(SUITE / "delayed-feedback")
    simulated = _simulated_power(1)
    z = ground_truth(bundle).z
    assert abs(stats.norm.cdf(z - 1.959964) - simulated) < 0.03
    real_cdf = evidence.cdf
    monkeypatch.setattr(evidence, "cdf", lambda d, x, rng=None: np.ones_like(real_cdf(d, x, rng)))
    z_no_delay = ground_truth(bundle).z
    assert z_no_delay > z + 0.3
    assert abs(stats.norm.cdf(z_no_delay - 1.959964) - simulated) > 0.05
