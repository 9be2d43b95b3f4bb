"""Building a strategy's :class:`~simkit.strategies.base.Plan` from a typed Experiment.

Lives with the strategies (which may import ``spec``) rather than in ``spec`` (which must not
import upwards): the plan is the strategies' vocabulary, the Experiment is the user's.
"""

from __future__ import annotations

from simkit.spec.experiment import (
    DEFAULT_DEPLOYMENT_PATTERN,
    DEFAULT_INTERVAL_SECONDS,
    DEFAULT_ITERATIONS_PER_LOOP,
    DEFAULT_MAX_LOOPS,
    Experiment,
    version_names,
    with_defaults,
)
from simkit.strategies.base import Objective, Plan, Reward


def to_plan(exp: Experiment, weights_given: bool) -> Plan:
    """The neutral view strategies see. ``weights_given=False`` means "no constraints" (§2.2);
    limits missing from a given ``weights`` object take etc3's defaults (100 / 10)."""
    full = with_defaults(exp)
    spec = full.spec
    assert spec.duration is not None and spec.strategy.weights is not None  # filled by with_defaults
    crit = spec.criteria
    objectives = tuple(
        Objective(o.metric, o.upper_limit, o.lower_limit, bool(o.rollback_on_failure))
        for o in (crit.objectives if crit else ())
    )
    rewards = tuple(Reward(r.metric, r.preferred_direction) for r in (crit.rewards if crit else ()))
    units = {m.name: m.units for m in (exp.status.metrics if exp.status else ()) if m.units is not None}
    w = spec.strategy.weights
    return Plan(
        versions=tuple(version_names(full)),
        testing_pattern=spec.strategy.testing_pattern,
        deployment_pattern=spec.strategy.deployment_pattern or DEFAULT_DEPLOYMENT_PATTERN,
        objectives=objectives,
        rewards=rewards,
        indicators=tuple(crit.indicators) if crit else (),
        request_count=crit.request_count if crit else None,
        max_candidate_weight=float(w.max_candidate_weight)
        if weights_given and w.max_candidate_weight is not None
        else None,
        max_candidate_weight_increment=(
            float(w.max_candidate_weight_increment)
            if weights_given and w.max_candidate_weight_increment is not None
            else None
        ),
        interval_seconds=float(spec.duration.interval_seconds or DEFAULT_INTERVAL_SECONDS),
        iterations=(spec.duration.iterations_per_loop or DEFAULT_ITERATIONS_PER_LOOP)
        * (spec.duration.max_loops or DEFAULT_MAX_LOOPS),
        metric_units=units,
    )
