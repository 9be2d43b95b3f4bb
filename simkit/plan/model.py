"""The planning model: what a policy will see per interval, drawn from closed-form count laws.

``simkit plan`` answers "can this rollout detect a +0.3 pp error regression before it reaches
50%?" without simulating Prometheus. Per interval and version the counts a policy reads have known
laws given the traffic and the weights in force:

* requests ``n ~ Poisson(qps * interval * weight / 100)``;
* errors ``e ~ Binomial(n, p)``; feedback ``f ~ Binomial(n - e, q)``, spread over this and later
  intervals by its delay (``Multinomial(f, landing)``, the delay plus a uniform request time);
* the latency sum ``S ~ Normal(n * mu, n * sigma^2)`` (the central limit theorem per interval).

The cumulative values since the start are what the suite's metrics query (``increase(...[
${elapsedTime}s])``), so the model hands the policy exactly the quantities of the bench metric
convention (``request-count``, ``error-count``, ``feedback-count``, ``error-rate``,
``engagement-rate``, ``mean-latency``, ``95th-percentile-tail-latency``), and the policy's **own**
``decide`` turns them into decisions: the detection rule is never written twice. Paths are drawn
with a seeded generator, so a plan is reproducible.

Two closed forms sit beside it (:func:`single_look_power`): the power of one fixed-horizon look
(the objective check ``observed > limit`` after ``N`` candidate requests, a z-test) and of the
anytime-valid confidence sequence of :mod:`simkit.strategies.sequential` at that look.

What the model leaves out, and `plan --verify` measures: Prometheus' scrape lag and
extrapolation, the controller's delay, histogram interpolation of the p95 (the model reports the
true p95).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr

from simkit.errors import SpecError
from simkit.sim.distributions import make_draw
from simkit.spec.scenario import Behaviour, Errors, Feedback
from simkit.strategies.base import Observation, Plan, Strategy
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


@dataclass(frozen=True)
class Arm:
    """One version's true per-request quantities."""

    error_rate: float
    latency_mean: float  # seconds
    latency_sd: float
    latency_p95: float
    feedback: float  # feedback calls per successful prediction
    landing: tuple[float, ...] = (1.0,)  # P(a feedback lands m intervals after its request's)

    @property
    def engagement(self) -> float:
        return self.feedback * (1 - self.error_rate)


