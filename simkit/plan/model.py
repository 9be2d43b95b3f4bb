"""The planning model: the versions' true per-request laws, the effects, and two closed forms.

``simkit plan`` answers "can this rollout detect a +0.3 pp error regression before it reaches
50%?" without running the simulation. Per request a version has an error rate, a latency law
(its mean, sd and p95) and a feedback probability with a delay law (:class:`Arm`); the planned
candidate is the baseline with the effects applied (:func:`with_effect`). What a policy then
reads per iteration, as Prometheus would hold it, is drawn for many paths at once by
:mod:`simkit.plan.scraped`, and the policy's **own** ``decide`` turns it into decisions: the
detection rule is never written twice.

Two closed forms sit beside it (:func:`single_look_power`): the power of one fixed-horizon look
(the objective check ``observed > limit`` after ``N`` candidate requests, a z-test) and of the
anytime-valid confidence sequence of :mod:`simkit.strategies.sequential` at that look.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from simkit.errors import SpecError
from simkit.promql.aggregate import bucket_quantile
from simkit.sim.distributions import make_draw
from simkit.sim.executor_metrics import BOUNDS
from simkit.spec.scenario import Behaviour, Errors, Feedback
from simkit.strategies.base import Plan
from simkit.strategies.sequential import half_width

EFFECT_METRICS = ("error-rate", "mean-latency", "engagement-rate")
LATENCY_SAMPLE = 200_000  # draws that fix a latency distribution's mean, sd and p95


@dataclass(frozen=True)
class Effect:
    """``METRIC=DELTA``: ``error-rate=+0.003`` (absolute), ``mean-latency=+3%`` (relative)."""

    metric: str
    delta: float
    relative: bool

    @property
    def text(self) -> str:
        return f"{self.metric}={self.delta * 100:+g}%" if self.relative else f"{self.metric}={self.delta:+g}"


def parse_effect(text: str) -> Effect:
    metric, sep, value = text.partition("=")
    metric = metric.strip()
    if not sep or metric not in EFFECT_METRICS:
        raise SpecError.from_cli(
            "--effect", f"{text!r}: expected METRIC=DELTA with METRIC one of {', '.join(EFFECT_METRICS)}"
        )
    value = value.strip()
    relative = value.endswith("%")
    try:
        delta = float(value[:-1]) / 100 if relative else float(value)
    except ValueError:
        raise SpecError.from_cli("--effect", f"{text!r}: DELTA must be a number or a percentage") from None
    if not math.isfinite(delta):
        raise SpecError.from_cli("--effect", f"{text!r}: DELTA must be finite")
    return Effect(metric, delta, relative)


@dataclass(frozen=True, eq=False)
class Arm:
    """One version's true per-request quantities."""

    error_rate: float
    latency_mean: float  # seconds
    latency_sd: float
    latency_p95: float  # as histogram_quantile reports it from the executor's buckets
    feedback: float  # feedback calls per successful prediction
    delays: np.ndarray | None = None  # sorted sample of the feedback delay (s); None: no delay
    # per executor bucket (BOUNDS, then +Inf): the share of predictions, and the mean and variance
    # of the latencies that fall in it (a scrape's latency sum given its bucket counts)
    buckets: tuple[float, ...] = ()
    bucket_means: tuple[float, ...] = ()
    bucket_vars: tuple[float, ...] = ()

    @property
    def engagement(self) -> float:
        return self.feedback * (1 - self.error_rate)


