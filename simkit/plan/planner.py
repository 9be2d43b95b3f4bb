"""``simkit plan``'s computation: detection by step for a schedule, and the schedule to recommend.

A plan is the scenario's Experiment (its weight schedule, interval and iterations, the policy and
its parameters) with the candidate replaced by the baseline plus the effects to detect, at a given
traffic. :func:`plan_detection` runs the policy's own ``decide`` on the count model of
:mod:`simkit.plan.model` over many seeded paths and reports, per iteration, the probability that
the policy has rolled back (detected) by then, next to the closed-form power of one look.
:func:`recommend` repeats that for a family of step sizes and returns the smallest step (the least
candidate traffic per step) that reaches the wanted power within the time budget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from simkit.bench.truth import ground_truth
from simkit.control.wiring import read_weights
from simkit.errors import SpecError
from simkit.plan.model import (
    Arm,
    Effect,
    PathOutcome,
    arm_of,
    iteration_elapsed,
    single_look_power,
    with_effect,
)
from simkit.plan.scraped import Timeline, iteration_time, run_paths
from simkit.prepare import prepare
from simkit.sim.adapters import SimWeightActuator
from simkit.sim.engine import make_world
from simkit.sim.topology import scrape_times
from simkit.spec.bundle import Bundle
from simkit.spec.scenario import Behaviour
from simkit.spec.streams import child_rng
from simkit.strategies.base import Plan, create

STEP_FAMILY = (1, 2, 5, 10, 20, 25, 50)


@dataclass(frozen=True)
class Setup:
    """Everything a plan needs, read once from the scenario."""

    bundle: Bundle
    plan: Plan
    strategy: str
    params: Mapping[str, Any]
    effects: tuple[Effect, ...]
    qps: float
    baseline: Behaviour
    candidate: Behaviour
    arms: Mapping[str, Arm]
    weights: tuple[tuple[str, int], ...]
    candidate_key: str
    timeline: Timeline


def setup(
    bundle: Bundle,
    *,
    strategy: str,
    params: Mapping[str, Any],
    effects: tuple[Effect, ...],
    qps: float | None,
) -> Setup:
    prepared = prepare(bundle.experiment_document(), bundle.documents)
    plan = prepared.plan
    if len(plan.versions) != 2:
        raise SpecError(
            bundle.scenario_doc.where,
            "spec.experiment",
            f"plan compares one candidate with the baseline; the experiment has {len(plan.versions)} versions",
        )
    truth = ground_truth(bundle)
    base_v, cand_v = plan.versions
    baseline = bundle.behaviour(truth.predictors[base_v])
    candidate = with_effect(baseline, effects)
    world, _ = make_world(bundle, 0, "counts")
    weights = read_weights(SimWeightActuator(world), prepared.experiment, plan)
    traffic = qps if qps is not None else _scenario_qps(bundle)
    if traffic <= 0:
        raise SpecError.from_cli("--traffic", "must be a positive number of requests per second")
    return Setup(
        bundle=bundle,
        plan=plan,
        strategy=strategy,
        params=dict(params),
        effects=effects,
        qps=traffic,
        baseline=baseline,
        candidate=candidate,
        arms={base_v: arm_of(baseline), cand_v: arm_of(candidate)},
        weights=weights,
        candidate_key=truth.predictors[cand_v],
        timeline=_timeline(
            bundle, plan, world.begin, {v: world.predictors[truth.predictors[v]] for v in plan.versions}
        ),
    )


def _timeline(bundle: Bundle, plan: Plan, begin: float, predictors: Mapping[str, Any]) -> Timeline:
    """The world's scrape instants from its first load to the last iteration, and the pods."""
    last = iteration_time(plan, plan.iterations)
    scrapes = []
    for t in scrape_times(bundle, begin):
        if t > last + 1e-9:
            break
        scrapes.append(t)
    return Timeline(
        begin=begin,
        scrapes=tuple(scrapes),
        pods={v: max(int(getattr(p, "replicas", 1)), 1) for v, p in predictors.items()},
    )


def _scenario_qps(bundle: Bundle) -> float:
    return sum(ld.qps for ld in bundle.scenario.spec.load if not ld.to.startswith("feedback:"))


@dataclass(frozen=True)
class StepRow:
    iteration: int
    elapsed_s: float
    candidate_weight: int  # in the interval before this iteration, on the path without noise
    candidate_requests: float  # expected, on that path
    fixed_power: float | None  # one fixed-horizon look here (closed form)
    sequential_power: float | None  # one look of the confidence sequence here (closed form)
    detected: float  # P(rolled back by this iteration), the policy on the count model
    promoted: float


@dataclass(frozen=True)
class Detection:
    step: int | None  # the stepWeight of this schedule (None: the scenario's own)
    rows: tuple[StepRow, ...]
    detected: float  # by the end
    mean_time_s: float | None  # to detection, given detection
    mean_exposure: float  # candidate requests until the decision

    def detected_within(self, seconds: float) -> float:
        inside = [r.detected for r in self.rows if r.elapsed_s <= seconds + 1e-9]
        return inside[-1] if inside else 0.0


