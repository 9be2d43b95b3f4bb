"""Hypothesis properties of the simulated deployment: conservation, split, determinism, buckets."""

from __future__ import annotations

import io
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from simkit.sim.world import World
from simkit.spec.bundle import load_scenario
from simkit.tsdb import write_openmetrics

SDEP = """
apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata: {name: model, namespace: prod}
spec:
  predictors:
  - name: a
    traffic: %d
    graph: {name: classifier, implementation: SKLEARN_SERVER, modelUri: "gs://x/a"}
  - name: b
    traffic: %d
    graph: {name: classifier, implementation: XGBOOST_SERVER, modelUri: "gs://x/b"}
"""


def write_scenario(tmp: Path, weight_a: int, spec: dict) -> Path:
    scenario = {
        "apiVersion": "simkit/v1alpha1",
        "kind": "Scenario",
        "metadata": {"name": "prop"},
        "spec": spec,
    }
    path = tmp / f"scenario-{weight_a}-{abs(hash(yaml.safe_dump(spec))) % 10**8}.yaml"
    path.write_text(yaml.safe_dump(scenario) + "---\n" + SDEP % (weight_a, 100 - weight_a))
    return path


latency_models = st.one_of(
    st.builds(
        lambda m, k: {"distribution": "lognormal", "median": m, "p99": m * k},
        st.floats(0.001, 0.5),
        st.floats(1.1, 20),
    ),
    st.builds(
        lambda s, sc: {"distribution": "gamma", "shape": s, "scale": sc},
        st.floats(0.3, 10),
        st.floats(0.0005, 0.2),
    ),
    st.builds(lambda m: {"distribution": "exponential", "mean": m}, st.floats(0.0005, 1.0)),
    st.builds(
        lambda v: {"distribution": "constant", "value": v}, st.sampled_from([0.005, 0.01, 0.0123, 10.0, 11.0])
    ),
    st.builds(
        lambda xs: {"distribution": "empirical", "samples": xs},
        st.lists(st.floats(0, 12), min_size=1, max_size=20),
    ),
    st.builds(
        lambda a, b: {
            "distribution": "mixture",
            "components": [
                {"weight": 0.9, "distribution": "lognormal", "median": a, "p99": a * 3},
                {"weight": 0.1, "distribution": "uniform", "low": 0.0, "high": b},
            ],
        },
        st.floats(0.001, 0.1),
        st.floats(0.0, 15.0),
    ),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    weight=st.integers(0, 100),
    qps=st.floats(1, 80),
    until=st.floats(1, 120),
    concurrency=st.integers(1, 4),
    seed=st.integers(0, 2**31 - 1),
    latency=latency_models,
)
def test_requests_are_conserved(
    tmp_path: Path, weight: int, qps: float, until: float, concurrency: int, seed: int, latency: dict
) -> None:
    spec = {
        "seed": seed,
        "load": [{"name": "l", "to": "ingress:prod/model", "qps": qps, "pattern": "poisson"}],
        "predictors": {
            "prod/model/a": {"concurrency": concurrency, "latency": latency},
            "prod/model/b": {"concurrency": concurrency, "errors": {"rate": 0.3}},
        },
    }
    world = World(load_scenario(write_scenario(tmp_path, weight, spec)))
    world.run_until(until)
    fired = world.loads["l"].fired
    arrived = sum(p.arrived for p in world.predictors.values())
    assert arrived == fired
    for p in world.predictors.values():
        assert p.arrived == p.completed() + p.in_flight()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(weight=st.integers(1, 99), seed=st.integers(0, 2**31 - 1))
def test_traffic_split_matches_weights(tmp_path: Path, weight: int, seed: int) -> None:
    spec = {"seed": seed, "load": [{"name": "l", "to": "ingress:prod/model", "qps": 50}]}
    world = World(load_scenario(write_scenario(tmp_path, weight, spec)))
    world.run_until(60)
    a = world.predictors["prod/model/a"].arrived
    n = a + world.predictors["prod/model/b"].arrived
    # two-sided exact binomial test; a router that ignored or inverted the weights fails it
    p = stats.binomtest(a, n, weight / 100).pvalue
    assert p > 1e-4, (a, n, weight)


def _dump(world: World) -> str:
    out = io.StringIO()
    write_openmetrics(world.tsdb, out)
    return out.getvalue()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), latency=latency_models)
def test_same_seed_gives_byte_identical_series(tmp_path: Path, seed: int, latency: dict) -> None:
    spec = {
        "seed": seed,
        "predictors": {
            "prod/model/a": {
                "latency": latency,
                "errors": {"codes": {"500": 0.1, "503": 0.05}},
                "feedback": {"probability": 0.5, "delay": {"distribution": "exponential", "mean": 3}},
            }
        },
        "load": [{"name": "l", "to": "ingress:prod/model", "qps": 20, "pattern": "poisson"}],
    }
    path = write_scenario(tmp_path, 70, spec)
    first, second = World(load_scenario(path)), World(load_scenario(path))
    first.run_until(90)
    second.run_until(90)
    assert _dump(first) == _dump(second)
    other = World(load_scenario(path), seed=seed + 1)
    other.run_until(90)
    assert _dump(other) != _dump(first)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(latency=latency_models, seed=st.integers(0, 2**31 - 1))
def test_histogram_invariants_hold_for_any_latency_model(tmp_path: Path, latency: dict, seed: int) -> None:
    spec = {
        "seed": seed,
        "predictors": {
            "prod/model/a": {"latency": latency, "concurrency": 2},
            "prod/model/b": {"latency": latency, "errors": {"rate": 0.2}},
        },
        "load": [{"name": "l", "to": "ingress:prod/model", "qps": 30, "pattern": "poisson"}],
    }
    world = World(load_scenario(write_scenario(tmp_path, 50, spec)))
    world.run_until(61)
    children: dict = {}
    for s in world.tsdb:
        labels = s.label_dict()
        name = labels.pop("__name__")
        le = labels.pop("le", None)
        key = (name.rsplit("_", 1)[0], tuple(sorted(labels.items())))
        children.setdefault(key, {})[le or name.rsplit("_", 1)[1]] = s.arrays()[1]
    assert children
    for parts in children.values():
        les = sorted(
            (k for k in parts if k not in ("sum", "count")),
            key=lambda x: float("inf") if x == "+Inf" else float(x),
        )
        assert len(les) == 15 and les[-1] == "+Inf"
        assert (parts["count"] == parts["+Inf"]).all()
        for lo, hi in zip(les, les[1:], strict=False):
            assert (parts[lo] <= parts[hi]).all()
        assert (parts["sum"] >= 0).all()
        # counters never decrease between scrapes
        for v in parts.values():
            assert (v[1:] >= v[:-1]).all()
