"""Which engine simulates a scenario: ``events`` (SimPy, a process per request) or ``counts``.

``--engine`` on the command line wins, then the Scenario's ``spec.engine``; ``auto`` (the
default) takes ``counts`` only where it is equivalent: no predictor's latency depends on load
(``loadFactor``), and at the highest load each predictor can see (every load that can reach it at
its peak rate, all the traffic on it) queueing for a worker is negligible: an arrival waits with
probability at most 1% and the mean wait adds at most 0.5% to the mean latency (M/M/c, Erlang C,
with the behaviour of every event considered). Otherwise ``events`` runs, and the reason says
which predictor queues. The choice is reported in every output that simulates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simkit.errors import SpecError
from simkit.sim.counts import CountsWorld
from simkit.sim.counts_predictor import QUEUE_P_WAIT, QUEUE_WAIT_RATIO, CountsPredictor
from simkit.sim.deployment import PredictorSim
from simkit.sim.distributions import mean
from simkit.sim.latency_model import expected_wait_ratio
from simkit.sim.load import peak_rate
from simkit.sim.world import World
from simkit.spec.bundle import Bundle
from simkit.spec.scenario import Behaviour

ENGINES = ("events", "counts", "auto")
AnyWorld = World | CountsWorld
AnyPredictor = PredictorSim | CountsPredictor


@dataclass(frozen=True)
class EngineChoice:
    name: Literal["events", "counts"]
    reason: str

    def describe(self) -> str:
        return f"engine {self.name} ({self.reason})"


def _behaviours(bundle: Bundle, key: str) -> list[Behaviour]:
    base = bundle.behaviour(key)
    out = [base]
    for ev in bundle.scenario.spec.events:
        if ev.predictor == key:
            out.append(Behaviour.model_validate({**base.model_dump(exclude_none=True), **ev.set}))
    return out


def _peak_qps(bundle: Bundle) -> float:
    """All calls/s the scenario can send at once (each load at its highest rate)."""
    spec = bundle.scenario.spec
    total = 0.0
    for ld in spec.load:
        peak = peak_rate(ld)
        for ev in spec.events:
            if ev.load == ld.name and isinstance(ev.set.get("qps"), int | float):
                peak = max(
                    peak, float(ev.set["qps"]) * ((1.0 + ld.amplitude) if ld.pattern == "diurnal" else 1.0)
                )
        total += peak
    return total


def auto_engine(bundle: Bundle) -> EngineChoice:
    """``counts`` where it is equivalent for this scenario, else ``events`` with the reason."""
    if any(ld.pattern == "trace" for ld in bundle.scenario.spec.load):
        # a trace's burstiness is unknown in advance; count it only when asked to
        return EngineChoice("events", "a trace load may queue; choose --engine counts to count it")
    qps = _peak_qps(bundle)
    for key in bundle.predictor_keys():
        for b in _behaviours(bundle, key):
            if b.loadFactor > 0:
                return EngineChoice(
                    "events", f"{key} has loadFactor {b.loadFactor:g}: latency depends on load"
                )
            replicas = b.replicas if b.replicas is not None else _manifest_replicas(bundle, key)
            servers = max(replicas, 1) * b.concurrency
            service = mean(b.latency) * b.latencyFactor
            p_wait, ratio = expected_wait_ratio(servers, qps, service)
            if p_wait > QUEUE_P_WAIT or ratio > QUEUE_WAIT_RATIO:
                return EngineChoice(
                    "events", f"{key} may queue at {qps:g} qps ({servers} workers, P(wait) {p_wait:.2g})"
                )
    return EngineChoice(
        "counts", f"no queueing at up to {qps:g} qps: P(wait) <= {QUEUE_P_WAIT:g} on every predictor"
    )


def _manifest_replicas(bundle: Bundle, key: str) -> int:
    ns, name, pname = key.split("/")
    entry = bundle.seldon.get((ns, name))
    if entry is None:
        return 1
    pred = next((p for p in entry[0].spec.predictors if p.name == pname), None)
    return pred.replica_count() if pred is not None else 1


def choose_engine(bundle: Bundle, requested: str | None = None) -> EngineChoice:
    """The engine for ``bundle``: ``requested`` (``--engine``), else ``spec.engine``, else auto."""
    if requested is not None and requested not in ENGINES:
        raise SpecError.from_cli("--engine", f"must be one of {', '.join(ENGINES)} (got {requested!r})")
    if requested == "events":
        return EngineChoice("events", "chosen with --engine")
    if requested == "counts":
        return EngineChoice("counts", "chosen with --engine")
    spec_engine = bundle.scenario.spec.engine
    if requested is None and spec_engine != "auto":
        return EngineChoice(spec_engine, "spec.engine")
    return auto_engine(bundle)


def make_world(
    bundle: Bundle, seed: int | None = None, engine: str | None = None
) -> tuple[AnyWorld, EngineChoice]:
    """Build the world of ``bundle`` with the chosen engine."""
    choice = choose_engine(bundle, engine)
    world: AnyWorld = CountsWorld(bundle, seed) if choice.name == "counts" else World(bundle, seed)
    return world, choice
