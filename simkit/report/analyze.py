"""``simkit analyze``: a drop-in for iter8-analytics' ``POST /v2/analytics_results``.

Input is one Experiment object, as etc3 would post it or as ``kubectl get experiment -o yaml``
prints it: metric values are read from ``status.analysis.aggregatedMetrics`` (numbers or
Kubernetes quantities; ``null`` = the fetch failed) instead of being fetched, and
``status.currentWeightDistribution`` is the previous split. The output is the service's JSON
answer — ``aggregatedMetrics``, ``versionAssessments``, ``winnerAssessment``, ``weights``, each
``{data, message}`` — computed by :mod:`simkit.strategies.iter8`.

Like the service (and unlike etc3, which always fills them), weight constraints apply only when
``spec.strategy.weights`` is present; a limit missing from it takes the service's pydantic
default (maxCandidateWeight 100, maxCandidateWeightIncrement **5**). Deployment pattern plays no
part. Iter8 rounds weights randomly with an unseeded generator; simkit seeds it with ``--seed``,
default :data:`DEFAULT_SEED`, so the same input always gives the same answer. Two-version
answers never depend on the seed (their weights are whole numbers before rounding).

A criteria metric with no aggregatedMetrics entry is not an error (the service warns), nor are the
checks etc3 makes before calling the service (an A/B experiment without a reward gets winnerFound
false and the service's message; a Conformance one with a reward ignores it); those stay on
``simkit run`` and ``simkit live``. A document the service would not take either (not an
Experiment, no versionInfo, a Canary without candidate) is a :class:`~simkit.errors.SpecError`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from simkit.errors import Location, SpecError
from simkit.spec.experiment import parse_experiment
from simkit.spec.streams import check_seed
from simkit.strategies.iter8 import AnalyticsFailure, analyze
from simkit.strategies.planning import to_plan

DEFAULT_SEED = 0
ANALYTICS_DEFAULT_MAX_CANDIDATE_WEIGHT = 100.0
ANALYTICS_DEFAULT_MAX_CANDIDATE_WEIGHT_INCREMENT = 5.0


def analyze_experiment(raw: Mapping[str, Any], where: Location, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Validate one Experiment object and compute the analytics answer for its recorded values."""
    exp = parse_experiment(raw, where, etc3_checks=False)
    weights = exp.spec.strategy.weights
    plan = to_plan(exp, weights_given=weights is not None)
    if weights is not None:
        plan = dataclasses.replace(
            plan,
            max_candidate_weight=(
                ANALYTICS_DEFAULT_MAX_CANDIDATE_WEIGHT
                if weights.max_candidate_weight is None
                else float(weights.max_candidate_weight)
            ),
            max_candidate_weight_increment=(
                ANALYTICS_DEFAULT_MAX_CANDIDATE_WEIGHT_INCREMENT
                if weights.max_candidate_weight_increment is None
                else float(weights.max_candidate_weight_increment)
            ),
        )
    status = exp.status
    metrics = status.metric_values() if status else {}
    current = status.weight_pairs() if status else None
    try:
        return analyze(plan, metrics, current, np.random.default_rng(check_seed(seed)))
    except AnalyticsFailure as exc:
        raise SpecError(where, "status.currentWeightDistribution", str(exc)) from None


def render_json(answer: Mapping[str, Any]) -> str:
    """The answer as indented JSON with a final newline (key order as Iter8 builds it)."""
    return json.dumps(answer, indent=2) + "\n"
