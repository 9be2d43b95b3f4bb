"""record → replay → calibrate → run on series a real Prometheus 2.42 scraped from `simkit serve`.

Three worlds, as for the backfilled recordings (tests/integration/test_offline_evaluation.py): the
seed; a rollback (`scenarios/iris-rollback` at 400 qps instead of 5 and an error-count limit of
300 instead of 3, so that its candidate serves over a thousand predictions over three scrapes
before error-count rolls it back, instead of about 2; tests/support/scenario_edits.py); and the
production suite's error regression (`scenarios/production/error-regression-0.3pp`: 2,000 qps,
2 replicas, per-prediction feedback, 30 s scrapes; its first 10 iterations of 30, served by the
counts engine). Each is served in real time (``--speed`` 2.5 for the iris scenarios, 20 for the
production one), its routing weights taken from the Kubernetes API fake, and `simkit live` runs
its Experiment against it (intervals and scrapes scaled by the speed). Then the Prometheus range
the run covered is recorded and:

- replayed at the live run's own iteration instants (from its journal): every decision is what
  the live run decided, and every metric value what it observed (to 1e-9: live queries carry the
  iteration's instant as ``time=``), except in an iteration just after a scrape that may still
  have been stored when the live queries ran (at most half of them);
- calibrated: every recorded quantity of every version within 5 % in ``report.md``, with no
  allowance (compared on the events engine for the seed, on counts for the other two);
- the calibrated scenario runs with ``simkit run``.

Servers are started here and stopped by PID (serve: SIGTERM; Prometheus: the harness).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from simkit.cli import main
from simkit.live.kubefake import KubeFake, kubeconfig_text
from simkit.replay.recording import read_recording
from simkit.replay.replay import Replayer
from simkit.report.calibration_report import parse_report
from tests.support.prometheus import ScrapeJob, require_prometheus, run_prometheus
from tests.support.scenario_edits import rollback_at_high_traffic

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"


def _ten_iterations(folder: Path) -> None:
    """The production error regression's first 10 iterations of 30 (10 minutes at 2,000 qps)."""
    text = (folder / "experiment.yaml").read_text().replace("iterationsPerLoop: 30", "iterationsPerLoop: 10")
    (folder / "experiment.yaml").write_text(text)


@dataclass(frozen=True)
class Case:
    folder: Path
    deployment: str  # the manifest holding the SeldonDeployment
    scrape: float  # the scenario's scrape interval (sim seconds)
    interval: float  # the Experiment's intervalSeconds (sim seconds)
    speed: float  # simkit serve --speed
    engine: str = "auto"  # simkit serve --engine
    # calibrate's (and simkit run's) --engine: events where the recording is small enough (the
    # seed: once, with two calls of 3-6 s recorded, the counts engine put its mean 4 % off; its
    # cell moments are exact now, simkit.sim.partial_moments, but whether that closes the gap on
    # such a recording is not measured: it is not at hand)
    compare: str = "events"
    edit: Callable[[Path], None] | None = None  # applied to a copy of the folder
    quantities: dict[str, set[str]] = dataclasses.field(default_factory=dict)  # report.md's, per version
    rollback: bool = False


LATENCY = {"p50 latency (s)", "p95 latency (s)", "p99 latency (s)", "mean latency (s)"}
BASIC = {"request rate (1/s)", "feedback rate (1/s)"}
CASES = {
    "seed": Case(
        SCENARIOS / "iris-abtest",
        "abtest.yaml",
        15,
        10,
        2.5,
        quantities={v: {*BASIC, *LATENCY} for v in ("iris-v1", "iris-v2")},
    ),
    "rollback": Case(
        SCENARIOS / "iris-rollback",
        "abtest.yaml",
        15,
        10,
        2.5,
        edit=rollback_at_high_traffic,
        compare="counts",  # 1,000 calls/s: seeds enough for its 21 feedback calls only on counts
        quantities={
            "iris-v1": {*BASIC, "mean latency (s)"},
            "iris-v2": {*BASIC, "mean latency (s)", "error rate 500"},
        },
        rollback=True,
    ),
    "production-error-regression": Case(
        SCENARIOS / "production" / "error-regression-0.3pp",
        "deployment.yaml",
        30,
        60,
        20,
        engine="counts",
        compare="counts",
        edit=_ten_iterations,
        quantities={v: {*BASIC, "error rate 500", *LATENCY} for v in ("v1", "v2")},
    ),
}
MIN_CANDIDATE = 800  # predictions the rollback's candidate serves at least (about 2 at 5 qps)
# seconds between a scrape's timestamp and its samples being stored: a scrape stamped that little
# before an iteration's instant may be missing from the live queries (evaluated at that instant)
INGEST = 0.25


