"""Whether a scenario's horizon holds enough evidence to decide (issue 15): the ideal test's z.

A policy that keeps the baseline because it never found enough evidence is right when there was
not enough evidence to find. To say when, the bench asks what the *ideal* fixed-horizon test
could do with the scenario's traffic: it knows the generators' distribution families (so it
uses the best estimator), splits the traffic equally between the ``k`` versions from the start to
the horizon (for two versions the usual 50/50 A/B split, the most informative allocation for a
difference), and looks once, at the horizon. For the truly best version ``c`` and the baseline
``b`` it computes

    z = |mu_c - mu_b| / sqrt(se_c^2 + se_b^2)

for the reward and for every objective on which the two differ in feasibility, and keeps the
largest (any one of them tells the two apart). The scenario is **decidable** when
``z >= Z_DECIDE = z_{0.975} + z_{0.80} = 1.96 + 0.84 = 2.80``: the expected z that a two-sided
5% test needs to reject with 80% power (``P(Z > 1.96 - z) = 0.80``), the usual design point of an
A/B test. Below it, even the ideal test misses the difference more than one time in five, so
"not enough evidence" (keeping the baseline) is a correct answer, not a false rollback
(simkit.bench.outcomes).

Standard errors, with ``n = N / k`` predictions per version (``N`` the expected ingress
predictions in ``[0, horizon)``, from the load generators' rates):

- reward per prediction ``mu = s * q`` (``q`` the probability that a prediction earns feedback,
  ``s`` the feedback's reward when the metric sums rewards): feedback sent at ``t`` is seen by the
  horizon with probability ``G(horizon - t)`` (``G`` the delay's CDF), so each prediction is a
  Bernoulli(``q G``) observation and the Fisher information about ``q`` is
  ``sum_t G/(q (1 - q G))``: ``se^2 = s^2 / (n * mean_t[G / (q (1 - q G))])``, ``q (1 - q) / n``
  without delay. Fixed-rate feedback streams (``mu`` per second) are Poisson counts:
  ``se^2 = mu / horizon``.
- an error rate ``p``: ``p (1 - p) / n``; a mean latency: ``Var(latency) / n``; a latency
  quantile ``x_q``: ``q (1 - q) / (n f(x_q)^2)`` (the sample quantile's asymptotic variance).
  Latency spreads are taken from the prediction latency alone (no feedback-call mixing, no
  executor overhead: a constant shift), from a seeded sample, so they are deterministic.

Versions are taken as they behave at the horizon (like the truth itself): an event that changes a
version mid-run makes z an overstatement of the evidence about the changed behaviour.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

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
from simkit.sim.counts_load import CountedLoad
from simkit.sim.distributions import cdf, make_draw
from simkit.spec.bundle import Bundle
from simkit.spec.metric import Metric
from simkit.spec.scenario import Behaviour, Distribution
from simkit.strategies.base import Plan

Z_DECIDE = float(stats.norm.ppf(0.975) + stats.norm.ppf(0.80))  # 2.8016
CELLS = 400  # time cells over the horizon for the delay integral
_LATENCY_SAMPLE = 200_000
_QUANTILE_STEP = 0.005  # +- in probability for the density at a quantile


@dataclass(frozen=True)
class Estimate:
    """One quantity of one version as the ideal test estimates it: true value and squared SE."""

    value: float
    se2: float


@dataclass(frozen=True)
class Traffic:
    """Expected ingress predictions per time cell over ``[0, horizon)``, and the horizon."""

    mids: npt.NDArray[np.float64]
    counts: npt.NDArray[np.float64]
    horizon: float

    @property
    def total(self) -> float:
        return float(self.counts.sum())


def traffic(bundle: Bundle, horizon: float, cells: int = CELLS) -> Traffic:
    """Predictions the ingress loads send in each of ``cells`` equal cells of ``[0, horizon)``."""
    edges = np.linspace(0.0, horizon, cells + 1)
    counts = np.zeros(cells)
    rng = np.random.default_rng(0)  # only traces "arrive", and they are deterministic
    for spec in bundle.scenario.spec.load:
        if spec.to.split(":")[0] not in ("ingress", "virtualservice"):
            continue
        load = CountedLoad(spec, bundle.base_dir)
        for i, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
            if spec.pattern == "trace":
                counts[i] += load.arrivals(float(a), float(b), rng)
            else:
                counts[i] += load.mean_rate(float(a), float(b)) * (b - a)
    return Traffic((edges[:-1] + edges[1:]) / 2.0, counts, horizon)


def feedback_estimate(
    *, q: float, scale: float, delay: Distribution, seen: Traffic, share: float
) -> Estimate:
    """Reward per prediction ``scale * q`` from per-prediction feedback delayed by ``delay``."""
    n = seen.total * share
    mu = scale * q
    if n <= 0:
        return Estimate(mu, math.inf)
    if q <= 0.0 or q >= 1.0:
        return Estimate(mu, 0.0)  # a certain outcome: no spread
    arrived = cdf(delay, np.maximum(seen.horizon - seen.mids, 0.0), np.random.default_rng(0))
    weights = seen.counts / seen.counts.sum()
    info = float(np.sum(weights * arrived / (q * (1.0 - q * arrived))))  # per prediction
    return Estimate(mu, math.inf if info <= 0 else scale**2 / (n * info))


def stream_estimate(rate: float, horizon: float) -> Estimate:
    """Reward per second of a fixed-rate feedback stream: a Poisson count over the horizon."""
    return Estimate(rate, rate / horizon if horizon > 0 else math.inf)


def rate_estimate(p: float, n: float) -> Estimate:
    """A proportion (an error rate) from ``n`` predictions."""
    return Estimate(p, p * (1.0 - p) / n if n > 0 else math.inf)


def latency_estimate(
    *, value: float, latency: Distribution, q: float | None, scale: float, n: float
) -> Estimate:
    """A mean (``q`` None) or ``q``-quantile latency in the metric's unit (``scale`` per second)."""
    if n <= 0:
        return Estimate(value, math.inf)
    sample = make_draw(latency)(np.random.default_rng(0), _LATENCY_SAMPLE) * scale
    if q is None:
        return Estimate(value, float(np.var(sample)) / n)
    h = min(_QUANTILE_STEP, q / 2, (1 - q) / 2)
    lo, hi = np.quantile(sample, [q - h, q + h])
    if hi <= lo:
        return Estimate(value, 0.0)
    density = 2 * h / float(hi - lo)
    return Estimate(value, q * (1 - q) / (n * density**2))


