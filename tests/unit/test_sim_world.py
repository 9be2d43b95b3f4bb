"""Behaviour of the simulated world: events, shadows, VirtualService routing, feedback, capacity."""

from __future__ import annotations

from pathlib import Path

import yaml

from simkit.sim.world import World
from simkit.spec.bundle import load_scenario

SDEP = {
    "apiVersion": "machinelearning.seldon.io/v1",
    "kind": "SeldonDeployment",
    "metadata": {"name": "m", "namespace": "p"},
    "spec": {
        "predictors": [
            {
                "name": "a",
                "traffic": 50,
                "graph": {"name": "c", "implementation": "SKLEARN_SERVER", "modelUri": "x"},
            },
            {
                "name": "b",
                "traffic": 50,
                "graph": {"name": "c", "implementation": "XGBOOST_SERVER", "modelUri": "y"},
            },
            {
                "name": "s",
                "shadow": True,
                "graph": {"name": "c", "implementation": "SKLEARN_SERVER", "modelUri": "z"},
            },
        ]
    },
}


def make(tmp: Path, spec: dict, extra: list[dict] | None = None) -> World:
    docs = [
        {"apiVersion": "simkit/v1alpha1", "kind": "Scenario", "metadata": {"name": "t"}, "spec": spec},
        SDEP,
        *(extra or []),
    ]
    path = tmp / "s.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return World(load_scenario(path))


def test_event_changes_latency_and_error_burst_recovers(tmp_path: Path) -> None:
    world = make(
        tmp_path,
        {
            "predictors": {"p/m/b": {"latency": {"distribution": "constant", "value": 0.004}}},
            "load": [{"name": "l", "to": "ingress:p/m", "qps": 20}],
            "events": [
                {
                    "at": "90s",
                    "predictor": "p/m/b",
                    "set": {"latency": {"distribution": "constant", "value": 0.3}},
                },
                {
                    "at": "30s",
                    "duration": "30s",
                    "predictor": "p/m/a",
                    "set": {"errors": {"rate": 1.0, "code": "503"}},
                },
            ],
        },
    )
    world.run_until(29.9)
    a = world.predictors["p/m/a"].truth
    assert a.errors == 0
    world.run_until(59.9)
    burst = a.errors
    assert burst > 200 and set(a.by_code) == {"200", "503"}
    world.run_until(89.9)
    assert a.errors == burst  # recovered after the 30 s burst
    b = world.predictors["p/m/b"].truth
    before = b.latency_sum / b.predictions
    assert abs(before - 0.004) < 1e-9
    n0, s0 = b.predictions, b.latency_sum
    world.run_until(150)
    after = (b.latency_sum - s0) / (b.predictions - n0)
    assert after >= 0.3  # the regression: every call now takes 300 ms (plus queueing)


def test_shadow_gets_a_copy_and_load_event_changes_qps(tmp_path: Path) -> None:
    world = make(
        tmp_path,
        {
            "load": [{"name": "l", "to": "ingress:p/m", "qps": 10}],
            "events": [{"at": "60s", "load": "l", "set": {"qps": 40}}],
        },
    )
    world.run_until(59.99)
    served = world.predictors["p/m/a"].truth.predictions + world.predictors["p/m/b"].truth.predictions
    assert world.predictors["p/m/s"].arrived == world.loads["l"].fired == 600
    world.run_until(119.99)
    assert world.loads["l"].fired == 600 + 2400
    assert world.predictors["p/m/s"].truth.predictions >= served  # shadows see every request


def test_virtualservice_routing_follows_patched_weights(tmp_path: Path) -> None:
    vs = {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "VirtualService",
        "metadata": {"name": "rr", "namespace": "default"},
        "spec": {
            "hosts": ["m.example.com"],
            "http": [
                {
                    "route": [
                        {
                            "destination": {"host": "m-a.p.svc.cluster.local", "port": {"number": 8000}},
                            "weight": 100,
                        },
                        {
                            "destination": {"host": "m-b.p.svc.cluster.local", "port": {"number": 8000}},
                            "weight": 0,
                        },
                    ]
                }
            ],
        },
    }
    world = make(tmp_path, {"load": [{"name": "l", "to": "virtualservice:default/rr", "qps": 10}]}, [vs])
    world.run_until(30)
    assert world.predictors["p/m/b"].arrived == 0 and world.predictors["p/m/a"].arrived > 250
    world.store.patch(
        "VirtualService",
        "default",
        "rr",
        [
            {"op": "add", "path": "/spec/http/0/route/0/weight", "value": 0},
            {"op": "add", "path": "/spec/http/0/route/1/weight", "value": 100},
        ],
    )
    a_before = world.predictors["p/m/a"].arrived
    world.run_until(60)
    assert world.predictors["p/m/a"].arrived == a_before
    assert world.predictors["p/m/b"].arrived > 250


