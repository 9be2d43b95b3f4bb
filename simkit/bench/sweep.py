"""The sweep: every scenario x strategy x seed, run through any ``concurrent.futures.Executor``.

Design (perf-anchors.md §3.3-3.4):

* **Reproducible seeds.** Run ``i`` of (scenario, strategy) gets its world seed from
  ``numpy.random.SeedSequence([crc32(scenario), crc32(strategy) or 0, i])``. By default
  (``common_random_numbers=True``) the strategy part is 0: every strategy sees the *same* traffic,
  latency and error streams for a given (scenario, seed index) (common random numbers, the
  standard variance reduction for paired policy comparisons), while each strategy's own
  randomness still differs, because ``simulate_experiment`` spawns the strategy's generator from
  the world seed *and the strategy name*. A result never depends on the executor, the number of
  workers or the completion order: results are sorted by (scenario, strategy, seed index).
* **Batching.** One task is a block of consecutive seeds of one (scenario, strategy), sized so a
  task costs well over the 20 ms where pool overhead stops mattering (one run is 50-300 ms).
* **Executors.** ``ProcessPoolExecutor`` by default; a Dask ``Client.get_executor()`` for a
  cluster (``dask_scheduler``) or a local 2-process cluster (``dask_local``); a
  :class:`SerialExecutor` in-process for one worker. The task function is a module-level
  function of an installed package, so any executor can pickle it by reference.
* **Unsupported pairs** (Flagger, Argo, Kayenta and sequential drive exactly one candidate) are
  found before running, by constructing the strategy once, and listed in ``SweepResult.skipped``.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import yaml

from simkit.bench.outcomes import OUTCOME_COLUMNS, score_run
from simkit.bench.truth import Truth, ground_truth
from simkit.errors import BackendError, Location, SpecError
from simkit.prepare import prepare
from simkit.sim.experiment import simulate_experiment, strategy_choice
from simkit.spec.bundle import SCENARIO_FILE, Bundle, load_scenario
from simkit.spec.streams import seed_from_names
from simkit.strategies.base import create
from simkit.strategies.options import StrategyOption

PARAMS_FILE = "strategies.yaml"
T = TypeVar("T")


@dataclass(frozen=True)
class Task:
    """A block of seeds of one (scenario, strategy): the unit sent to an executor."""

    scenario_path: str
    strategy: str
    params: Mapping[str, Any] | None
    seeds: tuple[tuple[int, int], ...]  # (seed index, world seed)
    engine: str | None = None  # events, counts or auto (None: each scenario's spec.engine)
    label: str | None = None  # the runs' "strategy" column (simkit tune: one label per candidate)


@dataclass
class SweepResult:
    runs: pd.DataFrame  # one row per run, OUTCOME_COLUMNS
    trajectories: pd.DataFrame  # scenario, strategy, seed_index, iteration, t, candidate_weight
    truths: dict[str, Truth]
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (scenario, strategy, why)


class SerialExecutor(Executor):
    """Runs each task at submit time in this process (one worker, no pickling, same results)."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller through the future, as pools do
            future.set_exception(exc)
        return future


def derive_seed(scenario: str, strategy: str, index: int, common_random_numbers: bool = True) -> int:
    """The world seed of run ``index`` of (scenario, strategy); see the module docstring."""
    names = (scenario, 0 if common_random_numbers else strategy, index)
    return int(seed_from_names(*names).generate_state(1)[0])


