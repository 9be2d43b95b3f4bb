"""Score every candidate of a search space with the bench sweep, on common random numbers.

Why a grid and not optuna (or another Bayesian optimiser): a rollout policy's parameters are few
and discrete (Flagger: ``stepWeight``, ``maxWeight``, ``threshold``, a ``stepWeights`` ladder), so
a grid of a few dozen points covers the space people actually choose from; the answer is a Pareto
*front*, which needs every point scored anyway, not one optimum; and a grid is one batch, so the
whole search goes to the process pool or Dask at once (a sequential sampler such as TPE would leave
workers idle between its suggestions), and its result cannot depend on the number of workers or
on completion order. When the grid exceeds ``--budget``, a seeded uniform sample of it is scored
(random search, which matches or beats a coarse grid for the same budget: Bergstra and Bengio
2012). No new dependency.

Scoring reuses :mod:`simkit.bench.sweep` unchanged in spirit: each candidate is planned by
:func:`~simkit.bench.sweep.plan_tasks` (which also validates its parameters with the strategy, so
a bad value is reported at the space file and field before anything runs), its tasks are labelled
with the candidate's name, and all candidates' tasks go to one executor. World seeds come from
(scenario, seed index) only, so every candidate, the baseline included, sees the same traffic,
latency and error streams (common random numbers): differences between candidates are the
policy's, and the paired deltas against the baseline are tight.

A candidate's parameters are the baseline's (``strategies.yaml`` next to the scenarios, or
``--strategy-params``) with the space's point laid over them, so a space that names only
``threshold`` keeps the defaults' ``stepWeight``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simkit.bench.summary import ALL, METRICS, pooled, summarize
from simkit.bench.sweep import (
    SweepResult,
    Task,
    collect,
    execute,
    expand_scenarios,
    plan_tasks,
    strategy_params,
)
from simkit.bench.truth import Truth
from simkit.errors import Location, SpecError
from simkit.sim.experiment import strategy_choice
from simkit.spec.bundle import load_scenario
from simkit.spec.streams import seed_from_names
from simkit.strategies.options import StrategyOption
from simkit.tune.pareto import OBJECTIVES, choose, false_promotion_limit, paired_delta, pareto_mask
from simkit.tune.space import Space, describe

BASELINE = "default"


@dataclass(frozen=True)
class Candidate:
    label: str  # "default", "c01", ...: the runs' strategy column
    point: dict[str, Any]  # the space's values ({} for the baseline)


@dataclass
class TuneResult:
    strategy: str
    candidates: list[Candidate]
    base_params: dict[str, dict[str, Any]]  # scenario path -> the baseline's parameters there
    sweep: SweepResult
    table: pd.DataFrame  # one row per candidate: pooled means, intervals, deltas, feasible, pareto
    chosen: str  # label of the chosen candidate
    limit: float  # the false-promotion bound


def make_candidates(space: Space, budget: int, seed: int, baseline: Mapping[str, Any]) -> list[Candidate]:
    """The baseline, then the space's points (a point that *is* the baseline is not run twice)."""
    out = [Candidate(BASELINE, {})]
    width = len(str(max(1, min(space.size, budget))))
    for point in space.candidates(budget, seed):
        if all(baseline.get(k) == v for k, v in point.items()):
            continue
        out.append(Candidate(f"c{len(out):0{width}d}", point))
    return out


class _SpaceOption(StrategyOption):
    """A candidate's parameters: a bad value is reported at the space file's own field name."""

    @property
    def field_prefix(self) -> str:
        return ""


def base_params(path: str | Path, strategy: str, baseline: StrategyOption | None) -> dict[str, Any]:
    """The baseline's parameters for one scenario, as ``simkit bench`` would run it."""
    if baseline is not None and baseline.params is not None:
        return dict(baseline.params)
    return strategy_choice(load_scenario(path), strategy, strategy_params(Path(path)).get(strategy))[1]


def plan(
    scenarios: Sequence[str | Path],
    strategy: str,
    candidates: Sequence[Candidate],
    *,
    seeds: int,
    first_seed: int,
    space_file: str,
    baseline: StrategyOption | None = None,
    engine: str | None = None,
) -> tuple[list[Task], dict[str, Truth], list[tuple[str, str, str]], dict[str, dict[str, Any]]]:
    """Every candidate's tasks, labelled, over the scenarios; the truths, skips and base params."""
    tasks: list[Task] = []
    truths: dict[str, Truth] = {}
    skipped: list[tuple[str, str, str]] = []
    bases: dict[str, dict[str, Any]] = {}
    for path in expand_scenarios(scenarios):
        base = bases[str(path)] = base_params(path, strategy, baseline)
        for cand in candidates:
            options: dict[str, StrategyOption] | None
            if cand.point:
                params = {**base, **cand.point}
                options = {strategy: _SpaceOption(strategy, params, cand.label, Location(space_file))}
            else:  # the baseline exactly as bench runs it (and reports its errors)
                options = {strategy: baseline} if baseline is not None else None
            planned, found, skips = plan_tasks(
                [path], [strategy], seeds, engine=engine, options=options, first_seed=first_seed
            )
            truths.update(found)
            if not cand.point:
                skipped.extend(skips)
            tasks.extend(replace(t, label=cand.label) for t in planned)
    if not tasks:
        raise SpecError(
            Location(" ".join(map(str, scenarios))), None, f"no scenario here can run strategy {strategy!r}"
        )
    return tasks, truths, skipped, bases


