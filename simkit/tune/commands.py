"""``simkit tune``: search a strategy's parameters over scenarios, print and plot the Pareto front.

``simkit tune SCENARIOS... --strategy NAME --space FILE [--budget N] [--seeds S] [--first-seed K]
[--seed X] [--max-false-promotion P] [--choose knee|bad_requests|...] [--workers W | --dask-local
| --dask-scheduler ADDR] [--out DIR] [-o table|json|yaml]``.

The baseline is the strategy as ``simkit bench`` would run it (``strategies.yaml`` next to the
scenarios, ``--strategy-params FILE``, or ``--strategy NAME:k=v``); the space file
(:mod:`simkit.tune.space`) says which parameters to vary. Every candidate runs on the same seeds
(common random numbers) through the bench sweep's executors; progress goes to stderr, the table
and the chosen ``strategies.yaml`` entry to stdout. ``--out DIR`` receives ``candidates.csv``
(the table), ``runs.parquet``/``runs.csv`` (one row per run, ``strategy`` = candidate),
``pareto.png`` and ``strategies.yaml`` (the chosen entry, ready for ``--strategy-params``), each
written atomically. Selecting on the same seeds that score the choice flatters it: confirm a
choice on held-out seeds with ``--first-seed`` (or ``simkit bench``).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml
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

from simkit.bench.summary import format_cell
from simkit.bench.sweep import make_executor
from simkit.errors import SpecError
from simkit.files import atomic_path, write_text_atomic
from simkit.formats import render
from simkit.strategies.base import available
from simkit.strategies.options import strategy_options
from simkit.tune.search import Candidate, TuneResult, chosen_params, run_tune
from simkit.tune.space import load_space

COLUMNS = (
    ("correct", "correct", True),
    ("false_promotion", "false promo", True),
    ("false_rollback", "false rollback", True),
    ("time_to_decision", "TTD s", False),
    ("bad_requests", "bad requests", False),
)


def check_args(args: argparse.Namespace) -> None:
    for option, value, minimum in (("--seeds", args.seeds, 1), ("--budget", args.budget, 1)):
        if value < minimum:
            raise SpecError.from_cli(option, f"must be at least {minimum}")
    if args.first_seed < 0:
        raise SpecError.from_cli("--first-seed", "must be 0 or more")
    if args.workers is not None and args.workers < 1:
        raise SpecError.from_cli("--workers", "must be at least 1")
    if args.dask_scheduler and args.dask_local:
        raise SpecError.from_cli("--dask-local", "give either --dask-scheduler or --dask-local")
    fp = args.max_false_promotion
    if fp is not None and not 0.0 <= fp <= 1.0:
        raise SpecError.from_cli("--max-false-promotion", f"must be a rate in [0, 1], got {fp}")


def entry_text(result: TuneResult, args: argparse.Namespace) -> str:
    """The chosen parameters as a ``strategies.yaml`` entry, with where they came from."""
    rec = result.table[result.table["chosen"]].iloc[0]
    scenarios = " ".join(map(str, args.scenarios))
    seeds = f"{args.first_seed}..{args.first_seed + args.seeds - 1}"
    head = (
        f"# simkit tune {scenarios} --strategy {args.strategy} --space {args.space} --seed {args.seed}\n"
        f"# chosen {result.chosen} ({args.choose}) of {len(result.candidates)} candidates, seeds {seeds}: "
        f"bad requests {rec['bad_requests']:.4g}, false promotion {rec['false_promotion']:.3f} "
        f"(limit {result.limit:.3f}), false rollback {rec['false_rollback']:.3f}, "
        f"time to decision {rec['time_to_decision']:.4g} s\n"
    )
    return f"{head}{params_yaml(result.strategy, chosen_params(result))}"


def params_yaml(strategy: str, params: dict[str, Any]) -> str:
    """``strategy:`` and its parameters in block style; a list of scalars stays on one line."""
    if not params:
        return f"{strategy}: {{}}\n"
    lines = [f"{strategy}:"]
    for key, value in params.items():
        flat = isinstance(value, list) and all(isinstance(v, int | float | str | bool) for v in value)
        if flat or isinstance(value, int | float | bool):
            lines.append(f"  {key}: {json.dumps(value)}")
        else:
            text = yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=False)
            lines.append(textwrap.indent(text, "  ").rstrip("\n"))
    return "\n".join(lines) + "\n"


def print_table(result: TuneResult, console: Console) -> None:
    table = Table(
        title=f"simkit tune {result.strategy}: pooled means with bootstrap 95% intervals; "
        f"false promotion limit {result.limit:.3f}; delta = paired difference from the default",
        title_justify="left",
        pad_edge=False,
    )
    for h in ("", "candidate", "params") + tuple(h for _, h, _ in COLUMNS) + ("delta bad requests", "front"):
        table.add_column(
            h, justify="left" if h in ("", "candidate", "params", "front") else "right", no_wrap=True
        )
    for rec in result.table.sort_values("bad_requests", kind="stable").to_dict("records"):
        cells = ["*" if rec["chosen"] else "", str(rec["candidate"]), str(rec["params"])]
        for column, _, rate in COLUMNS:
            cells.append(format_cell(rec[column], rec[f"{column}_lo"], rec[f"{column}_hi"], rate))
        d = "delta_bad_requests"
        cells.append(
            "-"
            if rec["candidate"] == "default"
            else format_cell(rec[d], rec[d + "_lo"], rec[d + "_hi"], False)
        )
        cells.append("front" if rec["pareto"] else ("" if rec["feasible"] else "infeasible"))
        table.add_row(*cells)
    console.print(table)


def rows(result: TuneResult, args: argparse.Namespace) -> dict[str, Any]:
    """The ``-o json|yaml`` shape (README, "Machine-readable output")."""
    points = {c.label: c.point for c in result.candidates}
    candidates = []
    for rec in result.table.to_dict("records"):
        candidates.append({"candidate": rec["candidate"], "point": points[rec["candidate"]], **rec})
    return {
        "strategy": result.strategy,
        "scenarios": sorted(result.sweep.truths),
        "seeds": args.seeds,
        "first_seed": args.first_seed,
        "seed": args.seed,
        "false_promotion_limit": result.limit,
        "chosen": result.chosen,
        "chosen_params": chosen_params(result),
        "candidates": candidates,
    }


def write_outputs(result: TuneResult, args: argparse.Namespace, out: Path) -> list[Path]:
    from simkit.tune.plots import plot_pareto

    out.mkdir(parents=True, exist_ok=True)
    files = [
        out / "candidates.csv",
        out / "runs.parquet",
        out / "runs.csv",
        out / "pareto.png",
        out / "strategies.yaml",
    ]
    with atomic_path(files[0]) as tmp:
        result.table.to_csv(tmp, index=False, float_format="%.10g")
    with atomic_path(files[1]) as tmp:
        result.sweep.runs.to_parquet(tmp, index=False)
    with atomic_path(files[2]) as tmp:
        result.sweep.runs.to_csv(tmp, index=False, float_format="%.10g")
    title = f"simkit tune {result.strategy} on {' '.join(map(str, args.scenarios))} ({args.seeds} seeds)"
    plot_pareto(result.table, files[3], title)
    write_text_atomic(files[4], entry_text(result, args))
    return files


def cmd_tune(args: argparse.Namespace) -> int:
    check_args(args)
    (option,) = strategy_options([args.strategy], args.strategy_params)
    if option.name not in available():
        raise SpecError.from_cli(
            "--strategy", f"unknown strategy {option.name!r}; known: {', '.join(sorted(available()))}"
        )
    space = load_space(args.space)
    err = Console(stderr=True, highlight=False)
    quiet = bool(args.quiet)

    def planned(candidates: list[Candidate], total: int) -> None:
        if not quiet:
            sampled = f" (a seeded sample of the {space.size}-point grid)" if space.size > args.budget else ""
            err.print(f"{len(candidates)} candidates{sampled} x {args.seeds} seeds: {total} runs")

    with Progress(
        TextColumn("simkit tune"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=quiet,
    ) as progress:
        bar = progress.add_task("runs", total=None)
        with make_executor(args.workers, args.dask_scheduler, args.dask_local) as executor:
            result = run_tune(
                args.scenarios,
                option.name,
                space,
                executor=executor,
                budget=args.budget,
                seeds=args.seeds,
                first_seed=args.first_seed,
                seed=args.seed,
                max_false_promotion=args.max_false_promotion,
                how=args.choose,
                baseline=option if option.params is not None else None,
                engine=args.engine,
                progress=lambda done, total: progress.update(bar, completed=done, total=total),
                on_plan=planned,
            )
    for scenario, strategy, why in result.sweep.skipped:
        err.print(f"skipped {strategy} on {scenario}: {why}")
    if args.output == "table":
        console = Console(width=max(240, Console().width), highlight=False, soft_wrap=False)
        print_table(result, console)
        sys.stdout.write(entry_text(result, args))
    else:
        sys.stdout.write(render(rows(result, args), args.output))
    if args.out:
        files = write_outputs(result, args, Path(args.out))
        if not quiet:
            err.print("wrote " + ", ".join(map(str, files)))
    return 0
