"""Per scenario and strategy: each outcome metric's mean with a seeded bootstrap 95% interval.

Intervals are percentile bootstrap intervals over the runs (seeds) of a cell, the same
resampling for every metric of the cell, with ``B`` resamples drawn from a generator seeded by
(scenario, strategy): the summary of a given set of runs is byte-identical every time. For rates
(0/1 outcomes) the interval is the bootstrap of a proportion; with 100 seeds and a rate of 0 it
is [0, 0], so read "0 of 100" as "below about 3% at 95%" (rule of three), not as zero.

The ``ALL`` row of a strategy pools the scenarios that *every* strategy of the sweep ran (the
one-canary strategies skip A/B/N scenarios, and a fair comparison needs the same scenarios):
per seed index, rates are averaged over those scenarios and counts (regret, bad requests,
excess errors) are summed; the bootstrap then resamples seed indices, keeping each seed's
scenarios together (they share no randomness, so this is the usual i.i.d. bootstrap over seeds).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from simkit.spec.streams import seed_from_names

METRICS: tuple[tuple[str, str, str], ...] = (
    # column, short header, how it pools over scenarios in the ALL row
    ("correct", "correct", "mean"),
    ("false_promotion", "false promo", "mean"),
    ("false_rollback", "false rollback", "mean"),
    ("time_to_decision", "TTD s", "mean"),
    ("regret", "regret", "sum"),
    ("bad_requests", "bad requests", "sum"),
    ("excess_errors", "excess errors", "sum"),
)
ALL = "ALL"
RESAMPLES = 2000


def bootstrap(
    values: npt.NDArray[np.float64],
    rng: np.random.Generator,
    resamples: int = RESAMPLES,
    index: npt.NDArray[np.int64] | None = None,
) -> tuple[float, float, float]:
    """(mean, 2.5th, 97.5th percentile of resampled means); ``index`` reuses a resampling."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    idx = index if index is not None else rng.integers(0, n, size=(resamples, n))
    means = values[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(values.mean()), float(lo), float(hi)


def _rng(*names: str) -> np.random.Generator:
    return np.random.default_rng(seed_from_names(*names))


def _cell(frame: pd.DataFrame, scenario: str, strategy: str, resamples: int) -> dict[str, object]:
    rng = _rng(scenario, strategy)
    n = len(frame)
    index = rng.integers(0, n, size=(resamples, n)) if n else None
    row: dict[str, object] = {"scenario": scenario, "strategy": strategy, "runs": n}
    for column, _, _ in METRICS:
        mean, lo, hi = bootstrap(frame[column].to_numpy(dtype=np.float64), rng, resamples, index)
        row[column], row[f"{column}_lo"], row[f"{column}_hi"] = mean, lo, hi
    return row


def pooled(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (strategy, seed index) over the scenarios every strategy ran (see module doc)."""
    strategies = sorted(runs["strategy"].unique())
    by_scenario = runs.groupby("scenario")["strategy"].apply(lambda s: set(s))
    common = sorted(sc for sc, names in by_scenario.items() if set(strategies) <= names)
    sub = runs[runs["scenario"].isin(common)]
    how = {column: agg for column, _, agg in METRICS}
    out = sub.groupby(["strategy", "seed_index"], sort=True).agg(how).reset_index()
    out["scenarios"] = len(common)
    return out


def summarize(runs: pd.DataFrame, resamples: int = RESAMPLES) -> pd.DataFrame:
    """The summary table: one row per (scenario, strategy), plus an ``ALL`` row per strategy."""
    rows = []
    for (scenario, strategy), frame in runs.groupby(["scenario", "strategy"], sort=True):
        rows.append(_cell(frame, str(scenario), str(strategy), resamples))
    if runs["scenario"].nunique() > 1:
        pool = pooled(runs)
        for strategy, frame in pool.groupby("strategy", sort=True):
            rows.append(_cell(frame, ALL, str(strategy), resamples))
    return pd.DataFrame(rows)


def format_cell(mean: float, lo: float, hi: float, rate: bool) -> str:
    if np.isnan(mean):
        return "-"
    if rate:
        return f"{mean:.2f} [{lo:.2f},{hi:.2f}]"
    return f"{mean:.3g} [{lo:.3g},{hi:.3g}]"


def table_rows(summary: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Header and text rows for printing (rates to 2 decimals, others to 3 significant digits)."""
    header = ["scenario", "strategy", "runs"] + [h for _, h, _ in METRICS]
    rows = []
    for rec in summary.to_dict("records"):
        cells = [str(rec["scenario"]).removeprefix("suite-"), str(rec["strategy"]), str(rec["runs"])]
        for column, _, _ in METRICS:
            rate = column in ("correct", "false_promotion", "false_rollback")
            cells.append(
                format_cell(float(rec[column]), float(rec[f"{column}_lo"]), float(rec[f"{column}_hi"]), rate)
            )
        rows.append(cells)
    return header, rows
