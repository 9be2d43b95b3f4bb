"""simkit: test a progressive-rollout policy on a simulated Seldon deployment, then run it live.

The curated public API, imported lazily so that ``import simkit`` stays cheap (no simpy, httpx
or kubernetes until used)::

    import simkit
    bundle = simkit.load_scenario("scenarios/iris-abtest")
    run = simkit.simulate_experiment(bundle, seed=1, strategy="iter8")
    print(run.result.winner, run.result.final_weights)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_scenario": "simkit.spec.bundle",
    "Bundle": "simkit.spec.bundle",
    "World": "simkit.sim.world",
    "simulate_experiment": "simkit.sim.experiment",
    "SimRun": "simkit.sim.experiment",
    "prepare": "simkit.prepare",
    "run_experiment": "simkit.control",
    "Ports": "simkit.control",
    "RunResult": "simkit.records",
    "IterationRecord": "simkit.records",
    "Plan": "simkit.strategies.base",
    "Observation": "simkit.strategies.base",
    "Decision": "simkit.strategies.base",
    "Strategy": "simkit.strategies.base",
    "register": "simkit.strategies.base",
    "create_strategy": "simkit.strategies.base",
    "available_strategies": "simkit.strategies.base",
    "TSDB": "simkit.tsdb",
    "load_openmetrics": "simkit.tsdb",
    "save_openmetrics": "simkit.tsdb",
    "instant_query": "simkit.promql",
    "range_query": "simkit.promql",
    "PrometheusAPITransport": "simkit.promql.api",
    "MetricFetcher": "simkit.metrics",
    "describe": "simkit.views.describe",
    "SimkitError": "simkit.errors",
    "SpecError": "simkit.errors",
}
_ALIASES = {"create_strategy": "create", "available_strategies": "available"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'simkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), _ALIASES.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
