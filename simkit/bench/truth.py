"""Ground truth of a scenario: which versions are truly feasible, and which is truly best.

A benchmark can only score a rollout policy against the truth, and in simulation the truth is
known: it is in the scenario's generators. This module evaluates every objective of the
Experiment on the *true* distributions rather than on sampled metrics, with an explicit,
documented mapping from each Metric to the quantity it estimates. The mapping goes by the
metric's name (the reference's last part) and, for details, by its query text:

======================================  =============================================================
metric name contains                    true value
======================================  =============================================================
``error-rate`` / ``error_rate``         the error table's total rate (feedback calls draw errors from
                                        the same table, so mixing them in changes nothing)
``latency`` and a percentile marker     the true quantile ``q`` of the latency distribution; ``q`` from
(``percentile``, ``quantile``, ``p95``, the query's ``histogram_quantile(q, ...)``, else from the name
``tail``)                               (``95th`` -> 0.95)
``latency`` otherwise                   the true mean latency
a reward of the Experiment              the expected reward per prediction (below)
======================================  =============================================================

Latency is the model's latency distribution times ``latencyFactor``; a query on the *server*
histogram adds the executor overhead. Units: seconds, or milliseconds when the query multiplies by
1000 (Iter8's ``units`` field is a label only, it scales nothing). Queueing is ignored (suite loads
keep utilisation low). When the query does not select ``service="predictions"`` (or
``"/predict"``), the executor's histogram also holds the feedback calls, as the seed's queries do;
the truth then mixes the feedback-call latency in, weighted by the feedback rate per prediction
(``probability x (1 - error rate)`` for per-prediction feedback, or fixed-rate ``feedback:``
streams over the total ingress qps, i.e. the state after a promotion).

The reward per prediction is ``probability x (1 - error rate)`` (feedback is only sent after a
successful prediction), times the feedback's ``reward`` when the query reads the reward-sum
counter. Versions without per-prediction feedback but with fixed-rate ``feedback:`` streams get
the stream rate per second (the seed's fortio jobs): it does not follow traffic.

Behaviour is taken **at the horizon** (``iterations x intervalSeconds``): events that have
happened by then are applied (and reverted when their ``duration`` is over), because that is
what a promoted version would keep serving.

Declared truth (``spec.truth``) takes precedence over everything computed::

    truth:
      label: better | worse | aa        # documentation only
      best: [v2]                        # the truly best feasible version(s): ties allowed (A/A)
      feasible: {v1: true, v2: false}
      rewards: {v1: 0.2, v2: 0.3}       # true reward per prediction
      metrics: {bench/mean-latency: {v1: 22.5, v2: 76.0}}   # true objective values
      rewardTolerance: 0.0              # relative: rewards this close count as equal
      decidable: false                  # the ideal test's verdict (simkit.bench.evidence)
      predictors: {v1: ns/sdep/baseline}  # version -> predictor, when not derivable

:func:`ground_truth` computes; ``declared=False`` ignores the declared verdicts (``best``,
``feasible``, ``rewards``, ``decidable``) so tests can check them against the generators.

``z`` and ``decidable`` say whether the horizon holds enough evidence to tell the best version
from the baseline (simkit.bench.evidence: an ideal equal-split test, decidable at z >= 2.80);
where it does not, keeping the baseline scores as correct (simkit.bench.outcomes).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

from simkit.bench.evidence import Z_DECIDE, evidence_z
from simkit.bench.meaning import (
    MILLIS,
    error_rate,
    feedback_streams,
    is_error_rate,
    quantile_of,
    query_text,
    reads_sum,
    scaled,
)
from simkit.errors import SpecError
from simkit.prepare import prepare
from simkit.sim.distributions import cdf, mean
from simkit.spec.bundle import Bundle, resolve_service
from simkit.spec.metric import Metric
from simkit.spec.scenario import Behaviour, Distribution
from simkit.strategies.base import Plan

_PREDICTOR_REF = re.compile(r"^\.spec\.predictors\[(\d+)\]\.traffic$")
_ROUTE_REF = re.compile(r"^\.spec\.http\[0\]\.route\[(\d+)\]\.weight$")
_PREDICTIONS_ONLY = re.compile(r"service\s*=\s*['\"](predictions|/predict)['\"]")


@dataclass(frozen=True)
class Truth:
    """What is really true about the versions of one scenario."""

    scenario: str
    versions: tuple[str, ...]  # baseline first
    predictors: Mapping[str, str]  # version -> ns/sdep/predictor
    values: Mapping[str, Mapping[str, float]]  # objective metric -> version -> true value
    feasible: Mapping[str, bool]
    rewards: Mapping[str, float]  # true reward per prediction (see module doc)
    error_rates: Mapping[str, float]
    best: tuple[str, ...]  # truly best feasible version(s); the baseline when none is feasible
    horizon: float  # seconds from the experiment's start
    z: float = math.inf  # the ideal test's z between the best version and the baseline (evidence.py)
    decidable: bool = True  # z >= Z_DECIDE (or declared): else keeping the baseline is correct

    @property
    def baseline(self) -> str:
        return self.versions[0]

    @property
    def label(self) -> str:
        """``aa``: the baseline ties a candidate; ``better``: a candidate beats it; ``worse``: it stays best."""
        if self.baseline in self.best:
            return "aa" if len(self.best) > 1 else "worse"
        return "better"

    @property
    def reward_star(self) -> float:
        return self.rewards[self.best[0]]


def ground_truth(bundle: Bundle, declared: bool = True) -> Truth:
    """The truth of ``bundle`` (see the module docstring for every rule)."""
    prepared = prepare(bundle.experiment_document(), bundle.documents)
    plan = prepared.plan
    spec_truth: Mapping[str, Any] = bundle.scenario.spec.truth
    where = bundle.scenario_doc.where
    horizon = plan.iterations * plan.interval_seconds
    predictors = {v: _predictor(bundle, prepared.experiment, v, spec_truth) for v in plan.versions}
    behaviours = {v: behaviour_at(bundle, predictors[v], horizon) for v in plan.versions}
    metrics = dict(prepared.metrics)
    reward_refs = {r.metric for r in plan.rewards}
    overrides = spec_truth.get("metrics") or {}
    values: dict[str, dict[str, float]] = {}
    for obj in plan.objectives:
        values[obj.metric] = {}
        for v in plan.versions:
            given = (overrides.get(obj.metric) or {}).get(v)
            if given is not None:
                values[obj.metric][v] = float(given)
                continue
            got = metric_truth(obj.metric, metrics[obj.metric], behaviours[v], bundle, predictors[v], plan)
            if got is None:
                raise SpecError(
                    where,
                    f"spec.truth.metrics[{obj.metric!r}]",
                    "cannot derive the true value of this objective from its name; declare it per version",
                )
            values[obj.metric][v] = got
    feasible = {v: all(o.check(values[o.metric][v]) for o in plan.objectives) for v in plan.versions}
    rewards = {
        v: reward_truth(behaviours[v], bundle, predictors[v], plan, metrics, reward_refs)
        for v in plan.versions
    }
    if declared:
        feasible.update({k: bool(x) for k, x in (spec_truth.get("feasible") or {}).items() if k in feasible})
        rewards.update({k: float(x) for k, x in (spec_truth.get("rewards") or {}).items() if k in rewards})
    tolerance = float(spec_truth.get("rewardTolerance", 0.0))
    best = best_versions(plan, feasible, rewards, tolerance)
    if declared and spec_truth.get("best") is not None:
        raw = spec_truth["best"]
        best = tuple(raw if isinstance(raw, list) else [raw])
        unknown = [b for b in best if b not in plan.versions]
        if unknown:
            raise SpecError(
                where,
                "spec.truth.best",
                f"unknown version {unknown[0]!r} (versions: {', '.join(plan.versions)})",
            )
    errors = {v: error_rate(behaviours[v]) for v in plan.versions}
    z = evidence_z(
        bundle, plan, behaviours=behaviours, predictors=predictors, metrics=metrics, values=values, best=best
    )
    decidable = z >= Z_DECIDE
    if declared and spec_truth.get("decidable") is not None:
        decidable = bool(spec_truth["decidable"])
    return Truth(
        bundle.name, plan.versions, predictors, values, feasible, rewards, errors, best, horizon, z, decidable
    )


def best_versions(
    plan: Plan, feasible: Mapping[str, bool], rewards: Mapping[str, float], tolerance: float = 0.0
) -> tuple[str, ...]:
    """Feasible versions whose reward is within ``tolerance`` (relative) of the best; ties keep
    version order (baseline first). Without a feasible version, the baseline."""
    ok = [v for v in plan.versions if feasible[v]]
    if not ok:
        return (plan.baseline,)
    sign = -1.0 if plan.rewards and plan.rewards[0].preferred_direction == "Low" else 1.0
    top = max(sign * rewards[v] for v in ok)
    slack = tolerance * abs(top) + 1e-12
    return tuple(v for v in ok if sign * rewards[v] >= top - slack)


def behaviour_at(bundle: Bundle, key: str, t: float) -> Behaviour:
    """A predictor's behaviour at sim time ``t``: its events applied in time order."""
    b = bundle.behaviour(key)
    for ev in sorted((e for e in bundle.scenario.spec.events if e.predictor == key), key=lambda e: e.at):
        if ev.at <= t and (ev.duration is None or ev.at + ev.duration > t):
            b = Behaviour.model_validate({**b.model_dump(exclude_none=True), **ev.set})
    return b


