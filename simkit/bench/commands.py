"""``simkit bench``: run a sweep, print the summary table, write Parquet, CSV and PNG.

``simkit bench SCENARIOS... --strategies a,b,c --seeds N [--workers K | --dask-scheduler ADDR |
--dask-local] [--out DIR]``. A SCENARIOS argument is a scenario folder or file, or a folder of
scenario folders (``scenarios/suite``). Strategy parameters come from ``strategies.yaml`` next to
the scenarios (see :func:`simkit.bench.sweep.strategy_params`). Progress goes to stderr, the
table to stdout. ``--out DIR`` receives ``runs.parquet``/``runs.csv`` (one row per run),
``summary.parquet``/``summary.csv`` (means and bootstrap 95% intervals),
``trajectories.parquet`` (candidate weight per iteration), ``truth.csv`` (the ground truth of
every scenario), ``panel.png`` and ``weights.png``; each is written to a temporary file in DIR
and renamed, so an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from simkit.bench.evidence import Z_DECIDE
from simkit.bench.plots import plot_panel, plot_weights
from simkit.bench.summary import summarize, table_rows
from simkit.bench.sweep import SweepResult, run_sweep
from simkit.bench.truth import Truth
from simkit.errors import SpecError
from simkit.files import atomic_path
from simkit.formats import render
from simkit.strategies.options import StrategyOption, strategy_options


def _atomic(path: Path, write: Callable[[str], None]) -> None:
    with atomic_path(path) as tmp:
        write(tmp)


def truth_frame(truths: dict[str, Truth]) -> pd.DataFrame:
    rows = []
    for name, t in sorted(truths.items()):
        for v in t.versions:
            rows.append(
                {
                    "scenario": name,
                    "version": v,
                    "predictor": t.predictors[v],
                    "label": t.label,
                    "best": v in t.best,
                    "feasible": t.feasible[v],
                    "reward": t.rewards[v],
                    "error_rate": t.error_rates[v],
                    "horizon": t.horizon,
                    "z": t.z,
                    "decidable": t.decidable,
                    **{m: t.values[m][v] for m in t.values},
                }
            )
    return pd.DataFrame(rows)


def evidence_notes(truths: dict[str, Truth]) -> list[str]:
    """One line per scenario where a candidate is truly better but the horizon is too short to
    tell (simkit.bench.evidence): there, keeping the baseline scores as correct."""
    return [
        f"not enough evidence in {name} (ideal-test z {t.z:.2f} < {Z_DECIDE:.2f} over {t.horizon:g} s): "
        "keeping the baseline scores as correct"
        for name, t in sorted(truths.items())
        if t.label == "better" and not t.decidable
    ]


def write_results(result: SweepResult, summary: pd.DataFrame, out: Path) -> list[Path]:
    """Every output file of a sweep into ``out`` (created if needed), each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []

    def frame(df: pd.DataFrame, stem: str, csv: bool = True) -> None:
        target = out / f"{stem}.parquet"
        _atomic(target, lambda tmp: df.to_parquet(tmp, index=False))
        files.append(target)
        if csv:
            target = out / f"{stem}.csv"
            _atomic(target, lambda tmp: df.to_csv(tmp, index=False, float_format="%.10g"))
            files.append(target)

    frame(result.runs, "runs")
    frame(summary, "summary")
    frame(result.trajectories, "trajectories", csv=False)
    truth_csv = out / "truth.csv"
    _atomic(truth_csv, lambda tmp: truth_frame(result.truths).to_csv(tmp, index=False, float_format="%.10g"))
    files.append(truth_csv)
    plot_panel(summary, out / "panel.png")
    plot_weights(result.trajectories, out / "weights.png")
    files += [out / "panel.png", out / "weights.png"]
    return files


def print_table(summary: pd.DataFrame, console: Console) -> None:
    header, rows = table_rows(summary)
    table = Table(
        title="simkit bench: means with bootstrap 95% intervals",
        title_justify="left",
        show_lines=False,
        pad_edge=False,
    )
    for h in header:
        table.add_column(h, justify="left" if h in ("scenario", "strategy") else "right", no_wrap=True)
    last = None
    for row in rows:
        if last is not None and row[0] != last:
            table.add_section()
        table.add_row(*row)
        last = row[0]
    console.print(table)


def chosen_strategies(args: argparse.Namespace) -> tuple[list[str], dict[str, StrategyOption]]:
    """``--strategies a,b`` and every ``--strategy NAME[:k=v]``, in that order, each name once;
    ``--strategy-params`` applies to all of them."""
    names = [s.strip() for s in str(args.strategies or "").split(",") if s.strip()]
    if args.strategies is not None and not names:
        raise SpecError.from_cli("--strategies", "name at least one strategy")
    if not names and not args.strategy:
        names = ["iter8"]
    texts = list(dict.fromkeys(names)) + list(args.strategy or [])
    options = strategy_options(texts, args.strategy_params)
    by_name: dict[str, StrategyOption] = {}
    for option in options:
        earlier = by_name.get(option.name)
        if earlier is not None and earlier.params is not None and option.params is not None:
            raise SpecError.from_cli(
                "--strategy", f"{option.name} is given twice; a sweep runs each strategy once"
            )
        if earlier is None or option.params is not None:
            by_name[option.name] = option
    return list(by_name), by_name


def summary_rows(summary: pd.DataFrame) -> list[dict[str, object]]:
    """The ``-o json|yaml`` shape: one row per (scenario, strategy) and per strategy over ``ALL``:
    ``scenario, strategy, runs`` and, for each outcome, its mean with ``_lo``/``_hi`` bootstrap 95%
    bounds (NaN as null)."""
    return [dict(r) for r in summary.to_dict("records")]


def cmd_bench(args: argparse.Namespace) -> int:
    strategies, options = chosen_strategies(args)
    if args.seeds < 1:
        raise SpecError.from_cli("--seeds", "must be at least 1")
    if args.dask_scheduler and args.dask_local:
        raise SpecError.from_cli("--dask-local", "give either --dask-scheduler or --dask-local")
    if args.workers is not None and args.workers < 1:
        raise SpecError.from_cli("--workers", "must be at least 1")
    err = Console(stderr=True, highlight=False)
    quiet = bool(getattr(args, "quiet", False))
    with Progress(
        TextColumn("simkit bench"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=quiet,
        transient=False,
    ) as progress:
        task = progress.add_task("runs", total=None)

        def tick(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = run_sweep(
            args.scenarios,
            strategies,
            args.seeds,
            workers=args.workers,
            dask_scheduler=args.dask_scheduler,
            dask_local=args.dask_local,
            progress=tick,
            engine=getattr(args, "engine", None),
            options=options,
        )
    engines = result.runs.groupby("engine")["scenario"].unique() if len(result.runs) else {}
    for name, scenarios in dict(engines).items():
        err.print(f"engine {name}: {', '.join(sorted(map(str, scenarios)))}")
    for scenario, strategy, why in result.skipped:
        err.print(f"skipped {strategy} on {scenario}: {why}")
    if not quiet:
        for line in evidence_notes(result.truths):
            err.print(line)
    summary = summarize(result.runs)
    fmt = getattr(args, "output", "table")
    if fmt == "table":
        # as wide as the table needs: a narrower console would truncate the intervals
        out_console = Console(width=max(320, Console().width), highlight=False, soft_wrap=False)
        print_table(summary, out_console)
    else:
        sys.stdout.write(render(summary_rows(summary), fmt))
    if args.out:
        files = write_results(result, summary, Path(args.out))
        if not quiet:
            err.print("wrote " + ", ".join(str(f) for f in files))
    return 0
