"""``simkit plan``: the command, its errors, and --verify against full simulations."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from simkit.bench.sweep import strategy_params
from simkit.cli import main
from simkit.plan.model import parse_effect
from simkit.plan.planner import Detection, Setup, plan_detection, setup
from simkit.plan.scraped import Family
from simkit.plan.verify import VerifyRow, informative, verify
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


def _setup(scenario: str, strategy: str, effect: str, qps: float) -> Setup:
    bundle = load_scenario(ROOT / scenario)
    params = strategy_params(ROOT / scenario).get(strategy, {})
    return setup(bundle, strategy=strategy, params=params, effects=(parse_effect(effect),), qps=qps)


PATHS = 2000


def _max_z(simulated: list[VerifyRow], planned: Detection) -> float:
    """Largest |planned - simulated| in combined standard errors over the informative iterations."""
    by_iteration = {r.iteration: r.detected for r in planned.rows}
    rows = informative([replace(r, predicted=by_iteration[r.iteration]) for r in simulated])
    assert rows
    return max(
        abs(r.diff) / math.sqrt(r.se**2 + max(r.predicted * (1 - r.predicted), 1e-4) / PATHS) for r in rows
    )


def test_verify_agrees_with_simulation_and_detects_a_wrong_plan() -> None:
    """Sequential on the suite A/A with a +3 pp error regression at 20 qps, 80 seeds. Level: each
    informative iteration within 3.5 combined standard errors (about 5e-4 two-sided per row, < 1%
    over the rows). Mutation: the plan made for a +1 pp effect must be caught against the
    simulation of +3 pp."""
    s = _setup("suite/aa", "sequential", "error-rate=+0.03", 20)
    right = plan_detection(s, paths=PATHS, seed=0, alpha=0.05)
    simulated = verify(s, right, seeds=80, workers=2)
    assert _max_z(simulated, right) <= 3.5
    wrong = _setup("suite/aa", "sequential", "error-rate=+0.01", 20)
    assert _max_z(simulated, plan_detection(wrong, paths=PATHS, seed=0, alpha=0.05)) > 3.5


def test_verify_agrees_where_prometheus_hides_the_first_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flagger on the production +0.3 pp error regression at 300 qps, 60 seeds: few errors per pod
    and scrape, so the per-pod ``code="500"`` series appear late and ``increase()`` misses their
    first errors (the old count model, which handed the policy the served counts, was 25 pp off
    here). Level: 3.5 combined standard errors per informative iteration, as above. Mutation: the
    plan with every series existing from the start (no late children) must be caught."""
    s = _setup("production/error-regression-0.3pp", "flagger", "error-rate=+0.003", 300)
    right = plan_detection(s, paths=PATHS, seed=0, alpha=0.05)
    simulated = verify(s, right, seeds=60, workers=2)
    assert _max_z(simulated, right) <= 3.5

    def born_at_once(self: Family, k: int) -> None:
        self.samples[:, :, k] = self.now
        if self.owns_birth:
            self.born[self.born == self.k] = k

    monkeypatch.setattr(Family, "scrape", born_at_once)
    assert _max_z(simulated, plan_detection(s, paths=PATHS, seed=0, alpha=0.05)) > 3.5


VERIFIED = [
    ("production/latency-regression-3pct", "flagger", "mean-latency=+3%", 200),
    ("suite/aa", "sequential", "error-rate=+0.03", 20),
    ("production/aa", "flagger", "mean-latency=+128%", 100),
    ("suite/clearly-better", "sequential", "error-rate=+0.04", 10),
    ("suite/error-regression-high-traffic", "sequential", "error-rate=+0.02", 20),
    ("production/error-regression-0.3pp", "flagger", "error-rate=+0.003", 300),
    ("production/clearly-better-low-traffic", "sequential", "engagement-rate=-0.02", 200),
    ("production/latency-regression-3pct", "anytime", "mean-latency=+3%", 300),
    ("production/error-regression-0.3pp", "anytime", "error-rate=+0.003", 500),
]


@pytest.mark.bench
@pytest.mark.parametrize(("scenario", "strategy", "effect", "qps"), VERIFIED)
def test_plan_agrees_with_400_simulations_within_5_points(
    scenario: str, strategy: str, effect: str, qps: float
) -> None:
    """The README's table: 400 seeds against 4,000 rollouts, every informative iteration within
    5 percentage points and within 3.5 combined standard errors (about 5e-4 two-sided per row)."""
    s = _setup(scenario, strategy, effect, qps)
    planned = plan_detection(s, paths=4000, seed=0, alpha=0.05)
    rows = informative(verify(s, planned, seeds=400, workers=2))
    assert rows and max(abs(r.diff) for r in rows) <= 0.05
    assert (
        max(
            abs(r.diff) / math.sqrt(r.se**2 + max(r.predicted * (1 - r.predicted), 1e-4) / 4000) for r in rows
        )
        <= 3.5
    )
