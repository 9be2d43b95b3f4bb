"""Iter8 v2 analytics (iter8-analytics v2.1.6, ``/v2/analytics_results``), exactly (iter8-v2.md §4).

Four parts, each with ``data`` and ``message``, in the service's shapes and message texts:

* ``aggregatedMetrics``: the metric values the loop fetched (strings, as the service returns them);
  a None value is a failed fetch and gets the service's error line;
* ``versionAssessments``: per version, one boolean per objective; both limits inclusive; a missing
  or None value fails the objective (with a warning);
* ``winnerAssessment``: Conformance → baseline if feasible; Canary → candidate, else baseline;
  A/B and A/B/N → the feasible version with the best *last observed* reward (exact ties: no
  winner). ``bestVersions`` is part of the answer (etc3 drops it when storing the status);
* ``weights``: 10 % spread evenly, 90 % to the best versions (or the baseline), then, only when the
  experiment has ``spec.strategy.weights``, per-candidate increment and cap limits with every excess
  moved to the baseline (decreases are not limited; old weights are read *by position*), then
  Iter8's randomised rounding (:func:`gen_round`) drawing ``rng.random()`` once per version.

Registered strategies:

* ``iter8`` — the analytics above. ``Decision.weights`` is None for Conformance and FixedSplit
  (etc3 does not apply weights then; the analysis still carries them). ``verdict`` is
  ``rollback`` when a version (baseline included) fails an objective whose
  ``rollback_on_failure`` is true (etc3 §2.4 step 6), else ``continue``.
* ``iter8-fixed`` — the same analysis, assess only: weights are never moved.

What the loop (``simkit.control``) must know:

* call ``decide`` once per iteration with the values of *this* iteration only (Iter8 keeps no
  memory apart from ``currentWeightDistribution``), in ``status.metrics`` order;
* check the verdict before applying weights; on rollback apply nothing and keep the previous
  versionRecommendedForPromotion (§2.7, §2.8 — VRFP is the loop's job);
* ``Decision.weights_on_rollback`` is ``keep``; :func:`simkit.records.to_status_analysis` turns
  ``Decision.analysis`` into what etc3 stores in ``status.analysis``;
* :class:`AnalyticsFailure` is the service's HTTP 500 (a ``currentWeightDistribution`` shorter than
  the version list when constraints apply): etc3 marks the experiment Failed
  (AnalyticsServiceError) and runs no finish action.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from simkit.errors import SimkitError, SpecError
from simkit.strategies.base import PARAMS_WHERE, Decision, Observation, Plan, register

EXPLORATION_TRAFFIC_PERCENTAGE = 10.0  # AdvancedParameters (the in-code comment says 5 %; the value is 10)
CONFORMANCE_WEIGHTS_MESSAGE = "weight computation is not applicable to a conformance experiment"
NO_REWARD_MESSAGE = (
    "No reward metric in experiment. Winner assessment cannot be computed for ab or abn experiments "
    "without reward metric."
)

Metrics = Mapping[str, Mapping[str, float | None]]


class AnalyticsFailure(SimkitError):
    """What would be an HTTP 500 from iter8-analytics (etc3: Failed, AnalyticsServiceError)."""


def join_messages(errors: Sequence[str] = (), warnings: Sequence[str] = (), infos: Sequence[str] = ()) -> str:
    """Iter8's ``Message.join_messages``: ``Error: <e, …>; Warning: <w, …>; Info: <i, …>``."""
    return f"Error: {', '.join(errors)}; Warning: {', '.join(warnings)}; Info: {', '.join(infos)}"


def fetch_error(metric: str, version: str) -> str:
    """The service's text for a failed fetch; its odd spaces come from a backslash-continued f-string."""
    return f"Error from metrics backend for metric: {metric} " + " " * 28 + f"and version: {version}"


# ---------------------------------------------------------------------------- assessments


def assess_versions(plan: Plan, metrics: Metrics) -> tuple[dict[str, list[bool]], str | None]:
    """versionAssessments: ``{version: [bool per objective]}`` and the message (§4.1)."""
    if not plan.objectives:
        return {}, None
    data = {v: [False] * len(plan.objectives) for v in plan.versions}
    warnings: list[str] = []
    for i, obj in enumerate(plan.objectives):
        if obj.metric not in metrics:
            warnings.append(f"Aggregated metric object for {obj.metric} metric is unavailable.")
            continue
        per_version = metrics[obj.metric]
        for v in plan.versions:
            if v not in per_version:
                warnings.append(f"Value for {obj.metric} metric and {v} version is unavailable.")
            elif per_version[v] is None:
                warnings.append(f"Value for {obj.metric} metric and {v} version is None.")
            else:
                data[v][i] = obj.check(float(per_version[v]))  # type: ignore[arg-type]
    return data, join_messages(warnings=warnings)


