"""Ground truth from a scenario's generators (simkit.bench.truth), on hand-built scenarios."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import yaml
from scipy import stats

from simkit.bench.truth import behaviour_at, ground_truth
from simkit.errors import SpecError
from simkit.spec.bundle import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "scenarios" / "suite"
Z99 = stats.norm.ppf(0.99)


def lognormal_mean_ms(median: float, p99: float) -> float:
    sigma = math.log(p99 / median) / Z99
    return 1000 * median * math.exp(sigma**2 / 2)


def lognormal_quantile_ms(median: float, p99: float, q: float) -> float:
    sigma = math.log(p99 / median) / Z99
    return 1000 * median * math.exp(stats.norm.ppf(q) * sigma)


def make_scenario(
    tmp_path: Path, predictors: dict, truth: dict | None = None, events: list | None = None
) -> Path:
    """A copy of the suite's A/A scenario with its predictors, truth and events replaced."""
    folder = tmp_path / "case"
    shutil.copytree(SUITE / "aa", folder)
    doc = yaml.safe_load((folder / "scenario.yaml").read_text())
    doc["spec"]["predictors"] = predictors
    doc["spec"]["truth"] = truth or {}
    if events:
        doc["spec"]["events"] = events
    (folder / "scenario.yaml").write_text(yaml.safe_dump(doc))
    return folder


def test_objectives_and_reward_come_from_the_true_distributions(tmp_path: Path) -> None:
    folder = make_scenario(
        tmp_path,
        {
            "suite/model/baseline": {
                "latency": {"distribution": "lognormal", "median": "20ms", "p99": "60ms"},
                "errors": {"rate": 0.004},
                "feedback": {"probability": 0.2},
            },
            "suite/model/candidate": {
                "latency": {"distribution": "lognormal", "median": "40ms", "p99": "200ms"},
                "errors": {"codes": {"500": 0.01, "503": 0.01}},
                "feedback": {"probability": 0.5},
            },
        },
    )
    truth = ground_truth(load_scenario(folder))
    mean_ref, p95_ref, err_ref = (
        "bench/mean-latency",
        "bench/95th-percentile-tail-latency",
        "bench/error-rate",
    )
    assert truth.values[mean_ref]["v1"] == pytest.approx(lognormal_mean_ms(0.020, 0.060), rel=1e-9)
    assert truth.values[mean_ref]["v2"] == pytest.approx(lognormal_mean_ms(0.040, 0.200), rel=1e-9)
    assert truth.values[p95_ref]["v2"] == pytest.approx(lognormal_quantile_ms(0.040, 0.200, 0.95), rel=1e-6)
    assert truth.values[err_ref] == {"v1": pytest.approx(0.004), "v2": pytest.approx(0.02)}
    assert truth.rewards["v1"] == pytest.approx(0.2 * 0.996)
    assert truth.rewards["v2"] == pytest.approx(0.5 * 0.98)
    # v2: p95 = 1000*0.04*exp(1.645*0.692) = 124.6 ms > 100 and error rate 0.02 > 0.01
    assert truth.feasible == {"v1": True, "v2": False}
    assert truth.best == ("v1",) and truth.label == "worse"
    assert truth.horizon == 150


def test_identical_versions_tie_and_a_better_candidate_wins(tmp_path: Path) -> None:
    same = {"latency": {"distribution": "gamma", "mean": "15ms", "cv": 0.5}, "feedback": {"probability": 0.3}}
    truth = ground_truth(
        load_scenario(make_scenario(tmp_path, {"suite/model/baseline": same, "suite/model/candidate": same}))
    )
    assert truth.best == ("v1", "v2") and truth.label == "aa"
    better = {**same, "feedback": {"probability": 0.31}}
    other = tmp_path / "other"
    other.mkdir()
    truth = ground_truth(
        load_scenario(make_scenario(other, {"suite/model/baseline": same, "suite/model/candidate": better}))
    )
    assert truth.best == ("v2",) and truth.label == "better"