def score(
    runs: pd.DataFrame,
    candidates: Sequence[Candidate],
    *,
    seed: int,
    max_false_promotion: float | None,
    how: str,
) -> tuple[pd.DataFrame, str, float]:
    """The candidate table (pooled over scenarios), the chosen label and the false-promotion limit."""
    summary = summarize(runs)
    if runs["scenario"].nunique() == 1:  # summarize() pools only several scenarios
        summary = pd.concat([summary, summary.assign(scenario=ALL)], ignore_index=True)
    total = summary[summary["scenario"] == ALL].set_index("strategy")
    per_seed = pooled(runs).set_index(["strategy", "seed_index"])
    base_seeds = per_seed.loc[BASELINE]
    rng = np.random.default_rng(seed_from_names("simkit tune", str(seed)))
    rows = []
    for cand in candidates:
        rec: dict[str, Any] = {"candidate": cand.label, "params": describe(cand.point) or "(strategies.yaml)"}
        rec["runs"] = int(runs[runs["strategy"] == cand.label].shape[0])
        for column, _, _ in METRICS:
            for suffix in ("", "_lo", "_hi"):
                rec[column + suffix] = float(total.loc[cand.label, column + suffix])
        mine = per_seed.loc[cand.label]
        for column in ("false_promotion", *OBJECTIVES, "correct"):
            d, lo, hi = paired_delta(mine[column].to_numpy(float), base_seeds[column].to_numpy(float), rng)
            rec[f"delta_{column}"], rec[f"delta_{column}_lo"], rec[f"delta_{column}_hi"] = d, lo, hi
        rows.append(rec)
    table = pd.DataFrame(rows)
    base = table.iloc[0]
    limit = false_promotion_limit(
        float(base["false_promotion"]), float(base["false_promotion_hi"]), max_false_promotion
    )
    table["feasible"] = table["false_promotion"] <= limit + 1e-12
    points = table[list(OBJECTIVES)].to_numpy(float)
    table["pareto"] = pareto_mask(points, table["feasible"].to_numpy(bool))
    if not table["pareto"].any():
        raise SpecError.from_cli(
            "--max-false-promotion", f"no candidate has a false-promotion rate <= {limit:.3f}"
        )
    chosen = str(table.iloc[choose(points, table["pareto"].to_numpy(bool), how)]["candidate"])
    table["chosen"] = table["candidate"] == chosen
    return table, chosen, limit


def run_tune(
    scenarios: Sequence[str | Path],
    strategy: str,
    space: Space,
    *,
    executor: Executor,
    budget: int,
    seeds: int,
    first_seed: int = 0,
    seed: int = 0,
    max_false_promotion: float | None = None,
    how: str = "knee",
    baseline: StrategyOption | None = None,
    engine: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_plan: Callable[[list[Candidate], int], None] | None = None,
) -> TuneResult:
    """Plan, run on ``executor``, score; see the module docstring."""
    first = base_params(expand_scenarios(scenarios)[0], strategy, baseline)
    candidates = make_candidates(space, budget, seed, first)
    tasks, truths, skipped, bases = plan(
        scenarios,
        strategy,
        candidates,
        seeds=seeds,
        first_seed=first_seed,
        space_file=space.file,
        baseline=baseline,
        engine=engine,
    )
    total = sum(len(t.seeds) for t in tasks)
    if on_plan is not None:
        on_plan(candidates, total)
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], total)

    sweep = collect(execute(tasks, executor, tick), truths, skipped)
    table, chosen, limit = score(
        sweep.runs, candidates, seed=seed, max_false_promotion=max_false_promotion, how=how
    )
    return TuneResult(strategy, candidates, bases, sweep, table, chosen, limit)


def chosen_params(result: TuneResult) -> dict[str, Any]:
    """The chosen candidate's full parameters (over the first scenario's baseline)."""
    point = next(c.point for c in result.candidates if c.label == result.chosen)
    base = next(iter(result.base_params.values()), {})
    return {**base, **point}
