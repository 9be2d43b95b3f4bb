"""Outcome metrics of one run, scored against the ground truth (perf-anchors.md §4, issue 6).

Every run is scored over the same **horizon**: the experiment's longest possible duration
(``iterations x intervalSeconds`` from its start). A policy that decides early does not stop the
clock: after the loop ends, the decision is applied (a promoted version gets 100%, otherwise the
baseline does) and the simulated world keeps serving until the horizon, so the cost of a wrong
promotion, or of a slow one, is counted, and every strategy is charged for the same traffic.
Exposure and regret use the World's ground-truth counters (predictions, errors actually served
per predictor), never PromQL.

Decision of a run: ``failed`` (the experiment failed), ``rollback`` (a rollback verdict), else the
version recommended for promotion: ``promote`` when it is a candidate, ``keep`` when it is the
baseline (Iter8 without a winner, a policy that never found enough evidence).

Per run (H0 = "the candidate is no better"; names by outcome, as perf-anchors §4 asks):

* ``correct``: the final version is among the truly best feasible versions, and the run is not a
  false rollback. In A/A (baseline and candidate tie) promoting and keeping are both correct. In
  a scenario that is not *decidable* (simkit.bench.evidence: even the ideal test over the horizon
  would miss the difference more than one time in five), ``keep`` is correct too: "not enough
  evidence" is the right answer there.
* ``false_promotion``: a candidate was promoted that is infeasible, or truly worse than the best
  (A/A: promoting the twin is *not* a false promotion). Unchanged by decidability: promoting a
  worse version is wrong however little evidence there was.
* ``false_rollback``: the baseline was kept (rollback, keep or failure) although a candidate is
  truly better; or an explicit rollback although a candidate is as good as the best (A/A). Not
  for a ``keep`` in a scenario that is not decidable. A rollback stays a false rollback there: it
  is not "not enough evidence" but the verdict "the candidate fails", which is false, and which
  costs a team a good model and an alarm to investigate (the A/A row measures the same claim).
* ``time_to_decision``: seconds from the first iteration to the iteration with a promote or
  rollback verdict; runs without one are censored at their end (the horizon for a full run).
* ``regret``: reward lost against serving the truly best version all along:
  ``sum_v n_v * r* - E[reward_v | successes_v]``, with ``r*`` the best version's true reward per
  prediction and the expected reward of a version computed from its *realised* successful
  predictions (so error regressions that start mid-run are counted as they happened). Serving an
  infeasible version never earns negative regret (it is clipped at 0 per version).
* ``bad_requests``: predictions served by truly infeasible versions;
  ``excess_errors``: errors served by candidates beyond the baseline's true error rate
  (``errors_c - n_c * err_b``; realised, so it may be slightly negative by chance).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from simkit.bench.truth import Truth
from simkit.control import weight_patches
from simkit.records import RunResult
from simkit.sim.adapters import SimWeightActuator
from simkit.sim.experiment import SimRun

OUTCOME_COLUMNS = (
    "scenario",
    "strategy",
    "seed_index",
    "seed",
    "engine",
    "label",
    "decidable",
    "decision",
    "final_version",
    "correct",
    "false_promotion",
    "false_rollback",
    "decided",
    "time_to_decision",
    "iterations",
    "regret",
    "bad_requests",
    "excess_errors",
    "requests",
    "candidate_requests",
    "errors",
)


def decision_of(result: RunResult, baseline: str) -> tuple[str, str]:
    """(decision, final version) of a run: failed / rollback / keep keep the baseline."""
    if result.failed:
        return "failed", baseline
    if result.rolled_back:
        return "rollback", baseline
    final = result.vrfp or baseline
    return ("keep" if final == baseline else "promote"), final


def classify(decision: str, final: str, truth: Truth) -> tuple[bool, bool, bool]:
    """(correct, false_promotion, false_rollback) of a decision, per the module docstring."""
    best = set(truth.best)
    candidates_best = any(c in best for c in truth.versions[1:])
    no_evidence = decision == "keep" and not truth.decidable  # "not enough evidence", rightly
    missed = final == truth.baseline and truth.baseline not in best and not no_evidence
    false_rollback = missed or (decision == "rollback" and candidates_best)
    false_promotion = decision == "promote" and final not in best
    correct = (final in best or no_evidence) and not false_rollback
    return correct, false_promotion, false_rollback


def apply_decision_until_horizon(run: SimRun, final: str, horizon: float) -> None:
    """Route all traffic to ``final`` and let the world run to ``horizon`` (seconds after the start)."""
    world, refs = run.world, run.prepared.refs
    actuator = SimWeightActuator(world)
    if refs:
        target = {v: (100 if v == final else 0) for v in run.prepared.plan.versions}
        current = actuator.read(refs)
        actuator.apply(weight_patches(refs, target, tuple(current.items())))
    start = run.result.start_time
    start_sim = (start - world.epoch) if start is not None else 0.0
    world.stop_scraping()  # nobody looks at the metrics any more: the score reads the ground truth
    world.run_until(max(world.now, start_sim + horizon))


def served(run: SimRun, truth: Truth) -> dict[str, tuple[int, int]]:
    """(predictions, errors) actually served by each version, from the ground-truth counters."""
    out = {}
    for v in truth.versions:
        sim = run.world.predictors.get(truth.predictors[v])
        out[v] = (sim.truth.predictions, sim.truth.errors) if sim is not None else (0, 0)
    return out


def regret(counts: Mapping[str, tuple[int, int]], truth: Truth) -> float:
    r_star = truth.reward_star
    total = 0.0
    for v, (n, errors) in counts.items():
        err = truth.error_rates[v]
        per_success = truth.rewards[v] / (1.0 - err) if err < 1.0 else 0.0
        lost = n * r_star - (n - errors) * per_success
        total += lost if truth.feasible[v] else max(0.0, lost)
    return total


def score_run(run: SimRun, truth: Truth) -> tuple[dict[str, Any], list[tuple[int, float, int]]]:
    """Score a finished run (the world is advanced to the horizon as a side effect).

    Returns the outcome row (without the sweep's identity columns) and the candidate-weight
    trajectory ``[(iteration, seconds since start, total candidate weight)]``, ending with the
    decision held until the horizon."""
    result = run.result
    decision, final = decision_of(result, truth.baseline)
    correct, false_promotion, false_rollback = classify(decision, final, truth)
    start = result.start_time or 0.0
    decisive = next((r for r in result.iterations if r.decision.verdict != "continue"), None)
    if decisive is not None:
        ttd = decisive.time - start
    else:
        ttd = (result.end_time or start) - start
    trajectory = []
    for rec in result.iterations:
        weights = dict(rec.weights_after or rec.weights_before or ())
        trajectory.append((rec.iteration, rec.time - start, 100 - int(weights.get(truth.baseline, 100))))
    apply_decision_until_horizon(run, final, truth.horizon)
    held = 0 if final == truth.baseline else 100
    ended = min((result.end_time or start) - start, truth.horizon)
    trajectory.append((len(result.iterations) + 1, ended, held))
    trajectory.append((len(result.iterations) + 2, truth.horizon, held))
    counts = served(run, truth)
    err_b = truth.error_rates[truth.baseline]
    row = {
        "label": truth.label,
        "decidable": truth.decidable,
        "decision": decision,
        "final_version": final,
        "correct": correct,
        "false_promotion": false_promotion,
        "false_rollback": false_rollback,
        "decided": decisive is not None,
        "time_to_decision": float(ttd),
        "iterations": len(result.iterations),
        "regret": regret(counts, truth),
        "bad_requests": float(sum(n for v, (n, _) in counts.items() if not truth.feasible[v])),
        "excess_errors": float(sum(e - n * err_b for v, (n, e) in counts.items() if v != truth.baseline)),
        "requests": int(sum(n for n, _ in counts.values())),
        "candidate_requests": int(sum(n for v, (n, _) in counts.items() if v != truth.baseline)),
        "errors": int(sum(e for _, e in counts.values())),
    }
    return row, trajectory