def _feedback_share(b: Behaviour, bundle: Bundle, key: str) -> float:
    """Feedback calls per prediction, for mixing feedback latency into an unfiltered histogram."""
    if b.feedback is not None:
        return b.feedback.probability * (1.0 - error_rate(b))
    fixed, ingress = feedback_streams(bundle, key)
    return fixed / ingress if ingress > 0 else 0.0


def metric_truth(
    ref: str, metric: Metric, b: Behaviour, bundle: Bundle, key: str, plan: Plan
) -> float | None:
    """The true value that ``metric`` estimates for a predictor behaving as ``b``; None if unknown."""
    name = ref.split("/")[-1].lower()
    query = query_text(metric)
    if is_error_rate(name):
        return error_rate(b)
    if "latency" not in name:
        return None
    scale = 1000.0 if MILLIS.search(query) else 1.0
    offset = bundle.scenario.spec.prometheus.executorOverhead if "server_requests" in query else 0.0
    share = 0.0 if _PREDICTIONS_ONLY.search(query) else _feedback_share(b, bundle, key)
    predict = scaled(b.latency, b.latencyFactor)
    feedback = scaled(b.feedbackLatency, b.latencyFactor)
    q = quantile_of(name, query)
    if q is None:
        m = (mean(predict) + share * mean(feedback)) / (1.0 + share) + offset
        return m * scale
    return (_mixture_quantile(predict, feedback, share, q) + offset) * scale


