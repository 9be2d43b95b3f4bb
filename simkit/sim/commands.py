"""``simkit sim``: run the world with the manifests' traffic weights (no experiment loop)."""

from __future__ import annotations

import argparse
import sys

from simkit.sim.engine import AnyWorld, choose_engine
from simkit.sim.world import simulate
from simkit.spec.bundle import load_scenario
from simkit.spec.quantity import duration_option
from simkit.tsdb.openmetrics import save_openmetrics


def summary(world: AnyWorld) -> str:
    lines = [
        f"scenario {world.bundle.name} (engine {world.engine}): simulated {world.now - world.begin:g}s "
        f"(sim time {world.begin:g}s to {world.now:g}s), {world.scrapes} scrapes, "
        f"{len(world.tsdb)} series, {world.tsdb.sample_count()} samples",
        f"{'predictor':<40} {'predictions':>11} {'errors':>7} {'feedback':>9} {'mean latency':>13}",
    ]
    for key in sorted(world.predictors):
        t = world.predictors[key].truth
        mean = f"{t.latency_sum / t.predictions * 1000:.2f} ms" if t.predictions else "-"
        lines.append(f"{key:<40} {t.predictions:>11} {t.errors:>7} {t.feedback:>9} {mean:>13}")
    return "\n".join(lines)


def summary_document(world: AnyWorld) -> dict[str, object]:
    """The ``-o json|yaml`` shape of :func:`summary`."""
    predictors = []
    for key in sorted(world.predictors):
        t = world.predictors[key].truth
        mean = t.latency_sum / t.predictions if t.predictions else None
        predictors.append(
            {
                "predictor": key,
                "predictions": t.predictions,
                "errors": t.errors,
                "feedback": t.feedback,
                "meanLatencySeconds": mean,
            }
        )
    return {
        "scenario": world.bundle.name,
        "engine": world.engine,
        "seed": world.seed,
        "begin": world.begin,
        "end": world.now,
        "scrapes": world.scrapes,
        "series": len(world.tsdb),
        "samples": world.tsdb.sample_count(),
        "predictors": predictors,
    }


def cmd_sim(args: argparse.Namespace) -> int:
    duration = duration_option("--duration", args.duration)
    engine = getattr(args, "engine", None)
    choice = choose_engine(load_scenario(args.scenario), engine)
    world = simulate(args.scenario, duration, args.seed, choice.name)
    if not getattr(args, "quiet", False):
        print(choice.describe(), file=sys.stderr)
    save_openmetrics(world.tsdb, args.out)
    fmt = getattr(args, "output", "table")
    if fmt == "table":
        print(summary(world))
    else:
        from simkit.formats import render

        sys.stdout.write(render(summary_document(world), fmt))
    if not getattr(args, "quiet", False):
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
