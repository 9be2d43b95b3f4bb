"""Benchmark plots: a strategy x metric panel, and candidate-weight trajectories.

* ``panel.png``: one subplot per outcome metric; scenarios along x, one bar per strategy with its
  bootstrap 95% interval. Lower is better everywhere except "correct".
* ``weights.png``: one subplot per scenario; per strategy the median candidate weight (total
  weight of all candidates) over time with the 10-90% band across seeds. The last point of every
  run is the decision held to the horizon (100 = promoted, 0 = baseline kept).

Matplotlib runs headless (Agg) and files are written to a temporary name and renamed.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from simkit.bench.summary import ALL, METRICS  # noqa: E402
from simkit.files import atomic_path  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> None:
    try:
        with atomic_path(path, ".png") as tmp:
            fig.savefig(tmp, dpi=110, metadata={"Software": None})
    finally:
        plt.close(fig)


def plot_panel(summary: pd.DataFrame, path: Path) -> None:
    """Grouped bars with intervals: metrics as subplots, scenarios on x, strategies as bars."""
    frame = summary[summary["scenario"] != ALL]
    scenarios = sorted(frame["scenario"].unique())
    strategies = sorted(frame["strategy"].unique())
    cols = 2
    rows = math.ceil(len(METRICS) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 2.8 * rows), squeeze=False)
    width = 0.8 / max(len(strategies), 1)
    x = np.arange(len(scenarios))
    for k, (column, title, _) in enumerate(METRICS):
        ax = axes[k // cols][k % cols]
        for j, strategy in enumerate(strategies):
            sub = frame[frame["strategy"] == strategy].set_index("scenario").reindex(scenarios)
            mean = sub[column].to_numpy(dtype=float)
            err = np.vstack(
                [
                    mean - sub[f"{column}_lo"].to_numpy(dtype=float),
                    sub[f"{column}_hi"].to_numpy(dtype=float) - mean,
                ]
            )
            ax.bar(
                x + (j - (len(strategies) - 1) / 2) * width,
                mean,
                width,
                yerr=np.nan_to_num(err),
                label=strategy,
                capsize=1.5,
                error_kw={"linewidth": 0.6},
            )
        ax.set_title(title + (" (higher is better)" if column == "correct" else ""), fontsize=9)
        ax.set_xticks(x)
        ax.set_xticklabels([s.removeprefix("suite-") for s in scenarios], rotation=35, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    for k in range(len(METRICS), rows * cols):
        axes[k // cols][k % cols].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(strategies), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    _save(fig, path)


def plot_weights(trajectories: pd.DataFrame, path: Path) -> None:
    """Median candidate weight over time per strategy, with the 10-90% band across seeds."""
    scenarios = sorted(trajectories["scenario"].unique())
    strategies = sorted(trajectories["strategy"].unique())
    cols = min(3, max(len(scenarios), 1))
    rows = max(1, math.ceil(len(scenarios) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 2.6 * rows), squeeze=False, sharey=True)
    colors = {s: f"C{i}" for i, s in enumerate(strategies)}
    for k, scenario in enumerate(scenarios):
        ax = axes[k // cols][k % cols]
        sub = trajectories[trajectories["scenario"] == scenario]
        for strategy in strategies:
            grid = _on_grid(sub[sub["strategy"] == strategy])
            if grid is None:
                continue
            times, values = grid
            ax.plot(times, np.median(values, axis=0), color=colors[strategy], label=strategy, linewidth=1.2)
            ax.fill_between(
                times,
                np.percentile(values, 10, axis=0),
                np.percentile(values, 90, axis=0),
                color=colors[strategy],
                alpha=0.12,
                linewidth=0,
            )
        ax.set_title(scenario.removeprefix("suite-"), fontsize=9)
        ax.set_ylim(-3, 103)
        ax.tick_params(labelsize=7)
    for k in range(len(scenarios), rows * cols):
        axes[k // cols][k % cols].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(strategies), fontsize=8)
    fig.supxlabel("seconds since the experiment started", fontsize=8)
    fig.supylabel("candidate weight %", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    _save(fig, path)


def _on_grid(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """Each run's step function (weight held until the next change) sampled on a common time grid."""
    if frame.empty:
        return None
    horizon = float(frame["t"].max())
    times = np.linspace(0.0, horizon, 61)
    curves = []
    for _, run in frame.groupby("seed_index", sort=True):
        t = run["t"].to_numpy(dtype=float)
        w = run["candidate_weight"].to_numpy(dtype=float)
        pos = np.clip(np.searchsorted(t, times, side="right") - 1, 0, len(t) - 1)
        curves.append(w[pos])
    return times, np.asarray(curves)
