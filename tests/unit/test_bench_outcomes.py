"""Outcome metrics of one run (simkit.bench.outcomes) on hand-built truths and a real run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from simkit.bench.outcomes import classify, regret, score_run
from simkit.bench.truth import Truth, ground_truth
from simkit.sim.experiment import simulate_experiment
from simkit.spec.bundle import load_scenario

ROOT = Path(__file__).resolve().parents[2]


def truth(
    best: tuple[str, ...],
    feasible: dict[str, bool],
    rewards: dict[str, float],
    errors: dict[str, float] | None = None,
    decidable: bool = True,
) -> Truth:
    versions = tuple(feasible)
    return Truth(
        "case",
        versions,
        {v: f"ns/d/{v}" for v in versions},
        {},
        feasible,
        rewards,
        errors or dict.fromkeys(versions, 0.0),
        best,
        100.0,
        2.0 if not decidable else 5.0,
        decidable,
    )


AA = truth(("b", "c"), {"b": True, "c": True}, {"b": 0.2, "c": 0.2})
BETTER = truth(("c",), {"b": True, "c": True}, {"b": 0.2, "c": 0.3})
WORSE = truth(("b",), {"b": True, "c": False}, {"b": 0.2, "c": 0.3})
THREE = truth(("c2",), {"b": True, "c": True, "c2": True}, {"b": 0.2, "c": 0.25, "c2": 0.3})
# the same truths where the horizon holds too little evidence to decide (simkit.bench.evidence)
BETTER_NE = truth(("c",), {"b": True, "c": True}, {"b": 0.2, "c": 0.3}, decidable=False)
WORSE_NE = truth(("b",), {"b": True, "c": False}, {"b": 0.2, "c": 0.3}, decidable=False)
THREE_NE = truth(
    ("c2",), {"b": True, "c": True, "c2": True}, {"b": 0.2, "c": 0.25, "c2": 0.3}, decidable=False
)
AA_NE = truth(("b", "c"), {"b": True, "c": True}, {"b": 0.2, "c": 0.2}, decidable=False)


@pytest.mark.parametrize(
    ("case", "decision", "final", "want"),
    [
        (AA, "promote", "c", (True, False, False)),  # promoting the twin is fine
        (AA, "keep", "b", (True, False, False)),
        (AA, "rollback", "b", (False, False, True)),  # an A/A rollback is a false alarm
        (BETTER, "promote", "c", (True, False, False)),
        (BETTER, "keep", "b", (False, False, True)),  # a missed promotion
        (BETTER, "rollback", "b", (False, False, True)),
        (BETTER, "failed", "b", (False, False, True)),
        (WORSE, "promote", "c", (False, True, False)),
        (WORSE, "rollback", "b", (True, False, False)),
        (WORSE, "keep", "b", (True, False, False)),
        (THREE, "promote", "c", (False, True, False)),  # better than the baseline, not the best
        (THREE, "promote", "c2", (True, False, False)),
        (THREE, "keep", "b", (False, False, True)),
        # not enough evidence: keeping the baseline is the right answer, not a missed promotion
        (BETTER_NE, "keep", "b", (True, False, False)),
        (THREE_NE, "keep", "b", (True, False, False)),
        (BETTER_NE, "promote", "c", (True, False, False)),  # finding the better one is right too
        (BETTER_NE, "rollback", "b", (False, False, True)),  # "the candidate fails" is still false
        (BETTER_NE, "failed", "b", (False, False, True)),
        (THREE_NE, "promote", "c", (False, True, False)),  # a worse version: still a false promotion
        (WORSE_NE, "promote", "c", (False, True, False)),
        (WORSE_NE, "keep", "b", (True, False, False)),
        (AA_NE, "rollback", "b", (False, False, True)),
        (AA_NE, "keep", "b", (True, False, False)),
    ],
)
def test_classify(case: Truth, decision: str, final: str, want: tuple[bool, bool, bool]) -> None:
    assert classify(decision, final, case) == want


def test_a_real_keep_in_an_undecidable_scenario_is_correct() -> None:
    """suite/low-traffic (1 qps, ideal-test z 1.4): iter8 keeps v1 at this seed; the same run
    scored against a truth declared decidable is a false rollback (the rule, not the run, decides)."""
    bundle = load_scenario(ROOT / "scenarios" / "suite" / "low-traffic")
    t = ground_truth(bundle)
    assert not t.decidable and t.label == "better"
    seed = next(s for s in range(20) if simulate_experiment(bundle, s, "iter8").result.vrfp == "v1")
    row, _ = score_run(simulate_experiment(bundle, seed, "iter8"), t)
    assert (row["decision"], row["decidable"], row["correct"], row["false_rollback"]) == (
        "keep",
        False,
        True,
        False,
    )
    strict = replace(t, decidable=True)
    row, _ = score_run(simulate_experiment(bundle, seed, "iter8"), strict)
    assert (row["correct"], row["false_rollback"]) == (False, True)


def test_regret_counts_lost_reward_and_never_credits_an_infeasible_version() -> None:
    t = truth(("b",), {"b": True, "c": False}, {"b": 0.2 * 0.9, "c": 0.5}, {"b": 0.1, "c": 0.0})
    # b: 100 served, 10 errors -> expected reward 90 * 0.2 = 18 = 100 * r*; c would earn more: clipped
    assert regret({"b": (100, 10), "c": (50, 0)}, t) == pytest.approx(0.0)
    # b with 20 errors instead of the expected 10 loses 10 * 0.2 = 2
    assert regret({"b": (100, 20), "c": (0, 0)}, t) == pytest.approx(2.0)
    better = truth(("c",), {"b": True, "c": True}, {"b": 0.2, "c": 0.3})
    assert regret({"b": (300, 0), "c": (100, 0)}, better) == pytest.approx(300 * 0.1)


def test_a_real_run_is_scored_over_the_whole_horizon() -> None:
    bundle = load_scenario(ROOT / "scenarios" / "suite" / "error-regression-high-traffic")
    t = ground_truth(bundle)
    params = {"stepWeight": 10, "maxWeight": 50, "threshold": 1}
    run = simulate_experiment(bundle, 7, "flagger", params)
    row, trajectory = score_run(run, t)
    assert run.world.now >= t.horizon  # the decision was held until the horizon
    preds = {v: run.world.predictors[t.predictors[v]].truth for v in t.versions}
    assert row["requests"] == sum(p.predictions for p in preds.values())
    assert row["bad_requests"] == preds["v2"].predictions  # v2 is the infeasible one
    assert row["excess_errors"] == pytest.approx(preds["v2"].errors - preds["v2"].predictions * 0.002)
    assert row["decision"] in ("rollback", "promote", "keep")
    assert row["false_promotion"] == (row["decision"] == "promote")
    assert trajectory[-1][1] == t.horizon
    assert trajectory[-1][2] == (100 if row["decision"] == "promote" else 0)
    if row["decided"]:
        verdicts = [r for r in run.result.iterations if r.decision.verdict != "continue"]
        assert row["time_to_decision"] == pytest.approx(verdicts[0].time - run.result.start_time)