def test_per_prediction_feedback_follows_traffic(tmp_path: Path) -> None:
    world = make(
        tmp_path,
        {
            "predictors": {
                "p/m/a": {
                    "feedback": {"probability": 0.5, "delay": {"distribution": "exponential", "mean": "5s"}}
                },
                "p/m/b": {"feedback": {"probability": 0.1, "reward": 2}},
            },
            "load": [{"name": "l", "to": "ingress:p/m", "qps": 40, "pattern": "poisson"}],
        },
    )
    world.run_until(300)
    a, b = world.predictors["p/m/a"].truth, world.predictors["p/m/b"].truth
    assert 0.45 < a.feedback / a.predictions < 0.55
    assert 0.07 < b.feedback / b.predictions < 0.13
    assert b.reward == 2 * b.feedback


def test_finite_capacity_queues_requests(tmp_path: Path) -> None:
    world = make(
        tmp_path,
        {
            "predictors": {
                "p/m/a": {
                    "concurrency": 1,
                    "replicas": 1,
                    "latency": {"distribution": "constant", "value": 0.15},
                }
            },
            "load": [{"name": "l", "to": "predictor:p/m/a", "qps": 10}],  # offered load 1.5 > 1 worker
        },
    )
    world.run_until(20)
    a = world.predictors["p/m/a"]
    assert a.in_flight() > 50  # the backlog grows
    assert a.truth.latency_sum / a.truth.predictions > 0.5  # queueing shows up in client latency


def test_load_patterns_deliver_their_rates(tmp_path: Path) -> None:
    trace = tmp_path / "trace.txt"
    trace.write_text("# offsets in seconds\n0.5\n1.5, extra column\n\n2.25\n10\n")
    world = make(
        tmp_path,
        {
            "load": [
                {
                    "name": "ramp",
                    "to": "predictor:p/m/a",
                    "pattern": "ramp",
                    "qps": 0,
                    "qpsEnd": 20,
                    "end": "100s",
                },
                {
                    "name": "ramp-even",
                    "to": "predictor:p/m/a",
                    "pattern": "ramp",
                    "qps": 10,
                    "qpsEnd": 30,
                    "end": "100s",
                    "arrivals": "uniform",
                },
                {
                    "name": "diurnal",
                    "to": "predictor:p/m/b",
                    "pattern": "diurnal",
                    "qps": 10,
                    "amplitude": 0.5,
                    "period": "200s",
                },
                {
                    "name": "trace",
                    "to": "feedback:p/m/b",
                    "pattern": "trace",
                    "file": "trace.txt",
                    "start": "-5s",
                },
                {"name": "late", "to": "predictor:p/m/b", "qps": 4, "start": "50s", "end": "60s"},
            ]
        },
    )
    world.run_until(100)
    fired = {name: gen.fired for name, gen in world.loads.items()}
    assert abs(fired["ramp"] - 1000) < 4 * 1000**0.5  # integral of 0 -> 20 qps over 100 s
    assert abs(fired["ramp-even"] - 2000) <= 20  # evenly spaced: the integral, up to rounding
    # sin over the first half period adds amplitude * qps * period / pi requests
    assert abs(fired["diurnal"] - (1000 + 0.5 * 10 * 200 / 3.141592653589793)) < 4 * 1318**0.5
    assert fired["trace"] == 4 and world.predictors["p/m/b"].truth.feedback == 4
    assert fired["late"] == 40


def test_slow_replica_and_load_factor(tmp_path: Path) -> None:
    world = make(
        tmp_path,
        {
            "predictors": {
                "p/m/a": {
                    "latency": {"distribution": "constant", "value": 0.01},
                    "concurrency": 8,
                    "loadFactor": 2.0,
                },
                "p/m/b": {"latency": {"distribution": "constant", "value": 0.01}, "latencyFactor": 3.0},
            },
            "load": [
                {"name": "a", "to": "predictor:p/m/a", "qps": 200, "pattern": "poisson"},
                {"name": "b", "to": "predictor:p/m/b", "qps": 5},
            ],
        },
    )
    world.run_until(30)
    a, b = world.predictors["p/m/a"].truth, world.predictors["p/m/b"].truth
    assert abs(b.latency_sum / b.predictions - 0.03) < 1e-9  # every call three times slower
    assert a.latency_sum / a.predictions > 0.0105  # busy workers make calls slower
