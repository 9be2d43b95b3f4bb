"""The Pareto plot of ``simkit tune``: bad requests against time to decision and false rollback.

Two panels share the x axis (bad requests, pooled over the scenarios). Every candidate is a point
with its bootstrap 95% interval on both axes; infeasible candidates (false promotion above the
limit) are grey crosses, feasible ones dots, the Pareto front is ringed, the baseline is a
square and the chosen candidate a star. Matplotlib is imported only when a plot is drawn (the
command itself stays light), runs headless (Agg), and the file is written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from simkit.files import atomic_path

PANELS = (("time_to_decision", "time to decision (s)"), ("false_rollback", "false rollback rate"))


def _errors(frame: pd.DataFrame, column: str) -> Any:
    import numpy as np

    mean = frame[column].to_numpy(float)
    return np.vstack(
        [mean - frame[f"{column}_lo"].to_numpy(float), frame[f"{column}_hi"].to_numpy(float) - mean]
    )


def plot_pareto(table: pd.DataFrame, path: Path, title: str) -> None:
    """Draw the candidate table (see :func:`simkit.tune.search.score`) into ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), sharex=True)
    feasible = table[table["feasible"]]
    infeasible = table[~table["feasible"]]
    for ax, (column, label) in zip(axes, PANELS, strict=True):
        for frame, style in (
            (infeasible, {"fmt": "x", "color": "0.6", "label": "infeasible (false promotion)"}),
            (feasible, {"fmt": "o", "color": "C0", "label": "feasible"}),
        ):
            if frame.empty:
                continue
            ax.errorbar(
                frame["bad_requests"],
                frame[column],
                xerr=_errors(frame, "bad_requests"),
                yerr=_errors(frame, column),
                markersize=5,
                elinewidth=0.5,
                capsize=1.5,
                linestyle="none",
                **style,
            )
        front = table[table["pareto"]].sort_values("bad_requests")
        ax.scatter(
            front["bad_requests"],
            front[column],
            s=150,
            facecolors="none",
            edgecolors="C1",
            label="Pareto front",
        )
        base = table[table["candidate"] == "default"]
        ax.scatter(
            base["bad_requests"], base[column], marker="s", s=70, color="C3", label="default", zorder=3
        )
        chosen = table[table["chosen"]]
        ax.scatter(
            chosen["bad_requests"], chosen[column], marker="*", s=220, color="C2", label="chosen", zorder=4
        )
        for rec in table.to_dict("records"):
            ax.annotate(
                str(rec["candidate"]),
                (rec["bad_requests"], rec[column]),
                xytext=(4, 4),
                textcoords="offset points",
                fontsize=7,
            )
        ax.set_xlabel("bad requests (pooled over scenarios)", fontsize=9)
        ax.set_ylabel(label, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3, linewidth=0.5)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10, y=0.93)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    try:
        with atomic_path(path, ".png") as tmp:
            fig.savefig(tmp, dpi=110, metadata={"Software": None})
    finally:
        plt.close(fig)
