"""``simkit plan``: the command, its errors, and --verify against full simulations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from simkit.bench.sweep import strategy_params
from simkit.cli import main
from simkit.plan.model import parse_effect
from simkit.plan.planner import plan_detection, setup
from simkit.plan.verify import informative, verify
from simkit.spec.bundle import load_scenario

ROOT = Path(__file__).resolve().parents[2] / "scenarios"


def test_plan_json_shape_and_recommendation(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "plan",
        str(ROOT / "production" / "latency-regression-3pct"),
        "--strategy",
        "flagger",
        "--effect",
        "mean-latency=+3%",
        "--traffic",
        "200",
        "--budget",
        "10",
        "--paths",
        "500",
        "-o",
        "json",
    ]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["strategy"] == "flagger" and doc["effects"] == ["mean-latency=+3%"]
    steps = doc["steps"]
    assert steps[0]["candidateWeight"] == 0 and steps[1]["candidateWeight"] == 10
    assert [s["detected"] for s in steps] == sorted(s["detected"] for s in steps)
    schedules = {f["stepWeight"]: f for f in doc["schedules"]}
    assert set(schedules) == {1, 2, 5, 10, 20, 25, 50}
    rec = doc["recommended"]
    assert rec is not None and schedules[rec]["detectedWithinBudget"] >= doc["power"]
    smaller = [k for k in schedules if k < rec]
    assert all(schedules[k]["detectedWithinBudget"] < doc["power"] for k in smaller)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--effect", "p99=+1"], "--effect"),
        (["--effect", "error-rate=+0.01", "--power", "1.5"], "--power"),
        (["--effect", "error-rate=+0.01", "--traffic", "-3"], "--traffic"),
        ([], "--effect"),
    ],
)
def test_plan_bad_input_is_one_line_and_exit_2(
    extra: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", str(ROOT / "suite" / "aa"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_plan_refuses_three_versions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(ROOT / "production" / "three-versions"), "--effect", "error-rate=+0.01"]) == 2
    assert "spec.experiment" in capsys.readouterr().err


def _max_z(scenario: str, strategy: str, effect: str, qps: float, seeds: int, planned_effect: str) -> float:
    """Largest |planned - simulated| in combined standard errors over the informative iterations,
    the plan made for ``planned_effect`` and the simulation run with ``effect``."""
    bundle = load_scenario(ROOT / scenario)
    params = strategy_params(ROOT / scenario).get(strategy, {})
    sim = setup(bundle, strategy=strategy, params=params, effects=(parse_effect(effect),), qps=qps)
    planned = setup(
        bundle, strategy=strategy, params=params, effects=(parse_effect(planned_effect),), qps=qps
    )
    paths = 2000
    rows = informative(
        verify(sim, plan_detection(planned, paths=paths, seed=0, alpha=0.05), seeds=seeds, workers=2)
    )
    assert rows
    return max(
        abs(r.diff) / math.sqrt(r.se**2 + max(r.predicted * (1 - r.predicted), 1e-4) / paths) for r in rows
    )


def test_verify_agrees_with_simulation_and_detects_a_wrong_plan() -> None:
    """Sequential on the suite A/A with a +3 pp error regression at 20 qps, 80 seeds. Level: each
    informative iteration within 3.5 combined standard errors (about 5e-4 two-sided per row, < 1%
    over the rows). Mutation: the plan made for a +1 pp effect must be caught against the
    simulation of +3 pp."""
    assert _max_z("suite/aa", "sequential", "error-rate=+0.03", 20, 80, "error-rate=+0.03") <= 3.5
    assert _max_z("suite/aa", "sequential", "error-rate=+0.03", 20, 80, "error-rate=+0.01") > 3.5
