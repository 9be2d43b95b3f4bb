"""Anytime-valid canary decisions: confidence sequences on guardrail rates and the reward rate.

Flagger, Argo and Kayenta look at the data again and again with fixed-horizon thresholds, so their
false-alarm rate grows with every look. This strategy instead uses *confidence sequences*: intervals
that cover the true difference at **all** looks simultaneously with probability >= 1 - alpha, so
it may stop whenever one excludes zero, as often as it likes.

The maths (asymptotic confidence sequence of Waudby-Smith, Arnold, Wu, Howard, Ramdas & Ramdas,
"Time-uniform central limit theory and asymptotic confidence sequences", Ann. Statist. 2024, with
the normal-mixture boundary of Howard, Ramdas, McAuliffe & Sekhon, "Time-uniform, nonparametric,
nonasymptotic confidence sequences", Ann. Statist. 2021; the same test as GrowthBook's
``SequentialTwoSidedTTest`` and, through the mixture likelihood ratio, the mSPRT of Johari,
Koomen, Pekelis & Walsh, "Always valid inference", Oper. Res. 2022):

* for a rate metric (x events in n requests, cumulative since the start) the estimate of the
  difference candidate − baseline is ``d = x_c/n_c - x_b/n_b`` with
  ``SE² = v_c/n_c + v_b/n_b``; ``v = p(1-p)`` (bernoulli) or ``v = p`` (poisson), computed at
  ``p = (x + 0.5)/(n + 1)`` so that a zero count still has some variance;
* with ``N = n_c + n_b`` and ``σ² = SE²·N``, the two-sided ``1 - a`` sequence is
  ``d ± σ·sqrt(2(Nρ² + 1)·ln(sqrt(Nρ² + 1)/a) / (Nρ)²)`` with
  ``ρ = sqrt((-2 ln a + ln(-2 ln a + 1)) / tuningN)`` (tightest around ``N ≈ tuningN``, default
  5000);
* ``alpha`` (default 0.05) is split evenly (Bonferroni) over the m sequences in use (one per
  guardrail plus one for the reward), ``a = alpha/m``. A false rollback or promotion needs some
  sequence to miss its true difference, so under A/A traffic their total probability stays
  <= alpha however many looks are taken (asymptotically; ``minRequests`` keeps tiny samples out).

Decisions, every iteration:

1. fewer than ``minRequests`` (100) requests on either version → "not enough evidence yet";
2. a guardrail credibly worse (lower end of its sequence > ``tolerance``) or the reward credibly
   worse (sequence entirely on the bad side of 0) → rollback;
3. the reward credibly better and no guardrail worse — neither credibly nor showing signs of harm
   (below) — → promote the candidate. Without a reward, promotion needs every guardrail to be
   credibly within its ``tolerance`` (upper end < tolerance, so a tolerance > 0 is needed);
4. otherwise hold the verdict ("not enough evidence yet", saying which sequences contain what)
   and ramp the weight by ``stepWeight`` up to ``maxWeight`` (10 / 50), unless a guardrail shows
   *signs of harm* — its estimate exceeds ``tolerance`` by more than ``harmZ`` (1.645) fixed-horizon
   standard errors —, in which case the weight is held. That signal is deliberately not
   error-controlled: it only pauses the ramp, it never decides.

Parameters: ``metrics`` roles ``requests`` (required), ``errors`` (an error-rate guardrail) and
``reward`` (default the plan's reward); ``guardrails`` (extra list of ``{numerator, denominator,
tolerance, model, direction: increase|decrease}``, direction = the bad way); ``rewardModel``
(poisson | bernoulli, default poisson); ``alpha``, ``tuningN``, ``minRequests``, ``stepWeight``,
``maxWeight``, ``harmZ``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from simkit.strategies.base import Decision, Observation, Plan, register
from simkit.strategies.roles import (
    MetricRoles,
    Params,
    check_number,
    param_error,
    single_candidate,
    split,
    value,
)


@dataclass(frozen=True)
class RateTest:
    """One difference of rates, numerator/denominator, tested by a confidence sequence."""

    label: str
    numerator: str
    denominator: str
    model: str  # bernoulli | poisson
    bad_when: str  # increase | decrease: which direction of candidate - baseline is harmful
    tolerance: float = 0.0


@dataclass(frozen=True)
class Sequence:
    estimate: float  # harm-oriented: > 0 means the candidate is worse
    half_width: float
    se: float  # fixed-horizon standard error, only for the "signs of harm" ramp pause

    @property
    def lower(self) -> float:
        return self.estimate - self.half_width

    @property
    def upper(self) -> float:
        return self.estimate + self.half_width


def half_width(se2: float, n: float, alpha: float, tuning: float) -> float:
    """Half-width of the asymptotic two-sided normal-mixture confidence sequence (see module doc)."""
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning
    sigma2 = se2 * n
    v = n * rho2 + 1
    return math.sqrt(sigma2 * 2 * v * math.log(math.sqrt(v) / alpha) / (n * n * rho2))


def rate_sequence(
    test: RateTest,
    observation: Observation,
    *,
    canary: str,
    baseline: str,
    min_requests: float,
    level: float,
    tuning: float,
) -> Sequence | None:
    """The confidence sequence of ``test`` (candidate - baseline, harm-oriented) at ``level``;
    None while either version has fewer than ``min_requests`` requests or a value is missing.
    The one implementation of the rate test, shared by ``sequential`` and ``anytime``."""
    counts = []
    for version in (canary, baseline):
        n = value(observation, test.denominator, version)
        x = value(observation, test.numerator, version)
        if n is None or x is None or n < min_requests:
            return None
        counts.append((max(0.0, x), n))
    (xc, nc), (xb, nb) = counts
    pc, pb = (xc + 0.5) / (nc + 1), (xb + 0.5) / (nb + 1)
    var_c, var_b = (pc * (1 - pc), pb * (1 - pb)) if test.model == "bernoulli" else (pc, pb)
    se2 = var_c / nc + var_b / nb
    diff = xc / nc - xb / nb
    hw = half_width(se2, nc + nb, level, tuning)
    return Sequence(diff if test.bad_when == "increase" else -diff, hw, math.sqrt(se2))


def sequence_settings(p: Params) -> tuple[float, float, float]:
    """``alpha``, ``tuningN`` (the sample size the confidence sequence is tightest at) and
    ``minRequests`` (per version, before any look): the confidence-sequence parameters."""
    return (
        p.number("alpha", 0.05, minimum=1e-6, maximum=0.5),
        p.number("tuningN", 5000, minimum=1),
        p.number("minRequests", 100, minimum=1),
    )


def rate_tests(
    p: Params, roles: MetricRoles, plan: Plan, requests: str, *, reward_model: str
) -> tuple[list[RateTest], RateTest | None]:
    """The rate tests of the anytime-valid policies (``sequential``, ``anytime``), from their
    parameters: the error-rate guardrail when an ``errors`` metric is given, the extra
    ``guardrails``, and the reward test (``rewardModel``, default ``reward_model``), harmful in
    the direction the Experiment's reward should not move."""
    model = p.choice("rewardModel", reward_model, ("poisson", "bernoulli"))
    tests: list[RateTest] = []
    if roles.get("errors"):
        tests.append(RateTest("error rate", roles.require("errors"), requests, "bernoulli", "increase"))
    extra = p.raw("guardrails", [])
    if not isinstance(extra, list):
        raise param_error(
            "guardrails", "must be a list of {numerator, denominator, tolerance, model, direction}"
        )
    tests += [_guardrail(i, g, requests) for i, g in enumerate(extra)]
    reward = roles.get("reward")
    if not reward:
        return tests, None
    high = not plan.rewards or plan.rewards[0].preferred_direction == "High"
    return tests, RateTest(f"reward {reward}", reward, requests, model, "decrease" if high else "increase")


