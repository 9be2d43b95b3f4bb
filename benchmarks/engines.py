"""Simulated requests per second of the two engines on the same scenario, in the same run.

The scenario is the production A/A (``scenarios/production/aa``: two predictors, 2 replicas of 64
workers each, Poisson load, per-prediction feedback, 30-s scrapes) with its load set to 20 and to
1,000 qps and a 50/50 split. Each engine simulates the world alone (no experiment loop): the event
engine for long enough to take a second or more of CPU, the counts engine for an hour. Requests per
second is predictions served / CPU seconds; the medians of alternating repetitions are compared.

Also measured: ``simkit run`` of ``scenarios/production/latency-regression-3pct`` (60 minutes at
1,000 qps, 60 one-minute iterations, iter8), CPU seconds after start-up (imports and scenario
loading excluded), with the engine ``auto`` picks.

Last output line: JSON with events_requests_per_s, counts_requests_per_s (at 1,000 qps),
ratio_at_1000qps, the same at 20 qps, and run_cpu_s.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from simkit.sim.engine import make_world
from simkit.sim.experiment import simulate_experiment
from simkit.spec.bundle import Bundle, load_scenario

ROOT = Path(__file__).resolve().parents[1]
AA = ROOT / "scenarios" / "production" / "aa"
HOUR_RUN = ROOT / "scenarios" / "production" / "latency-regression-3pct"


def scenario_at(qps: float, folder: Path) -> Bundle:
    """The production A/A at ``qps``, split 50/50, written to ``folder``."""
    for f in AA.iterdir():
        text = f.read_text(encoding="utf-8")
        if f.name == "scenario.yaml":
            text = text.replace("qps: 500,", f"qps: {qps:g},")
        if f.name == "deployment.yaml":
            text = text.replace("traffic: 100", "traffic: 50").replace("traffic: 0", "traffic: 50")
        (folder / f.name).write_text(text, encoding="utf-8")
    return load_scenario(folder)


def rate(bundle: Bundle, engine: str, seconds: float, seed: int) -> float:
    t0 = time.process_time()
    world, _ = make_world(bundle, seed, engine)
    world.run_until(seconds)
    cpu = time.process_time() - t0
    served = sum(p.truth.predictions for p in world.predictors.values())
    return served / cpu


def compare(bundle: Bundle, qps: float, reps: int) -> tuple[float, float]:
    events_seconds = max(60.0, 60_000 / qps)  # ~60k requests: a second or so of CPU
    ev, co = [], []
    for i in range(reps):
        ev.append(rate(bundle, "events", events_seconds, 100 + i))
        co.append(rate(bundle, "counts", 3600.0, 200 + i))
    return statistics.median(ev), statistics.median(co)


def run_cpu(reps: int) -> tuple[float, str]:
    bundle = load_scenario(HOUR_RUN)
    simulate_experiment(bundle, 1)  # warm: imports, jq compiles, parse cache of the first run
    times, engine = [], ""
    for i in range(reps):
        t0 = time.process_time()
        run = simulate_experiment(bundle, 10 + i)
        times.append(time.process_time() - t0)
        engine = run.engine.name
    return statistics.median(times), engine


def main(argv: list[str]) -> int:
    reps = int(argv[1]) if len(argv) > 1 else 3
    out: dict[str, float | str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for qps in (20.0, 1000.0):
            folder = Path(tmp) / f"q{qps:g}"
            folder.mkdir()
            ev, co = compare(scenario_at(qps, folder), qps, reps)
            print(
                f"{qps:>6g} qps: events {ev:,.0f} requests/s, counts {co:,.0f} requests/s, ratio {co / ev:,.0f}"
            )
            tag = "" if qps == 1000.0 else f"_at_{qps:g}qps"
            out[f"events_requests_per_s{tag}"] = round(ev)
            out[f"counts_requests_per_s{tag}"] = round(co)
            out[f"ratio_at_{qps:g}qps"] = round(co / ev, 1)
    cpu, engine = run_cpu(reps)
    print(
        f"simkit run {HOUR_RUN.relative_to(ROOT)} (60 min, 1,000 qps, 60 iterations, engine {engine}): "
        f"{cpu:.3f} s CPU after start-up"
    )
    out["run_cpu_s"] = round(cpu, 3)
    out["run_engine"] = engine
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
