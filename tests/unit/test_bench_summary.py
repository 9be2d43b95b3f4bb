"""Bootstrap intervals, the pooled ALL row, seeds and scenario discovery of the bench."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simkit.bench.outcomes import OUTCOME_COLUMNS
from simkit.bench.summary import ALL, bootstrap, pooled, summarize, table_rows
from simkit.bench.sweep import derive_seed, expand_scenarios, strategy_params

ROOT = Path(__file__).resolve().parents[2]


def test_bootstrap_of_a_constant_is_that_constant() -> None:
    assert bootstrap(np.full(30, 2.5), np.random.default_rng(0)) == (2.5, 2.5, 2.5)


def test_bootstrap_interval_matches_the_normal_approximation_for_a_proportion() -> None:
    rng = np.random.default_rng(11)
    values = (rng.random(400) < 0.3).astype(float)
    mean, lo, hi = bootstrap(values, np.random.default_rng(5), resamples=4000)
    assert mean == pytest.approx(values.mean())
    se = np.sqrt(mean * (1 - mean) / len(values))
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert lo < mean < hi


def test_bootstrap_is_seeded() -> None:
    values = np.arange(20, dtype=float)
    assert bootstrap(values, np.random.default_rng(3)) == bootstrap(values, np.random.default_rng(3))


def runs_frame() -> pd.DataFrame:
    """Two strategies on scenario s1, only one of them on s2 (as A/B/N is skipped by canaries)."""
    rows = []
    for scenario, strategies in (("s1", ("a", "b")), ("s2", ("a",))):
        for strategy in strategies:
            for i in range(4):
                rows.append(
                    {c: 0 for c in OUTCOME_COLUMNS}
                    | {
                        "scenario": scenario,
                        "strategy": strategy,
                        "seed_index": i,
                        "correct": i % 2 == 0,
                        "regret": float(i + (10 if strategy == "b" else 0)),
                        "time_to_decision": 10.0 * i,
                    }
                )
    return pd.DataFrame(rows)


def test_summary_cells_and_the_pooled_row_use_only_common_scenarios() -> None:
    runs = runs_frame()
    pool = pooled(runs)
    assert set(pool["scenarios"]) == {1}  # s2 was not run by b, so ALL covers s1 only
    summary = summarize(runs, resamples=200)
    cell = summary[(summary.scenario == "s1") & (summary.strategy == "b")].iloc[0]
    assert cell["regret"] == pytest.approx(np.mean([10, 11, 12, 13]))
    assert cell["correct"] == pytest.approx(0.5)
    assert cell["runs"] == 4
    all_a = summary[(summary.scenario == ALL) & (summary.strategy == "a")].iloc[0]
    assert all_a["regret"] == pytest.approx(np.mean([0, 1, 2, 3]))
    assert summarize(runs, resamples=200).equals(summary)  # seeded: byte-identical
    header, rows = table_rows(summary)
    assert header[:3] == ["scenario", "strategy", "runs"]
    assert rows[0][3] == "0.50 [" + rows[0][3].split("[")[1]


def test_seeds_are_derived_from_scenario_strategy_and_index() -> None:
    assert derive_seed("s", "a", 3) == derive_seed("s", "a", 3)
    assert derive_seed("s", "a", 3) == derive_seed("s", "b", 3)  # common random numbers
    assert derive_seed("s", "a", 3, common_random_numbers=False) != derive_seed(
        "s", "b", 3, common_random_numbers=False
    )
    assert (
        len({derive_seed("s", "a", i) for i in range(100)} | {derive_seed("t", "a", i) for i in range(100)})
        == 200
    )


def test_suite_folder_expands_and_carries_strategy_params() -> None:
    suite = ROOT / "scenarios" / "suite"
    folders = expand_scenarios([suite])
    assert [f.name for f in folders][:2] == ["aa", "better-reward-failing-objective"]
    assert len(folders) == 11
    params = strategy_params(folders[0])
    assert params["flagger"]["stepWeight"] == 10
    assert params["sequential"]["metrics"]["requests"] == "bench/request-count"
    assert expand_scenarios([ROOT / "scenarios" / "iris-abtest"]) == [ROOT / "scenarios" / "iris-abtest"]
