"""``simkit run``: a scenario's experiment in simulation, with progress, description and files.

Writes to ``--out DIR``: ``status.yaml`` (the Experiment with its Iter8-shaped status, readable by
``simkit describe``), ``trace.csv`` (one row per iteration and version), ``metrics.om`` (the
scraped series) and ``rollout.png``. Each file is written to a temporary name and renamed, so an
interrupted run never leaves a half-written file. ``--check`` compares the outcome with the
scenario's ``expect`` block and exits 1 on a mismatch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from simkit.files import write_text_atomic
from simkit.records import IterationRecord, RunResult
from simkit.sim.experiment import SimRun, simulate_experiment, strategy_choice
from simkit.spec.bundle import Bundle, load_scenario
from simkit.strategies.options import StrategyOption, for_name, single_strategy
from simkit.views.describe import describe
from simkit.views.trace import require, status_yaml, trace_csv


def write_text(path: Path, text: str) -> None:
    write_text_atomic(path, text)


def write_outputs(run: SimRun, out: Path) -> list[Path]:
    # imported here: matplotlib alone costs more start-up than a whole seed run
    from simkit.tsdb.openmetrics import save_openmetrics
    from simkit.views.plots import plot_rollout

    out.mkdir(parents=True, exist_ok=True)
    files = [out / "status.yaml", out / "trace.csv", out / "metrics.om", out / "rollout.png"]
    write_text(files[0], status_yaml(run.result))
    write_text(files[1], trace_csv(run.result))
    save_openmetrics(run.world.tsdb, files[2])
    plot_rollout(run.result, run.prepared.plan, files[3])
    return files


def progress_line(rec: IterationRecord, total: int) -> str:
    weights = " ".join(f"{v}={w}" for v, w in (rec.weights_after or ()))
    verdict = "" if rec.decision.verdict == "continue" else f"  {rec.decision.verdict.upper()}"
    return (
        f"iteration {rec.iteration:>2}/{total}  elapsed {rec.elapsed:>4}s  weights {weights}  "
        f"winner {rec.decision.winner or '-'}{verdict}"
    )


def summary(result: RunResult) -> str:
    state = "failed" if result.failed else "rolled back" if result.rolled_back else "completed"
    weights = ", ".join(f"{v} {w}" for v, w in (result.final_weights or {}).items())
    lines = [
        f"{result.name}: {state} after {result.status.get('completedIterations', 0)} iterations "
        f"({result.message}); winner {result.winner or 'none'}; recommended for promotion "
        f"{result.vrfp}; final weights {weights}"
    ]
    for action in result.actions:
        for cmd in action.details.get("commands", []):
            lines.append(f"{action.action} action (recorded, not run): {cmd}")
    return "\n".join(lines)


def chosen_strategy(args: argparse.Namespace, bundle: Bundle) -> tuple[str, dict[str, Any]]:
    """The strategy and parameters of ``--strategy``/``--strategy-params``, else the scenario's,
    checked once against the plan so that a bad parameter names where it came from."""
    from simkit.prepare import prepare
    from simkit.strategies.base import create

    option: StrategyOption | None = single_strategy(args.strategy, args.strategy_params, None)
    if option is None:
        own = bundle.scenario.spec.strategy
        option = for_name(own.name if own else "iter8", args.strategy_params)
    name, params = strategy_choice(bundle, option.name if option else None, option.params if option else None)
    plan = prepare(bundle.experiment_document(), bundle.documents).plan
    own = bundle.scenario.spec.strategy
    if option is None or (option.params is None and own is not None and own.name == option.name):
        create(name, plan, params, bundle.scenario_doc.where)  # the scenario's spec.strategy
    else:
        create(name, plan, params, option.where, option.field_prefix)
    return name, params


def cmd_run(args: argparse.Namespace) -> int:
    from simkit.prepare import prepare

    bundle = load_scenario(args.scenario)
    name, params = chosen_strategy(args, bundle)
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    total = [0]

    def observe(rec: IterationRecord) -> None:
        if not args.quiet:
            console.print(progress_line(rec, total[0]))

    if not args.quiet:
        seed = args.seed if args.seed is not None else bundle.scenario.spec.seed
        console.print(f"[bold]simkit run[/bold] {bundle.name} (seed {seed}, strategy {name})")
    total[0] = prepare(bundle.experiment_document(), bundle.documents).plan.iterations
    from simkit.sim.engine import choose_engine

    engine = getattr(args, "engine", None)
    if not args.quiet:
        console.print(choose_engine(bundle, engine).describe())
    run = simulate_experiment(bundle, args.seed, name, params, observer=observe, engine=engine)
    fmt = getattr(args, "output", "table")
    if fmt == "table":
        print(describe(run.result.experiment_object))
        print(summary(run.result))
    else:
        from simkit.formats import render

        sys.stdout.write(render(run.result.experiment_object, fmt))
        if not args.quiet:
            console.print(summary(run.result), markup=False)
    if args.out:
        files = write_outputs(run, Path(args.out))
        if not args.quiet:
            console.print("wrote " + ", ".join(str(f) for f in files))
    if args.check:
        require(run.result, bundle.scenario.spec.expect, bundle.scenario_doc.where)
        if not args.quiet:
            console.print("[green]check passed[/green]: outcome matches spec.expect")
    return 0


def run_scenario(
    path: str | Path, seed: int | None = None, strategy: str | None = None, engine: str | None = None
) -> SimRun:
    """Library entry point: load and run a scenario, quietly."""
    return simulate_experiment(load_scenario(path), seed, strategy, engine=engine)