class RateSequences:
    """What ``sequential`` and ``anytime`` share at each look: a rate test's confidence sequence,
    candidate against baseline, at the policy's per-test level."""

    canary: str
    baseline: str
    min_requests: float
    level: float
    tuning: float

    def sequence(self, test: RateTest, observation: Observation) -> Sequence | None:
        return rate_sequence(
            test,
            observation,
            canary=self.canary,
            baseline=self.baseline,
            min_requests=self.min_requests,
            level=self.level,
            tuning=self.tuning,
        )


@register("sequential")
class SequentialStrategy(RateSequences):
    """Anytime-valid canary: confidence sequences on guardrails and reward, alpha-controlled."""

    name = "sequential"

    def __init__(self, plan: Plan, params: Mapping[str, Any]) -> None:
        p = Params(self.name, params)
        self.plan = plan
        self.baseline, self.canary = single_candidate(plan, self.name)
        roles = MetricRoles(self.name, plan, p.raw("metrics"))
        requests = roles.require("requests")
        self.requests = requests
        self.alpha, self.tuning, self.min_requests = sequence_settings(p)
        self.step_weight = p.integer("stepWeight", 10, minimum=1, maximum=100)
        self.max_weight = p.integer("maxWeight", 50, minimum=1, maximum=100)
        self.harm_z = p.number("harmZ", 1.645, minimum=0)
        self.guardrails, self.reward = rate_tests(p, roles, plan, requests, reward_model="poisson")
        p.finish()
        if not self.guardrails and self.reward is None:
            raise param_error(
                "metrics.errors", "strategy 'sequential' needs an errors role, guardrails or a reward"
            )
        self.tests = len(self.guardrails) + (1 if self.reward else 0)
        self.level = self.alpha / self.tests

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        weight = int(observation.state.get("weight", 0))

        def out(new_weight: int, reason: str, verdict: str = "continue") -> Decision:
            if verdict == "promote":
                return Decision(
                    weights=split(self.plan, self.canary, 100),
                    winner=self.canary,
                    verdict="promote",
                    reason=reason,
                    state={"weight": 100},
                )
            if verdict == "rollback":
                return Decision(
                    weights=split(self.plan, self.canary, 0),
                    verdict="rollback",
                    reason=reason,
                    state={"weight": 0},
                )
            return Decision(
                weights=split(self.plan, self.canary, new_weight), reason=reason, state={"weight": new_weight}
            )

        guards = [(g, self.sequence(g, observation)) for g in self.guardrails]
        reward = self.sequence(self.reward, observation) if self.reward else None
        ramp = min(self.max_weight, weight + self.step_weight)
        if any(s is None for _, s in guards) or (self.reward and reward is None):
            target = ramp if weight < self.max_weight else weight
            return out(
                target,
                f"not enough evidence yet: fewer than {self.min_requests:g} requests per version "
                f"or missing counts; canary weight {weight} -> {target}",
            )
        text = [
            f"{g.label}: harm {s.estimate:+.4g}, CS [{s.lower:+.4g}, {s.upper:+.4g}]"
            for g, s in guards
            if s is not None
        ]
        if reward is not None:
            text.append(
                f"{self.reward.label if self.reward else ''}: loss {reward.estimate:+.4g}, "
                f"CS [{reward.lower:+.4g}, {reward.upper:+.4g}]"
            )
        summary = f"({'; '.join(text)}; each at level {self.level:.3g})"
        worse = [g.label for g, s in guards if s is not None and s.lower > g.tolerance]
        if worse:
            return out(
                0, f"candidate credibly worse on {', '.join(worse)} {summary}: rolling back", "rollback"
            )
        if reward is not None and reward.lower > 0:
            return out(0, f"candidate credibly worse on the reward {summary}: rolling back", "rollback")
        harm = [g.label for g, s in guards if s is not None and s.estimate - g.tolerance > self.harm_z * s.se]
        if reward is not None and reward.upper < 0 and not harm:
            return out(
                100,
                f"candidate credibly better on the reward, no guardrail worse {summary}: promoting",
                "promote",
            )
        if reward is None and all(s is not None and s.upper < g.tolerance for g, s in guards):
            return out(100, f"every guardrail credibly within tolerance {summary}: promoting", "promote")
        if harm:
            return out(
                weight,
                f"not enough evidence yet; signs of harm on {', '.join(harm)}, "
                f"holding weight {weight} {summary}",
            )
        target = ramp if weight < self.max_weight else weight
        return out(target, f"not enough evidence yet {summary}; canary weight {weight} -> {target}")


def _guardrail(i: int, raw: Any, requests: str) -> RateTest:
    at = f"guardrails[{i}]"
    known = {"name", "numerator", "denominator", "tolerance", "model", "direction"}
    if not isinstance(raw, Mapping) or not isinstance(raw.get("numerator"), str):
        raise param_error(at, "must be a mapping with a metric reference under 'numerator'")
    if set(raw) - known:
        raise param_error(
            f"{at}.{sorted(set(raw) - known)[0]}", f"unknown key; known: {', '.join(sorted(known))}"
        )
    model = raw.get("model", "bernoulli")
    direction = raw.get("direction", "increase")
    if model not in ("bernoulli", "poisson"):
        raise param_error(f"{at}.model", "must be bernoulli or poisson")
    if direction not in ("increase", "decrease"):
        raise param_error(f"{at}.direction", "must be increase or decrease (the harmful direction)")
    denominator = raw.get("denominator", requests)
    if not isinstance(denominator, str):
        raise param_error(f"{at}.denominator", "must be a metric reference")
    tolerance = check_number(f"{at}.tolerance", raw.get("tolerance", 0.0), minimum=0)
    return RateTest(
        str(raw.get("name", raw["numerator"])), raw["numerator"], denominator, model, direction, tolerance
    )
