"""record → replay → calibrate → run on series a real Prometheus 2.42 scraped from `simkit serve`.

The seed's world is served in real time (``--speed`` 2.5), its routing weights taken from the
Kubernetes API fake, and `simkit live` runs the seed's Experiment against it (iterations every
4 s, scrapes every 6 s: the seed's 10 s and 15 s at that speed). Then the Prometheus range the run
covered is recorded and:

- replayed at the live run's own iteration instants (from its journal): every decision is what
  the live run decided, and every metric value what it observed (to 5e-3: live queries carry no
  time, so Prometheus evaluates them a few ms later), except in an iteration during whose queries
  a scrape landed (at most 3 of 15);
- calibrated: every recorded quantity per version within 5 % in ``report.md``;
- the calibrated scenario runs with ``simkit run``.

Servers are started here and stopped by PID (serve: SIGTERM; Prometheus: the harness).
"""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
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

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "scenarios" / "iris-abtest"
SPEED = 2.5
RACE = 0.5  # seconds a live iteration's queries may take after the instant its journal records


@dataclass
class LiveRun:
    journal: Path
    trace: list[dict[str, str]]
    recording: Path
    calibrated: Path


def _start_serve(fake: KubeFake, port_file: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simkit.cli",
            "serve",
            str(SEED),
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--kube-url",
            fake.url,
            "--speed",
            str(SPEED),
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


@pytest.fixture(scope="module")
def live_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRun]:
    require_prometheus()
    tmp = tmp_path_factory.mktemp("live-rec")
    with KubeFake() as fake:
        fake.cluster.load(list(yaml.safe_load_all((SEED / "abtest.yaml").read_text())))
        (tmp / "kubeconfig").write_text(kubeconfig_text(fake.url))
        proc = _start_serve(fake, tmp / "port")
        try:
            target = f"127.0.0.1:{(tmp / 'port').read_text().strip()}"
            scrape = ScrapeJob(
                [target], interval=f"{15 / SPEED:g}s", job_name="seldon", metrics_path="/prometheus"
            )
            with run_prometheus(scrape=[scrape], workdir=tmp / "prom") as prom:
                time.sleep(2 * 15 / SPEED)  # two scrapes before the experiment starts
                start = time.time() - 15 / SPEED
                journal, out = tmp / "journal.jsonl", tmp / "live"
                assert (
                    main(
                        [
                            "live",
                            str(SEED / "experiment.yaml"),
                            str(SEED / "metrics.yaml"),
                            "--kubeconfig",
                            str(tmp / "kubeconfig"),
                            "--prometheus-url",
                            prom.url,
                            "--interval-override",
                            f"{10 / SPEED:g}s",
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
                            str(SEED / "experiment.yaml"),
                            str(SEED / "metrics.yaml"),
                            str(SEED / "abtest.yaml"),
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
    assert main(["calibrate", str(recording), "--out", str(calibrated)]) == 0
    trace = list(csv.DictReader(io.StringIO((out / "trace.csv").read_text())))
    yield LiveRun(journal, trace, recording, calibrated)


def _journal(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_replay_observes_and_decides_what_the_live_run_did(live_run: LiveRun) -> None:
    started = [e for e in _journal(live_run.journal) if e.get("type") == "iteration_started"]
    assert len(started) == 15
    times = [float(e["time"]) for e in started]  # type: ignore[arg-type]
    recording = read_recording(live_run.recording)
    replay = Replayer(recording).run("iter8", at=times[0], times=times[1:])
    assert len(replay.result.iterations) == 15
    scrapes = sorted({t for s in recording.db for t in s.arrays()[0].tolist()})
    raced = 0
    for entry, rec in zip(started, replay.result.iterations, strict=True):
        if any(rec.time < t <= rec.time + RACE for t in scrapes):
            raced += 1  # a scrape landed while the live queries were in flight: they may have seen it
            continue
        live_metrics: dict[str, dict[str, float | None]] = entry["metrics"]  # type: ignore[assignment]
        assert set(rec.readings) == set(live_metrics)
        for metric, by_version in rec.readings.items():
            for version, reading in by_version.items():
                want = live_metrics[metric][version]
                # simkit's PromQL over the recorded samples vs Prometheus 2.42 over its own; live
                # queries carry no time, so Prometheus evaluates them a few ms after the instant
                # the journal keeps, and increase() extrapolates over those ms (~1e-3 of a window)
                assert (reading.value is None) == (want is None), (rec.iteration, metric, version)
                if want is not None:
                    assert reading.value == pytest.approx(want, rel=5e-3, abs=1e-9), (
                        rec.iteration,
                        metric,
                        version,
                    )
    assert raced <= 3, raced
    live = [(r["winner"], r["weight_after"]) for r in live_run.trace]
    replayed = [
        (rec.decision.winner or "", str(dict(rec.weights_after or ())[v]))
        for rec in replay.result.iterations
        for v in replay.result.versions
    ]
    assert replayed == live
    assert dict(replay.result.final_weights or {}) == {"iris-v1": 5, "iris-v2": 95}


def test_calibration_of_the_scraped_series_is_within_5_percent(live_run: LiveRun) -> None:
    text = (live_run.calibrated / "report.md").read_text()
    rows = parse_report(text)
    assert {q for _, q, *_ in rows} >= {"request rate (1/s)", "p95 latency (s)", "feedback rate (1/s)"}
    assert {v for v, *_ in rows} == {"iris-v1", "iris-v2"}
    for version, quantity, rec, sim, rel, within, _ in rows:
        assert within and rel is not None and rel <= 0.05, (version, quantity, rec, sim, rel)
    assert "Verdict: all" in text


def test_the_calibrated_scenario_runs(live_run: LiveRun) -> None:
    assert main(["run", str(live_run.calibrated), "--quiet"]) == 0