def test_events_apply_at_the_horizon_and_temporary_ones_are_reverted(tmp_path: Path) -> None:
    base = {"feedback": {"probability": 0.2}}
    folder = make_scenario(
        tmp_path,
        {"suite/model/baseline": base, "suite/model/candidate": base},
        events=[
            {"at": "60s", "predictor": "suite/model/candidate", "set": {"errors": {"rate": 0.05}}},
            {
                "at": "10s",
                "duration": "20s",
                "predictor": "suite/model/baseline",
                "set": {"errors": {"rate": 0.5}},
            },
        ],
    )
    bundle = load_scenario(folder)
    assert behaviour_at(bundle, "suite/model/candidate", 59).errors.rate == 0.0
    assert behaviour_at(bundle, "suite/model/candidate", 60).errors.rate == 0.05
    assert behaviour_at(bundle, "suite/model/baseline", 15).errors.rate == 0.5
    assert behaviour_at(bundle, "suite/model/baseline", 30).errors.rate == 0.0
    truth = ground_truth(bundle)
    assert truth.error_rates == {"v1": 0.0, "v2": 0.05}
    assert truth.feasible == {"v1": True, "v2": False}


def test_declared_truth_takes_precedence_and_can_be_ignored(tmp_path: Path) -> None:
    base = {"feedback": {"probability": 0.2}}
    folder = make_scenario(
        tmp_path,
        {"suite/model/baseline": base, "suite/model/candidate": base},
        truth={"best": ["v2"], "feasible": {"v1": False}, "metrics": {"bench/mean-latency": {"v2": 80}}},
    )
    bundle = load_scenario(folder)
    declared = ground_truth(bundle)
    assert declared.best == ("v2",)
    assert declared.feasible["v1"] is False
    assert declared.values["bench/mean-latency"]["v2"] == 80  # a metric override is always used
    computed = ground_truth(bundle, declared=False)
    assert computed.feasible == {"v1": True, "v2": False}  # 80 ms > 50 ms limit
    assert computed.best == ("v1",)


def test_seed_queries_mix_feedback_calls_into_latency(tmp_path: Path) -> None:
    """iris-abtest's mean-latency reads the whole client histogram: fixed-rate feedback calls
    (0.7 qps to the baseline, as slow as its predictions: the recorded means need that) are
    mixed with 5 qps of predictions; a variant with 2 ms feedback calls shows the mixing."""
    truth = ground_truth(load_scenario(ROOT / "scenarios" / "iris-abtest"))
    want = lognormal_mean_ms(0.012, 0.031) / 1000  # seconds: no * 1000
    assert truth.values["iter8-seldon/mean-latency"]["iris-v1"] == pytest.approx(want, rel=1e-9)
    variant = tmp_path / "seed"
    shutil.copytree(ROOT / "scenarios" / "iris-abtest", variant)
    text = (variant / "scenario.yaml").read_text()
    line = "      feedbackLatency: {distribution: lognormal, median: 12ms, p99: 31ms}\n"
    assert line in text
    (variant / "scenario.yaml").write_text(text.replace(line, ""))  # the default: constant 2 ms
    truth = ground_truth(load_scenario(variant))
    share = 0.7 / 5
    want = (lognormal_mean_ms(0.012, 0.031) / 1000 + share * 0.002) / (1 + share)
    assert truth.values["iter8-seldon/mean-latency"]["iris-v1"] == pytest.approx(want, rel=1e-9)
    assert truth.rewards == {"iris-v1": 0.7, "iris-v2": 1.0}  # fixed streams, per second
    assert truth.best == ("iris-v2",)


def test_every_suite_scenario_declares_the_truth_its_generators_give() -> None:
    folders = sorted(d for d in SUITE.iterdir() if (d / "scenario.yaml").exists())
    assert len(folders) == 11
    for folder in folders:
        bundle = load_scenario(folder)
        declared, computed = ground_truth(bundle), ground_truth(bundle, declared=False)
        assert computed.best == declared.best, folder.name
        assert dict(computed.feasible) == dict(declared.feasible), folder.name
        assert computed.label == bundle.scenario.spec.truth["label"], folder.name


def test_an_objective_without_a_known_meaning_is_a_clear_error() -> None:
    with pytest.raises(SpecError, match=r"spec\.truth\.metrics\['iter8-seldon/error-count'\]"):
        ground_truth(load_scenario(ROOT / "scenarios" / "iris-rollback"))
