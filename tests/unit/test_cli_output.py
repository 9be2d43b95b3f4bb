"""``-o json|yaml`` shapes, the shared ``--strategy`` parser, logging timestamps and the Prometheus
token options."""

from __future__ import annotations

import argparse
import json
import logging
import re
from pathlib import Path

import pytest
import yaml

from simkit.cli import main
from simkit.errors import SpecError
from simkit.strategies.options import parse_inline, read_params_file, strategy_options

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "scenarios" / "iris-abtest"
RFC3339 = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> object:
    capsys.readouterr()
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_run_json_is_the_experiment_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exp = run_json(["run", str(SEED), "-q", "-o", "json", "--out", str(tmp_path)], capsys)
    assert (
        isinstance(exp, dict) and exp["kind"] == "Experiment" and exp["metadata"]["name"] == "quickstart-exp"
    )
    assert exp["status"]["completedIterations"] == 15
    assert exp["status"]["versionRecommendedForPromotion"] == "iris-v2"
    # the same object as status.yaml, and what describe -o json gives back for it
    assert yaml.safe_load((tmp_path / "status.yaml").read_text()) == exp
    assert run_json(["describe", str(tmp_path / "status.yaml"), "-o", "json"], capsys) == exp
    capsys.readouterr()
    assert main(["run", str(SEED), "-q", "-o", "yaml"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == exp


def test_sim_json_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_json(
        ["sim", str(SEED), "--duration", "60s", "--out", str(tmp_path / "m.om"), "-o", "json"], capsys
    )
    assert isinstance(doc, dict) and doc["scenario"] == "iris-abtest" and doc["end"] - doc["begin"] == 60
    assert doc["engine"] in ("events", "counts")
    first = doc["predictors"][0]
    assert set(first) == {"predictor", "predictions", "errors", "feedback", "meanLatencySeconds"}
    assert first["predictions"] > 0 and 0 < first["meanLatencySeconds"] < 1


def test_strategies_metrics_and_analyze_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    names = run_json(["strategies", "-o", "json"], capsys)
    assert isinstance(names, list) and {"name", "description"} == set(names[0])
    assert {"iter8", "flagger", "argo", "thompson"} <= {n["name"] for n in names}
    doc = run_json(["metrics", str(SEED), "--at", "150s", "-o", "json"], capsys)
    assert isinstance(doc, dict) and set(doc) == {"at", "elapsedTime", "metrics", "warnings"}
    assert doc["at"] == 150.0 and doc["elapsedTime"] == 150
    assert set(doc["metrics"][0]) == {"metric", "version", "value", "units", "query", "message"}
    assert any("request-count" in w for w in doc["warnings"])
    status = str(ROOT / "tests" / "data" / "iter8" / "seed_status.yaml")
    as_json = run_json(["analyze", status], capsys)
    capsys.readouterr()
    assert main(["analyze", status, "-o", "yaml"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == as_json


def test_bench_json_rows(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(
        [
            "bench",
            str(SEED),
            "--strategies",
            "iter8",
            "--strategy",
            "flagger:stepWeight=25",
            "--seeds",
            "2",
            "--workers",
            "1",
            "-q",
            "-o",
            "json",
        ],
        capsys,
    )
    assert isinstance(rows, list) and [(r["scenario"], r["strategy"], r["runs"]) for r in rows] == [
        ("iris-abtest", "flagger", 2),
        ("iris-abtest", "iter8", 2),
    ]
    for key in ("correct", "correct_lo", "correct_hi", "regret", "time_to_decision"):
        assert key in rows[0]


# --- the shared strategy parser -----------------------------------------------------------------


def test_inline_parameters_are_yaml_scalars() -> None:
    assert parse_inline("flagger:stepWeight=20,maxWeight=50,enabled=true,m=ns/x") == (
        "flagger",
        {"stepWeight": 20, "maxWeight": 50, "enabled": True, "m": "ns/x"},
    )
    assert parse_inline("iter8") == ("iter8", {})
    for bad in ("flagger:stepWeight", ":x=1", "flagger:=3"):
        with pytest.raises(SpecError, match="--strategy"):
            parse_inline(bad)


def test_params_file_then_inline_overrides(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("flagger: {stepWeight: 10, maxWeight: 50}\nargo: {steps: [{setWeight: 50}]}\n")
    assert read_params_file(str(f))["argo"] == {"steps": [{"setWeight": 50}]}
    flagger, argo, thompson = strategy_options(["flagger:maxWeight=80", "argo", "thompson"], str(f))
    assert flagger.params == {"stepWeight": 10, "maxWeight": 80} and flagger.where.file.startswith(
        "--strategy"
    )
    assert argo.params == {"steps": [{"setWeight": 50}]} and argo.where.file == str(f)
    assert thompson.params is None  # nothing given: the scenario's own params may apply
    (tmp_path / "bad.yaml").write_text("flagger: 10\n")
    with pytest.raises(SpecError, match="bad.yaml: field flagger: must be a mapping"):
        read_params_file(str(tmp_path / "bad.yaml"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--strategy", "flagger:stepWeight=ten"],
            "--strategy flagger:stepWeight=ten: field stepWeight: must be a number",
        ),
        (["--strategy", "argo"], "--strategy argo: field steps: needs a non-empty list"),
        (["--strategy", "nope"], "--strategy nope: field strategy: unknown strategy 'nope'"),
        (["--strategy", "iter8", "--strategy", "flagger"], "give one strategy here"),
    ],
)
def test_bad_strategy_options_name_the_option(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(SEED), "-q", "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "o").exists()


def test_bad_parameter_in_a_file_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("flagger: {stepWeight: 500}\n")
    assert main(["run", str(SEED), "-q", "--strategy", "flagger", "--strategy-params", str(f)]) == 2
    assert f"{f}: field flagger.stepWeight:" in capsys.readouterr().err


def test_strategy_parameters_reach_the_strategy(capsys: pytest.CaptureFixture[str]) -> None:
    """flagger with stepWeight 50 and maxWeight 50 (checks off) promotes after two steps; the default
    step of 10 takes five: the parameters given on the command line are the ones used."""

    def iterations(spec: str) -> int:
        exp = run_json(["run", str(SEED), "-q", "-o", "json", "--strategy", spec], capsys)
        assert isinstance(exp, dict)
        return int(exp["status"]["completedIterations"])

    fast = iterations("flagger:stepWeight=50,maxWeight=50,checks=[]")
    slow = iterations("flagger:maxWeight=50,checks=[]")
    assert fast < slow, (fast, slow)


# --- logging and the Prometheus token -------------------------------------------------------------


def test_long_running_commands_log_with_rfc3339_timestamps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "record",
        "--prometheus-url",
        "http://127.0.0.1:9",
        "--experiment",
        str(SEED / "experiment.yaml"),
        str(SEED / "metrics.yaml"),
        "--start",
        "0",
        "--end",
        "60",
        "--out",
        str(tmp_path / "r.rec"),
    ]
    assert main(argv) == 3
    first = capsys.readouterr().err.splitlines()[0]
    assert re.match(rf"{RFC3339} INFO recording Experiment quickstart-exp from http://127.0.0.1:9", first), (
        first
    )
    assert main([*argv, "-q"]) == 3
    assert "INFO" not in capsys.readouterr().err
    logging.getLogger("simkit.record").debug("hidden")  # DEBUG only with -v
    assert capsys.readouterr().err == ""


def test_prometheus_token_file_then_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from simkit.live.commands import TOKEN_ENV, prometheus_token

    token = tmp_path / "token"
    token.write_text("s3cret\n")
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    args = argparse.Namespace(prometheus_token_file=str(token), prometheus_token=None)
    assert prometheus_token(args) == "s3cret"
    assert (
        prometheus_token(argparse.Namespace(prometheus_token_file=None, prometheus_token=None)) == "from-env"
    )
    monkeypatch.delenv(TOKEN_ENV)
    assert prometheus_token(argparse.Namespace(prometheus_token_file=None, prometheus_token=None)) is None
    with pytest.raises(SpecError, match="--prometheus-token-file: cannot read"):
        prometheus_token(
            argparse.Namespace(prometheus_token_file=str(tmp_path / "none"), prometheus_token=None)
        )


def test_replay_json_per_strategy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import httpx

    from simkit.prepare import prepare
    from simkit.promql.api import PrometheusAPITransport
    from simkit.replay.commands import load_manifests
    from simkit.replay.record import RecordRequest, record
    from simkit.sim.experiment import simulate_experiment
    from simkit.spec.bundle import load_scenario

    run = simulate_experiment(load_scenario(SEED), 1)
    db = run.world.tsdb
    files, docs, exp = load_manifests(str(SEED / "experiment.yaml"), [str(SEED / "metrics.yaml")])
    rec = tmp_path / "seed.rec"
    with httpx.Client(transport=PrometheusAPITransport(db, lambda: db.max_time or 0.0)) as client:
        record(
            client,
            prepare(exp, docs),
            files,
            RecordRequest("http://p", db.min_time or 0, db.max_time or 0, rec),
        )
    out = run_json(
        [
            "replay",
            str(rec),
            "--at",
            str(run.world.epoch),
            "--strategy",
            "iter8",
            "--strategy",
            "flagger:stepWeight=30",
            "-q",
            "-o",
            "json",
        ],
        capsys,
    )
    assert isinstance(out, list) and [r["strategy"] for r in out] == ["iter8", "flagger:stepWeight=30"]
    first = out[0]
    assert (
        first["experiment"]["kind"] == "Experiment"
        and first["experiment"]["status"]["completedIterations"] >= 1
    )
    assert set(first["iterations"][0]) == {"iteration", "time", "basis", "note"}
    assert first["iterations"][0]["basis"] in ("recorded", "beyond-record", "thinned")


def test_serve_logs_with_rfc3339_timestamps(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simkit",
            "serve",
            str(SEED),
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--no-load",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert port_file.exists(), "simkit serve did not start"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and out.startswith("listening on http://127.0.0.1:"), (out, err)
    lines = err.strip().splitlines()
    assert all(re.match(rf"{RFC3339} INFO simkit serve: ", line) for line in lines), lines
    assert any(" INFO simkit serve: scenario iris-abtest" in line for line in lines), lines
    assert re.match(rf"{RFC3339} INFO simkit serve: stopped", lines[-1]), lines


def _seed_recording(tmp_path: Path) -> tuple[Path, float]:
    """A recording of the seed run, taken through the in-process Prometheus API."""
    import httpx

    from simkit.prepare import prepare
    from simkit.promql.api import PrometheusAPITransport
    from simkit.replay.commands import load_manifests
    from simkit.replay.record import RecordRequest, record
    from simkit.sim.experiment import simulate_experiment
    from simkit.spec.bundle import load_scenario

    run = simulate_experiment(load_scenario(SEED), 1)
    db = run.world.tsdb
    files, docs, exp = load_manifests(str(SEED / "experiment.yaml"), [str(SEED / "metrics.yaml")])
    rec = tmp_path / "seed.rec"
    with httpx.Client(transport=PrometheusAPITransport(db, lambda: db.max_time or 0.0)) as client:
        record(
            client,
            prepare(exp, docs),
            files,
            RecordRequest("http://p", db.min_time or 0, db.max_time or 0, rec),
        )
    return rec, run.world.epoch


def test_calibrate_json_with_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec, _ = _seed_recording(tmp_path)
    simulated: dict[str, list[float]] = {}
    for engine in ("events", "counts"):
        out = run_json(
            ["calibrate", str(rec), "--out", str(tmp_path / engine), "--engine", engine, "-q", "-o", "json"],
            capsys,
        )
        assert isinstance(out, dict) and out["versions"] == ["iris-v1", "iris-v2"]
        comparison = out["comparison"]
        assert comparison["engine"] == engine and comparison["runs"] >= 1
        rows = comparison["rows"]
        assert {r["quantity"] for r in rows} >= {"request rate (1/s)", "feedback rate (1/s)"}
        for r in rows:
            if r["comparable"] and r["recorded"]:
                rel = abs(r["simulated"] - r["recorded"]) / r["recorded"]
                assert r["relativeDifference"] == pytest.approx(rel)
                assert r["within"] == (r["relativeDifference"] <= comparison["tolerance"])
        assert comparison["allWithin"] == all(r["within"] for r in rows if r["comparable"])
        assert (tmp_path / engine / "report.md").is_file()
        simulated[engine] = [r["simulated"] for r in rows if r["quantity"] == "request rate (1/s)"]
    # the option reaches the comparison's worlds: the two engines draw different traffic
    assert simulated["events"] != simulated["counts"]


def test_serve_json_summary_when_stopped(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simkit", "serve", str(SEED), "--port", "0", "--port-file", str(port_file)]
        + ["--no-load", "--speed", "4", "-o", "json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert port_file.exists(), "simkit serve did not start"
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    summary = json.loads(out)  # stdout holds only the summary; the banner went to stderr
    assert "listening on http://127.0.0.1:" in err
    assert (
        summary["scenario"] == "iris-abtest" and summary["stopped"] == "signal" and summary["error"] is None
    )
    assert summary["url"].startswith("http://127.0.0.1:") and summary["speed"] == 4
    assert summary["simulatedSeconds"] > 0