def feasible_versions(plan: Plan, assessments: Mapping[str, Sequence[bool]]) -> list[str]:
    """Versions satisfying every objective; all versions when there are no assessments (§4.2)."""
    if not assessments:
        return list(plan.versions)
    return [v for v in plan.versions if all(assessments.get(v, [False]))]


def _winner(found: bool, winner: str | None, best: Sequence[str]) -> dict[str, Any]:
    return {"winnerFound": found, "winner": winner, "bestVersions": list(best)}


def assess_winner(
    plan: Plan, metrics: Metrics, assessments: Mapping[str, Sequence[bool]]
) -> tuple[dict[str, Any], str | None]:
    """winnerAssessment data ``{winnerFound, winner, bestVersions}`` and the message (§4.3)."""
    feasible = feasible_versions(plan, assessments)
    baseline = plan.versions[0]
    if plan.testing_pattern == "Conformance":
        if baseline in feasible:
            return _winner(True, baseline, [baseline]), join_messages(
                infos=["baseline satisfies all objectives"]
            )
        return _winner(False, None, []), None
    if plan.testing_pattern == "Canary":
        candidate = plan.versions[1]
        if candidate in feasible:
            return _winner(True, candidate, [candidate]), join_messages(
                infos=["candidate satisfies all objectives"]
            )
        if baseline in feasible:
            return _winner(True, baseline, [baseline]), join_messages(
                infos=["baseline satisfies all objectives; candidate does not"]
            )
        return _winner(False, None, []), None
    if not plan.rewards:
        return _winner(False, None, []), join_messages(warnings=[NO_REWARD_MESSAGE])
    reward = plan.rewards[0]
    if reward.metric not in metrics:
        return _winner(False, None, []), join_messages(warnings=["reward metric values are not available"])
    values = metrics[reward.metric]
    high = reward.preferred_direction == "High"
    top = -math.inf if high else math.inf
    best: list[str] = []
    warnings: list[str] = []
    infos: list[str] = []
    if not feasible:
        infos.append("no version satisfies all objectives")
    for v in feasible:
        value = values.get(v)
        if value is None:
            warnings.append(f"reward value for feasible version {v} is not available")
        elif value == top:
            best.append(v)
        elif (value > top) if high else (value < top):
            top, best = value, [v]
    if len(best) == 1:
        infos.append("found unique winner")
        return _winner(True, best[0], best), join_messages(warnings=warnings, infos=infos)
    if len(best) > 1:
        infos.append("no unique winner; two or more feasible versions with same reward value")
    return _winner(False, None, best), join_messages(warnings=warnings, infos=infos)


# ---------------------------------------------------------------------------- weights


def gen_round(weights: Sequence[float], total: int, rng: np.random.Generator) -> list[int]:
    """Iter8's randomised rounding to integers summing to ``total`` (``api/utils.py``).

    For each position: rescale the remaining weights to the remaining total (all-ones when they
    sum to 0), round the first up with probability equal to its fractional part, subtract it.
    Integer inputs come out unchanged; ``rng.random()`` is drawn once per position regardless.
    """
    remaining = [float(w) for w in weights]
    left = math.floor(total)
    out: list[int] = []
    while remaining:
        if sum(remaining) == 0:
            remaining = [1.0 for _ in remaining]
        first = remaining[0] * left / sum(remaining)
        fixed = math.ceil(first) if rng.random() < first - math.floor(first) else math.floor(first)
        out.append(fixed)
        remaining, left = remaining[1:], left - fixed
    return out


def mix_weights(n: int, best_versions_idx: Sequence[int]) -> list[float]:
    """``100 * (ewf * explore + (1 - ewf) * exploit)`` in Iter8's float operation order."""
    ewf = EXPLORATION_TRAFFIC_PERCENTAGE / 100.0
    explore = 1.0 / n
    exploit = [0.0] * n
    if best_versions_idx:
        for i in best_versions_idx:
            exploit[i] = 1 / len(best_versions_idx)
    else:
        exploit[0] = 1.0
    return [(explore * ewf + e * (1 - ewf)) * 100.0 for e in exploit]


def constrain(plan: Plan, mix: Sequence[float], old: Sequence[float] | None) -> list[float]:
    """Per-candidate increment and cap limits, excess to the baseline; a no-op without limits."""
    n = len(plan.versions)
    out = list(mix)
    if plan.max_candidate_weight is None and plan.max_candidate_weight_increment is None:
        return out
    # analytics' own pydantic defaults for a partially given weights object
    cap = 100.0 if plan.max_candidate_weight is None else plan.max_candidate_weight
    step = 5.0 if plan.max_candidate_weight_increment is None else plan.max_candidate_weight_increment
    previous = list(old) if old is not None else [100.0] + [0.0] * (n - 1)
    if len(previous) < n:
        raise AnalyticsFailure(
            f"currentWeightDistribution has {len(previous)} entries for {n} versions; iter8-analytics "
            "reads it by position and fails (HTTP 500)"
        )
    for i in range(1, n):
        increase = mix[i] - previous[i]
        excess = max(0, increase - step, mix[i] - cap)
        out[i] -= excess
        out[0] += excess
    return out


