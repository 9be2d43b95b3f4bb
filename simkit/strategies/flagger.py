"""Flagger's canary analysis (fluxcd/flagger ``pkg/controller/scheduler.go``), one decision per interval.

Flagger shifts traffic in fixed steps and gates every step on absolute checks of the canary's
metrics. What this module reproduces, and why each point matters when comparing policies:

* ``failedChecks`` is **cumulative** over the whole run and never reset by a passing interval, so
  ``threshold: 2`` means "two failed intervals in total", not two in a row.
* An interval whose analysis fails does **not** advance the weight: the same step is analysed
  again at the next interval. The first failing check short-circuits the rest.
* A missing value ("no values found ... not receiving traffic") is a failed check.
* No analysis happens in the first interval, while the canary weight is still 0 (Flagger runs only
  its pre-rollout hooks there); the weight goes straight to the first step.
* ``weight += stepWeight`` is capped at 100 but **not** at ``maxWeight``: with ``maxWeight: 50,
  stepWeight: 20`` the weights are 20 → 40 → 60 and the canary is promoted after the analysis at
  60 passes (the docs' own example). With ``stepWeights`` the next value of the list is used;
  ``maxWeight`` is then ``min(100, last step)``; a weight that is not in the list jumps to 100.
* Promotion happens at the first passing interval with ``weight >= maxWeight``; the candidate then
  gets 100% (Flagger copies its spec to the primary and routes all traffic there).
* A/B mode (``iterations`` > 0; Flagger's header ``match``): the candidate is held at ``abWeight``
  percent and promoted after ``iterations`` passing intervals.

One deliberate timing difference: Flagger notices ``failedChecks >= threshold`` at the *start* of
its next interval and rolls back then, without analysing again. simkit rolls back in the decision
that reaches the threshold, which gives the same verdict one interval earlier (no extra interval
is served at the held weight).

Parameters (defaults as in Flagger): ``stepWeight`` (int; Flagger has no default, simkit uses 10,
the step of Flagger's documented canary example, when neither ``stepWeights`` nor ``iterations``
is given, so that ``--strategy flagger`` runs on any two-version Experiment) or ``stepWeights`` (list of
ascending ints), ``maxWeight`` (int, default 100; ignored with ``stepWeights``), ``threshold``
(int, default 1; values <= 0 mean 1), ``iterations`` (int, default 0 = canary mode), ``abWeight``
(int, default 50), ``checks`` (list of ``{metric, upper, lower}``, default the plan's objectives;
checked on the candidate only, as Flagger does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from simkit.strategies.base import Decision, Observation, Plan, Verdict, register
from simkit.strategies.roles import Params, assess, param_error, parse_checks, single_candidate, split, value

TOTAL_WEIGHT = 100
DEFAULT_STEP_WEIGHT = 10  # used only when no stepWeight, stepWeights or iterations is given


@register("flagger")
class FlaggerStrategy:
    """Flagger canary: fixed weight steps gated by absolute checks, cumulative failed-check budget."""

    name = "flagger"

    def __init__(self, plan: Plan, params: Mapping[str, Any]) -> None:
        p = Params(self.name, params)
        self.plan = plan
        self.baseline, self.canary = single_candidate(plan, self.name)
        self.step_weights = _step_weights(p.raw("stepWeights", []))
        self.iterations = p.integer("iterations", 0, minimum=0)
        default_step = 0 if self.step_weights or self.iterations else DEFAULT_STEP_WEIGHT
        self.step_weight = p.integer("stepWeight", default_step, minimum=0, maximum=TOTAL_WEIGHT)
        max_weight = p.integer("maxWeight", 0, minimum=0, maximum=TOTAL_WEIGHT)
        threshold = p.integer("threshold", 1)
        self.threshold = threshold if threshold > 0 else 1  # canary.go: GetAnalysisThreshold
        self.ab_weight = p.integer("abWeight", 50, minimum=1, maximum=TOTAL_WEIGHT)
        self.checks = parse_checks(p.raw("checks"), plan)
        p.finish()
        if self.iterations == 0 and self.step_weight == 0 and not self.step_weights:
            raise param_error("stepWeight", "set stepWeight or stepWeights (or iterations for A/B mode)")
        # scheduler.go maxWeight(): the last stepWeights entry wins over maxWeight
        if self.step_weights:
            self.max_weight = min(TOTAL_WEIGHT, self.step_weights[-1])
        else:
            self.max_weight = max_weight if max_weight > 0 else TOTAL_WEIGHT

    def next_step(self, weight: int) -> int:
        """scheduler.go nextStepWeight(): the increment applied after a passing interval."""
        if self.step_weight > 0 or not self.step_weights:
            return self.step_weight
        max_step = TOTAL_WEIGHT - weight
        if max_step == 0:
            return 1
        if weight == 0:
            return min(max_step, self.step_weights[0])
        for here, following in zip(self.step_weights, self.step_weights[1:], strict=False):
            if here == weight:
                return min(max_step, following - weight)
        return max_step

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        state = observation.state
        weight = int(state.get("weight", 0))
        failed = int(state.get("failedChecks", 0))
        iterations = int(state.get("iterations", 0))
        assessments = assess(self.checks, observation, self.plan.versions)

        def out(
            new_weight: int,
            reason: str,
            verdict: Verdict = "continue",
            winner: str | None = None,
            weights: dict[str, int] | None = None,
        ) -> Decision:
            return Decision(
                weights=weights if weights is not None else split(self.plan, self.canary, new_weight),
                winner=winner,
                assessments=assessments,
                verdict=verdict,
                reason=reason,
                state={"weight": new_weight, "failedChecks": failed, "iterations": iterations},
            )

        if weight == 0 and iterations == 0:
            analysed = "no analysis while the canary has no traffic (first interval)"
        else:
            failure = self._first_failure(observation)
            if failure is not None:
                failed += 1
                if failed >= self.threshold:
                    return out(
                        0,
                        f"{failure}; failed checks {failed} reached threshold {self.threshold}: rolling back",
                        verdict="rollback",
                        weights=split(self.plan, self.canary, 0),
                    )
                return out(
                    weight,
                    f"{failure}; failed checks {failed}/{self.threshold}; holding canary weight at {weight}",
                )
            analysed = f"all {len(self.checks)} checks passed" if self.checks else "no checks configured"

        if self.iterations > 0:  # A/B: runAB
            if iterations < self.iterations:
                iterations += 1
                return out(
                    self.ab_weight,
                    f"{analysed}; A/B iteration {iterations}/{self.iterations} "
                    f"with the candidate at {self.ab_weight}%",
                )
            return out(
                TOTAL_WEIGHT,
                f"{analysed}; {self.iterations} A/B iterations done: promoting {self.canary}",
                verdict="promote",
                winner=self.canary,
            )

        if weight < self.max_weight:  # runCanary: the step may overshoot maxWeight, capped at 100
            new_weight = min(TOTAL_WEIGHT, weight + self.next_step(weight))
            return out(new_weight, f"{analysed}; advancing canary weight {weight} -> {new_weight}")
        return out(
            TOTAL_WEIGHT,
            f"{analysed} at weight {weight} >= maxWeight {self.max_weight}: promoting {self.canary}",
            verdict="promote",
            winner=self.canary,
        )

    def _first_failure(self, observation: Observation) -> str | None:
        """The first failing check on the canary (Flagger stops at the first failure), or None."""
        for check in self.checks:
            observed = value(observation, check.metric, self.canary)
            if not check.passes(observed):
                if observed is None:
                    return f"check failed: no values found for {check.metric} on {self.canary}"
                return f"check failed: {check.explain(observed)} on {self.canary}"
        return None


def _step_weights(raw: Any) -> tuple[int, ...]:
    if not isinstance(raw, list):
        raise param_error("stepWeights", f"must be a list of ascending percentages, got {raw!r}")
    steps: list[int] = []
    for i, item in enumerate(raw):
        if isinstance(item, bool) or not isinstance(item, int) or not 0 < item <= TOTAL_WEIGHT:
            raise param_error(f"stepWeights[{i}]", f"must be a whole percentage in 1..100, got {item!r}")
        if steps and item <= steps[-1]:
            raise param_error(f"stepWeights[{i}]", "must be larger than the previous step")
        steps.append(item)
    return tuple(steps)
