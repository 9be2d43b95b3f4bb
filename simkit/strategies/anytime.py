"""``anytime``: anytime-valid guardrails (error rate and the whole latency distribution) with a
low-exposure ramp that follows the evidence for the reward.

Guarantees (with ``alpha`` split evenly, Bonferroni, over the m tests in use: the error-rate
guardrail, each ``guardrails`` entry, the latency test and the reward):

* **false rollback**: with a candidate that equals the baseline (A/A), the probability of *ever*
  rolling back, however many iterations, is <= the sum of the guardrail levels <= ``alpha``. The
  error rate is judged by the asymptotic confidence sequence of :mod:`simkit.strategies.sequential`
  (normal-mixture boundary), the latency by the mixture e-process on histogram bucket counts of
  :mod:`simkit.strategies.latency_eprocess` (rollback when ``E >= m / alpha``). Both are valid
  under continuous monitoring (asymptotically for the confidence sequence; for the e-process given
  the split, see its docstring). The reward never rolls back: a reward that looks worse only stops
  the ramp (feedback that arrives late makes a ramping version look worse than it is);
* **false promotion**: promotion needs the reward's confidence sequence entirely on the better
  side *and* no guardrail showing signs of harm, so promoting a candidate that is no better has
  probability <= alpha / m. A regression that starts after the promotion is not covered (no
  policy that stops can see it); ``promote: false`` keeps the experiment running instead;
* **exposure**: the candidate gets ``stepWeight`` percent and stays there until the reward shows
  signs of benefit (fixed-horizon z >= ``benefitZ``); only then does the weight ramp by
  ``stepWeight`` per iteration up to ``maxWeight``. A candidate that is merely as good (or bad in a
  way no metric shows yet) therefore serves ``stepWeight`` percent, not ``maxWeight``. A guardrail
  whose estimate is worse by more than ``harmZ`` fixed-horizon standard errors holds the weight and
  blocks promotion (not error-controlled: it never decides, it only waits).

Holding a constant weight also removes the delayed-feedback bias between versions (both then
have the same share of requests whose feedback is still on its way).

Decisions, every iteration: rollback on a credible guardrail breach; promote on a credible reward
gain without signs of harm; otherwise "not enough evidence yet" with the weight as above. A run
that ends without a verdict keeps the baseline: in the bench scoring "not enough evidence" (see
``simkit.bench.outcomes``).

Parameters: ``metrics`` roles ``requests`` (required), ``errors``, ``reward`` (default the plan's
reward); ``latency: {buckets: [{le, metric}, ...]}`` cumulative bucket counts of one latency
histogram, ascending ``le`` (``.inf`` for the total count); ``guardrails`` (as ``sequential``);
``rewardModel`` (bernoulli | poisson, default bernoulli); ``alpha`` (0.05), ``tuningN`` (5000),
``minRequests`` (100), ``stepWeight`` (10), ``maxWeight`` (50), ``benefitZ`` (1.645), ``harmZ``
(1.645), ``promote`` (true).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from simkit.strategies.base import Decision, Observation, Plan, Verdict, register
from simkit.strategies.latency_eprocess import LatencyShiftState, LatencyShiftTest
from simkit.strategies.roles import (
    MetricRoles,
    Params,
    check_number,
    param_error,
    single_candidate,
    split,
    value,
)
from simkit.strategies.sequential import RateSequences, rate_tests, sequence_settings


def _parse_buckets(raw: Any) -> tuple[tuple[float, ...], tuple[str, ...]]:
    if not isinstance(raw, Mapping) or set(raw) - {"buckets"} or not isinstance(raw.get("buckets"), list):
        raise param_error("latency", "must be a mapping {buckets: [{le, metric}, ...]}")
    bounds: list[float] = []
    refs: list[str] = []
    for i, item in enumerate(raw["buckets"]):
        at = f"latency.buckets[{i}]"
        if (
            not isinstance(item, Mapping)
            or not isinstance(item.get("metric"), str)
            or set(item) - {"le", "metric"}
        ):
            raise param_error(at, "must be a mapping {le: upper bound in seconds, metric: reference}")
        le = item.get("le")
        if isinstance(le, str) and le.strip().lower() in ("+inf", "inf", ".inf"):
            le = math.inf
        bound = math.inf if le == math.inf else check_number(f"{at}.le", le, minimum=0)
        if bounds and bound <= bounds[-1]:
            raise param_error(f"{at}.le", "bucket bounds must be strictly ascending")
        bounds.append(bound)
        refs.append(item["metric"])
    if len([b for b in bounds if math.isfinite(b)]) < 2:
        raise param_error("latency.buckets", "needs at least two finite bucket bounds")
    return tuple(bounds), tuple(refs)


@register("anytime")
class AnytimeStrategy(RateSequences):
    """Anytime-valid error and latency-distribution guardrails, low-exposure evidence-led ramp."""

    name = "anytime"

    def __init__(self, plan: Plan, params: Mapping[str, Any]) -> None:
        p = Params(self.name, params)
        self.plan = plan
        self.baseline, self.canary = single_candidate(plan, self.name)
        roles = MetricRoles(self.name, plan, p.raw("metrics"))
        self.requests = roles.require("requests")
        self.alpha, self.tuning, self.min_requests = sequence_settings(p)
        self.step_weight = p.integer("stepWeight", 10, minimum=1, maximum=100)
        self.max_weight = p.integer("maxWeight", self.step_weight, minimum=1, maximum=100)
        self.benefit_z = p.number("benefitZ", 1.645, minimum=0)
        self.harm_z = p.number("harmZ", 1.645, minimum=0)
        self.promote = p.boolean("promote", True)
        latency = p.raw("latency")
        self.latency: LatencyShiftTest | None = None
        self.bucket_refs: tuple[str, ...] = ()
        if latency is not None:
            bounds, self.bucket_refs = _parse_buckets(latency)
            self.latency = LatencyShiftTest(bounds)
        self.guardrails, self.reward = rate_tests(p, roles, plan, self.requests, reward_model="bernoulli")
        p.finish()
        if not self.guardrails and self.latency is None:
            raise param_error(
                "metrics.errors", "strategy 'anytime' needs an errors role, guardrails or latency buckets"
            )
        self.tests = len(self.guardrails) + (self.latency is not None) + (self.reward is not None)
        self.level = self.alpha / self.tests

    def _latency(self, observation: Observation, raw: Mapping[str, Any] | None) -> LatencyShiftState | None:
        if self.latency is None:
            return None
        state = LatencyShiftState.from_state(raw)
        got = {}
        for version in (self.canary, self.baseline):
            counts = [value(observation, ref, version) for ref in self.bucket_refs]
            if any(c is None for c in counts):
                return state  # missing counts: skip this look; the next increment covers both
            got[version] = [float(c) for c in counts if c is not None]
        return self.latency.update(state, got[self.canary], got[self.baseline])

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        weight = int(observation.state.get("weight", 0))
        lat = self._latency(observation, observation.state.get("latency"))
        lat_state = lat.to_state() if lat is not None else None

        def out(new_weight: int, reason: str, verdict: Verdict = "continue") -> Decision:
            state: dict[str, Any] = {"weight": new_weight}
            if lat_state is not None:
                state["latency"] = lat_state
            return Decision(
                weights=split(self.plan, self.canary, new_weight),
                winner=self.canary if verdict == "promote" else None,
                verdict=verdict,
                reason=reason,
                state=state,
            )

        guards = [(g, self.sequence(g, observation)) for g in self.guardrails]
        reward = self.sequence(self.reward, observation) if self.reward else None
        first = max(weight, self.step_weight) if weight < self.step_weight else weight
        if any(s is None for _, s in guards) or (self.reward and reward is None):
            return out(
                first,
                f"not enough evidence yet: fewer than {self.min_requests:g} requests per version "
                f"or missing counts; canary weight {weight} -> {first}",
            )
        text = [
            f"{g.label}: harm {s.estimate:+.4g}, CS [{s.lower:+.4g}, {s.upper:+.4g}]" for g, s in guards if s
        ]
        log_e = self.latency.log_e(lat) if self.latency and lat else 0.0
        lat_z = self.latency.z(lat) if self.latency and lat else 0.0
        if self.latency is not None:
            text.append(f"latency shift: z {lat_z:+.2f}, e-value {math.exp(min(log_e, 700)):.3g}")
        if reward is not None:
            text.append(f"reward: loss {reward.estimate:+.4g}, CS [{reward.lower:+.4g}, {reward.upper:+.4g}]")
        summary = f"({'; '.join(text)}; each test at level {self.level:.3g})"
        worse = [g.label for g, s in guards if s is not None and s.lower > g.tolerance]
        if self.latency is not None and log_e >= math.log(1 / self.level):
            worse.append("latency (distribution shifted up)")
        if worse:
            return out(
                0, f"candidate credibly worse on {', '.join(worse)} {summary}: rolling back", "rollback"
            )
        harm = [g.label for g, s in guards if s is not None and s.estimate - g.tolerance > self.harm_z * s.se]
        if self.latency is not None and lat_z > self.harm_z:
            harm.append("latency")
        if self.promote and reward is not None and reward.upper < 0 and not harm:
            return out(
                100,
                f"candidate credibly better on the reward, no guardrail worse {summary}: promoting",
                "promote",
            )
        if harm:
            return out(
                first,
                f"not enough evidence yet; signs of harm on {', '.join(harm)}, holding weight {first} {summary}",
            )
        benefit = reward is not None and reward.se > 0 and -reward.estimate / reward.se >= self.benefit_z
        target = (
            min(self.max_weight, first + self.step_weight)
            if benefit and weight >= self.step_weight
            else first
        )
        why = "signs of benefit: ramping" if benefit else "no sign of benefit: holding the exploration weight"
        return out(target, f"not enough evidence yet {summary}; {why}, canary weight {weight} -> {target}")
