"""The counts engine's own rules: determinism, conservation, series appearance, exact-time weight
changes, the latency model, the queueing approximation, and which engine ``auto`` picks."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from simkit.errors import SpecError
from simkit.sim.counts import CountsWorld
from simkit.sim.engine import choose_engine, make_world
from simkit.sim.executor_metrics import BOUNDS
from simkit.sim.latency_model import cell_model, distribution_cdf, erlang_c
from simkit.spec.bundle import load_scenario
from simkit.spec.scenario import Distribution
from simkit.tsdb.openmetrics import write_openmetrics

ROOT = Path(__file__).resolve().parents[2] / "scenarios"

SDEP = {
    "apiVersion": "machinelearning.seldon.io/v1",
    "kind": "SeldonDeployment",
    "metadata": {"name": "m", "namespace": "p"},
    "spec": {
        "predictors": [
            {
                "name": "a",
                "traffic": 100,
                "graph": {"name": "clf", "implementation": "SKLEARN_SERVER", "modelUri": "x"},
            },
            {
                "name": "b",
                "traffic": 0,
                "graph": {"name": "clf", "implementation": "SKLEARN_SERVER", "modelUri": "y"},
            },
        ]
    },
}


def scenario(tmp: Path, predictors: dict[str, object], load: list[dict[str, object]], **spec: object) -> Path:
    doc = {
        "apiVersion": "simkit/v1alpha1",
        "kind": "Scenario",
        "metadata": {"name": "t"},
        "spec": {"predictors": predictors, "load": load, **spec},
    }
    path = tmp / "s.yaml"
    path.write_text(yaml.safe_dump_all([doc, SDEP]))
    return path


def test_same_seed_same_bytes_and_another_seed_differs() -> None:
    bundle = load_scenario(ROOT / "suite" / "delayed-feedback")
    texts = []
    for seed in (3, 3, 4):
        world = CountsWorld(bundle, seed)
        world.run_until(150)
        out = io.StringIO()
        write_openmetrics(world.tsdb, out)
        texts.append(out.getvalue())
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]


def test_every_arrival_is_served_once_and_feedback_follows_successes(tmp_path: Path) -> None:
    path = scenario(
        tmp_path,
        {"p/m/a": {"errors": {"rate": 0.1}, "feedback": {"probability": 0.5}}},
        [{"name": "r", "to": "ingress:p/m", "qps": 300, "pattern": "poisson"}],
    )
    world = CountsWorld(load_scenario(path), 1)
    world.run_until(600)
    a = world.predictors["p/m/a"]
    fired = world.loads["r"].fired
    assert a.truth.predictions == fired and a.truth.predictions > 170_000
    ok = a.truth.predictions - a.truth.errors
    assert a.truth.errors / a.truth.predictions == pytest.approx(0.1, abs=0.005)
    # feedback: half of the successes, all but the last few delay-less ones already arrived
    assert a.truth.feedback == pytest.approx(0.5 * ok, rel=0.01)
    assert a.arrived == a.truth.predictions + a.truth.feedback


def test_a_child_series_appears_with_its_first_call_and_weights_change_at_their_time(tmp_path: Path) -> None:
    path = scenario(tmp_path, {}, [{"name": "r", "to": "ingress:p/m", "qps": 50, "pattern": "poisson"}])
    world = CountsWorld(load_scenario(path), 2)
    world.run_until(60)
    assert not any(s.label_dict().get("predictor_name") == "b" for s in world.tsdb)
    world.store.patch(
        "SeldonDeployment",
        "p",
        "m",
        [
            {"op": "add", "path": "/spec/predictors/0/traffic", "value": 0},
            {"op": "add", "path": "/spec/predictors/1/traffic", "value": 100},
        ],
        source="test",
    )
    before = world.predictors["p/m/a"].truth.predictions
    world.run_until(120)
    assert world.predictors["p/m/a"].truth.predictions == before  # not one call after the patch
    b = [s for s in world.tsdb if s.label_dict().get("predictor_name") == "b"]
    assert b and min(float(s.arrays()[0][0]) for s in b) > world.unix(60)


def test_uniform_arrivals_are_the_event_engines_deterministic_count(tmp_path: Path) -> None:
    path = scenario(tmp_path, {}, [{"name": "r", "to": "predictor:p/m/a", "qps": 5, "start": "-30s"}])
    counts = {}
    for engine in ("events", "counts"):
        world, _ = make_world(load_scenario(path), 1, engine)
        world.run_until(300)
        counts[engine] = world.predictors["p/m/a"].truth.predictions
    assert counts["events"] == counts["counts"] == 5 * 330


@pytest.mark.parametrize(
    "dist",
    [
        {"distribution": "lognormal", "median": 0.02, "p99": 0.08},
        {"distribution": "gamma", "mean": 0.03, "cv": 0.7},
        {"distribution": "exponential", "mean": 0.05},
        {"distribution": "uniform", "low": 0.004, "high": 0.3},
        {"distribution": "normal", "mean": 0.02, "std": 0.03},
        {"distribution": "empirical", "samples": [0.005, 0.01, 0.2, 0.2, 1.5]},
        {"distribution": "empirical", "histogram": {"bounds": [0.01, 0.1, 1.0], "counts": [1, 3, 1]}},
        {
            "distribution": "mixture",
            "components": [
                {"weight": 3, "distribution": "lognormal", "median": 0.01, "p99": 0.03},
                {"weight": 1, "distribution": "constant", "value": 0.5},
            ],
            "factor": 1.5,
        },
    ],
)
def test_bucket_probabilities_match_a_large_sample(dist: dict[str, object]) -> None:
    d = Distribution.model_validate(dist)
    model = cell_model(d, overhead=0.0, rng=np.random.default_rng(1))
    client = np.bincount(model.client_bucket, weights=model.p, minlength=len(BOUNDS) + 1)
    from simkit.sim.distributions import make_draw

    sample = make_draw(d)(np.random.default_rng(2), 400_000)
    empirical = np.bincount(np.searchsorted(BOUNDS, sample, side="left"), minlength=len(BOUNDS) + 1) / len(
        sample
    )
    assert np.allclose(client, empirical, atol=0.004)
    # the conditional means give the distribution's mean
    assert float(model.p @ model.mean) == pytest.approx(float(sample.mean()), rel=0.02)


def test_client_and_server_buckets_are_the_same_calls_shifted_by_the_overhead() -> None:
    d = Distribution(distribution="lognormal", median=0.0049, p99=0.02)
    model = cell_model(d, overhead=0.0005, rng=np.random.default_rng(0))
    cdf = distribution_cdf(d, np.asarray(BOUNDS))
    server_cdf = np.cumsum(np.bincount(model.server_bucket, weights=model.p, minlength=len(BOUNDS) + 1))[:-1]
    assert np.allclose(server_cdf, distribution_cdf(d, np.asarray(BOUNDS) - 0.0005), atol=1e-12)
    client_cdf = np.cumsum(np.bincount(model.client_bucket, weights=model.p, minlength=len(BOUNDS) + 1))[:-1]
    assert np.allclose(client_cdf, cdf, atol=1e-12)


def test_erlang_c_known_values() -> None:
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(10, 8.0) == pytest.approx(0.409, abs=0.001)
    assert erlang_c(4, 4.0) == 1.0 and erlang_c(4, 0.0) == 0.0


def test_forced_counts_on_a_queueing_predictor_approximates_its_latency(tmp_path: Path) -> None:
    # one worker at 60% utilisation: M/M/1 waits add rho / (1 - rho) of the service time
    path = scenario(
        tmp_path,
        {
            "p/m/a": {
                "replicas": 1,
                "concurrency": 1,
                "latency": {"distribution": "exponential", "mean": 0.02},
            }
        },
        [{"name": "r", "to": "predictor:p/m/a", "qps": 30, "pattern": "poisson"}],
    )
    bundle = load_scenario(path)
    assert choose_engine(bundle).name == "events"
    means = {}
    for engine in ("events", "counts"):
        world, _ = make_world(bundle, 5, engine)
        world.run_until(900)
        t = world.predictors["p/m/a"].truth
        means[engine] = t.latency_sum / t.predictions
    assert means["events"] == pytest.approx(0.05, rel=0.1)  # 0.02 / (1 - 0.6)
    assert means["counts"] == pytest.approx(means["events"], rel=0.1)
    world, _ = make_world(bundle, 5, "counts")
    world.run_until(10)
    assert isinstance(world, CountsWorld) and world.notes() == ["queueing approximated (M/G/c) on p/m/a"]


def test_auto_picks_counts_only_where_equivalent(tmp_path: Path) -> None:
    assert choose_engine(load_scenario(ROOT / "production" / "night-trough")).name == "counts"
    assert choose_engine(load_scenario(ROOT / "iris-abtest")).name == "counts"
    slow = scenario(tmp_path, {"p/m/a": {"loadFactor": 0.5}}, [{"name": "r", "to": "ingress:p/m", "qps": 5}])
    choice = choose_engine(load_scenario(slow))
    assert choice.name == "events" and "loadFactor" in choice.reason
    assert choose_engine(load_scenario(slow), "counts").name == "counts"
    pinned = scenario(tmp_path, {}, [{"name": "r", "to": "ingress:p/m", "qps": 5}], engine="events")
    assert choose_engine(load_scenario(pinned)).reason == "spec.engine"
    with pytest.raises(SpecError, match="--engine"):
        choose_engine(load_scenario(pinned), "fast")


def test_feedback_delay_spreads_over_later_scrapes(tmp_path: Path) -> None:
    path = scenario(
        tmp_path,
        {"p/m/a": {"feedback": {"probability": 1.0, "delay": {"distribution": "constant", "value": 45}}}},
        [{"name": "r", "to": "ingress:p/m", "qps": 100, "pattern": "poisson", "end": "30s"}],
    )
    world = CountsWorld(load_scenario(path), 1)
    world.run_until(44)
    assert world.predictors["p/m/a"].truth.feedback == 0
    world.run_until(80)
    a = world.predictors["p/m/a"].truth
    assert a.feedback == a.predictions - a.errors and math.isclose(a.feedback, 3000, rel_tol=0.1)
