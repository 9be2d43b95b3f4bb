"""Sweep throughput: runs per minute on 2 cores with the process pool, against 1 core serially.

Workload: 4 suite scenarios x 2 strategies (iter8, thompson) x 6 seeds = 48 runs, each a full
150-s experiment in simulation with its ground-truth scoring (simkit.bench.sweep.run_task). The
serial baseline runs the same tasks in this process (SerialExecutor); the parallel run uses
``ProcessPoolExecutor(2)`` (fork). Both are measured in wall time in the same process, alternating,
``REPEATS`` times after one warm-up each; the medians give the speedup (perf-anchors P6: >= 1.6).
Both sides produce identical rows, which is checked.

The production suite (``scenarios/production``: 200-5,000 qps, 30-90 one-minute iterations, the
counts engine) is timed the same way on the pool: all six standard strategies, ``PROD_SEEDS``
seeds, and its runs per minute reported beside the suite's.

Last output line: JSON with runs_per_minute, serial_runs_per_minute, speedup,
production_runs_per_minute.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import statistics
import sys
import time
from pathlib import Path

from simkit.bench.sweep import SerialExecutor, Task, execute, plan_tasks

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = [
    ROOT / "scenarios" / "suite" / name
    for name in ("aa", "clearly-better", "error-regression-high-traffic", "latency-regression")
]
STRATEGIES = ["iter8", "thompson"]
SEEDS = 6
REPEATS = 3
PRODUCTION = ROOT / "scenarios" / "production"
PROD_STRATEGIES = ["iter8", "flagger", "argo", "kayenta", "thompson", "sequential"]
PROD_SEEDS = 2


def timed(tasks: list[Task], executor: cf.Executor) -> tuple[float, list[dict[str, object]]]:
    t0 = time.perf_counter()
    items = execute(tasks, executor)
    return time.perf_counter() - t0, [row for row, _ in items]


def main() -> int:
    tasks, _, _ = plan_tasks(SCENARIOS, STRATEGIES, SEEDS, batch=1)
    runs = sum(len(t.seeds) for t in tasks)
    serial_times, pool_times = [], []
    with cf.ProcessPoolExecutor(max_workers=2) as pool:
        _, reference = timed(tasks[:2], SerialExecutor())  # warm this process (bundles, truth, imports)
        timed(tasks[:4], pool)  # warm both workers
        for rep in range(REPEATS):
            s, serial_rows = timed(tasks, SerialExecutor())
            p, pool_rows = timed(tasks, pool)
            if serial_rows != pool_rows:
                print("serial and pool results differ", file=sys.stderr)
                return 1
            serial_times.append(s)
            pool_times.append(p)
            print(
                f"repeat {rep + 1}: serial {s:.2f} s, pool(2) {p:.2f} s for {runs} runs "
                f"(speedup {s / p:.2f})",
                file=sys.stderr,
            )
        prod_tasks, _, _ = plan_tasks([PRODUCTION], PROD_STRATEGIES, PROD_SEEDS, batch=1)
        prod_runs = sum(len(t.seeds) for t in prod_tasks)
        timed(prod_tasks[:4], pool)  # warm the workers' scenario cache
        prod_time, _ = timed(prod_tasks, pool)
        print(f"production suite: {prod_runs} runs in {prod_time:.2f} s on pool(2)", file=sys.stderr)
    del reference
    serial, parallel = statistics.median(serial_times), statistics.median(pool_times)
    print(
        json.dumps(
            {
                "runs": runs,
                "runs_per_minute": round(60 * runs / parallel, 1),
                "serial_runs_per_minute": round(60 * runs / serial, 1),
                "speedup": round(serial / parallel, 3),
                "production_runs": prod_runs,
                "production_runs_per_minute": round(60 * prod_runs / prod_time, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