def arm_of(b: Behaviour, interval: float) -> Arm:
    rng = np.random.default_rng(0)
    draws = make_draw(b.latency)(rng, LATENCY_SAMPLE) * b.latencyFactor
    landing: tuple[float, ...] = (1.0,)
    if b.feedback is not None and interval > 0:
        delay = make_draw(b.feedback.delay)(rng, LATENCY_SAMPLE)
        m = np.floor((rng.random(LATENCY_SAMPLE) * interval + delay) / interval).astype(np.int64)
        landing = tuple(float(x) for x in np.bincount(np.minimum(m, 60)) / LATENCY_SAMPLE)
    return Arm(
        landing=landing,
        error_rate=sum(r for _, r in b.errors.table()),
        latency_mean=float(draws.mean()),
        latency_sd=float(draws.std()),
        latency_p95=float(np.quantile(draws, 0.95)),
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
            base = arm_of(out, 0.0).latency_mean * 1000
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


# --- the count model ---------------------------------------------------------------------------
@dataclass
class Counts:
    n: float = 0.0
    errors: float = 0.0
    feedback: float = 0.0  # landed so far
    latency_sum: float = 0.0
    pending: list[int] = field(default_factory=list)  # feedback landing in the next intervals


def metric_value(name: str, c: Counts, arm: Arm, *, milliseconds: bool) -> float | None:
    """The bench convention's metric ``name`` (the part after ``namespace/``) from counts."""
    scale = 1000.0 if milliseconds else 1.0
    kind = name.rsplit("/", 1)[-1]
    if kind == "request-count":
        return c.n
    if kind == "error-count":
        return c.errors
    if kind == "feedback-count":
        return c.feedback
    if c.n <= 0:
        return None  # a ratio over no requests: Prometheus returns no sample
    if kind == "error-rate":
        return c.errors / c.n
    if kind == "engagement-rate":
        return c.feedback / c.n
    if kind == "mean-latency":
        return scale * c.latency_sum / c.n
    if kind.startswith("95th-percentile"):
        return scale * arm.latency_p95
    return None


def draw_interval(c: Counts, arm: Arm, expected: float, rng: np.random.Generator) -> None:
    n = int(rng.poisson(expected)) if expected > 0 else 0
    e = int(rng.binomial(n, arm.error_rate)) if n else 0
    c.n += n
    c.errors += e
    f = int(rng.binomial(n - e, arm.feedback)) if n - e > 0 else 0
    if len(arm.landing) == 1:
        c.feedback += f
    else:
        split = rng.multinomial(f, arm.landing).tolist()
        c.pending += [0] * (len(split) - len(c.pending))
        for m, k in enumerate(split):
            c.pending[m] += k
        c.feedback += c.pending.pop(0)
    if n:
        c.latency_sum += n * arm.latency_mean + math.sqrt(n) * arm.latency_sd * float(rng.standard_normal())


def iteration_elapsed(plan: Plan, i: int) -> float:
    """Seconds since the start at iteration ``i``: the first runs at once (elapsed 1, Iter8's
    floor), then one every interval."""
    return max(1.0, (i - 1) * plan.interval_seconds)


def metric_refs(plan: Plan) -> list[str]:
    """Every metric the Experiment names, as the loop fetches them."""
    refs = [*(o.metric for o in plan.objectives), *(r.metric for r in plan.rewards), *plan.indicators]
    return list(dict.fromkeys([*refs, *([plan.request_count] if plan.request_count else [])]))


def expected_interval(c: Counts, arm: Arm, expected: float, rng: np.random.Generator) -> None:
    """The interval's expected counts, no noise and no feedback delay (the planned ramp)."""
    c.n += expected
    c.errors += expected * arm.error_rate
    c.feedback += expected * (1 - arm.error_rate) * arm.feedback
    c.latency_sum += expected * arm.latency_mean


@dataclass(frozen=True)
class PathOutcome:
    detected_at: int | None  # the iteration of the rollback
    promoted_at: int | None
    exposure: float  # candidate requests until the decision (or the end)


def run_path(
    *,
    plan: Plan,
    strategy: Strategy,
    arms: Mapping[str, Arm],
    qps: float,
    weights: tuple[tuple[str, int], ...],
    rng: np.random.Generator,
    milliseconds: Callable[[str], bool],
    draw: Callable[[Counts, Arm, float, np.random.Generator], None] = draw_interval,
    schedule: list[int] | None = None,
) -> PathOutcome:
    """One rollout of the policy on drawn counts (``draw``: :func:`draw_interval`, or
    :func:`expected_interval` for the noiseless path); ``schedule`` collects the candidate's
    weight in the interval before each iteration."""
    counts = {v: Counts() for v in plan.versions}
    state: Mapping[str, object] = {}
    candidate = plan.versions[1]
    metrics = metric_refs(plan)
    current = dict(weights)
    for i in range(1, plan.iterations + 1):
        if schedule is not None:
            schedule.append(current.get(candidate, 0))
        if i > 1:  # the first iteration runs at the start, before any traffic (as Iter8's does)
            for v in plan.versions:
                draw(counts[v], arms[v], qps * plan.interval_seconds * current.get(v, 0) / 100, rng)
        obs = Observation(
            iteration=i,
            elapsed=iteration_elapsed(plan, i),
            metrics={
                m: {
                    v: metric_value(m, counts[v], arms[v], milliseconds=milliseconds(m))
                    for v in plan.versions
                }
                for m in metrics
            },
            current_weights=tuple(current.items()),
            state=state,
        )
        d = strategy.decide(obs, rng)
        state = d.state
        if d.verdict == "rollback":
            return PathOutcome(i, None, counts[candidate].n)
        if d.weights is not None:
            current = {v: int(d.weights.get(v, 0)) for v in plan.versions}
        if d.verdict == "promote":
            return PathOutcome(None, i, counts[candidate].n)
    return PathOutcome(None, None, counts[candidate].n)


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