@dataclass
class LiveRun:
    case: Case
    journal: Path
    trace_dir: Path
    trace: list[dict[str, str]]
    recording: Path
    calibrated: Path


def _start_serve(fake: KubeFake, port_file: Path, folder: Path, case: Case) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simkit.cli",
            "serve",
            str(folder),
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--kube-url",
            fake.url,
            "--speed",
            str(case.speed),
            "--engine",
            case.engine,
            "--kube-interval",
            "0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while not port_file.exists() and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(0.05)
    assert port_file.exists(), "simkit serve did not start"
    return proc


@pytest.fixture(scope="module", params=list(CASES))
def live_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRun]:
    require_prometheus()
    case = CASES[request.param]
    tmp = tmp_path_factory.mktemp(f"live-rec-{request.param}")
    folder = case.folder
    if case.edit is not None:
        shutil.copytree(case.folder, tmp / "scenario")
        case.edit(tmp / "scenario")
        folder = tmp / "scenario"
        case = dataclasses.replace(case, folder=folder)
    with KubeFake() as fake:
        fake.cluster.load([d for d in yaml.safe_load_all((folder / case.deployment).read_text()) if d])
        (tmp / "kubeconfig").write_text(kubeconfig_text(fake.url))
        proc = _start_serve(fake, tmp / "port", folder, case)
        try:
            target = f"127.0.0.1:{(tmp / 'port').read_text().strip()}"
            scrape = ScrapeJob(
                [target],
                interval=f"{round(1000 * case.scrape / case.speed)}ms",
                job_name="seldon",
                metrics_path="/prometheus",
            )
            with run_prometheus(scrape=[scrape], workdir=tmp / "prom") as prom:
                time.sleep(2 * case.scrape / case.speed)  # two scrapes before the experiment starts
                start = time.time() - case.scrape / case.speed
                journal, out = tmp / "journal.jsonl", tmp / "live"
                assert (
                    main(
                        [
                            "live",
                            str(folder / "experiment.yaml"),
                            str(folder / "metrics.yaml"),
                            "--kubeconfig",
                            str(tmp / "kubeconfig"),
                            "--prometheus-url",
                            prom.url,
                            "--interval-override",
                            f"{case.interval / case.speed:g}s",
                            "--journal",
                            str(journal),
                            "--out",
                            str(out),
                        ]
                    )
                    == 0
                )
                end = time.time()
                recording = tmp / "live.rec"
                assert (
                    main(
                        [
                            "record",
                            "--prometheus-url",
                            prom.url,
                            "--experiment",
                            str(folder / "experiment.yaml"),
                            str(folder / "metrics.yaml"),
                            str(folder / case.deployment),
                            "--start",
                            f"{start:.3f}",
                            "--end",
                            f"{end:.3f}",
                            "--out",
                            str(recording),
                            "--quiet",
                        ]
                    )
                    == 0
                )
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    calibrated = tmp / "calibrated"
    assert main(["calibrate", str(recording), "--out", str(calibrated), "--engine", case.compare]) == 0
    trace = list(csv.DictReader(io.StringIO((out / "trace.csv").read_text())))
    yield LiveRun(case, journal, out, trace, recording, calibrated)