def bucket_laws(draws: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """Per executor bucket (BOUNDS, then +Inf): the share of ``draws`` in it, their mean and their
    variance."""
    which = np.searchsorted(np.array(BOUNDS), draws, side="left")  # le is inclusive
    shares, means, variances = [], [], []
    for b in range(len(BOUNDS) + 1):
        inside = draws[which == b]
        shares.append(len(inside) / len(draws))
        means.append(float(inside.mean()) if len(inside) else 0.0)
        variances.append(float(inside.var()) if len(inside) else 0.0)
    return tuple(shares), tuple(means), tuple(variances)


def histogram_p95(shares: tuple[float, ...]) -> float:
    """The p95 Prometheus reports for a latency law with these bucket ``shares`` (BOUNDS, then
    +Inf): ``histogram_quantile`` (the engine's own :func:`bucket_quantile`), which interpolates
    linearly inside the bucket; not the true quantile (at a 100 ms limit the two differ by several
    ms)."""
    cdf = np.cumsum(shares)[: len(BOUNDS)]
    return bucket_quantile(0.95, [*zip(BOUNDS, cdf.tolist(), strict=True), (math.inf, 1.0)])


DELAY_SAMPLE = 4000  # quantiles that stand for a feedback delay law


def arm_of(b: Behaviour) -> Arm:
    rng = np.random.default_rng(0)
    draws = make_draw(b.latency)(rng, LATENCY_SAMPLE) * b.latencyFactor
    delays = None
    if b.feedback is not None and b.feedback.delay is not None:
        sample = np.sort(make_draw(b.feedback.delay)(rng, LATENCY_SAMPLE))
        delays = sample[(np.arange(DELAY_SAMPLE) * LATENCY_SAMPLE) // DELAY_SAMPLE]
        delays = None if not delays.any() else delays
    shares, means, variances = bucket_laws(draws)
    return Arm(
        delays=delays,
        buckets=shares,
        bucket_means=means,
        bucket_vars=variances,
        error_rate=sum(r for _, r in b.errors.table()),
        latency_mean=float(draws.mean()),
        latency_sd=float(draws.std()),
        latency_p95=histogram_p95(shares),
        feedback=b.feedback.probability if b.feedback is not None else 0.0,
    )


def _shifted(base: float, e: Effect) -> float:
    return base * (1 + e.delta) if e.relative else base + e.delta


def with_effect(b: Behaviour, effects: tuple[Effect, ...]) -> Behaviour:
    """The baseline's behaviour with the effects applied: the candidate of the plan."""
    out = b
    for e in effects:
        if e.metric == "error-rate":
            rate = _shifted(sum(r for _, r in out.errors.table()), e)
            if not 0 <= rate <= 1:
                raise SpecError.from_cli("--effect", f"{e.text}: the error rate becomes {rate:g}")
            code = out.errors.table()[0][0] if out.errors.table() else "500"
            out = out.model_copy(update={"errors": Errors(rate=rate, code=code)})
        elif e.metric == "mean-latency":
            base = arm_of(out).latency_mean * 1000
            factor = _shifted(base, e) / base if base > 0 else 1.0
            if factor <= 0:
                raise SpecError.from_cli("--effect", f"{e.text}: the mean latency becomes negative")
            out = out.model_copy(update={"latencyFactor": out.latencyFactor * factor})
        else:  # engagement-rate: per request, so per successful prediction after the errors
            fb = out.feedback or Feedback(probability=0.0)
            ok = 1 - sum(r for _, r in out.errors.table())
            q = _shifted(fb.probability * ok, e) / ok if ok > 0 else 0.0
            if not 0 <= q <= 1:
                raise SpecError.from_cli("--effect", f"{e.text}: the feedback probability becomes {q:g}")
            out = out.model_copy(update={"feedback": fb.model_copy(update={"probability": q})})
    return out


# --- what the policy reads ---------------------------------------------------------------------
@dataclass(frozen=True)
class PathOutcome:
    detected_at: int | None  # the iteration of the rollback
    promoted_at: int | None
    exposure: float  # candidate requests until the decision (or the end)


def iteration_elapsed(plan: Plan, i: int) -> float:
    """Seconds since the start at iteration ``i``: the first runs at once (elapsed 1, Iter8's
    floor), then one every interval."""
    return max(1.0, (i - 1) * plan.interval_seconds)


def metric_refs(plan: Plan) -> list[str]:
    """Every metric the Experiment names, as the loop fetches them."""
    refs = [*(o.metric for o in plan.objectives), *(r.metric for r in plan.rewards), *plan.indicators]
    return list(dict.fromkeys([*refs, *([plan.request_count] if plan.request_count else [])]))


# --- closed forms ------------------------------------------------------------------------------
def single_look_power(
    *, effect_metric: str, base: Arm, cand: Arm, n_c: float, n_b: float, limit: float | None, alpha: float
) -> tuple[float | None, float | None]:
    """(fixed-horizon power against ``limit``, confidence-sequence power) of one look after
    ``n_c`` candidate and ``n_b`` baseline requests (normal approximations)."""
    if effect_metric == "error-rate":
        mu_c, var_c, mu_b, var_b = (
            cand.error_rate,
            cand.error_rate * (1 - cand.error_rate),
            base.error_rate,
            base.error_rate * (1 - base.error_rate),
        )
    elif effect_metric == "mean-latency":
        mu_c, var_c = cand.latency_mean * 1000, (cand.latency_sd * 1000) ** 2
        mu_b, var_b = base.latency_mean * 1000, (base.latency_sd * 1000) ** 2
    else:
        mu_c, var_c, mu_b, var_b = (
            cand.engagement,
            cand.engagement * (1 - cand.engagement),
            base.engagement,
            base.engagement * (1 - base.engagement),
        )
    fixed = None
    if limit is not None and n_c > 0:
        fixed = float(ndtr((mu_c - limit) / math.sqrt(var_c / n_c))) if var_c > 0 else float(mu_c > limit)
    seq = None
    if n_c > 0 and n_b > 0:
        se2 = var_c / n_c + var_b / n_b
        if se2 > 0:
            w = half_width(se2, n_c + n_b, alpha, 5000.0)
            seq = float(ndtr((abs(mu_c - mu_b) - w) / math.sqrt(se2)))
    return fixed, seq
