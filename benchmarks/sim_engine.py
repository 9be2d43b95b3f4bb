"""Speed of simkit's simulated deployment against the same model written in plain SimPy.

Model (perf-anchors.md P1): Poisson arrivals at 200 qps to a router splitting 90/10 between two
predictors with 10 workers each (SimPy Resources), lognormal service times, 1-2% errors, each
request recorded into a 14-bucket histogram. simkit runs ``benchmarks/data/two-predictors.yaml``
through ``simkit.sim.World`` (object-store routing, scraping, executor labels); the baseline is a
direct SimPy program with numpy pre-drawn variates and plain bucket counts. Both run in this
process, alternating, and the medians of CPU time give the ratio.

Last output line: JSON with simkit_requests_per_s, baseline_requests_per_s, ratio.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import simpy

from simkit.sim.world import World
from simkit.spec.bundle import load_scenario

SCENARIO = Path(__file__).parent / "data" / "two-predictors.yaml"
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


def run_simkit(sim_seconds: float) -> tuple[int, float]:
    bundle = load_scenario(SCENARIO)
    t0 = time.process_time()
    world = World(bundle, seed=7)
    world.run_until(sim_seconds)
    cpu = time.process_time() - t0
    return sum(p.truth.predictions for p in world.predictors.values()), cpu


def batched(draw: Callable[[int], np.ndarray]) -> Iterator[float]:
    """Variates pre-drawn with numpy 2048 at a time (the fast idiom, perf-anchors §3.2)."""
    while True:
        yield from draw(2048).tolist()


def run_plain_simpy(sim_seconds: float) -> tuple[int, float]:
    t0 = time.process_time()
    env = simpy.Environment()
    rng = np.random.default_rng(7)
    arrivals = batched(lambda n: rng.exponential(1 / 200.0, n))
    route = batched(rng.random)
    versions = []
    for median, p99, err in ((0.020, 0.080, 0.01), (0.025, 0.100, 0.02)):
        sigma = (np.log(p99) - np.log(median)) / 2.3263
        versions.append(
            {
                "res": simpy.Resource(env, capacity=10),
                "lat": batched(lambda n, m=median, s=sigma: rng.lognormal(np.log(m), s, n)),
                "err": batched(lambda n, e=err: rng.random(n) < e),
                "buckets": {"200": [0] * 15, "500": [0] * 15},
                "sum": 0.0,
                "count": 0,
            }
        )
    done = [0]

    def request(v: dict) -> object:
        arrival = env.now
        with v["res"].request() as req:
            yield req
            yield env.timeout(next(v["lat"]))
        latency = env.now - arrival
        code = "500" if next(v["err"]) else "200"
        v["buckets"][code][bisect_left(BOUNDS, latency)] += 1
        v["sum"] += latency
        v["count"] += 1
        done[0] += 1

    def source() -> object:
        while True:
            yield env.timeout(next(arrivals))
            env.process(request(versions[0] if next(route) < 0.9 else versions[1]))

    env.process(source())
    env.run(until=sim_seconds)
    return done[0], time.process_time() - t0


def main() -> None:
    sim_seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 600.0
    simkit_rates, base_rates = [], []
    for rep in range(3):
        n, cpu = run_simkit(sim_seconds)
        simkit_rates.append(n / cpu)
        m, cpu_b = run_plain_simpy(sim_seconds)
        base_rates.append(m / cpu_b)
        print(
            f"rep {rep + 1}: simkit {n} requests in {cpu:.2f}s CPU ({n / cpu:,.0f}/s); "
            f"plain SimPy {m} in {cpu_b:.2f}s ({m / cpu_b:,.0f}/s)"
        )
    s, b = statistics.median(simkit_rates), statistics.median(base_rates)
    print(
        json.dumps(
            {"simkit_requests_per_s": round(s), "baseline_requests_per_s": round(b), "ratio": round(s / b, 3)}
        )
    )


if __name__ == "__main__":
    main()