def _journal(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_replay_observes_and_decides_what_the_live_run_did(live_run: LiveRun) -> None:
    started = [e for e in _journal(live_run.journal) if e.get("type") == "iteration_started"]
    times = [float(e["time"]) for e in started]  # type: ignore[arg-type]
    recording = read_recording(live_run.recording)
    replay = Replayer(recording).run("iter8", at=times[0], times=times[1:])
    assert len(replay.result.iterations) == len(started) >= 2
    scrapes = sorted({t for s in recording.db for t in s.arrays()[0].tolist()})
    raced = 0
    for entry, rec in zip(started, replay.result.iterations, strict=True):
        if any(rec.time - INGEST < t <= rec.time for t in scrapes):
            raced += 1  # a scrape still being stored when the live queries ran: they may have missed it
            continue
        live_metrics: dict[str, dict[str, float | None]] = entry["metrics"]  # type: ignore[assignment]
        assert set(rec.readings) == set(live_metrics)
        for metric, by_version in rec.readings.items():
            for version, reading in by_version.items():
                want = live_metrics[metric][version]
                # simkit's PromQL over the recorded samples vs Prometheus 2.42 over its own, both
                # evaluated at the journaled instant (live queries carry it as time=, to the ms)
                assert (reading.value is None) == (want is None), (rec.iteration, metric, version)
                if want is not None:
                    assert reading.value == pytest.approx(want, rel=1e-9, abs=1e-9), (
                        rec.iteration,
                        metric,
                        version,
                    )
    # the comparison must cover most iterations: a scrape is stored within INGEST of its stamp
    assert raced <= max(3, len(started) // 2), raced
    live = [(r["winner"], r["weight_after"]) for r in live_run.trace]
    replayed = [
        (rec.decision.winner or "", str(dict(rec.weights_after or ())[v]))
        for rec in replay.result.iterations
        for v in replay.result.versions
    ]
    assert replayed == live
    status = yaml.safe_load((live_run.trace_dir / "status.yaml").read_text())["status"]
    assert dict(replay.result.final_weights or {}) == {
        w["name"]: w["value"] for w in status["currentWeightDistribution"]
    }
    assert replay.result.rolled_back == live_run.case.rollback


def test_calibration_of_the_scraped_series_is_within_5_percent(live_run: LiveRun) -> None:
    """Every quantity the recording holds, per version, within 5 %, with no allowance: each case
    records enough events for 5 % to be a statement about calibration (the rollback's candidate
    serves at least MIN_CANDIDATE predictions before it is rolled back)."""
    text = (live_run.calibrated / "report.md").read_text()
    rows = parse_report(text)
    by_version: dict[str, set[str]] = {}
    for version, quantity, rec, sim, rel, within, _ in rows:
        by_version.setdefault(version, set()).add(quantity)
        assert rec is not None and sim is not None and rel is not None, (version, quantity)
        assert within and rel <= 0.05, (version, quantity, rec, sim, rel)
    assert by_version == live_run.case.quantities
    assert "Verdict: all" in text
    if live_run.case.rollback:
        assert recorded_predictions(live_run, "iris-v2") >= MIN_CANDIDATE


def recorded_predictions(live_run: LiveRun, version: str) -> float:
    """The version's predictions, counted from the recording's raw counters."""
    from simkit.replay.calibrate import fit
    from simkit.replay.selectors import metric_selectors

    rec = read_recording(live_run.recording)
    replayer = Replayer(rec)
    cal = fit(rec, metric_selectors(replayer.prepared), replayer.prepared.plan.versions)
    return next(f.predictions for f in cal.versions if f.version == version)


def test_the_calibrated_scenario_runs(live_run: LiveRun) -> None:
    # the serve recording's wall-clock load (40,000 calls/s at --speed 20) is a trace: auto would
    # take the events engine; the case's engine is the one its calibration compared with
    assert main(["run", str(live_run.calibrated), "--quiet", "--engine", live_run.case.compare]) == 0