def z_between(a: Estimate, b: Estimate) -> float:
    """The ideal test's expected z for the difference of two estimates (inf without noise)."""
    diff = abs(a.value - b.value)
    se = math.sqrt(a.se2 + b.se2)
    if se == 0.0:
        return math.inf if diff > 0 else 0.0
    return diff / se


def separation(
    *,
    baseline: str,
    candidates: Sequence[str],
    best: Sequence[str],
    estimates: Mapping[str, Mapping[str, Estimate]],
    separating: Mapping[str, Sequence[str]],
) -> float:
    """The scenario's z (module doc). ``estimates``: quantity -> version -> estimate, the reward
    under ``"reward"``; ``separating``: candidate -> the objectives on which its feasibility
    differs from the baseline's. Against the baseline: the best candidate's z when the baseline
    is not among the best, else the least separated candidate's (0 in an A/A)."""

    def z_of(c: str) -> float:
        keys = ["reward", *separating.get(c, ())]
        zs = [z_between(estimates[k][c], estimates[k][baseline]) for k in keys if k in estimates]
        return max(zs, default=0.0)

    if baseline not in best:
        return max(z_of(c) for c in best)
    return min((z_of(c) for c in candidates), default=0.0)


def evidence_z(
    bundle: Bundle,
    plan: Plan,
    *,
    behaviours: Mapping[str, Behaviour],
    predictors: Mapping[str, str],
    metrics: Mapping[str, Metric],
    values: Mapping[str, Mapping[str, float]],
    best: tuple[str, ...],
) -> float:
    """The ideal test's z over the horizon (module doc), from the generators."""
    sums = reads_sum(metrics, {r.metric for r in plan.rewards})
    horizon = plan.iterations * plan.interval_seconds
    seen = traffic(bundle, horizon)
    share = 1.0 / len(plan.versions)
    n = seen.total * share
    estimates: dict[str, dict[str, Estimate]] = {"reward": {}}
    for v, b in behaviours.items():
        if b.feedback is not None:
            q = b.feedback.probability * (1.0 - error_rate(b))
            scale = b.feedback.reward if sums else 1.0
            estimates["reward"][v] = feedback_estimate(
                q=q, scale=scale, delay=b.feedback.delay, seen=seen, share=share
            )
        else:
            estimates["reward"][v] = stream_estimate(feedback_streams(bundle, predictors[v])[0], horizon)
    for obj in plan.objectives:
        got = {
            v: objective_estimate(obj.metric, metrics[obj.metric], behaviours[v], values[obj.metric][v], n)
            for v in plan.versions
        }
        if all(e is not None for e in got.values()):
            estimates[obj.metric] = {v: e for v, e in got.items() if e is not None}
    base = plan.baseline
    separating = {
        c: [
            o.metric
            for o in plan.objectives
            if o.check(values[o.metric][c]) != o.check(values[o.metric][base])
        ]
        for c in plan.versions[1:]
    }
    return separation(
        baseline=base, candidates=plan.versions[1:], best=best, estimates=estimates, separating=separating
    )


def objective_estimate(ref: str, metric: Metric, b: Behaviour, value: float, n: float) -> Estimate | None:
    """How well ``n`` predictions estimate an objective (its true ``value``); None if unknown."""
    name = ref.split("/")[-1].lower()
    if is_error_rate(name):
        return rate_estimate(value, n)
    if "latency" not in name:
        return None
    query = query_text(metric)
    scale = 1000.0 if MILLIS.search(query) else 1.0
    latency = scaled(b.latency, b.latencyFactor)
    return latency_estimate(value=value, latency=latency, q=quantile_of(name, query), scale=scale, n=n)