def compute_weights(
    plan: Plan,
    best_versions: Sequence[str],
    current_weights: Sequence[tuple[str, int]] | None,
    rng: np.random.Generator,
) -> tuple[list[dict[str, Any]], str]:
    """weights data ``[{name, value}]`` in version order, and the message (§4.4)."""
    if plan.testing_pattern == "Conformance":
        return [], CONFORMANCE_WEIGHTS_MESSAGE
    idx = [i for i, v in enumerate(plan.versions) if v in best_versions]
    mix = mix_weights(len(plan.versions), idx)
    old = [float(w) for _, w in current_weights] if current_weights is not None else None
    rounded = gen_round(constrain(plan, mix, old), 100, rng)
    data = [{"name": v, "value": w} for v, w in zip(plan.versions, rounded, strict=True)]
    return data, join_messages(infos=["all ok"])


# ---------------------------------------------------------------------------- the whole answer


def aggregated_metrics(plan: Plan, metrics: Metrics) -> dict[str, Any]:
    """The aggregatedMetrics part: values as the service returns them (``str(float)``)."""
    data: dict[str, Any] = {}
    errors: list[str] = []
    for metric, per_version in metrics.items():
        versions: dict[str, Any] = {}
        for v in plan.versions:
            if v not in per_version:
                continue
            value = per_version[v]
            if value is None:
                errors.append(fetch_error(metric, v))
            versions[v] = {
                "max": None,
                "min": None,
                "value": None if value is None else str(float(value)),
                "sampleSize": None,
            }
        data[metric] = {"max": None, "min": None, "data": versions}
    return {"data": data, "message": join_messages(errors=errors)}


def analyze(
    plan: Plan, metrics: Metrics, current_weights: Sequence[tuple[str, int]] | None, rng: np.random.Generator
) -> dict[str, Any]:
    """One ``/v2/analytics_results`` answer: the four parts, each ``{data, message}``."""
    assessments, va_message = assess_versions(plan, metrics)
    winner, wa_message = assess_winner(plan, metrics, assessments)
    weights, w_message = compute_weights(plan, winner["bestVersions"], current_weights, rng)
    return {
        "aggregatedMetrics": aggregated_metrics(plan, metrics),
        "versionAssessments": {"data": assessments, "message": va_message},
        "winnerAssessment": {"data": winner, "message": wa_message},
        "weights": {"data": weights, "message": w_message},
    }


def rollback_reason(plan: Plan, assessments: Mapping[str, Sequence[bool]]) -> str | None:
    """etc3's rollback check: any version failing an objective with rollback_on_failure (§2.4 step 6)."""
    for i, obj in enumerate(plan.objectives):
        if not obj.rollback_on_failure:
            continue
        for version, flags in assessments.items():
            if len(flags) > i and not flags[i]:
                return f"version {version} fails objective {i} ({obj.metric}) and rollback_on_failure is set"
    return None


# ---------------------------------------------------------------------------- strategies


class _Iter8Base:
    name = "iter8"
    moves_weights = True

    def __init__(self, plan: Plan, params: Mapping[str, Any]) -> None:
        if params:
            key = sorted(params)[0]
            raise SpecError(PARAMS_WHERE, key, f"the {self.name} strategy takes no parameters")
        self.plan = plan

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        analysis = analyze(self.plan, observation.metrics, observation.current_weights, rng)
        assessments = analysis["versionAssessments"]["data"]
        winner = analysis["winnerAssessment"]["data"]
        applies = (
            self.moves_weights
            and self.plan.testing_pattern != "Conformance"
            and self.plan.deployment_pattern != "FixedSplit"
        )
        weights = {d["name"]: d["value"] for d in analysis["weights"]["data"]} if applies else None
        reason = rollback_reason(self.plan, assessments)
        return Decision(
            weights=weights,
            winner=winner["winner"] if winner["winnerFound"] else None,
            assessments={v: tuple(flags) for v, flags in assessments.items()},
            verdict="rollback" if reason else "continue",
            reason=reason or (analysis["winnerAssessment"]["message"] or ""),
            analysis=analysis,
            weights_on_rollback="keep",  # etc3 applies nothing on rollback; the finish action restores traffic
        )


@register("iter8")
class Iter8Strategy(_Iter8Base):
    """Iter8 v2 analytics: objectives, best last-observed reward, 10% exploration, weight limits."""

    name = "iter8"


@register("iter8-fixed")
class Iter8FixedStrategy(_Iter8Base):
    """Iter8 v2 analytics, assess only (FixedSplit): winner and assessments, weights never moved."""

    name = "iter8-fixed"
    moves_weights = False