def _limit(plan: Plan, metric: str) -> float | None:
    for o in plan.objectives:
        if o.metric.rsplit("/", 1)[-1] == metric and o.upper_limit is not None:
            return o.upper_limit
    return None


def _ms(plan: Plan) -> Any:
    return lambda m: "milli" in plan.metric_units.get(m, "milliseconds" if "latency" in m else "").lower()


def plan_detection(s: Setup, *, paths: int, seed: int, alpha: float, step: int | None = None) -> Detection:
    params = dict(s.params) if step is None else {**s.params, "stepWeight": step}
    strategy = create(s.strategy, s.plan, params)
    ms = _ms(s.plan)
    rng = child_rng(seed, "plan", s.strategy, str(step))
    outcomes = run_paths(
        plan=s.plan,
        strategy=strategy,
        arms=s.arms,
        timeline=s.timeline,
        qps=s.qps,
        weights=s.weights,
        paths=paths,
        rng=rng,
        milliseconds=ms,
    )
    nominal = _nominal_schedule(s, create(s.strategy, s.plan, params))
    return _summarize(s, outcomes, nominal, alpha, step)


def _nominal_schedule(s: Setup, strategy: Any) -> list[int]:
    """Candidate weight per interval on the noiseless, effect-free path (the planned ramp)."""
    base_arm = s.arms[s.plan.versions[0]]
    out: list[int] = []
    run_paths(
        plan=s.plan,
        strategy=strategy,
        arms={v: base_arm for v in s.plan.versions},
        timeline=s.timeline,
        qps=s.qps,
        weights=s.weights,
        paths=1,
        rng=np.random.default_rng(0),
        milliseconds=_ms(s.plan),
        noise=False,
        schedule=out,
    )
    return out


def _summarize(
    s: Setup, outcomes: Sequence[PathOutcome], nominal: list[int], alpha: float, step: int | None
) -> Detection:
    k = len(outcomes)
    base_v, cand_v = s.plan.versions
    metric = s.effects[0].metric
    rows, n_c, n_b = [], 0.0, 0.0
    for i in range(1, s.plan.iterations + 1):
        # the data at iteration i is the interval since iteration i - 1, at the weights it set
        w = nominal[i - 1] if i - 1 < len(nominal) else (nominal[-1] if nominal else 0)
        if i > 1:
            n_c += s.qps * s.plan.interval_seconds * w / 100
            n_b += s.qps * s.plan.interval_seconds * (100 - w) / 100
        fixed, seq = single_look_power(
            effect_metric=metric,
            base=s.arms[base_v],
            cand=s.arms[cand_v],
            n_c=n_c,
            n_b=n_b,
            limit=_limit(s.plan, metric),
            alpha=alpha,
        )
        rows.append(
            StepRow(
                iteration=i,
                elapsed_s=iteration_elapsed(s.plan, i),
                candidate_weight=w,
                candidate_requests=n_c,
                fixed_power=fixed,
                sequential_power=seq,
                detected=sum(o.detected_at is not None and o.detected_at <= i for o in outcomes) / k,
                promoted=sum(o.promoted_at is not None and o.promoted_at <= i for o in outcomes) / k,
            )
        )
    times = [iteration_elapsed(s.plan, o.detected_at) for o in outcomes if o.detected_at is not None]
    return Detection(
        step=step,
        rows=tuple(rows),
        detected=len(times) / k,
        mean_time_s=float(np.mean(times)) if times else None,
        mean_exposure=float(np.mean([o.exposure for o in outcomes])),
    )


def recommend(
    s: Setup, *, paths: int, seed: int, alpha: float, power: float, budget_s: float
) -> tuple[list[Detection], Detection | None]:
    """The family of step sizes the policy accepts, and the smallest that detects with ``power``
    within ``budget_s`` (None when none does)."""
    family = []
    for step in STEP_FAMILY:
        try:
            family.append(plan_detection(s, paths=paths, seed=seed, alpha=alpha, step=step))
        except SpecError:
            return [], None  # the policy has no stepWeight: its schedule is the Experiment's own
    good = [d for d in family if d.detected_within(budget_s) >= power]
    return family, (good[0] if good else None)


def verified_bundle(s: Setup) -> Bundle:
    """The scenario with the planned candidate and traffic: what ``--verify`` simulates."""
    spec = s.bundle.scenario.spec
    total = _scenario_qps(s.bundle)
    scale = s.qps / total if total > 0 else 1.0
    loads = [
        ld if ld.to.startswith("feedback:") else ld.model_copy(update={"qps": ld.qps * scale})
        for ld in spec.load
    ]
    predictors = {**spec.predictors, s.candidate_key: s.candidate}
    new_spec = spec.model_copy(update={"predictors": predictors, "load": loads})
    return replace(s.bundle, scenario=s.bundle.scenario.model_copy(update={"spec": new_spec}))
