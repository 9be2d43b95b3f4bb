"""record → replay → calibrate → run against a real Prometheus 2.42, backfilled with promtool.

Four runs whose decisions are known: the seed (at its recorded controller cadence); a rollback
(`scenarios/iris-rollback` at 400 qps and an error-count limit of 300, as on the serve path,
tests/support/scenario_edits.py; the rollout ends early and the recording runs two scrapes past
it, so that the candidate's counters go flat; on the counts engine); the production suite's error regression
(`scenarios/production/error-regression-0.3pp`, whole: 2,000 qps, 0.8 % vs 1.1 % errors, 2
replicas, per-prediction delayed feedback, 30 s scrapes, 30 iterations; recorded and compared on
the counts engine, the events engine being far too slow at 2,000 qps); and the standard suite's
high-traffic error regression at ten times its traffic (200 qps, 5 s scrapes, errors on two
versions appearing mid-recording, on the events engine; at the suite's own 20 qps it records 6 and
10 errors, too few for 5 % to be a statement about calibration). For each:

- the replay decides exactly what the simulation decided, iteration by iteration;
- the calibrated scenario reproduces every quantity the recording holds, per version, within
  5 % in ``report.md``, with no allowance (the test parses it: recorded, simulated, relative
  difference and verdict per row), and names what it could not calibrate;
- ``simkit run`` accepts the calibrated scenario.

The recorded range ends when the experiment did (``--end`` off the scrape grid for the seed and
the rollback, on it for the regressions). Prometheus is started by the harness in
``tests/support/prometheus.py`` and stopped by PID.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from simkit.cli import main
from simkit.replay.commands import cmd_record
from simkit.replay.recording import read_recording
from simkit.replay.replay import Replayer
from simkit.report.calibration_report import parse_report
from simkit.sim.experiment import SimRun, simulate_experiment
from simkit.spec.bundle import load_scenario
from tests.support.prometheus import Binaries, run_prometheus
from tests.support.scenario_edits import rollback_at_high_traffic

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@dataclass(frozen=True)
class Case:
    folder: Path
    manifests: tuple[str, ...]
    delay: float  # the scenario's spec.controller.iterationDelay (the replay's --iteration-delay)
    quantities: dict[str, set[str]]  # what report.md must compare, per version
    not_calibrated: tuple[str, ...] = ()  # what report.md must name as not calibrated
    edit: Callable[[Path], None] | None = None  # applied to a copy of the folder
    engine: str = "events"  # the recorded run's engine, and the calibration comparison's
    past_the_end: float = 0.0  # seconds the world runs and is recorded after the rollout ends


def _ten_times_the_traffic(folder: Path) -> None:
    """The suite's high-traffic error regression at 200 qps instead of 20 (about 40 and 60 errors
    recorded instead of 6 and 10), each predictor with 32 workers so that the recorded world does
    not queue (at the default 4 it would: 200 qps x 22 ms is 4.5 calls in flight)."""
    text = (folder / "scenario.yaml").read_text().replace("qps: 20, pattern", "qps: 200, pattern")
    text = text.replace(
        "      latency: {distribution: lognormal",
        "      concurrency: 32\n      latency: {distribution: lognormal",
    )
    (folder / "scenario.yaml").write_text(text)


LATENCY = {"p50 latency (s)", "p95 latency (s)", "p99 latency (s)", "mean latency (s)"}
CASES = {
    "seed": Case(
        SCENARIOS / "iris-abtest",
        ("metrics.yaml", "abtest.yaml"),
        3.08,
        {v: {"request rate (1/s)", "feedback rate (1/s)", *LATENCY} for v in ("iris-v1", "iris-v2")},
    ),
    # recorded for two scrapes past the rollback: the candidate's counters go flat before the
    # window ends, and its own load must stop where its traffic did (simkit.replay.own_traffic)
    "rollback": Case(
        SCENARIOS / "iris-rollback",
        ("metrics.yaml", "abtest.yaml"),
        0.0,
        {
            "iris-v1": {"request rate (1/s)", "feedback rate (1/s)", "mean latency (s)"},
            "iris-v2": {"request rate (1/s)", "feedback rate (1/s)", "mean latency (s)", "error rate 500"},
        },
        ("iris-v1: latency quantiles", "iris-v2: latency quantiles"),
        edit=rollback_at_high_traffic,
        engine="counts",
        past_the_end=30.0,
    ),
    # the suite's high-traffic error regression at ten times its traffic: enough errors recorded
    # that 5 % means something (measured: every quantity within 2.5 %)
    "error-regression-200qps": Case(
        SCENARIOS / "suite" / "error-regression-high-traffic",
        ("metrics.yaml", "deployment.yaml"),
        0.0,
        {v: {"request rate (1/s)", "feedback rate (1/s)", "error rate 500", *LATENCY} for v in ("v1", "v2")},
        edit=_ten_times_the_traffic,
    ),
    "production-error-regression": Case(
        SCENARIOS / "production" / "error-regression-0.3pp",
        ("metrics.yaml", "deployment.yaml"),
        0.0,
        {v: {"request rate (1/s)", "feedback rate (1/s)", "error rate 500", *LATENCY} for v in ("v1", "v2")},
        engine="counts",
    ),
}


@dataclass
class Recorded:
    case: Case
    run: SimRun
    path: Path
    calibrated: Path


def _decisions(iterations: object) -> list[tuple[object, ...]]:
    return [(r.decision.winner, r.weights_after, r.decision.verdict, r.elapsed) for r in iterations]  # type: ignore[attr-defined]


@pytest.fixture(scope="module", params=sorted(CASES))
def recorded(
    request: pytest.FixtureRequest, prometheus_binaries: Binaries, tmp_path_factory: pytest.TempPathFactory
) -> Recorded:
    case = CASES[request.param]
    tmp = tmp_path_factory.mktemp(request.param)
    if case.edit is not None:
        shutil.copytree(case.folder, tmp / "scenario")
        case.edit(tmp / "scenario")
        case = dataclasses.replace(case, folder=tmp / "scenario")
    # the recorded run on the case engine, the one its calibration compares with
    run = simulate_experiment(load_scenario(case.folder), engine=case.engine)
    assert run.result.end_time is not None
    if case.past_the_end:
        run.world.run_until(run.result.end_time - run.world.epoch + case.past_the_end)  # sim time
    db = run.world.tsdb
    assert db.min_time is not None and db.max_time is not None
    out = tmp / "run.rec"
    with run_prometheus(db, workdir=tmp / "prom", binaries=prometheus_binaries) as prom:
        args = argparse.Namespace(
            prometheus_url=prom.url,
            experiment=str(case.folder / "experiment.yaml"),
            metrics=[str(case.folder / m) for m in case.manifests],
            start=str(db.min_time),
            end=str(max(db.max_time, run.result.end_time + case.past_the_end)),
            step=None,
            chunk="1h",
            timeout="30s",
            out=str(out),
            quiet=True,
        )
        assert cmd_record(args) == 0
    calibrated = tmp / "calibrated"
    assert main(["calibrate", str(out), "--out", str(calibrated), "--engine", case.engine]) == 0
    return Recorded(case, run, out, calibrated)


def test_replay_decides_like_the_recorded_run(recorded: Recorded) -> None:
    rec = read_recording(recorded.path)
    seed = load_scenario(recorded.case.folder).scenario.spec.seed
    replay = Replayer(rec, seed=seed, iteration_delay=recorded.case.delay).run(
        "iter8", at=recorded.run.world.epoch
    )
    assert _decisions(replay.result.iterations) == _decisions(recorded.run.result.iterations)
    assert replay.result.rolled_back == recorded.run.result.rolled_back
    assert replay.result.completed and replay.result.final_weights == recorded.run.result.final_weights


def test_calibration_reproduces_every_recorded_quantity_within_5_percent(recorded: Recorded) -> None:
    text = (recorded.calibrated / "report.md").read_text()
    rows = parse_report(text)
    by_version: dict[str, set[str]] = {}
    for version, quantity, rec, sim, rel, within, _ in rows:
        by_version.setdefault(version, set()).add(quantity)
        assert rec is not None and sim is not None and rel is not None, (version, quantity)
        assert rel == pytest.approx(abs(sim - rec) / rec, abs=1e-4), (
            version,
            quantity,
        )  # the stated difference
        assert within and rel <= 0.05, (version, quantity, rec, sim, rel)
    assert by_version == recorded.case.quantities
    assert "Verdict: all" in text
    gaps = text.split("## Not calibrated", 1)[1].split("\n\n", 2)[1]
    for needle in recorded.case.not_calibrated:
        assert needle in gaps, gaps
    if not recorded.case.not_calibrated:
        assert gaps.startswith("Nothing"), gaps


def test_simkit_run_accepts_the_calibrated_scenario(recorded: Recorded, tmp_path: Path) -> None:
    argv = ["run", str(recorded.calibrated), "--quiet", "--out", str(tmp_path / "out")]
    assert main([*argv, "--engine", recorded.case.engine]) == 0
    assert (tmp_path / "out" / "status.yaml").is_file()
