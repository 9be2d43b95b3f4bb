"""Record from a real Prometheus 2.42 (backfilled with simkit's own simulated series), replay the
seed experiment over the recording, calibrate, and run the calibrated scenario.

The series come from a simulation whose decisions are known, so the replay must decide exactly
the same, iteration by iteration; the calibrated scenario must reproduce the recorded per-version
request rates, error rates and p50/p95/p99 within 5 %. Prometheus is started by the harness in
``tests/support/prometheus.py`` (skip outside CI if missing, fail in CI) and stopped by PID.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from simkit.cli import main
from simkit.replay.commands import cmd_record
from simkit.replay.recording import read_recording
from simkit.replay.replay import Replayer
from simkit.report.calibration_report import parse_report
from simkit.report.commands import cmd_calibrate
from simkit.sim.experiment import simulate_experiment
from simkit.sim.world import simulate
from simkit.spec.bundle import load_scenario
from tests.support.prometheus import Binaries, run_prometheus

SEED = Path(__file__).resolve().parents[2] / "scenarios" / "iris-abtest"


def _record_args(
    url: str, folder: Path, start: float, end: float, out: Path, **extra: str
) -> argparse.Namespace:
    return argparse.Namespace(
        prometheus_url=url,
        experiment=str(folder / "experiment.yaml"),
        metrics=[str(folder / "metrics.yaml"), str(folder / "abtest.yaml")],
        start=str(start),
        end=str(end),
        step=extra.get("step"),
        chunk=extra.get("chunk", "1h"),
        timeout="30s",
        out=str(out),
        quiet=True,
    )


def test_replay_of_recorded_seed_decides_like_the_simulation(
    prometheus_binaries: Binaries, tmp_path: Path
) -> None:
    run = simulate_experiment(load_scenario(SEED), 1)
    db, epoch = run.world.tsdb, run.world.epoch
    assert db.min_time is not None and db.max_time is not None
    out = tmp_path / "seed.rec"
    with run_prometheus(db, workdir=tmp_path / "prom", binaries=prometheus_binaries) as prom:
        # RFC 3339 start (= db.min_time), Unix end; 60 s chunks: several requests per selector
        args = _record_args(prom.url, SEED, db.min_time, db.max_time, out, chunk="60s")
        args.start = "2021-06-15T15:19:48Z"
        assert cmd_record(args) == 0
    rec = read_recording(out)
    assert rec.header.start == db.min_time and rec.header.step == 15.0
    # every raw sample of the series the Experiment reads came back from Prometheus unchanged
    for s in rec.db:
        original = next(x for x in db if x.labels == s.labels)
        assert original.arrays()[0].tolist() == s.arrays()[0].tolist()
        assert original.arrays()[1].tolist() == s.arrays()[1].tolist()
    replay = Replayer(rec, seed=1, iteration_delay=3.08).run("iter8", at=epoch)  # the seed's recorded cadence
    sim = [(r.decision.winner, r.weights_after, r.decision.verdict) for r in run.result.iterations]
    got = [(r.decision.winner, r.weights_after, r.decision.verdict) for r in replay.result.iterations]
    assert got == sim
    assert len(got) == 15 and got[-1][1] == (("iris-v1", 5), ("iris-v2", 95))
    # the CLI writes what simkit run writes, plus the side-by-side table
    assert (
        main(
            [
                "replay",
                str(out),
                "--at",
                "2021-06-15T15:20:18Z",
                "--iteration-delay",
                "3.08s",
                "--out",
                str(tmp_path / "r"),
                "--quiet",
            ]
        )
        == 0
    )
    assert {p.name for p in (tmp_path / "r").iterdir()} == {
        "status.yaml",
        "trace.csv",
        "rollout.png",
        "comparison.csv",
    }


def test_calibrated_scenario_reproduces_recorded_figures(
    prometheus_binaries: Binaries, tmp_path: Path
) -> None:
    # a richer variant of the seed: 60/40 split, 40 req/s, candidate errors on two codes, and 502s
    # on the baseline from half-way (series that appear mid-recording); --end off the scrape grid
    src = tmp_path / "src"
    shutil.copytree(SEED, src)
    sdep = (
        (src / "abtest.yaml")
        .read_text()
        .replace("traffic: 100", "traffic: 60")
        .replace("traffic: 0", "traffic: 40")
    )
    (src / "abtest.yaml").write_text(sdep)
    text = (src / "scenario.yaml").read_text()
    for old, new in (
        ("qps: 5, start: -30s", "qps: 40, start: -30s"),
        (
            "latency: {distribution: lognormal, median: 9.2ms, p99: 33ms}\n",
            'latency: {distribution: lognormal, median: 9.2ms, p99: 33ms}\n      errors: {codes: {"500": 0.05, "503": 0.03}}\n',
        ),
        (
            "  load:\n",
            '  events:\n    - {at: 1800s, predictor: ns-production/iris/baseline, set: {errors: {codes: {"502": 0.02}}}}\n  load:\n',
        ),
    ):
        assert old in text
        text = text.replace(old, new, 1)
    (src / "scenario.yaml").write_text(text)
    world = simulate(str(src), 3600.0, 11)
    db = world.tsdb
    assert db.min_time is not None and db.max_time is not None
    out = tmp_path / "hour.rec"
    with run_prometheus(db, workdir=tmp_path / "prom", binaries=prometheus_binaries) as prom:
        assert cmd_record(_record_args(prom.url, src, db.min_time, db.max_time - 7.0, out)) == 0
    scenario_dir = tmp_path / "calibrated"
    assert (
        cmd_calibrate(argparse.Namespace(file=str(out), out=str(scenario_dir), seed=3, no_compare=False)) == 0
    )
    assert (scenario_dir / "report.md").is_file() and (scenario_dir / "calibration.png").is_file()
    bundle = load_scenario(scenario_dir)  # simkit run accepts it
    assert bundle.scenario.spec.experiment == "quickstart-exp"
    rows = {
        (v, q): (rec, sim, rel, ok)
        for v, q, rec, sim, rel, ok, _ in parse_report((scenario_dir / "report.md").read_text())
    }
    for version in ("iris-v1", "iris-v2"):
        for q in (
            "request rate (1/s)",
            "p50 latency (s)",
            "p95 latency (s)",
            "p99 latency (s)",
            "mean latency (s)",
        ):
            assert rows[(version, q)][3], (version, q, rows[(version, q)])
    # the candidate's two error codes, each within 5 %; the baseline has none on either side
    for code in ("500", "503"):
        rec, sim, rel, ok = rows[("iris-v2", f"error rate {code}")]
        assert ok and rec and sim and rel is not None and rel <= 0.05
    rec, sim, rel, ok = rows[("iris-v1", "error rate 502")]  # born mid-recording: its first scrape counts
    assert ok and rec and sim and rel is not None and rel <= 0.05
    assert "Verdict: all" in (scenario_dir / "report.md").read_text()


def test_record_of_a_time_range_without_data_exits_2(
    prometheus_binaries: Binaries, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = simulate_experiment(load_scenario(SEED), 1)
    with run_prometheus(run.world.tsdb, workdir=tmp_path / "prom", binaries=prometheus_binaries) as prom:
        code = main(
            [
                "record",
                "--prometheus-url",
                prom.url,
                "--experiment",
                str(SEED / "experiment.yaml"),
                str(SEED / "metrics.yaml"),
                "--start",
                "2020-01-01T00:00:00Z",
                "--end",
                "2020-01-01T01:00:00Z",
                "--out",
                str(tmp_path / "x.rec"),
                "--quiet",
            ]
        )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no data" in err[0]
    assert not (tmp_path / "x.rec").exists()


def test_record_json_summary(
    prometheus_binaries: Binaries, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    run = simulate_experiment(load_scenario(SEED), 1)
    db = run.world.tsdb
    assert db.min_time is not None and db.max_time is not None
    out = tmp_path / "seed.rec"
    with run_prometheus(db, workdir=tmp_path / "prom", binaries=prometheus_binaries) as prom:
        capsys.readouterr()
        code = main(
            ["record", "--prometheus-url", prom.url, "--experiment", str(SEED / "experiment.yaml")]
            + [str(SEED / "metrics.yaml"), "--start", str(db.min_time), "--end", str(db.max_time)]
            + ["--out", str(out), "--quiet", "-o", "json"]
        )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    rec = read_recording(out)
    assert summary["recording"] == str(out) and summary["experiment"] == rec.header.experiment
    assert summary["series"] == len(rec.db) and summary["samples"] == rec.db.sample_count() > 0
    assert summary["source"] == prom.url and summary["mode"] == rec.header.mode
