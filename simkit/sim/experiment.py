"""One call from a scenario to a finished experiment in simulation (Ciw-style: scenario → run → records).

``simulate_experiment`` builds the world, prepares the Experiment and its Metrics, wires the
loop's ports to the sim (clock, object store, recorded actions) and the metric fetcher's
``httpx.Client`` to the in-process Prometheus API over the world's TSDB, runs the strategy, and
returns the records together with the world (its series and ground truth).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import httpx
import numpy as np

from simkit.control import Ports, Prepared, run_experiment
from simkit.errors import BackendError, Location, SpecError
from simkit.metrics import MetricFetcher
from simkit.prepare import prepare
from simkit.promql.api import PrometheusAPITransport
from simkit.records import IterationRecord, RunResult
from simkit.sim.adapters import SimActionRunner, SimClock, SimWeightActuator, controller_delay
from simkit.sim.engine import AnyWorld, EngineChoice, make_world
from simkit.spec.bundle import Bundle
from simkit.spec.streams import child_rng
from simkit.strategies.base import create


@dataclass(frozen=True)
class SimRun:
    result: RunResult
    world: AnyWorld
    prepared: Prepared
    engine: EngineChoice


def strategy_choice(
    bundle: Bundle, name: str | None, params: Mapping[str, Any] | None
) -> tuple[str, dict[str, Any]]:
    """The strategy to run: the command line's, else the scenario's, else iter8."""
    chosen = bundle.scenario.spec.strategy
    if name is None:
        return (chosen.name, dict(chosen.params)) if chosen else ("iter8", {})
    if params is None and chosen is not None and chosen.name == name:
        return name, dict(chosen.params)
    return name, dict(params or {})


def check_weight_refs(world: AnyWorld, prepared: Prepared) -> None:
    """A weightObjRef that points at no object or field is bad input, found before running."""
    actuator = SimWeightActuator(world)
    exp = prepared.experiment
    for ref in prepared.refs:
        try:
            actuator.read([ref])
        except BackendError as exc:
            versions = [v.name for v in ([exp.spec.version_info.baseline] if exp.spec.version_info else [])]
            field = (
                "spec.versionInfo.baseline"
                if ref.version in versions
                else f"spec.versionInfo.candidates[{prepared.plan.candidates.index(ref.version)}]"
            )
            raise SpecError(exp.where, f"{field}.weightObjRef", str(exc)) from None


def simulate_experiment(
    bundle: Bundle,
    seed: int | None = None,
    strategy: str | None = None,
    params: Mapping[str, Any] | None = None,
    observer: Callable[[IterationRecord], None] | None = None,
    engine: str | None = None,
) -> SimRun:
    """Run the bundle's experiment in simulation; ``engine`` is ``events``, ``counts`` or ``auto``
    (default: the scenario's ``spec.engine``, else auto); the result records which one ran."""
    world, choice = make_world(bundle, seed, engine)
    prepared = prepare(bundle.experiment_document(), bundle.documents)
    check_weight_refs(world, prepared)
    name, strategy_params = strategy_choice(bundle, strategy, params)
    scenario_strategy = bundle.scenario.spec.strategy
    if strategy is not None and strategy != (scenario_strategy.name if scenario_strategy else None):
        # the name came from the command line: an unknown one is the option's fault, not the file's
        policy = create(name, prepared.plan, strategy_params, Location("command line"), field="--strategy")
    else:
        policy = create(name, prepared.plan, strategy_params, bundle.scenario_doc.where)
    clock = SimClock(world, controller_delay(world))
    client = httpx.Client(transport=PrometheusAPITransport(world.tsdb, clock.now))
    fetcher = MetricFetcher(client, rng=child_rng(world.seed, "mock-metrics"))
    ports = Ports(clock, SimWeightActuator(world), SimActionRunner(world), fetcher)
    rng: np.random.Generator = child_rng(world.seed, "strategy", name)
    world.run_until(0.0)  # the experiment is created at sim time 0 (spec.start)
    with client:
        result = run_experiment(prepared, policy, ports, rng, observer)
    return SimRun(replace(result, engine=choice.name), world, prepared, choice)
