"""Safe top-two Thompson sampling: Bayesian traffic allocation on the reward, under safety constraints.

The model (per version, from the cumulative counts the loop reports):

* reward, ``rewardModel: poisson`` (default when a ``requests`` role exists): the reward metric is
  a count of feedback events (e.g. user engagement) over ``n`` requests; the rate per request has
  a Gamma(a, b) prior and a Gamma(a + rewards, b + n) posterior (Gamma-Poisson conjugacy);
* reward, ``rewardModel: bernoulli``: at most one reward per request; Beta(a + r, b + n - r);
* reward, ``rewardModel: point`` (the default without a ``requests`` role): the observed value is
  taken as exact, so the best version has probability 1;
* ``prior: [a, b]`` (default ``[1, 1]``); a ``Low`` preferred direction ranks by the negated rate.

Objectives (the plan's objectives, or ``checks: [{metric, upper, lower}]``) become posterior
feasibility: for the objective whose metric is the ``errorRate`` role, with ``errors`` and
``requests`` roles given, P(rate within limits) under a Beta(a0 + errors, b0 + n - errors)
posterior, judged from the first request on. The skeptical prior ``errorPrior: [a0, b0]``
(default ``[0.5, 0.5 / upper limit]``: mean near the limit, worth about 1/limit requests) keeps
one early error from excluding a good version while two or three errors in a few dozen requests
exclude a bad one at once, as a guardrail should at low traffic; for every other objective
the observed value is a point estimate (probability 1 or 0; a missing value is unknown). A version is *feasible* when every objective holds with probability
>= ``feasibility`` (0.95) and *credibly infeasible* when some objective holds with probability
<= 1 - ``feasibility``. Credibly infeasible versions get no traffic; when every candidate is
credibly infeasible the experiment rolls back.

Allocation, each iteration (``samples`` posterior draws, default 4000, from the injected RNG):
P(best) is the share of draws in which a version has the highest reward (ties go to the earlier
version, i.e. the baseline). With ``topTwo: true`` (default) the target share of a version is the
share of draws in which it is best or second best, halved — the top-two variant of GrowthBook's
bandits (``gbstats/bayesian/bandits.py``); with two versions that is 50/50, so the posterior
decides *when to stop*, not how far to ramp. ``topTwo: false`` gives plain Thompson shares
(= P(best)). Until every eligible version has ``minRequests`` requests (default 100) the target is
uniform (exploration). Constraints then apply in this order: a candidate's weight rises by at most
``maxIncrement`` (10) per iteration and never above ``maxCandidateWeight`` (the plan's, else 100),
the excess going to the baseline; the baseline keeps at least ``minBaselineShare`` (5) percent.

Promotion: a feasible version with P(best) >= ``promoteProbability`` (0.95), once every eligible
version has ``minRequests`` requests, becomes the winner. By default (``earlyStop: false``) the
experiment goes on: the winner's weight ramps up under the same caps while every guardrail is
still checked, so a regression that starts after the decision is still caught (the benchmark
suite's regression-mid-rollout showed why: stopping early let such a version keep all traffic).
With ``earlyStop: true`` the winner is promoted at once (verdict ``promote``).

Forgetting: with ``discount`` γ < 1 (default 0.85) the counts behind every posterior are
exponentially discounted per iteration (each interval's new requests, errors and rewards weigh
1, the previous interval's γ, and so on), so a version that starts failing mid-rollout is not
shielded by its good history. γ = 1 uses the plain cumulative counts.

Sample-ratio mismatch: each iteration the requests each version received during the last interval
(difference of the cumulative counts) are compared with the split that was in effect
(``Observation.current_weights``, else this strategy's last weights) by a chi-square test; if
p < ``srmAlpha`` (0.001) the strategy holds the weights and says so: its counts cannot be trusted.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

from simkit.spec.rounding import largest_remainder
from simkit.strategies.base import Decision, Observation, Plan, Verdict, register
from simkit.strategies.roles import (
    Check,
    MetricRoles,
    Params,
    check_number,
    param_error,
    parse_checks,
    value,
)


@register("thompson")
class ThompsonStrategy:
    """Top-two Thompson sampling on the reward with feasibility, ramp caps and an SRM guard."""

    name = "thompson"

    def __init__(self, plan: Plan, params: Mapping[str, Any]) -> None:
        p = Params(self.name, params)
        self.plan = plan
        self.roles = MetricRoles(self.name, plan, p.raw("metrics"))
        self.reward = self.roles.require("reward")
        self.requests = self.roles.get("requests")
        self.model = p.choice(
            "rewardModel", "poisson" if self.requests else "point", ("poisson", "bernoulli", "point")
        )
        if self.model != "point":
            self.requests = self.roles.require("requests")
        default_direction = plan.rewards[0].preferred_direction if plan.rewards else "High"
        self.direction = p.choice("rewardDirection", default_direction, ("High", "Low"))
        prior = p.raw("prior", [1.0, 1.0])
        if not isinstance(prior, list) or len(prior) != 2:
            raise param_error("prior", "must be a list [a, b] of two positive numbers")
        self.prior = tuple(check_number(f"prior[{i}]", v, minimum=1e-9) for i, v in enumerate(prior))
        self.samples = p.integer("samples", 4000, minimum=100)
        self.top_two = p.boolean("topTwo", True)
        self.feasibility = p.number("feasibility", 0.95, minimum=0.5, maximum=1.0)
        self.promote_probability = p.number("promoteProbability", 0.95, minimum=0.5, maximum=1.0)
        self.max_increment = p.number("maxIncrement", 10, minimum=1, maximum=100)
        self.min_baseline = p.number("minBaselineShare", 5, minimum=0, maximum=100)
        self.max_candidate = p.number(
            "maxCandidateWeight", plan.max_candidate_weight or 100, minimum=0, maximum=100
        )
        self.min_requests = p.number("minRequests", 100, minimum=0)
        self.srm_alpha = p.number("srmAlpha", 0.001, minimum=0, maximum=1)
        self.discount = p.number("discount", 0.85, minimum=0.05, maximum=1.0)
        self.early_stop = p.boolean("earlyStop", False)
        self.checks = parse_checks(p.raw("checks"), plan)
        error_prior = p.raw("errorPrior")
        if error_prior is not None and (not isinstance(error_prior, list) or len(error_prior) != 2):
            raise param_error("errorPrior", "must be a list [a, b] of two positive numbers")
        self.error_prior = (
            tuple(check_number(f"errorPrior[{i}]", v, minimum=1e-9) for i, v in enumerate(error_prior))
            if error_prior is not None
            else None
        )
        p.finish()
        self.errors, self.error_rate = self.roles.get("errors"), self.roles.get("errorRate")

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        versions = self.plan.versions
        st = copy.deepcopy(dict(observation.state))
        old = _in_effect(observation, st, versions)
        requests = {v: self._count(self.requests, observation, v) for v in versions}
        prev = st.get("prevRequests") or dict.fromkeys(versions, 0.0)
        state: dict[str, Any] = {"weights": old or {versions[0]: 100}, "prevRequests": requests}
        eff = self._effective(observation, st, state)
        srm = self._srm(old, {v: requests[v] - float(prev.get(v, 0.0)) for v in versions})
        hold_weights = dict(old) if old else largest_remainder({v: float(v == versions[0]) for v in versions})
        if srm:
            return Decision(weights=hold_weights, reason=f"{srm}; holding the weights", state=state)

        feasible_p = {v: [self._feasible(c, observation, v, eff[v]) for c in self.checks] for v in versions}
        feasible = {v: all(q is not None and q >= self.feasibility for q in feasible_p[v]) for v in versions}
        excluded = {
            v: any(q is not None and q <= 1 - self.feasibility for q in feasible_p[v]) for v in versions
        }
        assessments = {
            v: tuple(q is not None and q >= self.feasibility for q in feasible_p[v]) for v in versions
        }
        if all(excluded[c] for c in self.plan.candidates):
            bad = ", ".join(f"{c}: P(feasible) {_fmt(feasible_p[c])}" for c in self.plan.candidates)
            return Decision(
                weights=largest_remainder({v: float(v == versions[0]) for v in versions}),
                assessments=assessments,
                verdict="rollback",
                state=state,
                reason=f"every candidate is credibly infeasible ({bad}): rolling back",
            )
        eligible = [v for v in versions if not excluded[v]]
        p_best, shares = self._allocation(observation, eligible, eff, rng)
        warm = [v for v in eligible if requests[v] < self.min_requests] if self.model != "point" else []
        ranking = ", ".join(f"{v}: P(best) {p_best.get(v, 0.0):.3f}" for v in versions)
        best = max(eligible, key=lambda v: p_best[v])
        winner = None
        if not warm and p_best[best] >= self.promote_probability and feasible[best]:
            if self.early_stop:
                weights = largest_remainder({v: float(v == best) for v in versions})
                return Decision(
                    weights=weights,
                    winner=best,
                    assessments=assessments,
                    verdict="promote",
                    state=state,
                    reason=f"{best} is best with P {p_best[best]:.3f} >= {self.promote_probability:g} "
                    f"and feasible ({ranking}): promoting",
                )
            # exploit, but keep guarding: the winner ramps up under the same caps, and a guardrail
            # breach later (a regression after the decision) still excludes it or rolls back
            winner = best
            shares = {v: float(v == best) for v in versions}
        if warm:
            shares = {v: 1.0 / len(eligible) for v in eligible}
        weights = self._constrain(shares, old or {versions[0]: 100})
        state["weights"] = weights
        why = (
            f"exploring until {', '.join(warm)} reach {self.min_requests:g} requests"
            if warm
            else ("top-two" if self.top_two else "Thompson") + " allocation"
        )
        if winner is not None:
            why = f"{winner} is best with P {p_best[winner]:.3f} and feasible: exploiting, still guarding"
        verdict: Verdict = "continue"
        return Decision(
            weights=weights,
            winner=winner,
            assessments=assessments,
            verdict=verdict,
            state=state,
            reason=f"{why} ({ranking}); excluded as infeasible: "
            f"{', '.join(v for v in versions if excluded[v]) or 'none'}",
        )

    def _count(self, metric: str | None, observation: Observation, version: str) -> float:
        observed = value(observation, metric, version) if metric else None
        return max(0.0, observed) if observed is not None else 0.0

    def _effective(
        self, observation: Observation, old: Mapping[str, Any], state: dict[str, Any]
    ) -> dict[str, dict[str, float]]:
        """Discounted counts per version (requests, errors, reward) from the cumulative ones."""
        last = old.get("cumulative") or {}
        eff_old = old.get("effective") or {}
        cumulative: dict[str, dict[str, float]] = {}
        effective: dict[str, dict[str, float]] = {}
        for v in self.plan.versions:
            now = {
                "n": self._count(self.requests, observation, v),
                "e": self._count(self.errors, observation, v),
                "r": self._count(self.reward, observation, v),
            }
            prev = last.get(v) or dict.fromkeys(now, 0.0)
            before = eff_old.get(v) or dict.fromkeys(now, 0.0)
            cumulative[v] = now
            effective[v] = {
                k: self.discount * float(before.get(k, 0.0)) + max(0.0, now[k] - float(prev.get(k, 0.0)))
                for k in now
            }
        state["cumulative"], state["effective"] = cumulative, effective
        return effective

    def _feasible(
        self, check: Check, observation: Observation, version: str, eff: Mapping[str, float]
    ) -> float | None:
        """P(version meets the check): Beta posterior for the error-rate role, else a point estimate."""
        if check.metric == self.error_rate and self.errors and self.requests:
            n = eff["n"]
            if n < 1.0:
                return None  # the prior alone is no evidence either way
            e = min(eff["e"], n)
            a0, b0 = self.error_prior or (0.5, 0.5 / check.upper if check.upper else 1.0)
            from scipy import stats  # here, not at the top: scipy.stats costs ~0.7 s of start-up

            posterior = stats.beta(a0 + e, b0 + n - e)
            upper = posterior.cdf(check.upper) if check.upper is not None else 1.0
            lower = posterior.cdf(check.lower) if check.lower is not None else 0.0
            return float(upper - lower)
        observed = value(observation, check.metric, version)
        return None if observed is None else float(check.passes(observed))

    def _allocation(
        self,
        observation: Observation,
        eligible: list[str],
        eff: Mapping[str, Mapping[str, float]],
        rng: np.random.Generator,
    ) -> tuple[dict[str, float], dict[str, float]]:
        a, b = self.prior
        draws = np.empty((self.samples, len(eligible)))
        for i, v in enumerate(eligible):
            n, r = eff[v]["n"], eff[v]["r"]
            if self.model == "poisson":
                draws[:, i] = rng.gamma(a + r, 1.0 / (b + n), self.samples)
            elif self.model == "bernoulli":
                r = min(r, n)
                draws[:, i] = rng.beta(a + r, b + n - r, self.samples)
            else:
                observed = value(observation, self.reward, v)
                draws[:, i] = -np.inf if observed is None else observed
        if self.direction == "Low":
            draws = -draws
        order = np.argsort(-draws, axis=1, kind="stable")  # ties: the earlier version (baseline) first
        best = np.bincount(order[:, 0], minlength=len(eligible)) / self.samples
        p_best = {v: float(best[i]) for i, v in enumerate(eligible)}
        if not self.top_two or len(eligible) == 1:
            return p_best, dict(p_best)
        second = np.bincount(order[:, 1], minlength=len(eligible)) / self.samples
        return p_best, {v: float(best[i] + second[i]) / 2 for i, v in enumerate(eligible)}

    def _constrain(self, shares: Mapping[str, float], old: Mapping[str, int]) -> dict[str, int]:
        """Increment cap and maximum candidate weight (excess to the baseline), then the baseline floor."""
        versions = self.plan.versions
        target = {v: 100.0 * shares.get(v, 0.0) for v in versions}
        for c in self.plan.candidates:
            capped = min(target[c], self.max_candidate, float(old.get(c, 0)) + self.max_increment)
            target[versions[0]] += target[c] - capped
            target[c] = capped
        if target[versions[0]] < self.min_baseline:
            room = 100.0 - self.min_baseline
            rest = sum(target[c] for c in self.plan.candidates)
            for c in self.plan.candidates:
                target[c] = target[c] * room / rest
            target[versions[0]] = self.min_baseline
        return largest_remainder(target)

    def _srm(self, in_effect: Mapping[str, int] | None, delta: Mapping[str, float]) -> str:
        """A sample-ratio-mismatch message, or "" when the split looks right (or cannot be tested)."""
        if not in_effect:
            return ""
        delta = {v: max(0.0, d) for v, d in delta.items()}
        total = sum(delta.values())
        live = [v for v in delta if in_effect.get(v, 0) > 0]
        stray = [v for v in delta if in_effect.get(v, 0) == 0 and delta[v] > max(5.0, 0.01 * total)]
        observed = ", ".join(f"{v} {delta[v]:g}" for v in delta)
        if stray:
            return f"sample ratio mismatch: {', '.join(stray)} received requests at weight 0 ({observed})"
        weight_sum = sum(in_effect[v] for v in live)
        live_total = sum(delta[v] for v in live)
        expected = np.array([live_total * in_effect[v] / weight_sum for v in live])
        if len(live) < 2 or expected.min() < 5:
            return ""
        from scipy import stats

        p = float(stats.chisquare(np.array([delta[v] for v in live]), expected).pvalue)
        if p < self.srm_alpha:
            split = ", ".join(f"{v} {in_effect[v]}%" for v in live)
            return f"sample ratio mismatch: requests last interval {observed} vs split {split} (chi-square p={p:.2g})"
        return ""


def _in_effect(
    observation: Observation, state: Mapping[str, Any], versions: tuple[str, ...]
) -> dict[str, int] | None:
    if observation.current_weights is not None:
        current = dict(observation.current_weights)
        return {v: int(current.get(v, 0)) for v in versions}
    weights = state.get("weights")
    return {v: int(weights.get(v, 0)) for v in versions} if weights else None


def _fmt(probabilities: list[float | None]) -> str:
    return "[" + ", ".join("?" if q is None else f"{q:.3f}" for q in probabilities) + "]"
