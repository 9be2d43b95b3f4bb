"""CPU time of the seed scenario end to end (issue: under one second of CPU on one core).

Measures ``simulate_experiment`` on ``scenarios/iris-abtest`` (world + 15 iterations x 2 versions x
6 metric queries through the in-process Prometheus API + iter8 analytics) against a baseline run
in the same process: the same world simulated over the same horizon without the experiment loop.
The ratio is the loop's cost relative to the bare simulation. Medians of 5 runs.

Last output line: JSON with seed_run_cpu_s, world_only_cpu_s, ratio.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from simkit.sim.experiment import simulate_experiment
from simkit.sim.world import World
from simkit.spec.bundle import load_scenario

SEED = Path(__file__).resolve().parent.parent / "scenarios" / "iris-abtest"


def main() -> None:
    bundle = load_scenario(SEED)
    full, bare = [], []
    horizon = 0.0
    for _ in range(5):
        t0 = time.process_time()
        run = simulate_experiment(bundle)
        full.append(time.process_time() - t0)
        horizon = run.world.now
        t0 = time.process_time()
        World(bundle).run_until(horizon)
        bare.append(time.process_time() - t0)
    f, b = statistics.median(full), statistics.median(bare)
    print(f"seed run: {f:.3f} s CPU (sim time {horizon:g} s, 15 iterations); world alone: {b:.3f} s")
    print(
        json.dumps({"seed_run_cpu_s": round(f, 4), "world_only_cpu_s": round(b, 4), "ratio": round(f / b, 2)})
    )


if __name__ == "__main__":
    main()
