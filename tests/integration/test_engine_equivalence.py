"""The counts engine is the event engine's world: a statistical test over every scenario, and
mutation checks that prove the test can fail.

Level: the family is every test of every scenario below; Bonferroni at family-wise alpha = 0.01
(each scenario gets alpha / number of scenarios, split again over its own tests). Each test
compares the two engines' per-seed statistics (:mod:`tests.support.equivalence`): per window of
every series group, and pooled over the run; means (Welch) and spreads (Brown–Forsythe). Seeds of
the two engines are disjoint, so the samples are independent.

Mutation checks use the same machinery at the same per-scenario level, with enough seeds to have
power, and first show that the unmutated pair passes at those seeds: a 2% latency shift, a 10%
higher error rate, and arrivals without Poisson noise (a counts engine that draws too little
noise), each in the counts engine only, must be rejected.

``make test`` runs the fast version; ``make bench`` (marker ``bench``) runs more seeds and longer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simkit.sim.counts import CountsWorld
from simkit.sim.engine import AnyWorld
from simkit.spec.bundle import load_scenario
from simkit.spec.scenario import Errors
from tests.support.equivalence import Sample, collect, comparisons, failures

ROOT = Path(__file__).resolve().parents[2] / "scenarios"
SCENARIOS = sorted(
    [p for p in ROOT.iterdir() if (p / "scenario.yaml").is_file()]
    + [p for p in (ROOT / "suite").iterdir() if (p / "scenario.yaml").is_file()]
    + [p for p in (ROOT / "production").iterdir() if (p / "scenario.yaml").is_file()]
)
ALPHA = 0.01
PER_SCENARIO = ALPHA / len(SCENARIOS)


def _plan(path: Path, scale: int) -> tuple[int, float]:
    """(seeds, duration): production scenarios are 1,000x the traffic, so fewer, shorter runs."""
    if path.parent.name == "production":
        return 6 * scale, 60.0 * scale
    return 30 * scale, 150.0


def _compare(path: Path, scale: int) -> tuple[list[str], int]:
    bundle = load_scenario(path)
    seeds, duration = _plan(path, scale)
    events = collect(bundle, "events", range(seeds), duration, split_at=duration / 3)
    counts = collect(bundle, "counts", range(10_000, 10_000 + seeds), duration, split_at=duration / 3)
    tests = comparisons(events, counts)
    return [f"{t.name}: p={t.p:.3g} ({t.detail})" for t in failures(tests, PER_SCENARIO)], len(tests)


def test_every_scenario_is_compared() -> None:
    names = {p.name for p in SCENARIOS}
    assert {"iris-abtest", "aa", "three-versions", "night-trough", "peak-only-regression"} <= names
    assert len(SCENARIOS) >= 26


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_engines_agree(path: Path) -> None:
    bad, n = _compare(path, 1)
    assert n > 0
    assert not bad, f"{len(bad)} of {n} tests reject at family-wise {ALPHA}:\n" + "\n".join(bad[:20])


@pytest.mark.bench
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_engines_agree_more_seeds(path: Path) -> None:
    bad, n = _compare(path, 3)
    assert not bad, f"{len(bad)} of {n} tests reject at family-wise {ALPHA}:\n" + "\n".join(bad[:20])


# --- mutation checks ---------------------------------------------------------------------------
def _check(path: Path, seeds: int, duration: float, mutate: object, expect: str) -> None:
    bundle = load_scenario(path)
    events = collect(bundle, "events", range(seeds), duration, split_at=duration / 3)
    clean = collect(bundle, "counts", range(10_000, 10_000 + seeds), duration, split_at=duration / 3)
    mutated: Sample = collect(
        bundle, "counts", range(10_000, 10_000 + seeds), duration, split_at=duration / 3, mutate=mutate
    )  # type: ignore[arg-type]
    assert not failures(comparisons(events, clean), PER_SCENARIO), "the unmutated engines must agree here"
    caught = failures(comparisons(events, mutated), PER_SCENARIO)
    assert any(expect in t.name for t in caught), f"mutation not caught by a {expect!r} test: {caught[:5]}"


def _each_predictor(world: AnyWorld, change: object) -> None:
    for sim in world.predictors.values():
        sim.set_behaviour(change(sim.behaviour))  # type: ignore[operator]


def test_mutation_latency_two_percent_slower_is_caught() -> None:
    def slower(world: AnyWorld) -> None:
        _each_predictor(world, lambda b: b.model_copy(update={"latencyFactor": b.latencyFactor * 1.02}))

    _check(ROOT / "suite" / "error-regression-high-traffic", 60, 150.0, slower, "mean pooled")


def test_mutation_ten_percent_more_errors_is_caught() -> None:
    def more_errors(world: AnyWorld) -> None:
        def bump(b):  # type: ignore[no-untyped-def]
            table = dict(b.errors.table())
            return b.model_copy(
                update={"errors": Errors(codes={c: min(1.0, r * 1.1) for c, r in table.items()})}
            )

        _each_predictor(world, bump)

    _check(ROOT / "iris-rollback", 120, 150.0, more_errors, "error-fraction pooled")


class _MeanArrivals:
    """A generator whose Poisson draws are their mean: arrivals without noise."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng

    def poisson(self, lam: float) -> int:
        return int(round(lam))

    def __getattr__(self, name: str) -> object:
        return getattr(self._rng, name)


def test_mutation_too_little_noise_is_caught() -> None:
    def no_noise(world: AnyWorld) -> None:
        assert isinstance(world, CountsWorld)
        world._load_rng = {k: _MeanArrivals(r) for k, r in world._load_rng.items()}  # type: ignore[misc]

    _check(ROOT / "suite" / "error-regression-high-traffic", 30, 150.0, no_noise, "spread")