def _mixture_quantile(predict: Distribution, feedback: Distribution, share: float, q: float) -> float:
    """Solve ``(F_p(x) + share * F_f(x)) / (1 + share) = q`` by bracketing on the exact CDFs."""
    rng = np.random.default_rng(0)

    def f(x: float) -> float:
        arr = np.array([x])
        mixed = float(cdf(predict, arr, rng)[0]) + share * float(cdf(feedback, arr, rng)[0])
        return mixed / (1.0 + share) - q

    hi = 1e-3
    while f(hi) < 0 and hi < 1e6:
        hi *= 2
    return float(optimize.brentq(f, 0.0, hi, xtol=1e-9)) if f(0.0) < 0 else 0.0


def reward_truth(
    b: Behaviour, bundle: Bundle, key: str, plan: Plan, metrics: Mapping[str, Metric], reward_refs: set[str]
) -> float:
    """Expected reward per prediction (per second for fixed-rate streams); 0 without feedback."""
    sums = reads_sum(metrics, reward_refs)
    if b.feedback is not None:
        value = b.feedback.probability * (1.0 - error_rate(b))
        return value * (b.feedback.reward if sums else 1.0)
    fixed, _ = feedback_streams(bundle, key)
    return fixed


def _predictor(bundle: Bundle, exp: Any, version: str, spec_truth: Mapping[str, Any]) -> str:
    """``ns/sdep/predictor`` serving ``version``: declared, else from its weightObjRef."""
    declared = (spec_truth.get("predictors") or {}).get(version)
    if declared:
        return str(declared)
    info = exp.spec.version_info
    detail = next(d for d in [info.baseline, *info.candidates] if d.name == version)
    ref = detail.weight_obj_ref
    where = bundle.scenario_doc.where
    if ref is not None:
        ns = ref.namespace or exp.namespace
        match = _PREDICTOR_REF.match(ref.field_path)
        if ref.kind == "SeldonDeployment" and match and (ns, ref.name) in bundle.seldon:
            preds = bundle.seldon[(ns, ref.name)][0].spec.predictors
            index = int(match.group(1))
            if index < len(preds):
                return f"{ns}/{ref.name}/{preds[index].name}"
        match = _ROUTE_REF.match(ref.field_path)
        if ref.kind == "VirtualService" and match and (ns, ref.name) in bundle.virtual_services:
            from simkit.spec.seldon import parse_host

            routes = bundle.virtual_services[(ns, ref.name)][0].spec.http[0].route
            index = int(match.group(1))
            if index < len(routes):
                host_ns, svc = parse_host(routes[index].destination.host, ns)
                found = resolve_service(bundle, host_ns, svc)
                if found:
                    return found
    variables = {v.name: v.value for v in detail.variables}
    key = f"{variables.get('ns')}/{variables.get('sid')}/{variables.get('predictor')}"
    if key in bundle.predictor_keys():
        return key
    raise SpecError(
        where,
        f"spec.truth.predictors.{version}",
        "cannot tell which predictor serves this version; declare it (ns/sdep/predictor)",
    )


def describe_truth(truth: Truth) -> str:
    """One line per version: feasibility, reward, objective values (for reports and notebooks)."""
    evidence = "decidable" if truth.decidable else "not enough evidence"
    lines = [
        f"{truth.scenario}: {truth.label}; best {', '.join(truth.best)}; horizon {truth.horizon:g}s; "
        f"{evidence} (ideal-test z {truth.z:.3g}, decidable at {Z_DECIDE:.2f})"
    ]
    for v in truth.versions:
        vals = ", ".join(f"{m.split('/')[-1]}={truth.values[m][v]:.4g}" for m in truth.values)
        lines.append(
            f"  {v} ({truth.predictors[v]}): {'feasible' if truth.feasible[v] else 'INFEASIBLE'}, "
            f"reward {truth.rewards[v]:.4g}, error rate {truth.error_rates[v]:.4g}; {vals}"
        )
    return "\n".join(lines)


def is_close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
