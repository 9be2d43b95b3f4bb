"""rollout.png: the weights over time, with the metrics that drove them.

Top panel: each version's weight (step plot, read back after every iteration), the winner per
iteration as marks, and a red line where a rollback happened. Below: the reward metric(s), then
each objective's metric with its limits, per version. Matplotlib with the Agg backend, no screen.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from simkit.files import atomic_path  # noqa: E402
from simkit.records import RunResult  # noqa: E402
from simkit.strategies.base import Plan  # noqa: E402


def plot_rollout(result: RunResult, plan: Plan, path: str | Path) -> None:
    recs = result.iterations
    panels = (
        [("weights", None)]
        + [(r.metric, None) for r in plan.rewards]
        + [(o.metric, o) for o in plan.objectives]
    )
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.1 * len(panels) + 0.8), sharex=True, squeeze=False)
    start = result.start_time or (recs[0].time if recs else 0.0)
    xs = [r.time - start for r in recs]
    colors = {v: f"C{i}" for i, v in enumerate(result.versions)}
    ax = axes[0][0]
    for v in result.versions:
        ys = [dict(r.weights_after or ()).get(v, float("nan")) for r in recs]
        ax.step(xs, ys, where="post", label=v, color=colors[v], linewidth=2)
        won = [x for x, r in zip(xs, recs, strict=True) if r.decision.winner == v]
        ax.plot(won, [103] * len(won), "v", color=colors[v], markersize=5)
    if result.rolled_back and recs:
        ax.axvline(xs[-1], color="red", linestyle="--", label="rollback")
    ax.set_ylim(-3, 108)
    ax.set_ylabel("weight %")
    ax.set_title(
        f"{result.namespace}/{result.name} · strategy {result.strategy} · "
        f"{'rolled back' if result.rolled_back else 'failed' if result.failed else 'winner ' + str(result.winner)}"
    )
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    for (metric, objective), row in zip(panels[1:], axes[1:], strict=True):
        ax = row[0]
        seen: list[float] = []
        for v in result.versions:
            readings = [r.readings.get(metric, {}).get(v) for r in recs]
            values = [float("nan") if y is None or y.value is None else y.value for y in readings]
            seen += [x for x in values if x == x]
            ax.plot(xs, values, marker=".", color=colors[v], label=v)
        top = max((abs(x) for x in seen), default=0.0)
        unit = plan.metric_units.get(metric)
        ax.set_ylabel(metric.split("/")[-1] + (f"\n({unit})" if unit else ""), fontsize=8)
        if objective is not None:
            for limit, style in ((objective.upper_limit, "upper"), (objective.lower_limit, "lower")):
                if limit is None:
                    continue
                if top and abs(limit) > 20 * top:
                    # a limit far off the data's scale (the seed's ms limits on seconds values)
                    ax.annotate(
                        f"{style} limit {limit:g} (off scale)",
                        (0.99, 0.85),
                        xycoords="axes fraction",
                        ha="right",
                        fontsize=7,
                        color="grey",
                    )
                    continue
                ax.axhline(limit, color="grey", linestyle=":", linewidth=1)
                ax.annotate(
                    f"{style} limit {limit:g}",
                    (0.99, 0.85),
                    xycoords="axes fraction",
                    ha="right",
                    fontsize=7,
                    color="grey",
                )
    axes[-1][0].set_xlabel("seconds since the first iteration")
    fig.tight_layout()
    try:
        with atomic_path(path, ".png") as tmp:
            fig.savefig(tmp, dpi=90, metadata={"Software": None})
    finally:
        plt.close(fig)
