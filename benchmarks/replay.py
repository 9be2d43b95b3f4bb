"""Replay speed: one hour of recorded two-version history, one strategy at a 10 s interval.

Workload (the issue's target: under 5 s of CPU on one core): ``scenarios/iris-abtest`` with a
50/50 split simulated for one hour, recorded through the in-process Prometheus API (the same
code path ``simkit record`` uses against a real server), and the seed Experiment with
``intervalSeconds: 10`` and 360 iterations replayed over it with iter8: 360 iterations x 2
versions x 6 Metric queries, each through httpx, PromQL over the recorded raw samples and jq.

Baseline in the same process: parsing the recording file (``read_recording``). The
multi-strategy figure replays iter8, thompson and a flagger canary over the one parsed
recording, and is compared with re-reading the file for each strategy.

Last output line: JSON with replay_cpu_s, iterations, parse_cpu_s, multi_strategy_cpu_s,
multi_strategy_reparsing_cpu_s, ratio (replay / parse).

Run: ``python benchmarks/replay.py``
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simkit.prepare import prepare  # noqa: E402
from simkit.promql.api import PrometheusAPITransport  # noqa: E402
from simkit.replay.commands import load_manifests  # noqa: E402
from simkit.replay.record import RecordRequest, record  # noqa: E402
from simkit.replay.recording import read_recording  # noqa: E402
from simkit.replay.replay import Replayer  # noqa: E402
from simkit.sim.world import simulate  # noqa: E402

SEED = ROOT / "scenarios" / "iris-abtest"
STRATEGIES = [("iter8", {}), ("thompson", {}), ("flagger", {"stepWeight": 10, "maxWeight": 50})]


def make_recording(work: Path) -> tuple[Path, float]:
    src = work / "src"
    shutil.copytree(SEED, src)
    sdep = (
        (src / "abtest.yaml")
        .read_text()
        .replace("traffic: 100", "traffic: 50")
        .replace("traffic: 0", "traffic: 50")
    )
    (src / "abtest.yaml").write_text(sdep)
    exp = (src / "experiment.yaml").read_text().replace("iterationsPerLoop: 15", "iterationsPerLoop: 360")
    (src / "experiment.yaml").write_text(exp)
    world = simulate(str(src), 3660.0, 1)
    db = world.tsdb
    files, docs, exp_doc = load_manifests(
        str(src / "experiment.yaml"), [str(src / "metrics.yaml"), str(src / "abtest.yaml")]
    )
    out = work / "hour.rec"
    client = httpx.Client(transport=PrometheusAPITransport(db, lambda: db.max_time or 0.0))
    record(
        client,
        prepare(exp_doc, docs),
        files,
        RecordRequest("http://in-process", db.min_time or 0, db.max_time or 0, out),
    )
    return out, world.epoch


def cpu(fn: object) -> float:
    t = time.process_time()
    fn()  # type: ignore[operator]
    return time.process_time() - t


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="simkit-replay-bench-"))
    try:
        path, epoch = make_recording(work)
        parse, one, multi, reparse = [], [], [], []
        iterations = 0
        for _ in range(3):
            parse.append(cpu(lambda: read_recording(path)))
            replayer = Replayer(read_recording(path), seed=1)
            t0 = time.process_time()
            iterations = len(replayer.run("iter8", at=epoch).result.iterations)
            one.append(time.process_time() - t0)
            multi.append(cpu(lambda r=replayer: [r.run(n, at=epoch, params=p) for n, p in STRATEGIES]))
            reparse.append(
                cpu(
                    lambda: [Replayer(read_recording(path)).run(n, at=epoch, params=p) for n, p in STRATEGIES]
                )
            )
        figures = {
            "replay_cpu_s": round(statistics.median(one), 3),
            "iterations": iterations,
            "parse_cpu_s": round(statistics.median(parse), 3),
            "multi_strategy_cpu_s": round(statistics.median(multi), 3),
            "multi_strategy_reparsing_cpu_s": round(statistics.median(reparse), 3),
            "strategies": [n for n, _ in STRATEGIES],
        }
        figures["ratio"] = round(statistics.median(one) / max(statistics.median(parse), 1e-9), 2)
        print(
            f"one hour, 2 versions, {iterations} iterations of iter8: {figures['replay_cpu_s']} s CPU "
            f"(target < 5 s); parsing the recording {figures['parse_cpu_s']} s"
        )
        print(
            f"{len(STRATEGIES)} strategies over one parsed recording: {figures['multi_strategy_cpu_s']} s; "
            f"re-reading it per strategy: {figures['multi_strategy_reparsing_cpu_s']} s"
        )
        print(json.dumps(figures, sort_keys=True))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