def expand_scenarios(paths: Sequence[str | Path]) -> list[Path]:
    """Scenario folders/files; a folder without ``scenario.yaml`` stands for its scenario subfolders."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir() and not (p / SCENARIO_FILE).exists():
            subs = sorted(d for d in p.iterdir() if d.is_dir() and (d / SCENARIO_FILE).exists())
            if not subs:
                raise SpecError(
                    Location(str(p)),
                    None,
                    f"neither a scenario folder nor a folder of scenario folders ({SCENARIO_FILE} missing)",
                )
            out.extend(subs)
        else:
            out.append(p)
    return out


def strategy_params(scenario: Path) -> dict[str, Any]:
    """Strategy name -> params from ``strategies.yaml`` in the scenario folder, then its parent."""
    folder = scenario if scenario.is_dir() else scenario.parent
    merged: dict[str, Any] = {}
    for candidate in (folder / PARAMS_FILE, folder.parent / PARAMS_FILE):
        if candidate.is_file():
            try:
                data = yaml.safe_load(candidate.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise SpecError(Location(str(candidate)), None, f"malformed YAML: {exc}") from None
            if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
                raise SpecError(
                    Location(str(candidate)), None, "must map each strategy name to a mapping of params"
                )
            for name, params in data.items():
                merged.setdefault(str(name), params)
    return merged


# --- worker side -------------------------------------------------------------------------------
_CACHE: dict[str, tuple[Bundle, Truth]] = {}


def _loaded(path: str) -> tuple[Bundle, Truth]:
    if path not in _CACHE:
        bundle = load_scenario(path)
        _CACHE[path] = (bundle, ground_truth(bundle))
    return _CACHE[path]


def run_task(task: Task) -> list[tuple[dict[str, Any], list[tuple[int, float, int]]]]:
    """Run one block of seeds; module level so that every executor can ship it."""
    bundle, truth = _loaded(task.scenario_path)
    out = []
    for index, seed in task.seeds:
        run = simulate_experiment(bundle, seed, task.strategy, task.params, engine=task.engine)
        row, trajectory = score_run(run, truth)
        out.append(
            (
                {
                    "scenario": bundle.name,
                    "strategy": task.label or task.strategy,
                    "seed_index": index,
                    "seed": seed,
                    "engine": run.engine.name,
                    **row,
                },
                trajectory,
            )
        )
    return out


# --- planning and running ----------------------------------------------------------------------
def plan_tasks(
    scenarios: Sequence[str | Path],
    strategies: Sequence[str],
    seeds: int,
    batch: int = 5,
    common_random_numbers: bool = True,
    engine: str | None = None,
    options: Mapping[str, StrategyOption] | None = None,
    first_seed: int = 0,
) -> tuple[list[Task], dict[str, Truth], list[tuple[str, str, str]]]:
    """Tasks for the sweep, the truth of every scenario, and the unsupported pairs. ``options``
    (``--strategy NAME:k=v``, ``--strategy-params``) override ``strategies.yaml`` per strategy.
    Seed indices run from ``first_seed`` (a held-out set of seeds for a tuned policy)."""
    tasks: list[Task] = []
    truths: dict[str, Truth] = {}
    skipped: list[tuple[str, str, str]] = []
    for path in expand_scenarios(scenarios):
        bundle = load_scenario(path)
        truths[bundle.name] = ground_truth(bundle)
        plan = prepare(bundle.experiment_document(), bundle.documents).plan
        params_map = strategy_params(Path(path))
        for name in strategies:
            option = (options or {}).get(name)
            given = option is not None and option.params is not None
            params = option.params if option is not None and given else params_map.get(name)
            chosen, chosen_params = strategy_choice(bundle, name, params)
            where, prefix = (
                (option.where, option.field_prefix)
                if option is not None and given
                else (bundle.scenario_doc.where, "spec.strategy.params.")
            )
            try:
                create(chosen, plan, chosen_params, where, prefix)
            except SpecError as exc:
                # a one-canary strategy on an A/B/N experiment (the field as create() relocated it)
                if (exc.field or "").rsplit(".", 1)[-1] == "versions":
                    skipped.append((bundle.name, name, exc.message))
                    continue
                raise
            indices = range(first_seed, first_seed + seeds)
            pairs = [(i, derive_seed(bundle.name, name, i, common_random_numbers)) for i in indices]
            for start in range(0, seeds, batch):
                tasks.append(Task(str(path), name, params, tuple(pairs[start : start + batch]), engine))
    return tasks, truths, skipped


@contextlib.contextmanager
def make_executor(
    workers: int | None = None, dask_scheduler: str | None = None, dask_local: bool = False
) -> Iterator[Executor]:
    """The executor for a sweep; Dask is imported only when asked for."""
    if dask_scheduler or dask_local:
        import dask
        from distributed import Client, LocalCluster

        with dask.config.set({"distributed.worker.profile.enabled": False}):
            if dask_scheduler:
                try:
                    remote = Client(dask_scheduler, timeout=30)
                except ValueError as exc:  # not an address at all
                    raise SpecError.from_cli("--dask-scheduler", f"{exc} (give tcp://HOST:PORT)") from None
                except (OSError, TimeoutError) as exc:
                    raise BackendError(f"Dask scheduler at {dask_scheduler}: {exc}") from None
                with remote as client:
                    yield client.get_executor()
            else:
                with (
                    LocalCluster(
                        n_workers=workers or 2,
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address=None,
                    ) as cluster,
                    Client(cluster) as client,
                ):
                    yield client.get_executor()
        return
    if workers == 1:
        yield SerialExecutor()
        return
    with cf.ProcessPoolExecutor(max_workers=workers) as pool:
        yield pool


def execute(
    tasks: Sequence[Task], executor: Executor, progress: Callable[[int], None] | None = None
) -> list[tuple[dict[str, Any], list[tuple[int, float, int]]]]:
    """Submit every task, collect as they finish (``progress(runs_done)``), return in task order."""
    futures = {executor.submit(run_task, t): i for i, t in enumerate(tasks)}
    results: list[Any] = [None] * len(tasks)
    for fut in cf.as_completed(futures):
        i = futures[fut]
        results[i] = fut.result()
        if progress is not None:
            progress(len(tasks[i].seeds))
    return [item for block in results for item in block]


def collect(
    items: Sequence[tuple[dict[str, Any], list[tuple[int, float, int]]]],
    truths: dict[str, Truth],
    skipped: list[tuple[str, str, str]],
) -> SweepResult:
    """Tidy frames, sorted by (scenario, strategy, seed index) so the order of completion never shows."""
    rows = sorted((row for row, _ in items), key=lambda r: (r["scenario"], r["strategy"], r["seed_index"]))
    runs = pd.DataFrame(rows, columns=list(OUTCOME_COLUMNS))
    traj_rows = [
        (row["scenario"], row["strategy"], row["seed_index"], it, t, w)
        for row, trajectory in items
        for it, t, w in trajectory
    ]
    traj_rows.sort(key=lambda r: (r[0], r[1], r[2], r[3]))
    trajectories = pd.DataFrame(
        traj_rows, columns=["scenario", "strategy", "seed_index", "iteration", "t", "candidate_weight"]
    )
    return SweepResult(runs, trajectories, truths, skipped)


def run_sweep(
    scenarios: Sequence[str | Path],
    strategies: Sequence[str],
    seeds: int,
    *,
    workers: int | None = None,
    dask_scheduler: str | None = None,
    dask_local: bool = False,
    executor: Executor | None = None,
    batch: int = 5,
    common_random_numbers: bool = True,
    progress: Callable[[int, int], None] | None = None,
    engine: str | None = None,
    options: Mapping[str, StrategyOption] | None = None,
) -> SweepResult:
    """Run the sweep and return its tidy results (see the module docstring).

    ``progress(done, total)`` is called after every finished task."""
    tasks, truths, skipped = plan_tasks(
        scenarios, strategies, seeds, batch, common_random_numbers, engine, options
    )
    total = sum(len(t.seeds) for t in tasks)
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], total)

    if executor is not None:
        items = execute(tasks, executor, tick)
    else:
        with make_executor(workers, dask_scheduler, dask_local) as ex:
            items = execute(tasks, ex, tick)
    return collect(items, truths, skipped)
